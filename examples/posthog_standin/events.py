"""Per-run event stream: the in-memory equivalent of PostHog's Redis stream.

Production writes every agent event and run-state snapshot to a Redis stream with
ids ``<ms>-<seq>``, and the worker ends it with a sentinel that readers never see.
:class:`RunStream` keeps the same ordering, id format, resume-after-id semantics
and end marker, and wakes waiting SSE readers when something is appended.
All methods must be called from the server's event loop.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

StreamId = tuple[int, int]

HISTORY_CAP = 20_000  # Redis MAXLEN used by production


def format_id(stream_id: StreamId) -> str:
    return f"{stream_id[0]}-{stream_id[1]}"


def parse_id(text: str | None) -> StreamId | None:
    """Parse ``<ms>-<seq>`` (or bare ``<ms>``); ``None`` if it is not a stream id."""
    if not text:
        return None
    ms, _, seq = text.strip().partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return None


@dataclass(frozen=True)
class StreamEntry:
    id: StreamId
    data: dict[str, Any] | None  # None marks the end-of-run sentinel

    @property
    def is_end(self) -> bool:
        return self.data is None


class RunStream:
    """Append-only event history with wake-ups for readers."""

    def __init__(self) -> None:
        self._entries: list[StreamEntry] = []
        self._last_id: StreamId = (0, 0)
        self._changed = asyncio.Event()

    def _next_id(self) -> StreamId:
        ms = int(time.time() * 1000)
        last_ms, last_seq = self._last_id
        self._last_id = (ms, 0) if ms > last_ms else (last_ms, last_seq + 1)
        return self._last_id

    def _append(self, data: dict[str, Any] | None) -> StreamEntry:
        entry = StreamEntry(self._next_id(), data)
        self._entries.append(entry)
        del self._entries[:-HISTORY_CAP]
        self._changed.set()
        self._changed = asyncio.Event()
        return entry

    def publish(self, data: dict[str, Any]) -> str:
        """Append one event; returns its id."""
        return format_id(self._append(data).id)

    @property
    def ended(self) -> bool:
        return any(entry.is_end for entry in self._entries[-1:])

    def end(self) -> None:
        """Write the completion sentinel (idempotent)."""
        if not self.ended:
            self._append(None)

    def reopen(self) -> None:
        """Drop end sentinels so a resumed run streams again."""
        self._entries = [entry for entry in self._entries if not entry.is_end]

    @property
    def last_id(self) -> StreamId:
        return self._entries[-1].id if self._entries else (0, 0)

    @property
    def exists(self) -> bool:
        return bool(self._entries)

    def read_after(self, cursor: StreamId) -> list[StreamEntry]:
        return [entry for entry in self._entries if entry.id > cursor]

    async def wait(self, timeout: float) -> bool:
        """Wait until something is appended; ``False`` on timeout."""
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), timeout)
        except TimeoutError:
            return False
        return True
