"""Fixtures: the fake MCP server as a real subprocess, and the anyio backend."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from collections.abc import Iterator

import httpx
import pytest

FAKE_SERVER = Path(__file__).with_name("fake_server.py")

MODERN = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(*args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(FAKE_SERVER), "--port", str(port), *args])
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"fake server exited with {proc.returncode}")
        try:
            httpx.post(url, json={"jsonrpc": "2.0", "id": 0, "method": "tools/list"}, timeout=1)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("fake server did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """URL of the fake server's MCP endpoint over Streamable HTTP."""
    proc, url = _start()
    yield url
    _stop(proc)


@pytest.fixture(scope="session")
def paged_server_url() -> Iterator[str]:
    """A fake server with 25 extra tools and pages of 10."""
    proc, url = _start("--extra-tools", "25", "--page-size", "10")
    yield url
    _stop(proc)


@pytest.fixture
def http(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url.removesuffix("/mcp"), timeout=10) as client:
        yield client
