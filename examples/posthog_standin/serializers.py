"""Response shapes for Task and TaskRun, field for field as the API renders them."""

from __future__ import annotations

from typing import Any

from .context import Context
from .store import DEMO_USER, Task, TaskRun, iso

PROVIDERS = {"claude": "anthropic", "codex": "openai"}
REASONING_EFFORTS = ("low", "medium", "high", "xhigh", "max", "ultracode")


def run_json(ctx: Context, run: TaskRun) -> dict[str, Any]:
    """``TaskRunDetail``: runtime fields are derived from ``state``; ``log_url`` is presigned."""
    state = run.state
    adapter = state.get("runtime_adapter") if state.get("runtime_adapter") in PROVIDERS else None
    effort = state.get("reasoning_effort") if state.get("reasoning_effort") in REASONING_EFFORTS else None
    model = state.get("model") if isinstance(state.get("model"), str) else None
    log_url = None
    if run.log_lines:
        log_url = ctx.standin.blobs.presigned_get_url(ctx.base_url, ctx.store.log_key(run))
    return {
        "id": run.id,
        "task": run.task_id,
        "stage": run.stage,
        "branch": run.branch,
        "status": run.status,
        "environment": run.environment,
        "runtime_adapter": adapter,
        "provider": PROVIDERS.get(adapter) if adapter else None,
        "model": model,
        "reasoning_effort": effort,
        "log_url": log_url,
        "error_message": run.error_message,
        "output": run.output,
        "state": run.state,
        "artifacts": run.artifacts,
        "created_at": iso(run.created_at),
        "updated_at": iso(run.updated_at),
        "completed_at": iso(run.completed_at),
    }


def task_json(ctx: Context, task: Task) -> dict[str, Any]:
    latest = ctx.store.latest_run(task)
    return {
        "id": task.id,
        "task_number": task.task_number,
        "slug": task.slug,
        "title": task.title,
        "title_manually_set": task.title_manually_set,
        "description": task.description,
        "origin_product": task.origin_product,
        "repository": task.repository,
        "github_integration": task.github_integration,
        "signal_report": task.signal_report,
        "json_schema": task.json_schema,
        "internal": task.internal,
        "latest_run": run_json(ctx, latest) if latest else None,
        "created_at": iso(task.created_at),
        "updated_at": iso(task.updated_at),
        "created_by": dict(DEMO_USER) if task.created_by == DEMO_USER["id"] else None,
        "ci_prompt": task.ci_prompt,
        "archived": task.archived,
        "archived_at": iso(task.archived_at),
    }


def task_summary_json(ctx: Context, task: Task) -> dict[str, Any]:
    latest = ctx.store.latest_run(task)
    return {
        "id": task.id,
        "title": task.title,
        "repository": task.repository,
        "origin_product": task.origin_product,
        "created_at": iso(task.created_at),
        "updated_at": iso(task.updated_at),
        "latest_run": {"status": latest.status, "environment": latest.environment} if latest else None,
    }
