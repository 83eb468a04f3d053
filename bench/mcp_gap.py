"""Where a modern MCP `tools/call` spends its CPU beyond the REST route: `python bench/mcp_gap.py`.

Issue 16 asks for MCP `tools/call` at c32 ≥ 0.9× our REST route (small JSON). This takes the gap
apart. Each mode serves bench/capabilities/bench.yaml's two blocks through `adapters.server.serve`
(naftiko's own HTTP server, as `naftiko serve` runs it) in a process of its own:

- `upstream`: the real thing, through a local nginx upstream;
- `canned`: the upstream answer canned (`inprocess.CannedRuntime`): no upstream exchange;
- `null`: each block replaced by an app that sends, at once, the very messages the canned block
  sends (recorded in process first): the server layer alone, for a GET and for the MCP POST;
- `spin`: `null` that first busy-waits `--spin` µs: what a slower server pays per request beyond
  its own work (the load generator sleeps between answers and each write must wake it).

Rounds alternate the modes and, in each, the REST and MCP targets; each measure is wrk at c32
(`--seconds`), the server's user and system CPU per request read from /proc/PID/stat. Printed:
medians per mode, and `bench/inprocess.py --as-served` (uvloop, a task per call) beside them.
Needs wrk and nginx on PATH. `--rounds 3 --seconds 5`: about 2 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import inprocess
import load
from procs import free_port
from server_options import _upstream

MODES = ("upstream", "canned", "null", "spin")
TICKS = os.sysconf("SC_CLK_TCK")


# --- the child: one mode ---------------------------------------------------------------------------


def _call(rest_port: int, mcp_port: int) -> tuple[load.Req, load.Req]:
    """What wrk sends: GET /small, and the modern `tools/call small` of bench/load.py."""
    return load.Req(f"http://127.0.0.1:{rest_port}/small"), load.modern_call(
        f"http://127.0.0.1:{mcp_port}/mcp", "small"
    )


async def _recorded(app: Any, req: load.Req) -> list[dict[str, Any]]:
    """The messages `app` sends for `req` (called in process, once)."""
    path = req.url.split("/", 3)[3]
    headers = [(k.lower().encode(), v.encode()) for k, v in req.headers.items()]
    headers.append((b"content-length", str(len(req.body or b"")).encode()))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": req.body or b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(inprocess.scope(req.method, "/" + path, [(b"host", b"127.0.0.1"), *headers]), receive, send)
    return sent


def _replay(messages: list[dict[str, Any]], spin_us: float) -> Any:
    spin = spin_us / 1e6

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if spin:
            end = time.perf_counter() + spin
            while time.perf_counter() < end:
                pass
        if scope["method"] == "POST":
            await receive()
        for message in messages:
            await send(message)

    return app


async def _serve(mode: str, rest_port: int, mcp_port: int, upstream: str, spin_us: float) -> None:
    from naftiko.adapters import exposes_app, server
    from naftiko.adapters.reload import Slot
    from naftiko.engine import Runtime

    kind = Runtime if mode == "upstream" else inprocess.CannedRuntime
    runtime = kind.load(inprocess.ROOT / "bench" / "capabilities" / "bench.yaml", base_uris={"bench": upstream})
    ports = {"bench-rest": rest_port, "bench-mcp": mcp_port}
    if mode in ("upstream", "canned"):
        await server.serve(runtime, ports=ports, edge=server.EdgeOptions(), announce=False)
        return
    served = []
    for (namespace, port), req in zip(ports.items(), _call(rest_port, mcp_port), strict=True):
        app = _replay(await _recorded(exposes_app(runtime, namespace), req), spin_us if mode == "spin" else 0)
        http = server._server(Slot(app), server.EdgeOptions(), 10.0)
        served.append(http.serve(sockets=[server.bind("127.0.0.1", port, namespace)]))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    tasks = [asyncio.create_task(s) for s in served]
    await stop.wait()
    for task in tasks:
        task.cancel()


# --- the parent -------------------------------------------------------------------------------------


def _cpu(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS  # utime, stime


def _measure(pid: int, req: load.Req, seconds: float) -> dict[str, float]:
    load.wrk(req, 32, 1)  # warm: connections, caches, the upstream pool
    user0, sys0 = _cpu(pid)
    result = load.wrk(req, 32, seconds)
    user1, sys1 = _cpu(pid)
    if result["errors"] or not result["requests"]:
        raise SystemExit(f"{req.url}: errors under load: {result}")
    n = result["requests"]
    return {"rps": result["rps"], "user_us": (user1 - user0) / n * 1e6, "sys_us": (sys1 - sys0) / n * 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--ports", help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help="an upstream serving GET /small (default: an nginx started here)")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated, of " + ", ".join(MODES))
    parser.add_argument("--spin", type=float, default=15.0, help="µs the spin mode's apps busy-wait (15)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    if args.serve:
        import uvloop

        rest_port, mcp_port = (int(p) for p in args.ports.split(","))
        uvloop.run(_serve(args.serve, rest_port, mcp_port, args.upstream, args.spin))
        return 0
    with contextlib.ExitStack() as stack:
        upstream, _ = _upstream(args.upstream, stack)
        modes = [m for m in args.modes.split(",") if m]
        rounds = _rounds(modes, upstream, args, stack)
    _table(modes, rounds, args)
    return 0


def _rounds(
    modes: list[str], upstream: str, args: argparse.Namespace, stack: contextlib.ExitStack
) -> dict[tuple[str, str], list[dict[str, float]]]:
    procs: dict[str, tuple[subprocess.Popen[bytes], tuple[load.Req, load.Req]]] = {}
    for mode in modes:
        ports = (free_port(), free_port())
        command = [sys.executable, __file__, "--serve", mode, "--ports", ",".join(map(str, ports))]
        proc = subprocess.Popen([*command, "--upstream", upstream, "--spin", str(args.spin)])
        stack.callback(_stop, proc)
        procs[mode] = (proc, _call(*ports))
    for proc, (rest, mcp) in procs.values():
        _wait_ready(proc, rest)
        load.check_mcp(mcp, "")
    rounds: dict[tuple[str, str], list[dict[str, float]]] = {}
    for n in range(args.rounds):
        order = modes[n % len(modes) :] + modes[: n % len(modes)]
        for mode in order:
            proc, (rest, mcp) = procs[mode]
            for target, req in [("rest", rest), ("mcp", mcp)][:: 1 if n % 2 == 0 else -1]:
                result = _measure(proc.pid, req, args.seconds)
                rounds.setdefault((mode, target), []).append(result)
                shown = "  ".join(f"{k} {v:9.1f}" for k, v in result.items())
                print(f"round {n + 1} {mode:8} {target:4} {shown}", flush=True)
    return rounds


def _wait_ready(proc: subprocess.Popen[bytes], req: load.Req, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server for {req.url} exited with {proc.returncode}")
        with contextlib.suppress(OSError, RuntimeError):
            load.check_rest(req, "")
            return
        time.sleep(0.1)
    raise SystemExit(f"{req.url} did not answer within {timeout:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _table(modes: list[str], rounds: dict[tuple[str, str], list[dict[str, float]]], args: argparse.Namespace) -> None:
    def median(mode: str, target: str, key: str) -> float:
        values = rounds[(mode, target)]
        if key == "cpu_us":
            return statistics.median(r["user_us"] + r["sys_us"] for r in values)
        return statistics.median(r[key] for r in values)

    print(f"\nmedians of {args.rounds} rounds, wrk c32 {args.seconds:g} s; CPU µs per request (user + system)")
    print(
        f"{'mode':10} {'REST µs':>8} {'(sys)':>6} {'MCP µs':>8} {'(sys)':>6} {'MCP − REST':>11} {'MCP/REST req/s':>15}"
    )
    for mode in modes:
        rest, mcp = median(mode, "rest", "cpu_us"), median(mode, "mcp", "cpu_us")
        ratio = median(mode, "mcp", "rps") / median(mode, "rest", "rps")
        label = f"spin {args.spin:g}" if mode == "spin" else mode
        print(
            f"{label:10} {rest:8.1f} {median(mode, 'rest', 'sys_us'):6.1f} {mcp:8.1f}"
            f" {median(mode, 'mcp', 'sys_us'):6.1f} {mcp - rest:11.1f} {ratio:15.2f}"
        )
    rest, mcp = inprocess.run(as_served=True).values()
    print(
        f"{'in process':10} {rest:8.1f} {'':6} {mcp:8.1f} {'':6} {mcp - rest:11.1f}"
        "   (bench/inprocess.py --as-served: no sockets, no server)"
    )


if __name__ == "__main__":
    sys.exit(main())
