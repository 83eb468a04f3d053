"""Hot reload of a capability folder, as an operator meets it: `naftiko serve DIR --reload` under load.

Client threads call a REST route in a loop, some on one kept-alive connection, some on a new
connection per call, while the file is rewritten in place: the new behaviour appears and no call
fails. A broken file leaves the old one serving, with its problem logged at file:line:col; a file
that moves a listener is refused; SIGHUP reloads a process started without --reload; a call in
flight during a reload finishes on the runtime it started on.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import NaftikoProcess, RecordingUpstream, Reply

REST = "words-rest"


def capability(prefix: str, extra_route: bool = False, call: str = "words.get", mcp: bool = False) -> str:
    """The folder's one file: GET /a/{word} calls the upstream at /{prefix}/{word}."""
    route_b = (
        """
        - path: /b/{word}
          operations:
            - method: GET
              call: words.get
"""
        if extra_route
        else "\n"
    )
    mcp_block = (
        """    - type: mcp
      namespace: words-mcp
      port: 9
      tools:
        - name: word
          description: A word.
          call: words.get
"""
        if mcp
        else ""
    )
    return f"""\
naftiko: 1.0.0-alpha2
capability:
  consumes:
    - type: http
      namespace: words
      baseUri: http://127.0.0.1:1
      resources:
        - name: word
          path: /{prefix}/{{word}}
          operations:
            - name: get
              method: GET
  exposes:
    - type: rest
      namespace: {REST}
      port: 9
      resources:
        - path: /a/{{word}}
          operations:
            - method: GET
              call: {call}{route_b}{mcp_block}"""


class Load:
    """Threads calling `url` until stopped: half keep their connection, half open one per call."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.ok = 0
        self.failures: list[str] = []
        self.prefixes: list[str] = []  # the upstream path prefix each answer names, in order
        self.by_thread: dict[int, list[str]] = {i: [] for i in range(threads)}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i, i % 2 == 0), daemon=True) for i in range(threads)]
        self._lock = threading.Lock()

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _run(self, index: int, keep_alive: bool) -> None:
        client = httpx.Client(timeout=10) if keep_alive else None
        try:
            while not self._stop.is_set():
                try:
                    if client is not None:
                        response = client.get(self.url)
                    else:
                        response = httpx.get(self.url, timeout=10, headers={"Connection": "close"})
                    if response.status_code != 200:
                        raise AssertionError(f"HTTP {response.status_code}: {response.text[:200]}")
                    prefix = response.json()["echo"]["path"].split("/")[1]
                except Exception as exc:  # every kind of failure counts
                    with self._lock:
                        self.failures.append(repr(exc))
                    continue
                with self._lock:
                    self.ok += 1
                    self.prefixes.append(prefix)
                    self.by_thread[index].append(prefix)
        finally:
            if client is not None:
                client.close()

    def wait_for(self, prefix: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while prefix not in self.prefixes[-20:]:
            assert time.monotonic() < deadline, f"'{prefix}' never answered; saw {set(self.prefixes)}"
            time.sleep(0.05)


def wait_log(process: NaftikoProcess, text: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in process.log if text in line]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, f"no log line with {text!r}:\n" + "\n".join(process.log)
        time.sleep(0.05)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "caps").mkdir()
    (tmp_path / "caps" / "words.yaml").write_text(capability("v1"))
    return tmp_path / "caps"


@pytest.fixture
def served(
    folder: Path, upstream: RecordingUpstream, naftiko: Callable[..., NaftikoProcess]
) -> Iterator[Callable[..., tuple[NaftikoProcess, str]]]:
    processes: list[NaftikoProcess] = []

    def start(*flags: str) -> tuple[NaftikoProcess, str]:
        process = naftiko(str(folder), "--base-uri", f"words={upstream.url}", "--port", f"{REST}=0", *flags)
        processes.append(process)
        return process, process.wait_for(REST)[REST]

    yield start
    for process in processes:
        log = "\n".join(process.log)
        assert "Traceback" not in log, log


def test_a_changed_file_is_served_under_load_without_a_failed_call(
    folder: Path, served: Callable[..., tuple[NaftikoProcess, str]]
) -> None:
    process, url = served("--reload", "--reload-interval", "0.1")
    file = folder / "words.yaml"
    with Load(f"{url}/a/x") as load:
        load.wait_for("v1")
        file.write_text(capability("v2", extra_route=True))  # in place, as an editor saves it
        load.wait_for("v2")
        assert httpx.get(f"{url}/b/y").json()["echo"]["path"] == "/v2/y"  # the new route
        time.sleep(0.5)  # keep calling the new runtime a while
        for _ in range(3):  # and reload twice more under load
            file.write_text(capability("v3"))
            load.wait_for("v3")
            file.write_text(capability("v2", extra_route=True))
            load.wait_for("v2")
        time.sleep(0.5)  # every thread past its last call on a replaced runtime
    assert load.failures == [], load.failures[:5]
    assert load.ok > 100, load.ok
    assert wait_log(process, "reloaded: REST words-rest: 2 routes")
    # Each client switched at most once per reload (7 of them): never back to a replaced runtime.
    for answers in load.by_thread.values():
        runs = 1 + sum(1 for a, b in zip(answers, answers[1:], strict=False) if a != b)
        assert answers and runs <= 8 and answers[0] == "v1" and answers[-1] == "v2", runs


def test_a_broken_file_keeps_the_old_one_serving_and_says_where(
    folder: Path, served: Callable[..., tuple[NaftikoProcess, str]]
) -> None:
    process, url = served("--reload", "--reload-interval", "0.1")
    file = folder / "words.yaml"
    with Load(f"{url}/a/x", threads=2) as load:
        load.wait_for("v1")
        broken = capability("v2", call="words.nope")
        file.write_text(broken)
        line = 1 + broken.splitlines().index("            - method: GET")
        failed = wait_log(process, "reload failed")
        problem = next(entry for entry in process.log if str(file) in entry and "words.nope" in entry)
        assert problem.startswith(f"naftiko: {file}:{line}:"), problem
        time.sleep(0.5)
        assert load.prefixes[-1] == "v1"
        # One more block, so one more listener: refused, since the sockets are bound once.
        file.write_text(capability("v2", mcp=True))
        refused = wait_log(process, "restart to add, remove or move listeners")
        assert (
            "new files listen on words-rest 127.0.0.1:any, words-mcp 127.0.0.1:9, the running ones on words-rest"
            in refused
        )
        time.sleep(0.3)
        assert load.prefixes[-1] == "v1"
        file.write_text(capability("v4"))  # fixed: served again
        load.wait_for("v4")
    assert load.failures == [], load.failures[:5]
    assert "still serving the files loaded before" in failed


def test_sighup_reloads_without_watching(folder: Path, served: Callable[..., tuple[NaftikoProcess, str]]) -> None:
    process, url = served()
    (folder / "words.yaml").write_text(capability("v2"))
    time.sleep(1.0)
    assert httpx.get(f"{url}/a/x").json()["echo"]["path"] == "/v1/x"  # no --reload: the file is not watched
    process.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while httpx.get(f"{url}/a/x").json()["echo"]["path"] != "/v2/x":
        assert time.monotonic() < deadline, "\n".join(process.log)
        time.sleep(0.05)
    assert process.proc.poll() is None  # SIGHUP reloads, it does not stop the process
    (folder / "words.yaml").write_text("naftiko: 1.0.0-alpha2\ncapability:\n  exposes: [\n")
    process.proc.send_signal(signal.SIGHUP)
    wait_log(process, "reload failed")
    assert httpx.get(f"{url}/a/x").json()["echo"]["path"] == "/v2/x"
    assert process.stop() == 0


def test_a_call_in_flight_finishes_on_the_runtime_it_started_on(
    folder: Path, upstream: RecordingUpstream, served: Callable[..., tuple[NaftikoProcess, str]]
) -> None:
    upstream.reply("GET", "/v1/slow", Reply(json={"echo": {"path": "/v1/slow"}}, delay=1.5))
    process, url = served("--reload", "--reload-interval", "0.1")
    answers: list[httpx.Response] = []
    slow = threading.Thread(target=lambda: answers.append(httpx.get(f"{url}/a/slow", timeout=10)))
    slow.start()
    time.sleep(0.3)  # the call is waiting on the upstream
    (folder / "words.yaml").write_text(capability("v2"))
    wait_log(process, "reloaded:")
    assert httpx.get(f"{url}/a/x").json()["echo"]["path"] == "/v2/x"  # new calls meet the new file
    slow.join(10)
    [answer] = answers
    assert answer.status_code == 200 and answer.json() == {"echo": {"path": "/v1/slow"}}
