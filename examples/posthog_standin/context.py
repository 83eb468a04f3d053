"""Per-app state and the per-request context handlers receive."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from .errors import parse_error, unsupported_media_type, validation_error
from .store import Store, Task, TaskRun
from .validation import Reader, type_name

if TYPE_CHECKING:
    from .auth import ApiKey, RateLimiter
    from .simulator import RunSimulator
    from .storage import BlobStore


@dataclass(frozen=True)
class Settings:
    """Tunables of one stand-in instance (see ``create_app``)."""

    project_id: int
    run_step_seconds: float
    stream_keepalive_seconds: float
    stream_max_seconds: float
    command_timeout_seconds: float


@dataclass
class Standin:
    """Everything one app instance owns; stored on ``app.state.standin``."""

    settings: Settings
    store: Store
    keys: dict[str, ApiKey]
    limiter: RateLimiter
    blobs: BlobStore
    simulator: RunSimulator
    secret: bytes


@dataclass
class Context:
    """What an API handler needs: the request, the app state and the caller's key."""

    request: Request
    standin: Standin
    key: ApiKey

    @property
    def store(self) -> Store:
        return self.standin.store

    @property
    def base_url(self) -> str:
        """``scheme://host[:port]`` as the client reached us; used for absolute links."""
        return str(self.request.base_url).rstrip("/")

    def query(self) -> Reader:
        return Reader(self.request.query_params)

    def task(self) -> Task:
        return self.store.get_task(self.request.path_params["task_id"])

    def task_and_run(self) -> tuple[Task, TaskRun]:
        task = self.task()
        return task, self.store.get_run(task, self.request.path_params["run_id"])

    async def body(self) -> Reader:
        """Parse a JSON object body; an empty body is ``{}``, unknown fields are ignored."""
        raw = await self.request.body()
        if not raw.strip():
            return Reader({})
        content_type = self.request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type and content_type != "application/json" and not content_type.endswith("+json"):
            raise unsupported_media_type(content_type)
        try:
            data: Any = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise parse_error(str(exc)) from None
        if not isinstance(data, dict):
            raise validation_error(f"Invalid data. Expected a dictionary, but got {type_name(data)}.")
        return Reader(data)
