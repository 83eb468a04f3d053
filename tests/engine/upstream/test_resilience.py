"""The resilience policy's parts, on their own: backoff bounds, Retry-After parsing, the breaker's state
machine under a fake clock, the bulkhead's queue, the block read at load (positioned problems), and the
retry loop against a real loopback upstream that fails, throttles and recovers."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from email.utils import format_datetime
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

import pytest

from naftiko.engine import CapabilityError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from naftiko.engine.upstream.request import Prepared
from naftiko.engine.upstream.resilience import (
    Breaker,
    Bulkhead,
    CallPolicy,
    Resilient,
    Retry,
    backoff,
    retry_after,
)
from naftiko.engine.upstream.client import Upstream
from tests.support import RecordingUpstream, Reply, ThreadedServer, load_with_blocks

# --------------------------------------------------------------------------- backoff


def test_backoff_without_jitter_doubles_up_to_max_delay() -> None:
    retry = Retry(initial_delay=0.1, multiplier=2, max_delay=0.5, jitter=False)
    assert [round(backoff(retry, n), 6) for n in range(1, 6)] == [0.1, 0.2, 0.4, 0.5, 0.5]


def test_full_jitter_stays_between_zero_and_the_cap() -> None:
    retry = Retry(initial_delay=1, multiplier=3, max_delay=5)
    assert backoff(retry, 2, draw=lambda: 0.0) == 0.0
    assert backoff(retry, 2, draw=lambda: 0.999) == pytest.approx(2.997)
    assert backoff(retry, 9, draw=lambda: 0.999) == pytest.approx(4.995)  # capped by maxDelay
    samples = [backoff(retry, 3) for _ in range(200)]
    assert all(0 <= s <= 5 for s in samples) and len(set(samples)) > 100


# --------------------------------------------------------------------------- Retry-After


def test_retry_after_in_seconds_and_as_an_http_date() -> None:
    assert retry_after("3") == 3.0
    assert retry_after(" 0 ") == 0.0
    now = 1_800_000_000.0
    date = format_datetime(datetime.fromtimestamp(now + 7, tz=UTC), usegmt=True)
    assert retry_after(date, now=now) == pytest.approx(7.0)
    past = format_datetime(datetime.fromtimestamp(now - 60, tz=UTC), usegmt=True)
    assert retry_after(past, now=now) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-3", "1.5", "Mon, 99 Foo 2026 25:00:00"])
def test_unusable_retry_after_is_none(value: str | None) -> None:
    assert retry_after(value) is None


# --------------------------------------------------------------------------- breaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_fails_fast_probes_once_and_closes(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    breaker = Breaker("up", threshold=3, open_for=10, clock=clock)
    caplog.set_level(logging.WARNING, logger="naftiko.resilience")
    for _ in range(2):
        assert breaker.admit("up.op") is False
        breaker.failed()
    breaker.succeeded()  # a success in between starts the count again
    for _ in range(3):
        breaker.admit("up.op")
        breaker.failed()
    assert breaker.state == "open"
    clock.now += 4
    with pytest.raises(UpstreamUnavailable) as refused:
        breaker.admit("up.op")
    assert refused.value.namespace == "up" and refused.value.retry_after == pytest.approx(6)
    assert "circuit open after 3 consecutive failures" in str(refused.value) and "retry in 6s" in str(refused.value)
    clock.now += 6
    assert breaker.admit("up.op") is True  # the one probe
    assert breaker.state == "half-open"
    with pytest.raises(UpstreamUnavailable, match="one probe call is being tried") as waiting:
        breaker.admit("up.op")  # a second caller while the probe is out
    assert waiting.value.retry_after is None
    breaker.succeeded()
    assert breaker.state == "closed" and breaker.admit("up.op") is False
    moves = [r.getMessage() for r in caplog.records if r.name == "naftiko.resilience"]
    assert moves == [
        "upstream up: circuit closed -> open",
        "upstream up: circuit open -> half-open",
        "upstream up: circuit half-open -> closed",
    ]


def test_a_failed_probe_opens_again_and_a_cancelled_one_lets_the_next_call_probe() -> None:
    clock = Clock()
    breaker = Breaker("up", threshold=1, open_for=5, clock=clock)
    breaker.failed()
    clock.now += 5
    assert breaker.admit("op") is True
    breaker.failed()
    assert breaker.state == "open"
    with pytest.raises(UpstreamUnavailable):
        breaker.admit("op")
    clock.now += 5
    assert breaker.admit("op") is True
    breaker.abandoned()
    assert breaker.admit("op") is True  # the next call probes instead


# --------------------------------------------------------------------------- bulkhead


def test_bulkhead_queues_then_refuses() -> None:
    asyncio.run(_bulkhead())


async def _bulkhead() -> None:
    bulkhead = Bulkhead("up", size=1, queue=1, wait=0.2)
    await bulkhead.acquire("op")
    queued = asyncio.create_task(bulkhead.acquire("op"))
    await asyncio.sleep(0.01)
    assert bulkhead.waiting == 1
    with pytest.raises(UpstreamUnavailable, match="1 calls in flight and 1 waiting"):
        await bulkhead.acquire("op")
    bulkhead.release()
    await queued  # got the slot
    short = Bulkhead("up", size=1, queue=1, wait=0.05)
    await short.acquire("op")
    with pytest.raises(UpstreamUnavailable, match="no free slot of 1 within 0.05s"):
        await short.acquire("op")
    assert short.waiting == 0


# --------------------------------------------------------------------------- the block at load


def test_a_block_is_read_merged_and_built(tmp_path: Path) -> None:
    runtime = load_with_blocks(
        tmp_path,
        """
        resilience:
          timeouts: {connect: 2s, read: 1500ms, total: 1m}
          retry: {maxAttempts: 4, initialDelay: 50ms, multiplier: 3, maxDelay: 2, statuses: [503]}
          circuitBreaker: {failureThreshold: 5, openDuration: 30s}
          bulkhead: {maxConcurrent: 2, maxQueue: 0, queueTimeout: 1s}
        """,
        """
        resiliency:
          timeouts: {read: 0.5}
          retry: {maxAttempts: 2, jitter: none, idempotent: false}
        """,
    )
    policy = runtime.upstreams["up"].resilience
    assert policy is not None and policy.connect == 2.0 and policy.read_bound(10.0) == 1.5
    assert policy.default == CallPolicy(Retry(4, 0.05, 3.0, 2.0, True, frozenset({503}), None), 1.5, 60.0)
    assert policy.operations["up.get-things"] == CallPolicy(
        Retry(2, 0.05, 3.0, 2.0, False, frozenset({503}), False), 0.5, 60.0
    )
    assert policy.breaker is not None and (policy.breaker.threshold, policy.breaker.open_for) == (5, 30.0)
    assert policy.bulkhead is not None and (policy.bulkhead.size, policy.bulkhead.queue) == (2, 0)


def test_without_a_block_the_upstream_has_no_policy(tmp_path: Path) -> None:
    assert load_with_blocks(tmp_path).upstreams["up"].resilience is None


def _problems(tmp_path: Path, namespace: str = "", operation: str = "") -> list[str]:
    with pytest.raises(CapabilityError) as failed:
        load_with_blocks(tmp_path, namespace, operation)
    return [str(p) for p in failed.value.problems]


def test_problems_are_positioned(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        """
        resilience:
          timeouts: {read: soon}
          retry: {maxAttempts: 0, multiplier: 0.5, statuses: [200], idempotent: true}
        """,
        """
        resilience:
          timeouts: {connect: 1s}
          circuitBreaker: {failureThreshold: 2}
          bulkhead: {maxConcurrent: 1}
        """,
    )
    joined = "\n".join(problems)
    assert "cap.yaml:8:" in joined and "'read' must be a duration from 1ms to 1h" in joined
    assert "'maxAttempts' must be an integer from 1 to 10; got 0" in joined
    assert "'multiplier' must be a number from 1 to 10; got 0.5" in joined
    assert "'statuses' must be a list of HTTP statuses from 400 to 599" in joined
    assert "'idempotent' says what one operation does; write it on the operation" in joined
    assert "'connect' belongs to the namespace" in joined
    assert "'circuitBreaker' belongs to the namespace" in joined and "'bulkhead' belongs to the namespace" in joined
    assert all(p.startswith(str(tmp_path / "cap.yaml") + ":") for p in problems)
    assert all("(at capability.consumes[0]." in p for p in problems)


def test_both_spellings_at_once_is_a_problem(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "resilience: {}\nresiliency: {}")
    assert any("write 'resilience' or 'resiliency', not both" in p for p in problems)


# --------------------------------------------------------------------------- the retry loop, over loopback


class Scripted(RecordingUpstream):
    """Answers `script`'s replies in turn for every request, then the last one again."""

    def __init__(self, *script: Reply) -> None:
        super().__init__()
        self.script = list(script)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            reply = self.script.pop(0) if len(self.script) > 1 else self.script[0]
            self.replies[(scope["method"], scope["raw_path"].decode())] = reply
        await super().__call__(scope, receive, send)


def _resilient(retry: Retry | None = None, **policy: Any) -> Resilient:
    resilient = Resilient("up", CallPolicy(retry, policy.pop("read", None), policy.pop("total", None)), {}, **policy)
    return resilient


async def _call(url: str, resilient: Resilient, method: str = "GET") -> tuple[int, bytes]:
    upstream = Upstream("up", url, 5.0, resilience=resilient)
    try:
        answer = await upstream.send("up.op", Prepared(method, "/x", (), None))
        return answer.status, await answer.read()
    finally:
        await upstream.close()


FAST = Retry(max_attempts=3, initial_delay=0.01, max_delay=0.05)


def test_a_failing_get_is_retried_until_it_recovers(caplog: pytest.LogCaptureFixture) -> None:
    upstream = Scripted(Reply(502), Reply(503), Reply(200, json={"ok": True}))
    caplog.set_level(logging.INFO, logger="naftiko.resilience")
    with ThreadedServer(upstream) as url:
        assert asyncio.run(_call(url, _resilient(FAST))) == (200, b'{"ok": true}')
    assert len(upstream.requests) == 3
    retries = [r.getMessage() for r in caplog.records if r.name == "naftiko.resilience"]
    assert len(retries) == 2 and "attempt 1 answered 502" in retries[0]


def test_a_post_is_not_retried_after_a_502_but_is_after_a_503() -> None:
    upstream = Scripted(Reply(502), Reply(200))
    with ThreadedServer(upstream) as url:
        assert asyncio.run(_call(url, _resilient(FAST), "POST"))[0] == 502
    assert len(upstream.requests) == 1
    upstream = Scripted(Reply(503), Reply(200))
    with ThreadedServer(upstream) as url:
        assert asyncio.run(_call(url, _resilient(FAST), "POST"))[0] == 200
    assert len(upstream.requests) == 2


def test_retry_after_is_waited_for_within_max_delay_and_passed_through_past_it() -> None:
    upstream = Scripted(Reply(429, headers={"retry-after": "1"}), Reply(200))
    retry = Retry(max_attempts=2, initial_delay=0.0, max_delay=2)
    resilient = _resilient(retry)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    resilient.sleep = sleep
    with ThreadedServer(upstream) as url:
        assert asyncio.run(_call(url, resilient))[0] == 200
    assert waits == [1.0] and len(upstream.requests) == 2
    upstream = Scripted(Reply(429, headers={"retry-after": "30"}), Reply(200))
    with ThreadedServer(upstream) as url:
        assert asyncio.run(_call(url, _resilient(retry)))[0] == 429  # longer than maxDelay: the caller decides
    assert len(upstream.requests) == 1


def test_a_connect_failure_is_retried_for_any_method_then_fails() -> None:
    attempts: list[int] = []
    resilient = _resilient(FAST)

    async def sleep(seconds: float) -> None:
        attempts.append(1)

    resilient.sleep = sleep
    with pytest.raises(UpstreamError, match="cannot connect"):
        asyncio.run(_call("http://127.0.0.1:1", resilient, "POST"))
    assert len(attempts) == 2  # three attempts, two waits


def test_read_and_total_timeouts_bound_each_attempt_and_the_whole_call() -> None:
    upstream = Scripted(Reply(200, delay=1.0))
    with ThreadedServer(upstream) as url:
        with pytest.raises(UpstreamTimeout, match="within 0.2s"):
            asyncio.run(_call(url, _resilient(None, read=0.2)))
        loop_started = asyncio.run(
            _timed(url, _resilient(Retry(max_attempts=10, initial_delay=0.01), read=0.2, total=0.5))
        )
    assert loop_started < 0.9
    assert 2 <= len(upstream.requests) <= 5


async def _timed(url: str, resilient: Resilient) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(UpstreamTimeout):
        await _call(url, resilient)
    return loop.time() - started


def test_the_pool_waits_as_long_as_the_slowest_operation_may(tmp_path: Path) -> None:
    runtime = load_with_blocks(tmp_path, "resilience: {timeouts: {read: 2s}}", "resilience: {timeouts: {read: 9s}}")
    upstream = runtime.upstreams["up"]
    assert upstream.resilience is not None and upstream.resilience.read_bound(30.0) == 9.0
    assert "within 9s" in str(upstream.timeout_error("up.get-things"))
    assert load_with_blocks(tmp_path, "resilience: {retry: {}}").upstreams["up"].resilience.read_bound(30.0) == 30.0  # type: ignore[union-attr]


def test_a_post_declared_idempotent_is_retried_after_a_502() -> None:
    upstream = Scripted(Reply(502), Reply(200))
    with ThreadedServer(upstream) as url:
        assert asyncio.run(_call(url, _resilient(replace(FAST, idempotent=True)), "POST"))[0] == 200
    assert len(upstream.requests) == 2


def test_with_the_breaker_a_retry_stops_at_the_open_circuit() -> None:
    upstream = Scripted(Reply(503))
    resilient = _resilient(Retry(max_attempts=5, initial_delay=0.0), breaker=Breaker("up", 2, 60))
    with ThreadedServer(upstream) as url:
        with pytest.raises(UpstreamUnavailable, match="circuit open after 2 consecutive failures"):
            asyncio.run(_call(url, resilient))
    assert len(upstream.requests) == 2
    assert resilient.counts == {("up.op", "retry", "503"): 2, ("up.op", "rejected", "circuit_open"): 1}
    assert resilient.circuit == 2
