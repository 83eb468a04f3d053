"""Hot reload: the capability files loaded again while serving, swapped in only when they load.

A `Slot` is what each port's uvicorn server calls: the protocol reads `slot.app` once per request
(see server.py), so a swap costs nothing per request and adds no coroutine frame. A reload is
asked for by SIGHUP or by `FileWatch` (`--reload`), which polls the size and modification time of
the files served: no dependency, and a few `stat` calls per interval. `Reloader` runs them one at a
time: the files are loaded in a worker thread (the event loop goes on serving), then handed to
`replace`, which builds the new apps, swaps them in and lets the old runtime finish its requests.
A file that does not load leaves the old one serving, and every problem is logged with its
file:line:col.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..engine import CapabilityError, NaftikoError, Runtime

log = logging.getLogger("naftiko")

DEFAULT_INTERVAL = 0.5
"""Seconds between two looks at the files under `--reload`."""
DEFAULT_DRAIN = 10.0
"""Seconds an old runtime is given to finish the requests it had when it was replaced."""


class Slot:
    """The app one port serves now; `app` is replaced by a reload, between two requests."""

    __slots__ = ("app",)

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)  # only for a server that does not read `app` itself


@dataclass(frozen=True, slots=True)
class ReloadOptions:
    """How `serve` reloads: `load` builds a runtime as start-up did; `paths` are watched every
    `interval` seconds (None: only SIGHUP reloads); `drain` bounds the wait for the old requests."""

    load: Callable[[], Runtime]
    paths: Sequence[str | Path] = ()
    interval: float | None = None
    drain: float = DEFAULT_DRAIN


Signature = tuple[tuple[str, int, int], ...]


def files_of(paths: Sequence[str | Path]) -> list[Path]:
    """The files a reload would read: files as given, the `*.yaml`/`*.yml` of folders."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            try:
                files.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
            except OSError:
                continue
        else:
            files.append(path)
    return files


def signature(paths: Sequence[str | Path]) -> Signature:
    """Name, size and modification time (ns) of every file: a new, changed or removed file changes it."""
    seen: list[tuple[str, int, int]] = []
    for path in files_of(paths):
        try:
            stat = os.stat(path)
        except OSError:
            continue
        seen.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(seen)


class FileWatch:
    """Tells when the files have changed and then held still for one interval.

    An editor or `cp` may write a file in several steps; reading it between two of them could load
    half a file that happens to be valid. Waiting until two looks agree avoids that.
    """

    def __init__(self, paths: Sequence[str | Path]) -> None:
        self.paths = list(paths)
        self.loaded = signature(self.paths)
        self._seen = self.loaded

    def changed(self) -> bool:
        now = signature(self.paths)
        settled = now == self._seen
        self._seen = now
        if settled and now != self.loaded:
            self.loaded = now
            return True
        return False


class Reloader:
    """Runs reloads one at a time, from SIGHUP (`request`) or the file watch, for as long as `run` runs."""

    def __init__(self, options: ReloadOptions, replace: Callable[[Runtime], Awaitable[None]]) -> None:
        self.options = options
        self.replace = replace
        self._wanted = asyncio.Event()
        self.watch = FileWatch(options.paths) if options.interval is not None else None

    def request(self) -> None:
        """Reload as soon as the one in progress (if any) is done; several requests make one reload."""
        self._wanted.set()

    async def run(self) -> None:
        timeout = self.options.interval
        while True:
            try:
                await asyncio.wait_for(self._wanted.wait(), timeout)
            except TimeoutError:
                if self.watch is None or not self.watch.changed():
                    continue
                log.info("capability files changed: reloading")
            self._wanted.clear()
            await self.reload()

    async def reload(self) -> bool:
        """Load the files and swap them in; on any problem log it and keep what is served."""
        if self.watch is not None:
            self.watch.loaded = signature(self.watch.paths)  # what is read now is what is served next
        try:
            runtime = await asyncio.to_thread(self.options.load)
        except CapabilityError as exc:
            for problem in exc.problems:
                log.error("%s", problem)
            log.error("reload failed: %d problem(s); still serving the files loaded before", len(exc.problems))
            return False
        except NaftikoError as exc:
            log.error("reload failed: %s; still serving the files loaded before", exc)
            return False
        try:
            await self.replace(runtime)
        except NaftikoError as exc:
            for line in (str(p) for p in exc.problems) if isinstance(exc, CapabilityError) else [str(exc)]:
                log.error("%s", line)
            log.error("reload refused; still serving the files loaded before")
            return False
        return True


async def drain(tasks: set[asyncio.Task[Any]], timeout: float) -> int:
    """Wait for `tasks` (the requests an old runtime had) to end, at most `timeout` s; how many are left."""
    pending = {task for task in tasks if not task.done()}
    if pending:
        _, pending = await asyncio.wait(pending, timeout=timeout)
    return len(pending)
