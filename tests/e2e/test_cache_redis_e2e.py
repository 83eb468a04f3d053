"""The Redis cache store end to end: a real `redis-server` (the Debian package, started here on a free
loopback port with nothing persisted) and two `naftiko serve` processes on the same capability and the
same Redis. A call through one fills the cache and the same call through the other is a hit (the
upstream counts one request); the Redis key carries a TTL; with Redis stopped, calls still answer, from
the upstream, and the outage is logged once."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis

from tests.support import NaftikoProcess, RecordingUpstream, ThreadedServer, free_port

CAPABILITY = """\
naftiko: "1.0.0-alpha2"
capability:
  exposes:
    - type: rest
      port: 9360
      namespace: shared-rest
      resources:
        - path: /things/{{id}}
          operations:
            - method: GET
              call: up.thing
              with: {id: shared-rest.id}
    - type: control
      port: 9362
  consumes:
    - type: http
      namespace: up
      baseUri: http://localhost:1/api
      cache: {ttl: 30s, staleIfError: 1m}
      resources:
        - path: /things/{{id}}
          name: thing
          operations:
            - method: GET
              name: thing
"""


@contextmanager
def redis_server() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A throwaway redis-server on a free loopback port: no RDB snapshots, no append-only file."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "redis-server is not installed: install the Debian package 'redis-server' (apt-get install redis-server)"
        )
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.05)
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


@contextmanager
def two_instances(tmp_path: Path, port: int, upstream: str) -> Iterator[tuple[NaftikoProcess, NaftikoProcess]]:
    path = tmp_path / "shared.yaml"
    path.write_text(CAPABILITY)
    env = {"NAFTIKO_CACHE_REDIS_URL": f"redis://127.0.0.1:{port}/0", "NAFTIKO_CACHE_REDIS_RETRY": "60"}
    args = [str(path), "--port", "shared-rest=0", "--port", "control=0", "--base-uri", f"up={upstream}/api"]
    first, second = NaftikoProcess(args, env), NaftikoProcess(args, env)
    try:
        first.wait_for("shared-rest", "control")
        second.wait_for("shared-rest", "control")
        yield first, second
    finally:
        first.stop()
        second.stop()


def _get(process: NaftikoProcess, thing: str) -> httpx.Response:
    answer = httpx.get(f"{process.urls['shared-rest']}/things/{thing}", timeout=15)
    assert answer.status_code == 200, answer.text
    return answer


def test_two_instances_share_one_cache(tmp_path: Path) -> None:
    upstream = RecordingUpstream()
    with redis_server() as (port, _), ThreadedServer(upstream) as url, two_instances(tmp_path, port, url) as pair:
        first, second = pair
        expected = {"echo": {"method": "GET", "path": "/api/things/1", "query": ""}}
        assert _get(first, "1").json() == expected
        assert _get(second, "1").json() == expected  # filled by the first instance
        assert _get(first, "1").json() == expected
        assert len(upstream.requests) == 1
        assert _get(second, "2").json()["echo"]["path"] == "/api/things/2"
        assert _get(first, "2").status_code == 200 and len(upstream.requests) == 2
        client = redis.Redis(port=port)
        keys = client.keys("naftiko:cache:*")
        assert len(keys) == 2
        assert all(30_000 < client.pttl(k) <= 90_000 for k in keys)  # ttl + staleIfError
        client.close()


def test_calls_still_answer_when_redis_stops(tmp_path: Path) -> None:
    upstream = RecordingUpstream()
    with redis_server() as (port, proc), ThreadedServer(upstream) as url, two_instances(tmp_path, port, url) as pair:
        first, second = pair
        _get(first, "1")
        _get(second, "1")
        assert len(upstream.requests) == 1
        proc.terminate()
        proc.wait(timeout=10)
        started = time.monotonic()
        for _ in range(3):
            assert _get(first, "1").json()["echo"]["path"] == "/api/things/1"
        assert len(upstream.requests) == 4  # from the upstream, uncached
        assert time.monotonic() - started < 5  # the outage costs one failed command, then Redis is left alone
        metrics = httpx.get(f"{first.urls['control']}/metrics", timeout=15).text
        assert (
            'naftiko_upstream_cache_total{naftiko_namespace="up",naftiko_operation_id="up.thing",result="bypass"} 3.0'
            in metrics
        )
        assert "naftiko_upstream_cache_entries{" not in metrics  # the entries live in Redis, not counted here
        first.stop()
        outage = [line for line in first.log if "Redis cache" in line and "unavailable" in line]
        assert len(outage) == 1, first.log
        assert f"127.0.0.1:{port}" in outage[0]
