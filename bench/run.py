"""naftiko benchmark (issues 5 and 16): REST, MCP, scale, memory and workers, side by side with peers, in one run.

Started by `bash bench/run.sh [--quick]`, which installs what this needs. Results go to
bench/results/ (report.md, report.json, report.png, logs/). See bench/README.md for the method.
"""

from __future__ import annotations

import argparse
import contextlib
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gen_scale  # noqa: E402
import report  # noqa: E402
from load import (
    Req,
    Target,
    check_mcp,
    check_rest,
    interleaved,
    legacy_call,
    median_point,
    modern_call,  # noqa: E402
    wrk,
)
from procs import Server, free_port, peak_rss_mb, rss_mb, running, wait_idle  # noqa: E402

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
LOGS = RESULTS / "logs"
BASELINE = RESULTS / "baseline.json"  # committed: the report.json of the last full run, the reference
SECTIONS = ["rest", "mcp", "scale", "seed", "stream", "profile", "workers"]
NAFTIKO_PY = BENCH / ".venv-naftiko" / "bin" / "python"  # the project's own dependencies only
BENCH_PY = BENCH / ".venv" / "bin" / "python"  # peers and tools
SEED = ROOT / "capabilities" / "posthog-task-runs.yaml"
MARKER = "naftiko-bench"
CONCURRENCIES = (1, 32, 128)


@dataclass(frozen=True)
class Settings:
    """Durations and sizes of one run (full or --quick)."""

    runs: int
    c1_seconds: float  # c1 runs are longer: latency percentiles need many samples
    load_seconds: float
    warmup_seconds: float
    scale_sizes: tuple[int, ...]
    scale_runs: int
    scale_seconds: float
    startup_runs: int
    download_mb: int
    sse_events: int
    sse_interval_ms: int


FULL = Settings(
    runs=3,
    c1_seconds=5,
    load_seconds=4,
    warmup_seconds=1,
    scale_sizes=(20, 200, 2000, 10000),
    scale_runs=3,
    scale_seconds=2,
    startup_runs=5,  # the start-up goals pass on the worst of these, so "with margin across runs"
    download_mb=1024,
    sse_events=300,
    sse_interval_ms=10,
)
QUICK = Settings(
    runs=1,
    c1_seconds=2,
    load_seconds=2,
    warmup_seconds=1,
    scale_sizes=(20, 200),
    scale_runs=1,
    scale_seconds=2,
    startup_runs=2,
    download_mb=128,
    sse_events=50,
    sse_interval_ms=10,
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- the upstream and nginx ----------------------------------------------------------------


def write_payloads(www: Path) -> dict[str, int]:
    """small: a ~80-byte JSON object; large: a 1 MiB JSON object (a list of records), both compact."""
    www.mkdir(parents=True, exist_ok=True)
    small = {"id": 42, "name": MARKER, "ok": True, "tags": ["a", "b"], "score": 0.5}
    large = gen_scale.large_payload(MARKER + "-large")
    (www / "small").write_text(json.dumps(small, separators=(",", ":")))  # compact, as proxies re-encode it
    (www / "large").write_text(json.dumps(large, separators=(",", ":")))
    for f in www.iterdir():
        f.chmod(0o644)
    return {"small": (www / "small").stat().st_size, "large": (www / "large").stat().st_size}


_NGINX_COMMON = """
worker_processes 1;
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
{user}
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 10000000; keepalive_timeout 300s;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  types {{ }}
  default_type application/json;
{server}
}}
"""


def nginx_conf(tmp: Path, server: str) -> Path:
    import os

    user = "user root;" if os.geteuid() == 0 else ""
    conf = tmp / "nginx.conf"
    conf.write_text(_NGINX_COMMON.format(tmp=tmp, user=user, server=server))
    return conf


def upstream_server(tmp: Path, port: int) -> Server:
    """The upstream (floor): nginx, 1 worker, serving the static JSON files with
    `default_type application/json`. /s/... (scale files) and /api/... (the seed) get `small`."""
    server = f"""  server {{
    listen 127.0.0.1:{port} reuseport backlog=4096;
    root {tmp}/www;
    location /s/ {{ try_files /small =404; }}
    location /api/ {{ try_files /small =404; }}
  }}"""
    return Server("upstream-nginx", ["nginx", "-c", str(nginx_conf(tmp, server)), "-p", str(tmp)], LOGS, stop_signal=15)


def nginx_proxy(tmp: Path, port: int, upstream_port: int) -> Server:
    """Peer (d): nginx `proxy_pass` with a keep-alive upstream pool, 1 worker, buffering in memory."""
    tmp.mkdir(parents=True, exist_ok=True)
    server = f"""  upstream bench_upstream {{ server 127.0.0.1:{upstream_port}; keepalive 256; }}
  server {{
    listen 127.0.0.1:{port} reuseport backlog=4096;
    location / {{
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffer_size 16k; proxy_buffers 128 16k; proxy_max_temp_file_size 0;
    }}
  }}"""
    return Server("nginx-proxy", ["nginx", "-c", str(nginx_conf(tmp, server)), "-p", str(tmp)], LOGS, stop_signal=15)


def naftiko(
    name: str,
    capability: Path,
    base_uris: dict[str, str],
    ports: dict[str, int],
    env: dict[str, str] | None = None,
    flags: tuple[str, ...] = (),
) -> Server:
    """`naftiko serve` as a user runs it, from a venv holding only the project's dependencies."""
    cmd = [str(NAFTIKO_PY), "-m", "naftiko", "serve", str(capability), *flags]
    for ns, url in base_uris.items():
        cmd += ["--base-uri", f"{ns}={url}"]
    for ns, port in ports.items():
        cmd += ["--port", f"{ns}={port}"]
    return Server(name, cmd, LOGS, cwd=ROOT, env=env or {})


def granian(name: str, module: str, port: int, env: dict[str, str]) -> Server:
    return Server(
        name,
        [
            str(BENCH / ".venv" / "bin" / "granian"),
            "--interface",
            "asgi",
            "--loop",
            "uvloop",
            "--workers",
            "1",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-ws",
            module,
        ],
        LOGS,
        cwd=BENCH / "servers",
        env=env,
    )


# --- REST ----------------------------------------------------------------------------------


def measure(targets: list[Target], settings: Settings) -> dict[str, dict[int, dict[str, Any]]]:
    return interleaved(
        targets,
        settings.runs,
        lambda c: settings.c1_seconds if c == 1 else settings.load_seconds,
        settings.warmup_seconds,
    )


def rest_section(settings: Settings, tmp: Path, upstream: Server, up_port: int) -> dict[str, Any]:
    """(a) direct, (b) naftiko REST, (c) pure Python proxy, (d) nginx proxy_pass; small and large.
    All four run at once and are loaded in alternation (see `load.interleaved`)."""
    up_url = f"http://127.0.0.1:{up_port}"
    out: dict[str, Any] = {}
    for payload in ("small", "large"):
        ports = {"naftiko": free_port(), "pyproxy": free_port(), "nginx": free_port()}
        servers = {
            "naftiko": naftiko(
                "naftiko-rest",
                BENCH / "capabilities" / "bench.yaml",
                {"bench": up_url},
                {"bench-rest": ports["naftiko"], "bench-mcp": free_port()},
            ),
            "pyproxy": granian("pyproxy", "pyproxy:app", ports["pyproxy"], {"BENCH_UPSTREAM": up_url}),
            "nginx": nginx_proxy(tmp / f"nginx-proxy-{payload}", ports["nginx"], up_port),
        }
        log(f"REST {payload}: direct, naftiko, pure proxy, nginx")
        with contextlib.ExitStack() as stack:
            for name, server in servers.items():
                stack.enter_context(running(server, ports[name]))
            pids = {"direct": upstream.pid, **{name: server.pid for name, server in servers.items()}}
            reqs = {name: Req(f"http://127.0.0.1:{ports.get(name, up_port)}/{payload}") for name in pids}
            size = 1024 * 1024 if payload == "large" else 0
            checks = {name: check_rest(req, MARKER, size) for name, req in reqs.items()}
            points = measure([Target(name, reqs[name], pids[name], CONCURRENCIES) for name in pids], settings)
            for name, pid in pids.items():
                out.setdefault(name, {})[payload] = {
                    "check": checks[name],
                    "points": points[name],
                    "peak_rss_mb": peak_rss_mb(pid),
                    "rss_after_mb": rss_mb(pid),
                }
    return out


# --- workers -------------------------------------------------------------------------------

WORKER_COUNTS = (1, 2)
WRK_CORE = "1"  # wrk pinned here in the workers section; the servers and the upstream are not pinned


def workers_section(settings: Settings, up_port: int) -> dict[str, Any]:
    """naftiko REST (small JSON) with `--workers 1` and `--workers 2`, both running, loaded in alternation,
    each with wrk pinned to one core (`taskset -c 1`, the `-pinned` targets) and with wrk unpinned.

    With 1 the supervisor is the whole server (as without the flag); with 2 it runs two worker
    processes, each with its own socket. CPU per request sums the process tree (supervisor and workers).
    The servers stay unpinned: pinning one worker to core 0 would hand it a core wrk never touches,
    a best case the two workers (one of which must share wrk's core) cannot have.
    """
    up_url = f"http://127.0.0.1:{up_port}"
    ports = {n: free_port() for n in WORKER_COUNTS}
    servers = {
        n: naftiko(
            f"naftiko-workers-{n}",
            BENCH / "capabilities" / "bench.yaml",
            {"bench": up_url},
            {"bench-rest": ports[n], "bench-mcp": free_port()},
            flags=("--workers", str(n)),
        )
        for n in WORKER_COUNTS
    }
    log("workers: naftiko REST with --workers " + " and ".join(map(str, WORKER_COUNTS)))
    out: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        for n, server in servers.items():
            stack.enter_context(running(server, ports[n]))
        reqs = {n: Req(f"http://127.0.0.1:{ports[n]}/small") for n in WORKER_COUNTS}
        checks = {n: check_rest(reqs[n], MARKER, 0) for n in WORKER_COUNTS}
        pin = WRK_CORE if (os.cpu_count() or 1) > int(WRK_CORE) and shutil.which("taskset") else None
        targets = [
            Target(f"workers-{n}{suffix}", reqs[n], servers[n].pid, (32, 128), wrk_cpus=cpus)
            for suffix, cpus in (("-pinned", pin), ("", None))
            if suffix == "" or cpus
            for n in WORKER_COUNTS
        ]
        points = measure(targets, settings)
        for target in targets:
            n = int(target.name.split("-")[1])
            out[target.name] = {"check": checks[n], "wrk_cpus": target.wrk_cpus, "points": points[target.name]}
    for suffix, how in (("-pinned", f"wrk on core {WRK_CORE}"), ("", "wrk unpinned")):
        for c in (32, 128):
            one, two = _get_point(out, f"workers-1{suffix}", c), _get_point(out, f"workers-2{suffix}", c)
            if one is None or two is None:
                continue
            log(
                f"workers c{c}, {how}: 1 worker {one['rps']:,.0f} req/s "
                f"({one.get('cpu_us_per_request', 0):.0f} us CPU/request), 2 workers {two['rps']:,.0f} req/s "
                f"({two.get('cpu_us_per_request', 0):.0f} us CPU/request): {two['rps'] / one['rps']:.2f}x"
            )
    return out


def _get_point(section: dict[str, Any], name: str, c: int) -> dict[str, Any] | None:
    point: dict[str, Any] | None = section.get(name, {}).get("points", {}).get(c)
    return point


# --- MCP -----------------------------------------------------------------------------------


def mcp_section(settings: Settings, up_port: int) -> dict[str, Any]:
    """(e) naftiko MCP, (f) FastMCP from_openapi, (g) the official SDK; both eras each; and
    naftiko's REST adapter on the same operation, from the same process, for the MCP/REST ratio.
    All run at once and are loaded in alternation (see `load.interleaved`)."""
    up_url = f"http://127.0.0.1:{up_port}"
    out: dict[str, Any] = {}
    for payload in ("small", "large"):
        ports = {name: free_port() for name in ("naftiko", "naftiko-rest", "fastmcp", "sdk")}
        servers = {
            "naftiko": naftiko(
                "naftiko-mcp",
                BENCH / "capabilities" / "bench.yaml",
                {"bench": up_url},
                {"bench-rest": ports["naftiko-rest"], "bench-mcp": ports["naftiko"]},
            )
        }
        for peer in ("fastmcp", "sdk"):
            script = BENCH / "servers" / f"{'fastmcp_server' if peer == 'fastmcp' else 'sdk_server'}.py"
            servers[peer] = Server(
                f"{peer}-mcp", [str(BENCH_PY), str(script), str(ports[peer]), up_url], LOGS, cwd=BENCH / "servers"
            )
        # 1 MB at c128 is left out: the SDK-based peers need tens of seconds to work off
        # 128 queued 1 MB calls after each run, which would take most of the run's time.
        levels = CONCURRENCIES if payload == "small" else (1, 32)
        log(f"MCP {payload}: naftiko, FastMCP, SDK; both eras")
        with contextlib.ExitStack() as stack:
            for name, server in servers.items():
                stack.enter_context(running(server, ports[name], "/mcp", timeout=60))
            targets: list[Target] = []
            for name, server in servers.items():
                url = f"http://127.0.0.1:{ports[name]}/mcp"
                for era, build in (("modern", modern_call), ("legacy", legacy_call)):
                    entry = out.setdefault(f"{name}-{era}", {})
                    try:
                        req = build(url, payload)
                        entry[payload] = {"check": check_mcp(req, MARKER)}
                    except Exception as exc:  # an era the peer does not serve is recorded, not fatal
                        entry[payload] = {"skipped": f"{type(exc).__name__}: {exc}"[:500]}
                        log(f"  {name} {era} skipped: {exc}")
                        continue
                    targets.append(Target(f"{name}-{era}", req, server.pid, levels, track_rss=name == "naftiko"))
            rest = Req(f"http://127.0.0.1:{ports['naftiko-rest']}/{payload}")
            size = 1024 * 1024 if payload == "large" else 0
            out.setdefault("naftiko-rest", {})[payload] = {"check": check_rest(rest, MARKER, size)}
            targets.append(Target("naftiko-rest", rest, servers["naftiko"].pid, levels, track_rss=True))
            # naftiko's RSS once each of its targets has answered one call, before any load: what
            # a run's peak (VmHWM reset before each run, see `load.sample`) is compared with.
            time.sleep(0.3)
            idle = rss_mb(servers["naftiko"].pid)
            for name in ("naftiko-modern", "naftiko-legacy", "naftiko-rest"):
                if "check" in out.get(name, {}).get(payload, {}):
                    out[name][payload]["rss_idle_mb"] = idle
            for name, points in measure(targets, settings).items():
                out[name][payload]["points"] = points
            for target in targets:
                entry = out[target.name][payload]
                run_peaks = [p["peak_rss_mb"] for p in entry["points"].values() if "peak_rss_mb" in p]
                # a tracked target's VmHWM was reset before each run: its peak is the worst run's
                entry["peak_rss_mb"] = max(run_peaks) if target.track_rss and run_peaks else peak_rss_mb(target.pid)
    return out


# --- scale ---------------------------------------------------------------------------------


def startup(
    name: str,
    capability: Path,
    base_uris: dict[str, str],
    ports: dict[str, int],
    ready_port: int,
    runs: int,
    env: dict[str, str] | None = None,
    then: Callable[[Server], dict[str, Any]] | None = None,
    keep: list[Server] | None = None,
) -> dict[str, Any]:
    """Start-up time (process start until the port answers HTTP) over `runs` starts (median and
    worst), RSS once ready, and `then(server)` measured on the last start. A start over 20 s is not repeated.
    With `keep`, the last start is left running and added to it (the caller stops it)."""
    times, rss = [], []
    extra: dict[str, Any] = {}
    for i in range(runs):
        server = naftiko(name, capability, base_uris, ports, env)
        server.start()
        kept = False
        try:
            times.append(server.wait_ready(ready_port, "/"))
            time.sleep(0.3)
            rss.append(rss_mb(server.pid))
            last = i == runs - 1 or times[-1] > 20
            if last and then is not None:
                extra = then(server)
            if last and keep is not None:
                keep.append(server)
                kept = True
        finally:
            if not kept:
                server.stop()
        if last:
            break
    return {
        "startup_s": statistics.median(times),
        "startup_worst_s": max(times),
        "startup_runs_s": times,
        "rss_ready_mb": statistics.median(rss),
        **extra,
    }


def scale_section(settings: Settings, tmp: Path, up_port: int) -> dict[str, Any]:
    """Generated files with N operations: start-up and RSS; then, with a server of every size
    running, p50 at c1 on the first and last route and tool, loaded in alternation across sizes."""
    up_url = f"http://127.0.0.1:{up_port}"
    out: dict[str, Any] = {}
    servers: list[Server] = []
    targets: list[Target] = []
    try:
        for n in settings.scale_sizes:
            path = tmp / f"scale-{n}.yaml"
            path.write_text(gen_scale.capability(n))
            rest_port, mcp_port = free_port(), free_port()
            log(f"scale {n} operations: start-up")
            out[str(n)] = startup(
                f"naftiko-scale-{n}",
                path,
                {"scale": up_url},
                {"scale-rest": rest_port, "scale-mcp": mcp_port},
                rest_port,
                settings.startup_runs,
                keep=servers,
            )
            out[str(n)]["file_bytes"] = path.stat().st_size
            for which, i in (("first", 0), ("last", n - 1)):
                rest = Req(f"http://127.0.0.1:{rest_port}/v1/op{i}/abc")
                check_rest(rest, MARKER)
                mcp = modern_call(f"http://127.0.0.1:{mcp_port}/mcp", f"op{i}", {"id": "abc"})
                check_mcp(mcp, MARKER)
                targets += [
                    Target(f"{n}/rest_{which}", rest, servers[-1].pid, (1,)),
                    Target(f"{n}/mcp_{which}", mcp, servers[-1].pid, (1,)),
                ]
        targets.sort(key=lambda t: t.name.split("/")[1])  # the sizes of one route side by side in time
        log(f"scale: latency at c1, sizes {', '.join(map(str, settings.scale_sizes))} in alternation")
        points = interleaved(targets, settings.scale_runs, lambda c: settings.scale_seconds, settings.warmup_seconds)
        for name, by_level in points.items():
            n, key = name.split("/")
            out[n][key] = by_level[1]
        for n, server in zip(settings.scale_sizes, servers, strict=True):
            out[str(n)]["rss_after_mb"] = rss_mb(server.pid)
            out[str(n)]["peak_rss_mb"] = peak_rss_mb(server.pid)
    finally:
        for server in servers:
            server.stop()
    return out


def seed_section(settings: Settings, up_port: int) -> dict[str, Any]:
    """The seed capability: start-up (base URI 127.0.0.1:9, as the goal states) and memory while
    serving real answers (base URI = the upstream, REST and MCP load at c32)."""
    env = {"POSTHOG_API_KEY": "x"}
    rest_port, mcp_port = free_port(), free_port()
    ports = {"posthog-task-runs-rest": rest_port, "posthog-task-runs-mcp": mcp_port}
    log("seed start-up")
    result = startup(
        "naftiko-seed",
        SEED,
        {"posthog-task-runs": "http://127.0.0.1:9"},
        ports,
        rest_port,
        max(settings.startup_runs, 5),
        env,
    )

    def serving(server: Server) -> dict[str, Any]:
        rest = Req(f"http://127.0.0.1:{rest_port}/v1/api/projects/1/tasks/abc/runs")
        check_rest(rest, MARKER)
        mcp = modern_call(f"http://127.0.0.1:{mcp_port}/mcp", "list-task-runs", {"project_id": "1", "task_id": "abc"})
        served: dict[str, Any] = {"rss_idle_mb": rss_mb(server.pid)}
        served["rest_c32"] = median_point(rest, 32, settings.load_seconds, 1, server.pid)
        try:
            check_mcp(mcp, MARKER)
            served["mcp_c32"] = median_point(mcp, 32, settings.load_seconds, 1, server.pid)
        except Exception as exc:
            served["mcp_skipped"] = str(exc)[:300]
        served["peak_rss_mb"] = peak_rss_mb(server.pid)
        return served

    log("seed serving")
    result["serving"] = startup(
        "naftiko-seed-serving",
        SEED,
        {"posthog-task-runs": f"http://127.0.0.1:{up_port}"},
        ports,
        rest_port,
        1,
        env,
        then=serving,
    )
    return result


# --- streaming -----------------------------------------------------------------------------


async def _sse_delays(url: str) -> list[float]:
    """Arrival delay of each event in µs: client CLOCK_MONOTONIC minus the upstream's stamp."""
    import aiohttp

    delays: list[float] = []
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200, response.status
        async for line in response.content:
            if line.startswith(b"data:"):
                now = time.monotonic_ns()
                delays.append((now - json.loads(line[5:])["t"]) / 1000)
    return delays


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def _download(url: str, pid: int | None) -> dict[str, Any]:
    """Download with curl to /dev/null while sampling the proxy's RSS every 20 ms."""
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set() and pid is not None:
            samples.append(rss_mb(pid))
            time.sleep(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        out = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}", url],
            capture_output=True,
            text=True,
            timeout=600,
        ).stdout.split()
    finally:
        done.set()
        thread.join()
    code, size, seconds = int(out[0]), int(out[1]), float(out[2])
    return {
        "http": code,
        "bytes": size,
        "seconds": seconds,
        "mb_per_s": size / 1048576 / seconds,
        "rss_max_sampled_mb": max(samples) if samples else None,
    }


def stream_section(settings: Settings) -> dict[str, Any]:
    """Added delay per server-sent event through the REST adapter; RSS while a large download streams."""
    up_port, rest_port = free_port(), free_port()
    upstream = granian("upstream-stream", "upstream_stream:app", up_port, {})
    out: dict[str, Any] = {}
    with running(upstream, up_port, "/sse?n=0"):
        cap, base = BENCH / "capabilities" / "stream.yaml", {"stream": f"http://127.0.0.1:{up_port}"}
        query = f"/sse?n={settings.sse_events}&interval_ms={settings.sse_interval_ms}"
        log("streaming: server-sent events")
        with running(naftiko("naftiko-stream", cap, base, {"stream-rest": rest_port}), rest_port, "/sse?n=0"):
            direct, through = [], []
            for _ in range(settings.runs):
                direct += asyncio.run(_sse_delays(f"http://127.0.0.1:{up_port}{query}"))
                through += asyncio.run(_sse_delays(f"http://127.0.0.1:{rest_port}{query}"))
        expected = settings.sse_events * settings.runs
        if len(through) != expected or len(direct) != expected:
            raise RuntimeError(
                f"SSE: expected {expected} events, got {len(direct)} direct, {len(through)} through naftiko"
            )
        out["sse"] = {
            "events": expected,
            "interval_ms": settings.sse_interval_ms,
            "direct_p50_us": statistics.median(direct),
            "direct_p99_us": _percentile(direct, 99),
            "naftiko_p50_us": statistics.median(through),
            "naftiko_p99_us": _percentile(through, 99),
        }
        out["sse"]["added_p50_us"] = out["sse"]["naftiko_p50_us"] - out["sse"]["direct_p50_us"]
        out["sse"]["added_p99_us"] = out["sse"]["naftiko_p99_us"] - out["sse"]["direct_p99_us"]
        log(f"streaming: {settings.download_mb} MiB download")
        out["download_direct"] = _download(f"http://127.0.0.1:{up_port}/download?mb={settings.download_mb}", None)
        server = naftiko("naftiko-download", cap, base, {"stream-rest": rest_port})
        with running(server, rest_port, "/sse?n=0"):
            _download(f"http://127.0.0.1:{rest_port}/download?mb=1", server.pid)  # warm the code path
            time.sleep(0.5)
            idle = rss_mb(server.pid)
            result = _download(f"http://127.0.0.1:{rest_port}/download?mb={settings.download_mb}", server.pid)
            result.update(rss_idle_mb=idle, peak_rss_mb=peak_rss_mb(server.pid))
            result["added_mb"] = max(result["peak_rss_mb"], result["rss_max_sampled_mb"] or 0) - idle
            out["download_naftiko"] = result
        if out["download_naftiko"]["bytes"] != settings.download_mb * 1048576:
            raise RuntimeError(f"download through naftiko was cut short: {out['download_naftiko']}")
    return out


# --- profile -------------------------------------------------------------------------------


def profile_section(settings: Settings, up_port: int) -> dict[str, Any]:
    """py-spy on naftiko under load (REST small c32, MCP modern small c32, REST 1 MB c4): the top
    functions by own and inclusive time, from py-spy's raw (collapsed) stacks."""
    up_url = f"http://127.0.0.1:{up_port}"
    py_spy = BENCH / ".venv" / "bin" / "py-spy"
    out: dict[str, Any] = {}
    for kind, payload, concurrency in (("rest", "small", 32), ("mcp", "small", 32), ("rest-large", "large", 4)):
        rest_port, mcp_port = free_port(), free_port()
        server = naftiko(
            f"naftiko-profile-{kind}",
            BENCH / "capabilities" / "bench.yaml",
            {"bench": up_url},
            {"bench-rest": rest_port, "bench-mcp": mcp_port},
        )
        port = mcp_port if kind == "mcp" else rest_port
        req = (
            modern_call(f"http://127.0.0.1:{mcp_port}/mcp", payload)
            if kind == "mcp"
            else Req(f"http://127.0.0.1:{rest_port}/{payload}")
        )
        raw = RESULTS / f"profile-{kind}.txt"
        raw.unlink(missing_ok=True)
        log(f"profile {kind} ({payload} JSON, c{concurrency})")
        err = ""
        with running(server, port, "/"):
            wrk(req, concurrency, 1)
            wait_idle(server.pid)
            seconds = max(3, int(settings.load_seconds) + 1)
            spy = subprocess.Popen(
                [
                    str(py_spy),
                    "record",
                    "--pid",
                    str(server.pid),
                    "--duration",
                    str(seconds),
                    "--rate",
                    "250",
                    "--format",
                    "raw",
                    "--output",
                    str(raw),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                time.sleep(0.5)
                wrk(req, concurrency, seconds)
                _, err = spy.communicate(timeout=seconds + 30)
            finally:
                if spy.poll() is None:
                    spy.kill()
        if not raw.exists():
            out[kind] = {"skipped": f"py-spy wrote nothing: {err.strip()[:300]}"}
            continue
        out[kind] = {"payload": payload, "concurrency": concurrency, **report.top_functions(raw)}
    return out


# --- machine -------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    """Versions of everything measured, read from the two venvs and the system tools."""

    def pkgs(python: Path, names: list[str]) -> dict[str, str]:
        code = (
            "import importlib.metadata as m, json, sys; d = {}\n"
            "for n in sys.argv[1:]:\n"
            "    try: d[n] = m.version(n)\n"
            "    except m.PackageNotFoundError: d[n] = 'not installed'\n"
            "d['python'] = sys.version.split()[0]; print(json.dumps(d))"
        )
        return json.loads(subprocess.run([str(python), "-c", code, *names], capture_output=True, text=True).stdout)

    def tool(cmd: list[str]) -> str:
        try:
            result = subprocess.run(cmd, capture_output=True, text=True)
            return (result.stdout + result.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            return "not found"

    naftiko_env = pkgs(NAFTIKO_PY, ["uvicorn", "starlette", "aiohttp", "ruamel.yaml", "uvloop", "httptools", "h11"])
    bench_env = pkgs(
        BENCH_PY,
        [
            "fastmcp",
            "mcp",
            "httpx2",
            "granian",
            "aiohttp",
            "uvicorn",
            "uvloop",
            "httptools",
            "starlette",
            "matplotlib",
            "py-spy",
        ],
    )
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "engine", "adapters"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "naftiko_commit": commit + (" + uncommitted changes in engine/ or adapters/" if dirty else ""),
        **{f"naftiko venv: {k}": v for k, v in naftiko_env.items()},
        **{f"bench venv: {k}": v for k, v in bench_env.items()},
        "nginx": tool(["nginx", "-v"]),
        "wrk": tool(["wrk", "-v"]),
        "curl": tool(["curl", "--version"]),
    }


def load_baseline() -> dict[str, Any] | None:
    """The reference run (bench/results/baseline.json), or None when there is none or it is unreadable."""
    try:
        baseline: dict[str, Any] = json.loads(BASELINE.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log(f"baseline {BASELINE} not read ({exc}); the report compares with nothing")
        return None
    return baseline


def finish(data: dict[str, Any]) -> None:
    """Goals, the comparison with the baseline, report.json, report.md and the chart, from `data`."""
    baseline = load_baseline()
    data["goals"] = report.goals(data)
    data["against_baseline"] = report.against_baseline(data, baseline) if baseline else None
    (RESULTS / "report.json").write_text(json.dumps(data, indent=1, default=str))
    (RESULTS / "report.md").write_text(report.markdown(data, baseline))
    report.chart(data, RESULTS / "report.png")


def save_baseline(data: dict[str, Any]) -> None:
    """report.json becomes the reference run; only a full run of every section qualifies."""
    if data.get("mode") != "full" or any(section not in data for section in SECTIONS):
        raise SystemExit("--save-baseline: only a full run of every section becomes the baseline")
    shutil.copyfile(RESULTS / "report.json", BASELINE)
    log(f"baseline saved: {BASELINE} (commit it as the reference of this run)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a couple of seconds per point, 1 run: a smoke check")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only these sections (default: all)")
    parser.add_argument(
        "--save-baseline",
        action="store_true",
        help="after a full run of every section, copy results/report.json to results/baseline.json",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="measure nothing: rebuild report.md, the goals and the baseline table from results/report.json",
    )
    args = parser.parse_args()
    if args.save_baseline and (args.quick or args.only):
        parser.error("--save-baseline needs a full run of every section (no --quick, no --only)")
    if args.report_only:
        data = json.loads((RESULTS / "report.json").read_text())
        finish(data)
        if args.save_baseline:
            save_baseline(data)
        log(f"report rebuilt: {RESULTS / 'report.md'}")
        return 0
    settings = QUICK if args.quick else FULL
    sections = args.only or SECTIONS
    RESULTS.mkdir(parents=True, exist_ok=True)
    if LOGS.exists():
        shutil.rmtree(LOGS)
    started = time.time()
    data: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "settings": asdict(settings),
        "machine": report.machine(),
        "versions": versions(),
        "started": time.ctime(started),
    }
    tmp = Path(tempfile.mkdtemp(prefix="naftiko-bench-"))
    tmp.chmod(0o755)
    try:
        data["payload_bytes"] = write_payloads(tmp / "www")
        up_port = free_port()
        data["upstream"] = (
            "nginx 1 worker, static files, default_type application/json "
            f"(small {data['payload_bytes']['small']} B, large {data['payload_bytes']['large']} B)"
        )
        upstream = upstream_server(tmp, up_port)
        with running(upstream, up_port, "/small"):
            if "rest" in sections:
                data["rest"] = rest_section(settings, tmp, upstream, up_port)
            if "mcp" in sections:
                data["mcp"] = mcp_section(settings, up_port)
            if "scale" in sections:
                data["scale"] = scale_section(settings, tmp, up_port)
            if "seed" in sections:
                data["seed"] = seed_section(settings, up_port)
            if "profile" in sections:
                data["profile"] = profile_section(settings, up_port)
            if "workers" in sections:
                data["workers"] = workers_section(settings, up_port)
        if "stream" in sections:
            data["stream"] = stream_section(settings)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        data["elapsed_s"] = time.time() - started
        (RESULTS / "report.json").write_text(json.dumps(data, indent=1, default=str))
    finish(data)
    log(f"done in {data['elapsed_s'] / 60:.1f} min: {RESULTS / 'report.md'}")
    for goal in data["goals"]:
        print(f"  {goal['status']:4}  {goal['goal']}: {goal['measured']}")
    if args.save_baseline:
        save_baseline(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
