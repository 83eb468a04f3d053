"""A 1 MB JSON answer over REST and MCP `tools/call` (both eras), as server CPU per call:
`python bench/mcp_large.py [--calls N] [--rounds R]` from the repository root.

A quick check of issue 16's first goal without the full bench: a loopback upstream (a raw
asyncio server in its own process, keep-alive, the bench's 1 MiB `large` document), one
`naftiko serve bench/capabilities/bench.yaml` pointed at it, and httpx clients calling REST
`GET /large`, the MCP tool `large` in the 2026-07-28 era (stateless) and in 2025-11-25 (a
session). Targets alternate, round after round, at c1 and c32; each run records the server's
CPU time (user + system, /proc) per completed call and its calls per second. On a shared
machine the CPU figure is the steadier one; both are medians of the rounds. The calls per
second are bound by the Python client (reading 1-2 MB per call), not by naftiko: compare CPU.
Every answer is checked once before any load (REST: the document; MCP: `structuredContent`
and `json.loads(content[0].text)` equal to it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_scale import large_payload  # noqa: E402
from procs import Server, cpu_seconds, free_port, peak_rss_mb, wait_idle  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MODERN, LEGACY = "2026-07-28", "2025-11-25"


def large_document() -> bytes:
    """The bench's `large` (bench/run.py `write_payloads`): 13,394 records, compact, 1 MiB."""
    return json.dumps(large_payload("naftiko-bench-large"), separators=(",", ":")).encode()


# --------------------------------------------------------------------------- the upstream


class _Upstream(asyncio.Protocol):
    """Answers every request (no body expected) with the document, keep-alive."""

    answer = b""

    def connection_made(self, transport: Any) -> None:
        self.transport, self.buffer = transport, b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self.transport.write(self.answer)


def serve_upstream(port: int) -> None:
    body = large_document()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    _Upstream.answer = head.encode() + body

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Upstream, "127.0.0.1", port)
        await server.serve_forever()

    asyncio.run(main())


# --------------------------------------------------------------------------- the calls


def tools_call(version: str) -> tuple[bytes, dict[str, str]]:
    params: dict[str, Any] = {"name": "large", "arguments": {}}
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    headers["mcp-protocol-version"] = version
    if version == MODERN:
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": version,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
        headers |= {"mcp-method": "tools/call", "mcp-name": "large"}
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}).encode(), headers


async def legacy_session(client: httpx.AsyncClient, url: str) -> str:
    """initialize + notifications/initialized by hand; the session id naftiko minted."""
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize"}
    init["params"] = {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}
    headers = {"accept": "application/json, text/event-stream"}
    answer = await client.post(url, json=init, headers=headers)
    session = answer.headers["mcp-session-id"]
    headers |= {"mcp-session-id": session, "mcp-protocol-version": LEGACY}
    await client.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
    return session


def check(name: str, body: bytes, expected: Any) -> None:
    """The answer carries the upstream's data (REST: the document; MCP: text and structuredContent)."""
    data = json.loads(body)
    if name == "rest":
        assert data == expected, "REST answer differs from the upstream"
        return
    result = data["result"]
    assert result["isError"] is False, result
    assert result["structuredContent"] == expected, f"{name}: structuredContent differs"
    assert json.loads(result["content"][0]["text"]) == expected, f"{name}: text differs"


async def run(
    client: httpx.AsyncClient, request: tuple[str, str, bytes | None, dict[str, str]], calls: int, concurrency: int
) -> int:
    method, url, body, headers = request
    left = calls

    async def worker() -> int:
        nonlocal left
        done = 0
        while left > 0:
            left -= 1
            answer = await client.request(method, url, content=body, headers=headers)
            assert answer.status_code == 200, answer.status_code
            done += 1
        return done

    return sum(await asyncio.gather(*(worker() for _ in range(concurrency))))


async def bench(rest: str, mcp: str, pid: int, calls: int, rounds: int) -> dict[str, dict[int, tuple[float, float]]]:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        modern_body, modern_headers = tools_call(MODERN)
        legacy_body, legacy_headers = tools_call(LEGACY)
        legacy_headers["mcp-session-id"] = await legacy_session(client, mcp)
        targets = {
            "rest": ("GET", rest + "/large", None, {}),
            "mcp-2026-07-28": ("POST", mcp, modern_body, modern_headers),
            "mcp-2025-11-25": ("POST", mcp, legacy_body, legacy_headers),
        }
        expected = json.loads(large_document())
        for name, (method, url, body, headers) in targets.items():
            answer = await client.request(method, url, content=body, headers=headers)
            check(name, answer.content, expected)
        samples: dict[str, dict[int, list[tuple[float, float]]]] = {n: {1: [], 32: []} for n in targets}
        for _ in range(rounds):
            for concurrency in (1, 32):
                for name, request in targets.items():
                    await run(client, request, max(concurrency, calls // 10), concurrency)  # warm
                    wait_idle(pid)
                    cpu, start = cpu_seconds(pid), time.perf_counter()
                    done = await run(client, request, calls, concurrency)
                    wall = time.perf_counter() - start
                    samples[name][concurrency].append(((cpu_seconds(pid) - cpu) / done * 1e6, done / wall))
    return {
        name: {
            c: (statistics.median(s[0] for s in runs), statistics.median(s[1] for s in runs))
            for c, runs in by_c.items()
        }
        for name, by_c in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per run (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, alternating targets (default 3)")
    parser.add_argument("--upstream", type=int, help=argparse.SUPPRESS)  # internal: serve the upstream
    args = parser.parse_args()
    if args.upstream:
        serve_upstream(args.upstream)
        return
    logs = Path(tempfile.mkdtemp(prefix="naftiko-mcp-large-"))
    up_port, rest_port, mcp_port = free_port(), free_port(), free_port()
    upstream = Server("upstream", [sys.executable, __file__, "--upstream", str(up_port)], logs).start()
    naftiko = Server(
        "naftiko",
        [sys.executable, "-m", "naftiko", "serve", str(ROOT / "bench" / "capabilities" / "bench.yaml")]
        + ["--base-uri", f"bench=http://127.0.0.1:{up_port}"]
        + ["--port", f"bench-rest={rest_port}", "--port", f"bench-mcp={mcp_port}"],
        logs,
        cwd=ROOT,
    )
    try:
        naftiko.start()
        naftiko.wait_ready(rest_port, "/small", timeout=60)
        log = (logs / "naftiko.log").read_text()
        mcp = re.search(r"MCP bench-mcp: .* at (http://\S+)", log)
        mcp_url = mcp.group(1) if mcp else f"http://127.0.0.1:{mcp_port}/mcp"
        results = asyncio.run(bench(f"http://127.0.0.1:{rest_port}", mcp_url, naftiko.pid, args.calls, args.rounds))
        peak = peak_rss_mb(naftiko.pid)
    except Exception:
        print(f"failed; the server logs are in {logs}", file=sys.stderr)
        raise
    else:
        shutil.rmtree(logs, ignore_errors=True)
    finally:
        naftiko.stop()
        upstream.stop()
    rest = results["rest"]
    print(f"1 MiB JSON answer, server CPU per call and calls/s (medians of {args.rounds} rounds of {args.calls})")
    print(f"{'target':16} {'c1 µs':>9} {'c1 /s':>7} {'c32 µs':>9} {'c32 /s':>7} {'× REST c1':>10} {'× REST c32':>11}")
    for name, by_c in results.items():
        (cpu1, rate1), (cpu32, rate32) = by_c[1], by_c[32]
        ratio1, ratio32 = rest[1][0] / cpu1, rest[32][0] / cpu32
        print(f"{name:16} {cpu1:9.0f} {rate1:7.0f} {cpu32:9.0f} {rate32:7.0f} {ratio1:10.2f} {ratio32:11.2f}")
    print("(× REST: REST's CPU per call / this target's, so 0.3 means a third of REST's speed per CPU second)")
    print(f"naftiko's peak RSS over all runs: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
