"""A fake cloud worker that drives started runs to completion on a timer.

Production starts a Temporal workflow that boots a sandbox, runs the coding agent,
streams its events to Redis and the run log, sets ``output.pr_url`` and marks the
run completed. This walks the same path in a few short steps
(queued → in_progress → completed) so clients can watch ``stream/`` and read
``logs/`` realistically. Any change that would stop the real workflow (terminal
PATCH, hand-off to local, cancel, delete, restart) bumps ``run.generation`` and the
driver quietly lets go.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, UTC
from typing import Any

from .store import Store, TaskRun

logger = logging.getLogger(__name__)

SANDBOX_PREFIX = "/_standin/sandbox"


def log_entry(run: TaskRun, method: str, **params: Any) -> dict[str, Any]:
    """An agent log entry in the shape the sandbox posts to ``append_log/``."""
    return {
        "type": "notification",
        "timestamp": datetime.now(UTC).isoformat(),
        "notification": {"jsonrpc": "2.0", "method": method, "params": {"sessionId": run.id, **params}},
    }


def session_update(run: TaskRun, update_kind: str, **update: Any) -> dict[str, Any]:
    return log_entry(run, "session/update", update={"sessionUpdate": update_kind, **update})


def text(value: str) -> dict[str, str]:
    return {"type": "text", "text": value}


class RunSimulator:
    """Schedules one asyncio task per started run."""

    def __init__(self, store: Store, step_seconds: float) -> None:
        self.store = store
        self.step_seconds = step_seconds
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, run: TaskRun, base_url: str) -> None:
        """Launch the workflow for ``run``; replaces any earlier driver of the same run."""
        run.generation += 1
        task = asyncio.get_running_loop().create_task(self._drive(run, run.generation, base_url))
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("simulated worker crashed", exc_info=task.exception())

    def release(self, run: TaskRun) -> None:
        """Tell the worker to stop touching ``run`` (the workflow was signalled to finish)."""
        run.generation += 1

    def cancel(self, run: TaskRun) -> None:
        """Agent-side cancel: stop and mark the run cancelled."""
        self.release(run)
        if not run.is_terminal:
            self.store.set_status(run, "cancelled")
            self.store.changed(run)

    def is_driving(self, run: TaskRun, generation: int) -> bool:
        task = self.store.tasks.get(run.task_id)
        return (
            run.generation == generation
            and not run.is_terminal
            and run.environment == "cloud"
            and task is not None
            and not task.deleted
        )

    def on_user_message(self, run: TaskRun, content: str | None) -> None:
        """A queued follow-up reaches a live agent immediately and gets a short reply."""
        if run.status != "in_progress" or not content:
            return
        self.store.append_log(run, [session_update(run, "user_message_chunk", content=text(content))])
        self.store.append_log(run, [session_update(run, "agent_message", content=text(f"Noted: {content}"))])

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _drive(self, run: TaskRun, generation: int, base_url: str) -> None:
        script: list[Callable[[TaskRun, str], None]] = [self._boot, self._work, self._publish_pr, self._complete]
        for step in script:
            await asyncio.sleep(self.step_seconds)
            if not self.is_driving(run, generation):
                return
            step(run, base_url)

    # -- script steps ------------------------------------------------------------

    def _boot(self, run: TaskRun, base_url: str) -> None:
        run.state.update(
            {
                "sandbox_id": f"sbx-{run.id[:8]}",
                "sandbox_url": f"{base_url}{SANDBOX_PREFIX}/{run.id}",
                "sandbox_connect_token": secrets.token_urlsafe(16),
            }
        )
        self.store.set_status(run, "in_progress")
        self.store.changed(run)
        entries = [
            log_entry(run, "_posthog/progress", step="sandbox", status="completed", message="Sandbox ready"),
            log_entry(run, "_posthog/console", level="info", message="Cloning repository"),
        ]
        pending = run.state.get("pending_user_message")
        if isinstance(pending, str) and pending:
            entries.append(session_update(run, "user_message_chunk", content=text(pending)))
        self.store.append_log(run, entries)

    def _work(self, run: TaskRun, base_url: str) -> None:
        task = self.store.tasks[run.task_id]
        prompt = (task.description or task.title).strip()
        first_line = prompt.splitlines()[0] if prompt else "the task"
        # Streaming chunks reach the stream but, as in production, never the stored log.
        self.store.publish(run, session_update(run, "agent_message_chunk", content=text("Looking")))
        self.store.append_log(
            run,
            [
                session_update(run, "agent_message", content=text(f"Working on: {first_line}")),
                session_update(
                    run,
                    "tool_call",
                    toolCallId=f"tool-{run.id[:8]}",
                    title="Read README.md",
                    kind="read",
                    status="completed",
                ),
                log_entry(run, "_posthog/sandbox_output", stream="stdout", output="All checks passed\n"),
            ],
        )

    def _publish_pr(self, run: TaskRun, base_url: str) -> None:
        task = self.store.tasks[run.task_id]
        repository = task.repository or "posthog-standin/demo"
        sha = hashlib.sha1(run.id.encode()).hexdigest()
        output = run.output if isinstance(run.output, dict) else {}
        pr_url = f"https://github.com/{repository}/pull/{task.task_number + 1}"
        run.output = {**output, "pr_url": pr_url, "commit_sha": sha}
        opened = log_entry(run, "_posthog/progress", step="pr", status="completed", message="Pull request opened")
        self.store.append_log(run, [opened])
        self.store.changed(run)

    def _complete(self, run: TaskRun, base_url: str) -> None:
        self.store.append_log(run, [session_update(run, "agent_message", content=text("Done."))])
        self.store.set_status(run, "completed")
        self.store.changed(run)
