"""`naftiko serve --workers N`: N processes serving the same ports, watched by the one the user started.

The supervisor loads the files once (a broken file stops it before any worker starts, with
file:line:col), binds every listening socket itself (so port 0 and a busy port behave as with one
process), logs the listener URLs, and starts each worker as `python -m naftiko serve` with the
same arguments, handing it its sockets as inherited file descriptors. Each worker loads the files
itself and owns its runtime and upstream pools. Every worker has a socket of its own on each port
(SO_REUSEPORT), so the kernel spreads connections evenly over them; see `bind_sets`.

Why processes started afresh rather than forked: a worker is the same program a user runs, on a
fresh interpreter with no event loop, thread or lock inherited, and a worker restarted after a
reload reads the files as they are now. The price is one load per worker start (0.2-0.3 s for the
seed file).

Between the two, one socket pair per worker: the worker writes one byte once it serves, and
sees end-of-file when the supervisor is gone (then it stops: no orphan outlives a SIGKILLed
supervisor). Workers run in their own process group, so a terminal's Ctrl-C reaches the
supervisor only, which forwards SIGTERM to all and waits `grace` seconds before SIGKILL. A worker
that dies is started again after a backoff (0.5 s, doubling up to 30 s); one that fails
`MAX_FAILURES` times in a row without serving for `STABLE` seconds stops the whole service with
exit code 1, so systemd or Kubernetes see it. SIGHUP (or a change of the files under `--reload`)
is checked by loading the files in the supervisor first, then forwarded to every worker.

One MCP session secret for all: unless NAFTIKO_SESSION_SECRET is set, the supervisor draws one and
hands it to every worker, so a handshake-era session opened on one worker is accepted by the others.
The control block, if any, is served by worker 0 only: its /metrics and /traces are that worker's,
its readiness that worker's listeners (see the README).
"""

from __future__ import annotations

import logging
import os
import secrets
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..engine import ControlExposes
from .reload import FileWatch
from .server import Listener, Plan, bind, block_key

log = logging.getLogger("naftiko")

MAX_WORKERS = 256
DEFAULT_GRACE = 10.0
"""Seconds workers are given to stop after SIGTERM before SIGKILL."""
START_TIMEOUT = 120.0
"""Seconds a worker may take to load its files and listen before it counts as failed."""
MAX_FAILURES = 5
STABLE = 10.0
"""A worker that served this long before it died starts its backoff again from the shortest delay."""

WORKER = "NAFTIKO_WORKER"  # the worker's index, set by the supervisor only
SOCKETS = "NAFTIKO_WORKER_SOCKETS"  # block key=fd,...
CHANNEL = "NAFTIKO_WORKER_CHANNEL"  # fd of the worker's end of its socket pair
SECRET = "NAFTIKO_SESSION_SECRET"


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[bytes] | None = None
    channel: socket.socket | None = None
    ready_at: float | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None


@dataclass
class Supervisor:
    """Starts, watches and stops the workers; `run` returns the exit code of `naftiko serve`."""

    argv: Sequence[str]  # `naftiko` arguments, as the user gave them
    sockets: list[dict[str, socket.socket]]  # each worker's, by block key
    listeners: list[Listener]
    count: int
    control: str | None = None  # the key of a control block, served by worker 0 only
    check: Callable[[], None] | None = None  # loads and checks the files (raises NaftikoError)
    watch: FileWatch | None = None
    interval: float = 0.5
    grace: float = DEFAULT_GRACE
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    workers: list[_Worker] = field(default_factory=list)

    def run(self) -> int:
        self._signals: list[int] = []
        self._selector = selectors.DefaultSelector()
        wake_read, wake_write = socket.socketpair()
        wake_read.setblocking(False)
        wake_write.setblocking(False)
        self._selector.register(wake_read, selectors.EVENT_READ, None)
        old_wakeup = signal.set_wakeup_fd(wake_write.fileno())
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        self._secret = self.environ.get(SECRET) or secrets.token_urlsafe(32)
        try:
            code = self._started()
            if code is None:
                code = self._supervise()
            return code
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(old_wakeup)
            self._selector.close()
            wake_read.close()
            wake_write.close()
            for sockets in self.sockets:
                for sock in sockets.values():
                    sock.close()
            log.info("stopped")

    def _on_signal(self, sig: int, _frame: object) -> None:
        self._signals.append(sig)

    # --- starting -------------------------------------------------------------------------------

    def _started(self) -> int | None:
        """Start every worker and wait until all serve; an exit code if one cannot, or a signal stops us."""
        self.workers = [_Worker(index) for index in range(self.count)]
        for worker in self.workers:
            self._spawn(worker)
        deadline = time.monotonic() + START_TIMEOUT
        while not all(w.ready_at is not None for w in self.workers):
            if any(sig != signal.SIGHUP for sig in self._signals):
                return 0
            self._wait(min(0.5, max(0.0, deadline - time.monotonic())))
            failed = next((w for w in self.workers if w.ready_at is None and _exited(w)), None)
            if failed is not None:
                log.error("worker %d exited (%s) before it served; stopping", failed.index, _how(failed))
                return 1
            if time.monotonic() > deadline:
                log.error("workers did not start within %.0f s; stopping", START_TIMEOUT)
                return 1
        for listener in self.listeners:
            log.info("%s at %s", listener.summary, listener.url)
        pids = ", ".join(str(w.process.pid) for w in self.workers if w.process is not None)
        log.info("%d workers serving (pids %s); the control block, if any, is worker 0's", self.count, pids)
        return None

    def _spawn(self, worker: _Worker) -> None:
        ours, theirs = socket.socketpair()
        fds = {key: sock.fileno() for key, sock in self.sockets[worker.index].items()}
        env = {
            **self.environ,
            WORKER: str(worker.index),
            SOCKETS: ",".join(f"{key}={fd}" for key, fd in fds.items()),
            CHANNEL: str(theirs.fileno()),
            SECRET: self._secret,
        }
        worker.process = subprocess.Popen(
            [sys.executable, "-m", "naftiko", *self.argv],
            env=env,
            pass_fds=[*fds.values(), theirs.fileno()],
            process_group=0,  # a terminal's Ctrl-C reaches the supervisor, which stops the workers in order
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        ours.setblocking(False)
        worker.channel, worker.ready_at, worker.started_at, worker.restart_at = ours, None, time.monotonic(), None
        self._selector.register(ours, selectors.EVENT_READ, worker)

    def _wait(self, timeout: float) -> None:
        """Wait for a worker's message, a signal or the timeout."""
        for key, _ in self._selector.select(timeout):
            worker = key.data
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(64)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if worker is None:
                continue  # a signal woke us; self._signals says which
            if data:
                worker.ready_at = time.monotonic()
            else:
                self._selector.unregister(sock)
                sock.close()
                worker.channel = None

    # --- running --------------------------------------------------------------------------------

    def _supervise(self) -> int:
        next_look = time.monotonic() + self.interval
        while True:
            now = time.monotonic()
            due = [w.restart_at for w in self.workers if w.restart_at is not None]
            wake = min([next_look if self.watch else now + 1.0, *due])
            self._wait(max(0.0, min(1.0, wake - now)))
            while self._signals:
                sig = self._signals.pop(0)
                if sig != signal.SIGHUP:
                    log.info("stopping %d workers", self.count)
                    return 0
                self._reload("SIGHUP")
            if self.watch is not None and time.monotonic() >= next_look:
                next_look = time.monotonic() + self.interval
                if self.watch.changed():
                    self._reload("capability files changed")
            code = self._restarts()
            if code is not None:
                return code

    def _restarts(self) -> int | None:
        now = time.monotonic()
        for worker in self.workers:
            if worker.restart_at is None and worker.process is not None and _exited(worker):
                if worker.ready_at is not None and now - worker.ready_at >= STABLE:
                    worker.failures = 0
                worker.failures += 1
                if worker.failures > MAX_FAILURES:
                    log.error(
                        "worker %d failed %d times in a row (%s); stopping", worker.index, MAX_FAILURES, _how(worker)
                    )
                    return 1
                delay = min(0.5 * 2 ** (worker.failures - 1), 30.0)
                log.warning(
                    "worker %d (pid %d) exited (%s); restarting it in %.1f s",
                    worker.index,
                    worker.process.pid,
                    _how(worker),
                    delay,
                )
                self._close(worker)
                worker.restart_at = now + delay
            elif worker.restart_at is not None and now >= worker.restart_at:
                self._spawn(worker)
                log.info("worker %d restarted (pid %d)", worker.index, worker.process.pid if worker.process else 0)
        return None

    def _reload(self, why: str) -> None:
        """Check the files here (one log of their problems, not one per worker), then reload every worker."""
        if self.check is not None:
            try:
                self.check()
            except Exception as exc:  # a NaftikoError, logged; the workers keep what they serve
                problems = getattr(exc, "problems", None)
                for line in [str(p) for p in problems] if problems else [str(exc)]:
                    log.error("%s", line)
                log.error("reload (%s) refused; the workers keep serving the files loaded before", why)
                return
        live = [w for w in self.workers if w.process is not None and not _exited(w)]
        log.info("reload (%s): the files load; reloading %d workers", why, len(live))
        for worker in live:
            assert worker.process is not None
            worker.process.send_signal(signal.SIGHUP)

    # --- stopping -------------------------------------------------------------------------------

    def _stop_all(self) -> None:
        live = [w.process for w in self.workers if w.process is not None and w.process.poll() is None]
        for process in live:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for process in live:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker pid %d did not stop within %.0f s: killed", process.pid, self.grace)
                process.kill()
                process.wait()
        for worker in self.workers:
            self._close(worker)

    def _close(self, worker: _Worker) -> None:
        if worker.channel is not None:
            self._selector.unregister(worker.channel)
            worker.channel.close()
            worker.channel = None


def _exited(worker: _Worker) -> bool:
    return worker.process is not None and worker.process.poll() is not None


def _how(worker: _Worker) -> str:
    code = worker.process.returncode if worker.process is not None else None
    if code is None:
        return "still running"
    if code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"


def supervise(
    argv: Sequence[str],
    plan: Plan,
    apps: Sequence[object],
    count: int,
    *,
    check: Callable[[], None] | None = None,
    watch: Sequence[str | Path] | None = None,
    interval: float = 0.5,
    grace: float = DEFAULT_GRACE,
) -> int:
    """Bind the sockets of `plan` and run `count` workers on them until SIGINT/SIGTERM; the exit code."""
    sets = bind_sets(plan, count)
    listeners = plan.listeners(apps, [sets[0][block_key(e)] for e in plan.blocks])
    control = next((block_key(e) for e in plan.blocks if isinstance(e, ControlExposes)), None)
    return Supervisor(
        argv,
        sets,
        listeners,
        count,
        control=control,
        check=check,
        watch=FileWatch(watch) if watch is not None else None,
        interval=interval,
        grace=grace,
    ).run()


def bind_sets(plan: Plan, count: int) -> list[dict[str, socket.socket]]:
    """The listening sockets of each worker, by block key: one per worker and port (SO_REUSEPORT).

    A socket of its own per worker spreads connections evenly (the kernel hashes each to one of
    them); on one shared socket, whichever worker wakes first takes them (measured: 19/13, 21/11
    and 26/6 of a burst of 32). The supervisor binds them all, so port 0 and a busy port behave as
    with one process: the first bind picks or checks the port (it fails, as without workers, when
    anyone holds it, even with SO_REUSEPORT), the others join it. The control block listens in
    worker 0 only. A dead worker's sockets stay open here, so the connections queued on them wait
    for its restart rather than being refused.
    """
    sets: list[dict[str, socket.socket]] = [{} for _ in range(count)]
    try:
        for exposes in plan.blocks:
            key, host, port = block_key(exposes), plan.bind_host(exposes), plan.port(exposes)
            what = f"'{exposes.namespace}'"
            if isinstance(exposes, ControlExposes):
                sets[0][key] = bind(host, port, what)
                continue
            if port:
                bind(host, port, what, listen=False).close()  # taken by anyone, even with SO_REUSEPORT: as one process
            first = bind(host, port, what, reuse_port=True)
            sets[0][key] = first
            for worker in sets[1:]:
                worker[key] = bind(host, first.getsockname()[1], what, reuse_port=True)
    except BaseException:
        for worker in sets:
            for sock in worker.values():
                sock.close()
        raise
    return sets


# --- the worker's side -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Handed:
    """What a worker was handed by its supervisor."""

    index: int
    sockets: dict[str, socket.socket]
    channel: socket.socket


def handed(environ: Mapping[str, str]) -> Handed | None:
    """The sockets and channel a supervisor handed this process, or None when it is not a worker."""
    if WORKER not in environ:
        return None
    sockets: dict[str, socket.socket] = {}
    for pair in filter(None, environ.get(SOCKETS, "").split(",")):
        key, _, fd = pair.rpartition("=")
        sockets[key] = socket.socket(fileno=int(fd))
    channel = socket.socket(fileno=int(environ[CHANNEL]))
    channel.setblocking(False)
    return Handed(int(environ[WORKER]), sockets, channel)


def watch_supervisor(handed: Handed, stop: Callable[[], None]) -> Callable[[list[Listener]], None]:
    """Call `stop` when the supervisor goes away; returns the `on_ready` that tells it this worker serves."""
    import asyncio

    loop = asyncio.get_running_loop()

    def readable() -> None:
        try:
            data = handed.channel.recv(64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(handed.channel.fileno())
            log.warning("worker %d: the supervisor is gone; stopping", handed.index)
            stop()

    loop.add_reader(handed.channel.fileno(), readable)

    def ready(_: list[Listener]) -> None:
        log.info("worker %d serving (pid %d)", handed.index, os.getpid())
        try:
            handed.channel.send(b"r")
        except OSError:
            stop()

    return ready
