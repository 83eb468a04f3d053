"""Server layer options for the REST route, measured side by side: `python bench/server_options.py`.

The same REST app (`block_app` of bench/capabilities/bench.yaml, GET /small through a local nginx
upstream) served by:

- `naftiko`: `naftiko serve`'s own server (adapters/http1.py), run through `adapters.server.serve`;
- `uvicorn`: the server `NAFTIKO_HTTP=uvicorn` chooses (adapters/uvicorn_server.py: uvicorn +
  httptools + uvloop, our `_Protocol` and `_OneSendTransport`), through `serve` too;
- `uvicorn-join`: the same, `_OneSendTransport.flush` joining the held writes with `b"".join`
  instead of `writelines` (a monkeypatch here);
- `granian`: granian's embedded server (`granian.server.embed.Server`, interface `asginl`) running
  the app in this process's event loop (its HTTP work happens in a Rust thread of the process);
- `raw`: the prototype asyncio protocol on httptools that adapters/http1.py grew from,
  bench/servers/rawproto.py (what the hot path costs with nothing else).

Each runs in a process of its own (uvloop, gc frozen after loading, as `serve` does; `--pin` puts
the servers on CPU 0 and wrk on CPU 1, which steadies c1 but makes a server share its core with
the nginx upstream, so CPU per request rises: not the default); rounds
alternate the targets (the order rotates); each measure is `wrk` at c32 (throughput and the
server's CPU per request from /proc/PID/stat, utime+stime of every thread) and at c1 (p50
latency). Medians of the rounds are printed, and the JSON written with `--json PATH`.

`--app null` serves, with each server, an app that answers the same bytes at once: the server
layer's own cost, with no upstream. The default runs both, alternating all eight targets.

Needs `wrk` and `nginx` on PATH (an nginx with one worker serving the small JSON is started in a
temporary folder; `--upstream URL` uses another upstream serving GET /small), and granian for its
variants (`pip install granian`; left out when absent). `--rounds` (3), `--seconds` (4): ~3 min.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CAPABILITY = ROOT / "bench" / "capabilities" / "bench.yaml"
VARIANTS = ("naftiko", "uvicorn", "uvicorn-join", "granian", "granian-rust", "raw")
DEFAULT = ("naftiko", "uvicorn", "granian", "raw")
"""granian-rust (granian's own task type) is not run by default: our DisconnectWatch keys calls by
`asyncio.current_task()`, which that task type breaks (500s under concurrency)."""
TICKS = os.sysconf("SC_CLK_TCK")
NGINX_CONF = """worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
daemon off;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  default_type application/json;
  keepalive_requests 1000000;
  client_body_temp_path {folder}; proxy_temp_path {folder}; fastcgi_temp_path {folder};
  uwsgi_temp_path {folder}; scgi_temp_path {folder};
  server {{ listen 127.0.0.1:{port}; root {folder}/www; }}
}}
"""
PROXY_CONF = NGINX_CONF.replace(
    "  server {{ listen 127.0.0.1:{port}; root {folder}/www; }}",
    "  upstream up {{ server {upstream}; keepalive 64; }}\n"
    "  server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://up; proxy_http_version 1.1;"
    ' proxy_set_header Connection ""; }} }}',
)


# --- the child: one server variant ---------------------------------------------------------------


def _runtime(upstream: str) -> Any:
    from naftiko.engine import Runtime

    return Runtime.load(CAPABILITY, base_uris={"bench": upstream})


NULL_BODY = b'{"id":1,"name":"small","tags":["a","b"],"ok":true,"n":3.5}'
NULL_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(NULL_BODY)).encode())]


async def null_app(scope: Any, receive: Any, send: Any) -> None:
    """`--app null`: the small answer at once, sent as RestApp sends one: what the server layer alone costs."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": NULL_HEADERS})
        await send({"type": "http.response.body", "body": NULL_BODY})


def _rest_app(runtime: Any) -> Any:
    from naftiko.adapters.apps import block_app

    if runtime is None:
        return null_app
    exposes = runtime.exposes_named("bench-rest")
    return block_app(runtime, exposes)


async def _serve(runtime: Any, port: int, http: str, join: bool = False) -> None:
    """`adapters.server.serve` with the server `http` names (the null app on a server built as serve builds it)."""
    from naftiko.adapters import server

    if join:
        from naftiko.adapters import uvicorn_server

        def flush(self: Any) -> None:
            held, self._held = self._held, None
            if held and not self._transport.is_closing():
                self._transport.write(held[0] if len(held) == 1 else b"".join(held))

        uvicorn_server._OneSendTransport.flush = flush  # type: ignore[method-assign]
    edge = server.EdgeOptions(http=http)
    if runtime is None:
        from naftiko.adapters.reload import Slot

        sock = server.bind("127.0.0.1", port, "bench")
        await server._server(Slot(null_app), edge, 10.0).serve(sockets=[sock])
        return
    await server.serve(runtime, ports={"bench-rest": port, "bench-mcp": 0}, edge=edge, announce=False)


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _serve_granian(runtime: Any, port: int, rust_tasks: bool) -> None:
    from granian.constants import HTTPModes, Interfaces, TaskImpl
    from granian.server.embed import Server

    app = _rest_app(runtime)
    if runtime is not None:
        await runtime.start()
    gc.freeze()
    server = Server(
        app,
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGINL,  # no lifespan: the runtime is started here, as `serve` does
        http=HTTPModes.http1,
        websockets=False,
        log_enabled=False,
        backlog=2048,
        task_impl=TaskImpl.rust if rust_tasks else TaskImpl.asyncio,  # rust: its own future/task (Python < 3.12)
    )
    task = asyncio.create_task(server.serve())
    await _until_stopped()
    server.stop()
    await task
    if runtime is not None:
        await runtime.stop()


async def _serve_raw(runtime: Any, port: int) -> None:
    sys.path.insert(0, str(ROOT / "bench" / "servers"))
    from rawproto import serve_raw

    app = _rest_app(runtime)
    if runtime is not None:
        await runtime.start()
    gc.freeze()
    server = await serve_raw(app, "127.0.0.1", port)
    await _until_stopped()
    server.close()
    if runtime is not None:
        await runtime.stop()


def child(variant: str, port: int, upstream: str | None, cpu: int | None) -> None:
    import uvloop

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    runtime = _runtime(upstream) if upstream else None
    if variant.startswith("granian"):
        main = _serve_granian(runtime, port, rust_tasks=variant == "granian-rust")
    elif variant == "raw":
        main = _serve_raw(runtime, port)
    elif variant == "naftiko":
        main = _serve(runtime, port, "naftiko")
    else:
        main = _serve(runtime, port, "uvicorn", join=variant == "uvicorn-join")
    uvloop.run(main)


# --- the parent: start, check, measure, alternate -------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return bytes(answer.read())
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def _ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15), every thread


WRK_CPU: list[str] = []  # ["taskset", "-c", "1"] with --pin


def _wrk(url: str, conns: int, seconds: float, latency: bool = False) -> str:
    args = [*WRK_CPU, "wrk", "-t1", f"-c{conns}", f"-d{seconds:g}s", *(["--latency"] if latency else []), url]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def _seconds_of(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        return float("nan")
    return float(match[1]) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[match[2]]


def measure(pid: int, url: str, seconds: float) -> dict[str, float]:
    """c32: req/s and server CPU µs per request; c1: req/s and p50 latency (µs)."""
    _wrk(url, 32, 1)  # warm: connections, caches, the upstream pool
    before = _ticks(pid)
    out = _wrk(url, 32, seconds)
    after = _ticks(pid)
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"{url}: errors under load:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    c32 = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    cpu = (after - before) / TICKS * 1e6 / requests
    out1 = _wrk(url, 1, max(2.0, seconds / 2), latency=True)
    c1 = float(re.search(r"Requests/sec:\s+([\d.]+)", out1)[1])  # type: ignore[index]
    p50 = _seconds_of(re.search(r"50%\s+(\S+)", out1)[1]) * 1e6  # type: ignore[index]
    return {"c32_rps": c32, "cpu_us": cpu, "c1_rps": c1, "c1_p50_us": p50}


def _start(variant: str, upstream: str | None, cpu: int | None) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    pin = [] if cpu is None else ["--cpu", str(cpu)]
    pin += ["--app", "null"] if upstream is None else ["--upstream", upstream]
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", variant, "--port", str(port), *pin],
        stdout=subprocess.DEVNULL,
    )
    return proc, f"http://127.0.0.1:{port}/small"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pin", action="store_true", help="servers on CPU 0, wrk on CPU 1 (steadier c1)")
    parser.add_argument("--upstream", help="an upstream serving GET /small (default: an nginx started here)")
    parser.add_argument(
        "--app",
        choices=("both", "rest", "null"),
        default="both",
        help="null: an app answering at once (the server alone)",
    )
    parser.add_argument("--no-nginx", action="store_true", help="leave out the nginx proxy_pass reference")
    parser.add_argument("--variants", default=",".join(DEFAULT), help="comma-separated, of " + ", ".join(VARIANTS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0, help="of each c32 measure (c1: half)")
    parser.add_argument("--json", type=Path, help="write every round and the medians there")
    args = parser.parse_args(argv)
    if args.serve:
        child(
            args.serve, args.port, None if args.app == "null" else (args.upstream or "http://127.0.0.1:18999"), args.cpu
        )
        return 0
    with contextlib.ExitStack() as stack:
        return _measure_all(args, stack)


def _upstream(url: str | None, stack: contextlib.ExitStack) -> tuple[str, bytes]:
    """The upstream's URL and its /small answer: `url`, or an nginx of our own serving NULL_BODY."""
    if url is None:
        if shutil.which("nginx") is None:
            raise SystemExit("no nginx on PATH: install it, or give --upstream URL (an upstream serving GET /small)")
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="naftiko-server-options-")))
        (folder / "www").mkdir()
        (folder / "www" / "small").write_bytes(NULL_BODY)
        port = _free_port()
        _nginx(folder, NGINX_CONF.format(folder=folder, port=port), stack)
        url = f"http://127.0.0.1:{port}"
    try:
        with urllib.request.urlopen(url + "/small", timeout=2) as answer:
            return url, bytes(answer.read())
    except OSError as exc:
        raise SystemExit(f"no upstream at {url}/small ({exc})") from None


def _nginx(folder: Path, conf: str, stack: contextlib.ExitStack) -> int:
    """Start an nginx (one worker) in `folder`; its worker's pid. Stopped when `stack` closes."""
    folder.mkdir(exist_ok=True)
    (folder / "nginx.conf").write_text(conf)
    command = ["nginx", "-p", str(folder), "-c", str(folder / "nginx.conf")]
    master = subprocess.Popen(command, stderr=subprocess.DEVNULL)  # daemon off: our child, reaped by _stop
    stack.callback(_stop, master)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and master.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
            if children:
                return int(children[0])
        time.sleep(0.05)
    raise SystemExit(f"nginx in {folder} did not start (see {folder}/error.log)")


def _proxy(upstream: str, stack: contextlib.ExitStack) -> tuple[int, str]:
    """nginx `proxy_pass` to the upstream, one worker, upstream keep-alive: the native reference."""
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="naftiko-server-options-proxy-")))
    port = _free_port()
    pid = _nginx(folder, PROXY_CONF.format(folder=folder, port=port, upstream=upstream.split("//", 1)[1]), stack)
    return pid, f"http://127.0.0.1:{port}/small"


def _measure_all(args: argparse.Namespace, stack: contextlib.ExitStack) -> int:
    args.upstream, expected = _upstream(args.upstream, stack)
    variants = [v for v in args.variants.split(",") if v]
    if importlib.util.find_spec("granian") is None and any(v.startswith("granian") for v in variants):
        print("granian is not installed here (pip install granian): its variants are left out", file=sys.stderr)
        variants = [v for v in variants if not v.startswith("granian")]
    apps = ["rest", "null"] if args.app == "both" else [args.app]
    cpu = 0 if args.pin and (os.cpu_count() or 1) >= 2 else None
    if cpu is not None:
        WRK_CPU[:] = ["taskset", "-c", "1"]
    targets = [(app, v) for app in apps for v in variants]
    servers = {t: _start(t[1], None if t[0] == "null" else args.upstream, cpu) for t in targets}
    pids = {t: proc.pid for t, (proc, _) in servers.items()}
    urls = {t: url for t, (_, url) in servers.items()}
    if "rest" in apps and shutil.which("nginx") is not None and not args.no_nginx:
        pids[("rest", "nginx-proxy")], urls[("rest", "nginx-proxy")] = _proxy(args.upstream, stack)
        targets.append(("rest", "nginx-proxy"))
        if cpu is not None:
            os.sched_setaffinity(pids[("rest", "nginx-proxy")], {cpu})
    rounds: dict[tuple[str, str], list[dict[str, float]]] = {t: [] for t in targets}
    try:
        for target, (proc, url) in servers.items():
            got = _wait_ready(url, proc)
            if json.loads(got) != json.loads(expected):
                raise SystemExit(f"{target} answered {got!r}, not the upstream's {expected!r}")
        for n in range(args.rounds):
            order = targets[n % len(targets) :] + targets[: n % len(targets)]
            for target in order:
                result = measure(pids[target], urls[target], args.seconds)
                rounds[target].append(result)
                shown = "  ".join(f"{k} {v:9.1f}" for k, v in result.items())
                print(f"round {n + 1} {target[0]:4} {target[1]:13} {shown}", flush=True)
    finally:
        for proc, _ in servers.values():
            _stop(proc)
    medians = {t: {k: statistics.median(r[k] for r in rounds[t]) for k in rounds[t][0]} for t in targets}
    for app in apps:
        _table(app, [v for a, v in targets if a == app], medians, rounds, args.rounds, args.seconds)
    if args.json:
        report = {app: {v: {"median": medians[(app, v)], "rounds": rounds[(app, v)]} for v in variants} for app in apps}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _table(
    app: str,
    variants: list[str],
    medians: dict[tuple[str, str], dict[str, float]],
    rounds: dict[tuple[str, str], list[dict[str, float]]],
    count: int,
    seconds: float,
) -> None:
    base = medians.get((app, "uvicorn"))
    what = "REST app (GET /small via nginx)" if app == "rest" else "null app (the server layer alone)"
    print(f"\n{what}: medians of {count} rounds (c32 {seconds:g} s, c1 {max(2.0, seconds / 2):g} s)")
    print(
        f"{'server':13} {'c32 req/s':>10} {'CPU µs/req':>11} {'(least)':>8} {'vs uvicorn':>11}"
        f" {'c1 req/s':>9} {'c1 p50 µs':>10}"
    )
    for variant in variants:
        m = medians[(app, variant)]
        least = min(r["cpu_us"] for r in rounds[(app, variant)])  # the least disturbed round
        saved = f"{m['cpu_us'] - base['cpu_us']:+.1f}" if base else "-"
        row = f"{m['c32_rps']:10.0f} {m['cpu_us']:11.1f} {least:8.1f} {saved:>11}"
        print(f"{variant:13} {row} {m['c1_rps']:9.0f} {m['c1_p50_us']:10.0f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
