"""Handlers for ``/api/projects/{project_id}/tasks/`` and its task-level actions."""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import JSONResponse, Response

from .context import Context
from .errors import validation_error
from .pagination import paginate
from .run_options import check_references, inherit_from_previous, initial_state, read_run_options
from .serializers import task_json, task_summary_json
from .store import Task, utcnow
from .validation import MISSING, Reader, as_bool, as_uuid

ORIGIN_PRODUCTS = (
    "error_tracking",
    "eval_clusters",
    "user_created",
    "slack",
    "support_queue",
    "session_summaries",
    "signal_report",
    "onboarding",
    "automation",
    "posthog_ai",
    "experiments",
    "signals_scout",
    "support_reply",
    "hogdesk",
    "review_hog",
    "image_builder",
    "loop",
    "mcp_analytics",
)
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_TASK_NUMBER = re.compile(r"^(?:[A-Za-z]+-)?(\d+)$")
REPOSITORY_FORMAT_ERROR = "Repository must be in the format organization/repository"


# -- write body ------------------------------------------------------------------


def normalise_repository(value: str | None, attr: str = "repository") -> str | None:
    """``org/repo``, lower-cased; blank means none."""
    if value is None or not value.strip():
        return None
    if not _REPOSITORY.match(value.strip()):
        raise validation_error(REPOSITORY_FORMAT_ERROR, attr)
    return value.strip().lower()


def read_task_fields(body: Reader) -> dict[str, Any]:
    """Writable Task fields that are present in the body (unknown fields are ignored)."""
    fields = {
        "title": body.string("title", max_length=255),
        "title_manually_set": body.boolean("title_manually_set"),
        "description": body.string("description"),
        "origin_product": body.choice("origin_product", ORIGIN_PRODUCTS),
        "repository": body.string("repository", nullable=True, max_length=255),
        "github_integration": body.integer("github_integration", nullable=True),
        "signal_report": body.uuid("signal_report", nullable=True),
        "json_schema": body.json("json_schema"),
        "internal": body.boolean("internal"),
        "ci_prompt": body.string("ci_prompt", nullable=True),
        "archived": body.boolean("archived"),
    }
    present = {name: value for name, value in fields.items() if value is not MISSING}
    if "repository" in present:
        present["repository"] = normalise_repository(present["repository"])
    return present


def fallback_title(description: str) -> str:
    """Title used when none is given: first description line, 57 chars + ``...`` beyond 60."""
    lines = description.strip().splitlines()
    line = lines[0].strip() if lines else ""
    if not line:
        return "Untitled Task"
    return line[:57] + "..." if len(line) > 60 else line


def apply_archived(task: Task, archived: bool) -> None:
    if archived and not task.archived:
        task.archived_at = utcnow()
    elif not archived:
        task.archived_at = None
    task.archived = archived


# -- list filters ------------------------------------------------------------------


def _tri_state(raw: str | None, attr: str) -> bool | None:
    """``internal``/``archived`` query: absent → only False, ``all`` → both."""
    if raw is None:
        return False
    if raw.lower() == "all":
        return None
    return as_bool(raw, attr)


def _matches_repository(task: Task, wanted: str) -> bool:
    repo = (task.repository or "").lower()
    wanted = wanted.lower()
    return repo == wanted if "/" in wanted else repo.endswith(f"/{wanted}")


def _matches_search(task: Task, term: str) -> bool:
    needle = term.lower()
    if needle in task.title.lower() or needle in task.description.lower():
        return True
    number = _TASK_NUMBER.match(term.strip())
    return bool(number) and int(number.group(1)) == task.task_number


def filter_tasks(ctx: Context, tasks: list[Task]) -> list[Task]:
    query = ctx.request.query_params
    internal = _tri_state(query.get("internal"), "internal")
    archived = _tri_state(query.get("archived"), "archived")
    created_by = ctx.query().integer("created_by")
    selected = []
    for task in tasks:
        latest = ctx.store.latest_run(task)
        checks = [
            internal is None or task.internal == internal,
            archived is None or task.archived == archived,
            "origin_product" not in query or task.origin_product == query["origin_product"],
            "repository" not in query or _matches_repository(task, query["repository"]),
            "organization" not in query
            or (task.repository or "").lower().startswith(query["organization"].lower() + "/"),
            created_by is MISSING or task.created_by == created_by,
            "search" not in query or _matches_search(task, query["search"]),
            "status" not in query or (latest is not None and latest.status == query["status"]),
            "stage" not in query or (latest is not None and latest.stage == query["stage"]),
        ]
        if all(checks):
            selected.append(task)
    return selected


# -- handlers ------------------------------------------------------------------------


async def list_tasks(ctx: Context) -> Response:
    tasks = filter_tasks(ctx, ctx.store.visible_tasks())
    return JSONResponse(paginate(ctx.request, tasks, lambda t: task_json(ctx, t)))


async def create_task(ctx: Context) -> Response:
    fields = read_task_fields(await ctx.body())
    title = (fields.pop("title", "") or "").strip()
    description = fields.pop("description", "") or ""
    manual = fields.pop("title_manually_set", bool(title))
    archived = fields.pop("archived", False)
    task = ctx.store.create_task(
        title=title or fallback_title(description),
        title_manually_set=manual,
        description=description,
        origin_product=fields.pop("origin_product", "user_created"),
        **fields,
    )
    apply_archived(task, archived)
    return JSONResponse(task_json(ctx, task), status_code=201)


async def retrieve_task(ctx: Context) -> Response:
    return JSONResponse(task_json(ctx, ctx.task()))


async def update_task(ctx: Context) -> Response:
    """PATCH, and PUT treated as a partial update (as the current backend does)."""
    task = ctx.task()
    fields = read_task_fields(await ctx.body())
    if "title" in fields and "title_manually_set" not in fields:
        fields["title_manually_set"] = True
    if "archived" in fields:
        apply_archived(task, fields.pop("archived"))
    for name, value in fields.items():
        setattr(task, name, value)
    task.updated_at = utcnow()
    return JSONResponse(task_json(ctx, task))


async def delete_task(ctx: Context) -> Response:
    """Soft delete: the row stays (task numbers keep counting) but 404s everywhere."""
    task = ctx.task()
    task.deleted = True
    for run in ctx.store.runs_of(task):
        ctx.standin.simulator.release(run)
    return Response(status_code=204)


async def run_task(ctx: Context) -> Response:
    """Create a cloud run, start the (simulated) workflow and return the refreshed Task."""
    task = ctx.task()
    options = read_run_options(await ctx.body(), task_run=True)
    check_references(ctx.store, task, options)
    inherit_from_previous(ctx.store, options)
    run = ctx.store.create_run(task, environment="cloud", state=initial_state(options), branch=options.get("branch"))
    ctx.standin.simulator.start(run, ctx.base_url)
    return JSONResponse(task_json(ctx, task))


async def repositories(ctx: Context) -> Response:
    repos = {t.repository for t in ctx.store.visible_tasks() if t.repository and not t.internal}
    return JSONResponse({"repositories": sorted(repos)})


def _needs_setup() -> dict[str, Any]:
    return {
        "state": "needs_setup",
        "estimated": False,
        "reason": "GitHub integration is not connected.",
        "evidence": {},
    }


async def repository_readiness(ctx: Context) -> Response:
    """The canned answer the server gives when no GitHub integration is connected."""
    query = ctx.query()
    repository = normalise_repository(query.string("repository", is_required=True, blank=False))
    window_days = query.integer("window_days", min_value=1, max_value=30)
    query.boolean("refresh")
    window_days = 7 if window_days is MISSING else window_days
    evidence = [t for t in ctx.store.visible_tasks() if t.repository == repository]
    return JSONResponse(
        {
            "repository": repository,
            "classification": "unknown",
            "excluded": False,
            "coreSuggestions": _needs_setup(),
            "replayInsights": _needs_setup(),
            "errorInsights": _needs_setup(),
            "overall": "needs_setup",
            "evidenceTaskCount": len(evidence),
            "windowDays": window_days,
            "generatedAt": utcnow().isoformat().replace("+00:00", "Z"),
            "cacheAgeSeconds": 0,
        }
    )


async def summaries(ctx: Context) -> Response:
    """POST with ``{"ids": [...]}`` but only ``task:read``; paginated by query string."""
    body = await ctx.body()
    raw_ids = body.items("ids", is_required=True, allow_empty=False, max_items=5000)
    wanted = {as_uuid(value, f"ids__{i}") for i, value in enumerate(raw_ids)}
    tasks = [t for t in ctx.store.visible_tasks() if t.id in wanted]
    return JSONResponse(paginate(ctx.request, tasks, lambda t: task_summary_json(ctx, t)))
