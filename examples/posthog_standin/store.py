"""In-memory models for tasks, runs, their logs and event streams.

One :class:`Store` belongs to one app instance, so tests can run several
independent stand-ins side by side. Invariants the real backend enforces in its
models live here too: per-project task numbers starting at 0, slugs, soft
deletion, ``completed_at`` stamping, the resume chain, log-line storage format,
and publishing a ``task_run_state`` snapshot whenever a run changes.
"""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, UTC
from typing import Any

from .errors import not_found
from .events import RunStream

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
RUN_STATUSES = ("not_started", "queued", "in_progress", "completed", "failed", "cancelled")
MAX_RESUME_DEPTH = 10

DEMO_USER: dict[str, Any] = {
    "id": 1,
    "uuid": "0190f3a8-0000-7000-8000-000000000001",
    "distinct_id": "standin-demo-user",
    "first_name": "Demo",
    "last_name": "User",
    "email": "demo@posthog-standin.local",
    "is_email_verified": True,
    "hedgehog_config": None,
    "role_at_organization": None,
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    """DRF renders UTC datetimes with a ``Z`` suffix."""
    return value.isoformat().replace("+00:00", "Z") if value else None


def new_uuid() -> str:
    return str(uuid.uuid4())


def canonical_uuid(value: str) -> str | None:
    """Detail ids are UUIDs; anything else is answered with 404 by the caller."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def slug_prefix(team_name: str) -> str:
    """First 3 capitals of the team name, else its first 3 alphanumerics, else ``TSK``."""
    capitals = [c for c in team_name if c.isupper()]
    if len(capitals) >= 3:
        return "".join(capitals[:3])
    alnum = [c for c in team_name if c.isalnum()]
    return "".join(alnum[:3]).upper() if len(alnum) >= 3 else "TSK"


@dataclass
class Task:
    id: str
    seq: int
    task_number: int
    slug: str
    title: str
    title_manually_set: bool
    description: str
    origin_product: str
    created_at: datetime
    updated_at: datetime
    repository: str | None = None
    github_integration: int | None = None
    signal_report: str | None = None
    json_schema: Any = None
    internal: bool = False
    ci_prompt: str | None = None
    archived: bool = False
    archived_at: datetime | None = None
    created_by: int | None = DEMO_USER["id"]
    deleted: bool = False


@dataclass
class TaskRun:
    id: str
    seq: int
    task_id: str
    created_at: datetime
    updated_at: datetime
    status: str = "queued"
    environment: str = "local"
    stage: str | None = None
    branch: str | None = None
    error_message: str | None = None
    output: Any = None
    state: dict[str, Any] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)
    completed_at: datetime | None = None
    # Bumped whenever the simulated worker must let go of this run.
    generation: int = 0

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def artifact(self, *, storage_path: str | None = None, artifact_id: str | None = None) -> dict[str, Any] | None:
        for entry in self.artifacts:
            if storage_path is not None and entry.get("storage_path") == storage_path:
                return entry
            if artifact_id is not None and entry.get("id") == artifact_id:
                return entry
        return None


class Store:
    """All tasks and runs of the single stand-in project."""

    def __init__(self, project_id: int, team_name: str = "Demo Project") -> None:
        self.project_id = project_id
        self.team_name = team_name
        self.tasks: dict[str, Task] = {}
        self.runs: dict[str, TaskRun] = {}
        self.streams: dict[str, RunStream] = {}
        self._seq = itertools.count()

    # -- tasks -----------------------------------------------------------------

    def create_task(self, **fields: Any) -> Task:
        now = utcnow()
        number = max((t.task_number for t in self.tasks.values()), default=-1) + 1
        task = Task(
            id=new_uuid(),
            seq=next(self._seq),
            task_number=number,
            slug=f"{slug_prefix(self.team_name)}-{number}",
            created_at=now,
            updated_at=now,
            **fields,
        )
        self.tasks[task.id] = task
        return task

    def get_task(self, task_id: str) -> Task:
        """A visible, non-deleted task or 404 (never 403, as in production)."""
        key = canonical_uuid(task_id)
        task = self.tasks.get(key) if key else None
        if task is None or task.deleted or task.created_by not in (None, DEMO_USER["id"]):
            raise not_found()
        return task

    def visible_tasks(self) -> list[Task]:
        """Non-deleted tasks, newest first."""
        tasks = [t for t in self.tasks.values() if not t.deleted]
        return sorted(tasks, key=lambda t: (t.created_at, t.seq), reverse=True)

    # -- runs ------------------------------------------------------------------

    def create_run(self, task: Task, *, environment: str, state: dict[str, Any], branch: str | None) -> TaskRun:
        now = utcnow()
        run = TaskRun(
            id=new_uuid(),
            seq=next(self._seq),
            task_id=task.id,
            created_at=now,
            updated_at=now,
            environment=environment,
            branch=branch,
            state=state,
        )
        self.runs[run.id] = run
        self.streams[run.id] = RunStream()
        self.changed(run)
        return run

    def get_run(self, task: Task, run_id: str) -> TaskRun:
        key = canonical_uuid(run_id)
        run = self.runs.get(key) if key else None
        if run is None or run.task_id != task.id:
            raise not_found()
        return run

    def runs_of(self, task: Task) -> list[TaskRun]:
        """Runs of a task, newest first by (created_at, id-order)."""
        runs = [r for r in self.runs.values() if r.task_id == task.id]
        return sorted(runs, key=lambda r: (r.created_at, r.seq), reverse=True)

    def latest_run(self, task: Task) -> TaskRun | None:
        runs = self.runs_of(task)
        return runs[0] if runs else None

    def resume_chain(self, run: TaskRun) -> list[TaskRun]:
        """Oldest ancestor first, following ``state.resume_from_run_id`` within the task."""
        chain = [run]
        seen = {run.id}
        current = run
        while len(chain) <= MAX_RESUME_DEPTH:
            parent_id = current.state.get("resume_from_run_id")
            parent = self.runs.get(parent_id) if isinstance(parent_id, str) else None
            if parent is None or parent.id in seen or parent.task_id != run.task_id:
                break
            chain.append(parent)
            seen.add(parent.id)
            current = parent
        return list(reversed(chain))

    # -- run changes -----------------------------------------------------------

    def set_status(self, run: TaskRun, status: str) -> None:
        """Set status; terminal statuses stamp ``completed_at`` once (never cleared here)."""
        run.status = status
        if status in TERMINAL_STATUSES and run.completed_at is None:
            run.completed_at = utcnow()

    def changed(self, run: TaskRun) -> None:
        """Save + publish: bump ``updated_at`` and emit a ``task_run_state`` snapshot."""
        run.updated_at = utcnow()
        self.publish(run, state_snapshot(run))

    def publish(self, run: TaskRun, event: dict[str, Any]) -> None:
        """Append to the run's stream, keeping the end sentinel last for finished runs."""
        stream = self.streams[run.id]
        stream.reopen()
        stream.publish(event)
        if run.is_terminal:
            stream.end()

    def append_log(self, run: TaskRun, entries: list[dict[str, Any]]) -> None:
        """Store entries as JSON lines (``json.dumps`` defaults) and mirror them to the stream."""
        for entry in entries:
            run.log_lines.append(json.dumps(entry))
            self.publish(run, entry)

    def log_text(self, run: TaskRun) -> str:
        """The stored log object: lines joined by ``\\n`` with no trailing newline."""
        return "\n".join(run.log_lines)

    def log_key(self, run: TaskRun) -> str:
        return f"tasks/logs/team_{self.project_id}/task_{run.task_id}/run_{run.id}.jsonl"

    def run_for_log_key(self, key: str) -> TaskRun | None:
        return next((r for r in self.runs.values() if self.log_key(r) == key), None)


def state_snapshot(run: TaskRun) -> dict[str, Any]:
    """The ``task_run_state`` event published on every run change."""
    return {
        "type": "task_run_state",
        "run_id": run.id,
        "task_id": run.task_id,
        "status": run.status,
        "stage": run.stage,
        "output": run.output,
        "branch": run.branch,
        "error_message": run.error_message,
        "updated_at": iso(run.updated_at),
        "completed_at": iso(run.completed_at),
    }
