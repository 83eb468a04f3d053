"""Retries, timeouts, a circuit breaker and a bulkhead around one namespace's upstream calls.

Built once at load from plain settings (any object with the fields of `engine.spec.model.Resilience`:
this stage does not import the spec model), then `Resilient.call` wraps each attempt:

* retried: a connect failure or a 429/503 for any method (the upstream did not act on it); a read
  timeout, a broken exchange or another listed status only for idempotent methods (GET HEAD OPTIONS
  PUT DELETE) or an operation declared `idempotent: true`;
* waits: exponential backoff with full jitter, or the answer's `Retry-After` (seconds or an HTTP
  date) when it fits within `maxDelay` and what is left of the total timeout; when it does not,
  the answer passes through to the caller, its `Retry-After` with it;
* the breaker opens after `failureThreshold` consecutive failures (transport or 5xx; a 429
  counts neither way), fails fast with `UpstreamUnavailable` for `openDuration`, then lets one
  probe through: its success closes it, its failure opens it again;
* the bulkhead admits `maxConcurrent` calls at once, queues `maxQueue` more for `queueTimeout`,
  and refuses the rest with `UpstreamUnavailable`; a slot is held until the answer's head.

Every retry and breaker change is logged on `naftiko.resilience`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Protocol, TypeVar

from ..errors import RequestError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from .failures import ConnectFailure

log = logging.getLogger("naftiko.resilience")

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
NOT_ACTED = frozenset({429, 503})
"""Statuses that say the upstream did not act on the request: retried whatever the method."""
DEFAULTS = {
    "max_attempts": 3,
    "initial_delay": 0.1,
    "multiplier": 2.0,
    "max_delay": 5.0,
    "jitter": "full",
    "statuses": (429, 502, 503, 504),
}
DEFAULT_OPEN = 30.0
DEFAULT_QUEUE = 100
DEFAULT_QUEUE_TIMEOUT = 5.0


class RetrySettings(Protocol):
    @property
    def max_attempts(self) -> int | None: ...
    @property
    def initial_delay(self) -> float | None: ...
    @property
    def multiplier(self) -> float | None: ...
    @property
    def max_delay(self) -> float | None: ...
    @property
    def jitter(self) -> str | None: ...
    @property
    def statuses(self) -> tuple[int, ...] | None: ...
    @property
    def idempotent(self) -> bool | None: ...


class Settings(Protocol):
    """What a `resilience` block says (engine/spec/model.py `Resilience` has these fields)."""

    @property
    def connect_timeout(self) -> float | None: ...
    @property
    def read_timeout(self) -> float | None: ...
    @property
    def total_timeout(self) -> float | None: ...
    @property
    def retry(self) -> RetrySettings | None: ...
    @property
    def failure_threshold(self) -> int | None: ...
    @property
    def open_duration(self) -> float | None: ...
    @property
    def max_concurrent(self) -> int | None: ...
    @property
    def max_queue(self) -> int | None: ...
    @property
    def queue_timeout(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Retry:
    max_attempts: int = 3
    initial_delay: float = 0.1
    multiplier: float = 2.0
    max_delay: float = 5.0
    jitter: bool = True
    statuses: frozenset[int] = frozenset({429, 502, 503, 504})
    idempotent: bool | None = None  # None: by the method


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """What one operation's calls get: retries (None: one attempt), a time to answer and a total."""

    retry: Retry | None = None
    read: float | None = None
    total: float | None = None


def backoff(retry: Retry, attempt: int, draw: Callable[[], float] = random.random) -> float:
    """The wait before attempt `attempt + 1` (1-based `attempt` just failed): capped exponential, full jitter."""
    cap = min(retry.max_delay, retry.initial_delay * retry.multiplier ** (attempt - 1))
    return cap * draw() if retry.jitter else cap


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """A `Retry-After` value in seconds from now (delta seconds or an HTTP date), None when unusable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _merged(base: RetrySettings | None, over: RetrySettings | None) -> Retry | None:
    """The operation's retry over its namespace's, field by field, then the defaults."""
    if base is None and over is None:
        return None

    def pick(name: str) -> object:
        for source in (over, base):
            value = getattr(source, name, None) if source is not None else None
            if value is not None:
                return value
        return DEFAULTS.get(name)

    return Retry(
        max_attempts=int(pick("max_attempts")),  # type: ignore[call-overload]
        initial_delay=float(pick("initial_delay")),  # type: ignore[arg-type]
        multiplier=float(pick("multiplier")),  # type: ignore[arg-type]
        max_delay=float(pick("max_delay")),  # type: ignore[arg-type]
        jitter=pick("jitter") != "none",
        statuses=frozenset(pick("statuses")),  # type: ignore[call-overload]
        idempotent=getattr(over, "idempotent", None),
    )


def call_policy(base: Settings | None, over: Settings | None) -> CallPolicy:
    def timeout(name: str) -> float | None:
        for source in (over, base):
            value = getattr(source, name, None) if source is not None else None
            if value is not None:
                return float(value)
        return None

    return CallPolicy(
        _merged(getattr(base, "retry", None), getattr(over, "retry", None)),
        timeout("read_timeout"),
        timeout("total_timeout"),
    )


class Breaker:
    """A namespace's circuit breaker: closed, open (fail fast) until `open_for` passed, then one probe."""

    def __init__(
        self, namespace: str, threshold: int, open_for: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.namespace, self.threshold, self.open_for, self.clock = namespace, threshold, open_for, clock
        self.state = "closed"
        self.failures = 0
        self._opened = 0.0
        self._probing = False

    def admit(self, operation: str) -> bool:
        """Let a call through (True when it is the half-open probe), or raise UpstreamUnavailable."""
        if self.state == "closed":
            return False
        left = self._opened + self.open_for - self.clock()
        if left > 0:
            raise UpstreamUnavailable(
                self.namespace,
                operation,
                f"circuit open after {self.threshold} consecutive failures; retry in {max(1, round(left))}s",
                retry_after=left,
            )
        if self._probing:
            raise UpstreamUnavailable(
                self.namespace, operation, "circuit half-open: one probe call is being tried; retry in a moment"
            )
        self._move("half-open")
        self._probing = True
        return True

    def succeeded(self) -> None:
        self.failures, self._probing = 0, False
        if self.state != "closed":
            self._move("closed")

    def failed(self) -> None:
        self._probing = False
        self.failures += 1
        if self.state == "half-open" or (self.state == "closed" and self.failures >= self.threshold):
            self._opened = self.clock()
            self._move("open")

    def abandoned(self) -> None:
        """The probe was cancelled before it said anything: the next call probes instead."""
        self._probing = False

    def _move(self, state: str) -> None:
        log.warning("upstream %s: circuit %s -> %s", self.namespace, self.state, state)
        self.state = state


class Bulkhead:
    """At most `size` calls at once, `queue` more waiting at most `wait` seconds, the rest refused."""

    def __init__(self, namespace: str, size: int, queue: int, wait: float) -> None:
        self.namespace, self.size, self.queue, self.wait = namespace, size, queue, wait
        self._slots = asyncio.Semaphore(size)
        self.waiting = 0

    async def acquire(self, operation: str) -> None:
        if not self._slots.locked():
            await self._slots.acquire()
            return
        if self.waiting >= self.queue:
            raise UpstreamUnavailable(
                self.namespace, operation, f"{self.size} calls in flight and {self.queue} waiting (bulkhead full)"
            )
        self.waiting += 1
        try:
            async with asyncio.timeout(self.wait):
                await self._slots.acquire()
        except TimeoutError:
            raise UpstreamUnavailable(
                self.namespace, operation, f"no free slot of {self.size} within {self.wait:g}s (bulkhead)"
            ) from None
        finally:
            self.waiting -= 1

    def release(self) -> None:
        self._slots.release()


class Answer(Protocol):
    status: int

    def headers(self, *, keep_length: bool = True) -> list[tuple[str, str]]: ...

    def close(self) -> None: ...


A = TypeVar("A", bound=Answer)


class Resilient:
    """One namespace's policy, applied around each call's attempts."""

    def __init__(
        self,
        namespace: str,
        default: CallPolicy,
        operations: Mapping[str, CallPolicy],
        breaker: Breaker | None = None,
        bulkhead: Bulkhead | None = None,
        connect: float | None = None,
    ) -> None:
        self.namespace, self.default, self.operations = namespace, default, dict(operations)
        self.breaker, self.bulkhead, self.connect = breaker, bulkhead, connect
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.counts: dict[tuple[str, str, str], int] = {}
        """(operation, event, reason) -> how often: retries by cause, calls refused by why (read by metrics)."""

    def _count(self, operation: str, event: str, reason: str) -> None:
        key = (operation, event, reason)
        self.counts[key] = self.counts.get(key, 0) + 1

    @property
    def circuit(self) -> int | None:
        """The breaker's state for a gauge: 0 closed, 1 half-open, 2 open; None without a breaker."""
        return None if self.breaker is None else ("closed", "half-open", "open").index(self.breaker.state)

    @classmethod
    def build(cls, namespace: str, base: Settings | None, operations: Mapping[str, Settings]) -> Resilient:
        """The policy of a namespace from its block and its operations' (keyed `namespace.operation`)."""
        breaker = bulkhead = None
        if base is not None and base.failure_threshold is not None:
            breaker = Breaker(namespace, base.failure_threshold, base.open_duration or DEFAULT_OPEN)
        if base is not None and base.max_concurrent is not None:
            queue = DEFAULT_QUEUE if base.max_queue is None else base.max_queue
            bulkhead = Bulkhead(namespace, base.max_concurrent, queue, base.queue_timeout or DEFAULT_QUEUE_TIMEOUT)
        return cls(
            namespace,
            call_policy(base, None),
            {key: call_policy(base, over) for key, over in operations.items()},
            breaker,
            bulkhead,
            base.connect_timeout if base is not None else None,
        )

    def read_bound(self, default: float) -> float:
        """The pool's read timeout: the namespace's `read` (else `default`), raised to its slowest operation's."""
        reads = [p.read for p in self.operations.values() if p.read is not None]
        return max([self.default.read or default, *reads])

    async def call(self, operation: str, method: str, attempt: Callable[[], Awaitable[A]]) -> A:
        policy = self.operations.get(operation, self.default)
        if self.bulkhead is None:
            return await self._attempts(operation, method, policy, attempt)
        try:
            await self.bulkhead.acquire(operation)
        except UpstreamUnavailable:
            self._count(operation, "rejected", "bulkhead_full")
            raise
        try:
            return await self._attempts(operation, method, policy, attempt)
        finally:
            self.bulkhead.release()

    async def _attempts(
        self, operation: str, method: str, policy: CallPolicy, attempt: Callable[[], Awaitable[A]]
    ) -> A:
        loop = asyncio.get_running_loop()
        deadline = None if policy.total is None else loop.time() + policy.total
        retry, tries = policy.retry, policy.retry.max_attempts if policy.retry is not None else 1
        safe = retry is not None and (retry.idempotent if retry.idempotent is not None else method in IDEMPOTENT)
        number = 0
        while True:
            number += 1
            try:
                answer = await self._one(operation, policy, attempt, deadline, loop.time())
            except UpstreamUnavailable:
                self._count(operation, "rejected", "circuit_open")
                raise
            except RequestError:
                raise
            except UpstreamError as exc:
                acted = not isinstance(exc.__context__, ConnectFailure)  # client.py raises `from None`: context kept
                wait = self._wait(retry, number, tries, deadline, loop.time(), None)
                if wait is None or (acted and not safe):
                    raise
                self._count(operation, "retry", "timeout" if isinstance(exc, UpstreamTimeout) else "transport")
                log.info(
                    "upstream %s (%s): attempt %d failed (%s); retry in %.3fs",
                    self.namespace,
                    operation,
                    number,
                    exc.reason,
                    wait,
                )
                await self.sleep(wait)
                continue
            status = answer.status
            if retry is None or status not in retry.statuses or (status not in NOT_ACTED and not safe):
                return answer
            after = retry_after(dict(answer.headers()).get("retry-after")) if status in NOT_ACTED else None
            wait = self._wait(retry, number, tries, deadline, loop.time(), after)
            if wait is None:
                return answer
            answer.close()
            self._count(operation, "retry", str(status))
            log.info(
                "upstream %s (%s): attempt %d answered %d; retry in %.3fs",
                self.namespace,
                operation,
                number,
                status,
                wait,
            )
            await self.sleep(wait)

    async def _one(
        self,
        operation: str,
        policy: CallPolicy,
        attempt: Callable[[], Awaitable[A]],
        deadline: float | None,
        now: float,
    ) -> A:
        """One attempt, through the breaker, within the read timeout and what is left of the total."""
        probe = self.breaker.admit(operation) if self.breaker is not None else False
        limit = policy.read
        if deadline is not None:
            limit = deadline - now if limit is None else min(limit, deadline - now)
        try:
            if limit is None:
                answer = await attempt()
            else:
                try:
                    async with asyncio.timeout(limit):
                        answer = await attempt()
                except TimeoutError:
                    raise UpstreamTimeout(
                        self.namespace, operation, f"no answer within {limit:g}s (resilience timeouts)"
                    ) from None
        except UpstreamError as exc:
            if self.breaker is not None and not isinstance(exc, UpstreamUnavailable):
                self.breaker.failed()
            raise
        except BaseException:
            if probe and self.breaker is not None:
                self.breaker.abandoned()
            raise
        if self.breaker is not None:
            if answer.status >= 500:
                self.breaker.failed()
            elif answer.status != 429 or probe:
                self.breaker.succeeded()
        return answer

    @staticmethod
    def _wait(
        retry: Retry | None, number: int, tries: int, deadline: float | None, now: float, after: float | None
    ) -> float | None:
        """How long to wait before the next attempt, or None: no retry (out of attempts, time or patience)."""
        if retry is None or number >= tries:
            return None
        wait = backoff(retry, number) if after is None else after
        if after is not None and after > retry.max_delay:
            return None
        if deadline is not None and now + wait >= deadline:
            return None
        return wait


__all__ = ["Breaker", "Bulkhead", "CallPolicy", "Resilient", "Retry", "backoff", "call_policy", "retry_after"]
