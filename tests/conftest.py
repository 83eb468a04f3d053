"""Shared fixtures; the helpers they build on are in tests/support.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support import NaftikoProcess, RecordingUpstream, ThreadedServer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def upstream() -> Iterator[RecordingUpstream]:
    recorder = RecordingUpstream()
    with ThreadedServer(recorder) as url:
        recorder.url = url
        yield recorder


@pytest.fixture
def naftiko() -> Iterator[Callable[..., NaftikoProcess]]:
    started: list[NaftikoProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> NaftikoProcess:
        process = NaftikoProcess(list(args), env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
