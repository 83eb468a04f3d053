"""Load generation (wrk) and the by-hand checks that an answer is what it should be.

wrk runs with one thread on the same machine as the servers (2 cores shared by all); its
Lua script (wrk/bench.lua) sets the request and prints a JSON summary in microseconds.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

from procs import cpu_seconds, peak_rss_mb, reset_peak_rss, wait_idle

LUA = Path(__file__).resolve().parent / "wrk" / "bench.lua"
MODERN = "2026-07-28"
LEGACY = "2025-11-25"


@dataclass(frozen=True)
class Req:
    """One HTTP request as wrk will repeat it."""

    url: str
    method: str = "GET"
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def wrk(req: Req, concurrency: int, seconds: float, cpus: str | None = None) -> dict[str, Any]:
    """One wrk run; returns its JSON summary plus requests/s and the `--latency` distribution.
    With `cpus` (e.g. "1"), wrk runs under `taskset -c CPUS`, pinned to those cores."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "BENCH_METHOD": req.method, "BENCH_BODY": "", "BENCH_HEADERS": ""}
        if req.body is not None:
            Path(tmp, "body").write_bytes(req.body)
            env["BENCH_BODY"] = str(Path(tmp, "body"))
        if req.headers:
            Path(tmp, "headers").write_text("".join(f"{k}: {v}\n" for k, v in req.headers.items()))
            env["BENCH_HEADERS"] = str(Path(tmp, "headers"))
        cmd = [
            *(["taskset", "-c", cpus] if cpus else []),
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(LUA),
            req.url,
        ]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    result = json.loads(line[len("BENCH_JSON ") :])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors"] = sum(result[k] for k in result if k.startswith("errors_"))
    dist = out.split("Latency Distribution", 1)
    result["distribution"] = [ln.strip() for ln in dist[1].splitlines()[1:5]] if len(dist) > 1 else []
    return result


def sample(
    req: Req,
    concurrency: int,
    seconds: float,
    pid: int | None,
    cpus: str | None = None,
    track_rss: bool = False,
) -> dict[str, Any]:
    """One wrk run, with the server's CPU time per request; then wait until `pid` is idle again,
    so no run inherits a backlog. With `track_rss`, the server's peak RSS during this run alone
    (`peak_rss_mb`: VmHWM reset before the run, read after it; `peak_rss_reset` says whether the
    reset worked, else it is the peak since start)."""
    reset = reset_peak_rss(pid) if pid is not None and track_rss else False
    cpu_before = cpu_seconds(pid) if pid is not None else 0.0
    result = wrk(req, concurrency, seconds, cpus)
    if pid is not None and result["requests"]:
        result["cpu_us_per_request"] = (cpu_seconds(pid) - cpu_before) / result["requests"] * 1e6
    if pid is not None and track_rss:
        result["peak_rss_mb"] = peak_rss_mb(pid)
        result["peak_rss_reset"] = reset
    result["load_avg"] = os.getloadavg()[0]
    result["drain_s"] = wait_idle(pid)
    return result


def summarise(samples: list[dict[str, Any]], concurrency: int, seconds: float) -> dict[str, Any]:
    """Each figure is the median over the runs (the runs are kept for the JSON report)."""
    point: dict[str, Any] = {"concurrency": concurrency, "seconds": seconds, "runs": samples}
    for key in ("rps", "p50_us", "p75_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us", "cpu_us_per_request"):
        values = [s[key] for s in samples if key in s]
        if values:
            point[key] = statistics.median(values)
    peaks = [s["peak_rss_mb"] for s in samples if "peak_rss_mb" in s]
    if peaks:
        point["peak_rss_mb"] = max(peaks)  # memory: the worst run, not the median
    point["errors"] = sum(s["errors"] for s in samples)
    point["requests"] = sum(s["requests"] for s in samples)
    return point


def median_point(req: Req, concurrency: int, seconds: float, runs: int, pid: int | None = None) -> dict[str, Any]:
    """`runs` wrk runs of one target, back to back."""
    return summarise([sample(req, concurrency, seconds, pid) for _ in range(runs)], concurrency, seconds)


@dataclass
class Target:
    """One thing to load in an interleaved measurement: its request, its server, its levels;
    optionally the cores wrk is pinned to and whether each run records the server's peak RSS."""

    name: str
    req: Req
    pid: int | None
    levels: tuple[int, ...]
    wrk_cpus: str | None = None
    track_rss: bool = False


def interleaved(
    targets: list[Target], runs: int, seconds: Callable[[int], float], warmup: float
) -> dict[str, dict[int, dict[str, Any]]]:
    """Medians over `runs` rounds; each round loads every target in turn at each level.

    A shared machine's speed drifts over minutes; measuring the targets in alternation instead
    of one after another lets that drift hit them all alike, so their ratios hold.
    """
    for target in targets:
        wrk(target.req, 32, warmup, target.wrk_cpus)
        wait_idle(target.pid)
    samples: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for _ in range(runs):
        for c in sorted({c for t in targets for c in t.levels}):
            for target in (t for t in targets if c in t.levels):
                point = sample(target.req, c, seconds(c), target.pid, target.wrk_cpus, target.track_rss)
                samples.setdefault((target.name, c), []).append(point)
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for (name, c), runs_of in samples.items():
        out.setdefault(name, {})[c] = summarise(runs_of, c, seconds(c))
    return out


# --- MCP requests -------------------------------------------------------------------------

_ACCEPT = "application/json, text/event-stream"


def modern_call(url: str, tool: str, arguments: dict[str, Any] | None = None) -> Req:
    """A stateless 2026-07-28 `tools/call`: routing headers plus the `_meta` envelope."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": tool,
            "arguments": arguments or {},
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": MODERN,
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "naftiko-bench", "version": "1"},
            },
        },
    }
    headers = {
        "Content-Type": "application/json",
        "Accept": _ACCEPT,
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": tool,
    }
    return Req(url, "POST", json.dumps(body).encode(), headers)


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def legacy_call(url: str, tool: str, arguments: dict[str, Any] | None = None) -> Req:
    """A 2025-11-25 `tools/call`: `initialize` + `notifications/initialized` first, by hand,
    then the session id (when the server mints one) goes on every request wrk sends."""
    headers = {"Content-Type": "application/json", "Accept": _ACCEPT}
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": LEGACY,
            "capabilities": {},
            "clientInfo": {"name": "naftiko-bench", "version": "1"},
        },
    }
    status, answer_headers, raw = _post(url, init, headers)
    if status != 200:
        raise RuntimeError(f"initialize at {url} answered {status}: {raw[:300]!r}")
    headers["MCP-Protocol-Version"] = LEGACY
    if "mcp-session-id" in answer_headers:
        headers["Mcp-Session-Id"] = answer_headers["mcp-session-id"]
    _post(url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, headers)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments or {}}}
    return Req(url, "POST", json.dumps(body).encode(), headers)


def _json_rpc(raw: bytes, content_type: str) -> dict[str, Any]:
    """The JSON-RPC answer, whether it came as JSON or as the last `data:` event of an SSE body."""
    if "text/event-stream" in content_type:
        data = [ln[5:].strip() for ln in raw.decode().splitlines() if ln.startswith("data:") and ln[5:].strip()]
        return json.loads(data[-1])
    return json.loads(raw)


def check_mcp(req: Req, marker: str) -> str:
    """Send the exact request wrk will repeat; fail unless it is a successful tool result
    (HTTP 200, a `result`, not `isError`, and the upstream's data in it). Returns a short excerpt."""
    request = urllib.request.Request(req.url, req.body, req.headers, method=req.method)
    with urllib.request.urlopen(request, timeout=60) as response:
        status, content_type, raw = response.status, response.headers.get("Content-Type", ""), response.read()
    message = _json_rpc(raw, content_type)
    result = message.get("result")
    if status != 200 or not isinstance(result, dict) or result.get("isError") or marker not in raw.decode():
        raise RuntimeError(f"MCP call to {req.url} did not succeed: HTTP {status} {raw[:400]!r}")
    return f"HTTP {status} {content_type}; {len(raw)} bytes; " + raw[:160].decode(errors="replace")


def check_rest(req: Req, marker: str, min_bytes: int = 0) -> str:
    """A plain GET must answer 200 with the upstream's JSON (marker present, size as expected)."""
    with urllib.request.urlopen(req.url, timeout=60) as response:
        status, content_type, raw = response.status, response.headers.get("Content-Type", ""), response.read()
    if status != 200 or marker not in raw.decode() or len(raw) < min_bytes:
        raise RuntimeError(f"GET {req.url} did not answer as expected: HTTP {status} {raw[:300]!r}")
    json.loads(raw)
    return f"HTTP {status} {content_type}; {len(raw)} bytes"
