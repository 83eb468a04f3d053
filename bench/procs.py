"""Processes of the benchmark: start, wait until they answer, measure memory, always stop.

Every server runs in its own session (process group) so that it and its workers can be
stopped together by its own id; nothing is ever stopped by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator, Sequence


def free_port() -> int:
    """A free loopback port (the OS picks it; a race with another program is very unlikely here)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_answers(port: int, path: str = "/", timeout: float = 1.0) -> bool:
    """True once something on 127.0.0.1:port answers an HTTP request with a status line."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
            return sock.recv(16).startswith(b"HTTP/")
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                kids += [int(p) for p in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return kids


def process_tree(pid: int) -> list[int]:
    """The process and all its descendants (nginx master + worker, granian main + worker)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += _children(current)
    return tree


def _status_kb(pid: int, field_name: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def rss_mb(pid: int) -> float:
    """Resident memory now, summed over the process tree, in MiB."""
    return sum(_status_kb(p, "VmRSS") for p in process_tree(pid)) / 1024


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory since start (VmHWM), summed over the process tree, in MiB."""
    return sum(_status_kb(p, "VmHWM") for p in process_tree(pid)) / 1024


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS for the process tree (`5` to /proc/PID/clear_refs, Linux 4.0+;
    it only resets the high-water mark, no page bits), so a later `peak_rss_mb` is the peak of
    what happened in between. False when the kernel refuses (the caller then has the peak since start)."""
    done = True
    for p in process_tree(pid):
        try:
            Path(f"/proc/{p}/clear_refs").write_text("5")
        except OSError:
            done = False
    return done


@dataclass
class Server:
    """One server process of the benchmark, with its log file."""

    name: str
    cmd: Sequence[str]
    log_dir: Path
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    stop_signal: int = signal.SIGINT
    proc: subprocess.Popen | None = None
    started_at: float = 0.0

    def start(self) -> Server:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{self.name}.log", "ab")
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            list(self.cmd),
            cwd=self.cwd,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_ready(self, port: int, path: str = "/", timeout: float = 180.0) -> float:
        """Seconds from process start until the port answers HTTP; raises if it never does."""
        assert self.proc is not None
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                log_file = self.log_dir / f"{self.name}.log"
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {log_file}")
            if http_answers(port, path):
                return time.perf_counter() - self.started_at
            time.sleep(0.002)
        raise RuntimeError(f"{self.name} did not answer on port {port} within {timeout:.0f} s")

    def stop(self) -> None:
        """Polite signal first, then the whole process group is killed if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(self.stop_signal)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # workers that outlived their parent
            os.killpg(self.proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def running(server: Server, port: int, path: str = "/", timeout: float = 180.0) -> Iterator[Server]:
    """Start a server, wait until it answers, and stop it whatever happens."""
    server.start()
    try:
        server.wait_ready(port, path, timeout)
        yield server
    finally:
        server.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process tree so far."""
    total = 0
    for p in process_tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int | None, timeout: float = 120.0, busy: float = 0.05) -> float:
    """Wait until the server stops working off requests a finished wrk run left queued (a slow
    server can be busy for many seconds after wrk stops), so the next run starts clean.
    Returns the seconds waited."""
    if pid is None:
        return 0.0
    start = time.perf_counter()
    before = cpu_seconds(pid)
    while time.perf_counter() - start < timeout:
        time.sleep(0.25)
        now = cpu_seconds(pid)
        if now - before < busy * 0.25:
            break
        before = now
    return time.perf_counter() - start
