"""The seed capability served by `naftiko serve` as a real process, against a recording
upstream: every REST operation must produce exactly the request PostHog's API reference
describes (method, /api/projects/<id>/... path with its trailing slash, bearer auth, query,
JSON body) and hand back the upstream's answer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qs

import httpx
import pytest

from tests.support import SEED, NaftikoProcess, RecordingUpstream, Reply

TASK = "0f5f6c87-9b53-4a3c-bb2a-2b8a6f7c1d10"
RUN = "7d3c1b2a-5e6f-4a8b-9c0d-1e2f3a4b5c6d"
KEY = "phx_test_key_123"
REST = "posthog-task-runs-rest"

RUNS = f"/api/projects/42/tasks/{TASK}/runs"
V1 = f"/v1{RUNS}"

# (REST method, REST path, query, JSON body) → (upstream path, upstream query)
CASES = [
    ("GET", f"{V1}", {"limit": "10", "offset": "20"}, None, f"{RUNS}/", {"limit": ["10"], "offset": ["20"]}),
    ("POST", f"{V1}", {}, {"environment": "cloud", "mode": "background"}, f"{RUNS}/", {}),
    ("GET", f"{V1}/{RUN}", {}, None, f"{RUNS}/{RUN}/", {}),
    ("PATCH", f"{V1}/{RUN}", {}, {"status": "in_progress", "state": {"k": 1}}, f"{RUNS}/{RUN}/", {}),
    ("POST", f"{V1}/{RUN}/append-log", {}, {"entries": [{"type": "notification"}]}, f"{RUNS}/{RUN}/append_log/", {}),
    (
        "POST",
        f"{V1}/{RUN}/artifacts",
        {},
        {"artifacts": [{"name": "a.txt", "content": "hi"}]},
        f"{RUNS}/{RUN}/artifacts/",
        {},
    ),
    (
        "POST",
        f"{V1}/{RUN}/artifacts/download",
        {},
        {"storage_path": "x/a.txt"},
        f"{RUNS}/{RUN}/artifacts/download/",
        {},
    ),
    (
        "POST",
        f"{V1}/{RUN}/artifacts/finalize-upload",
        {},
        {"artifacts": [{"id": "1"}]},
        f"{RUNS}/{RUN}/artifacts/finalize_upload/",
        {},
    ),
    (
        "POST",
        f"{V1}/{RUN}/artifacts/prepare-upload",
        {},
        {"artifacts": [{"name": "b"}]},
        f"{RUNS}/{RUN}/artifacts/prepare_upload/",
        {},
    ),
    ("POST", f"{V1}/{RUN}/artifacts/presign", {}, {"storage_path": "x/b"}, f"{RUNS}/{RUN}/artifacts/presign/", {}),
    ("POST", f"{V1}/{RUN}/command", {}, {"jsonrpc": "2.0", "method": "cancel", "id": 1}, f"{RUNS}/{RUN}/command/", {}),
    ("GET", f"{V1}/{RUN}/connection-token", {}, None, f"{RUNS}/{RUN}/connection_token/", {}),
    ("GET", f"{V1}/{RUN}/logs", {}, None, f"{RUNS}/{RUN}/logs/", {}),
    ("POST", f"{V1}/{RUN}/relay-message", {}, {"text": "done"}, f"{RUNS}/{RUN}/relay_message/", {}),
    ("POST", f"{V1}/{RUN}/resume-in-cloud", {}, None, f"{RUNS}/{RUN}/resume_in_cloud/", {}),
    (
        "GET",
        f"{V1}/{RUN}/session-logs",
        {"after": "2026-01-01T00:00:00Z", "event_types": "a,b", "exclude_types": "c", "limit": "5", "offset": "1"},
        None,
        f"{RUNS}/{RUN}/session_logs/",
        {
            "after": ["2026-01-01T00:00:00Z"],
            "event_types": ["a,b"],
            "exclude_types": ["c"],
            "limit": ["5"],
            "offset": ["1"],
        },
    ),
    ("PATCH", f"{V1}/{RUN}/set-output", {}, {"output": {"pr": "url"}}, f"{RUNS}/{RUN}/set_output/", {}),
    ("POST", f"{V1}/{RUN}/start", {}, {"pending_user_message": "go"}, f"{RUNS}/{RUN}/start/", {}),
    ("GET", f"{V1}/{RUN}/stream", {}, None, f"{RUNS}/{RUN}/stream/", {}),
]


@pytest.fixture
def served(upstream: RecordingUpstream, naftiko) -> Iterator[tuple[str, RecordingUpstream, NaftikoProcess]]:
    process = naftiko(
        str(SEED),
        "--base-uri",
        f"posthog-task-runs={upstream.url}",
        "--port",
        f"{REST}=0",
        "--port",
        "posthog-task-runs-mcp=0",
        "--timeout",
        "1",
        env={"POSTHOG_API_KEY": KEY},
    )
    urls = process.wait_for(REST)
    yield urls[REST], upstream, process


def test_nineteen_rest_operations_are_served(served) -> None:
    """The seed declares 19 operations; each must be reachable, none more."""
    assert len(CASES) == 19
    assert len({(m, p) for m, p, *_ in CASES}) == 19


@pytest.mark.parametrize(
    "method,path,query,body,upstream_path,upstream_query",
    CASES,
    ids=[f"{c[0]} {c[4].split('/runs')[1] or '/'}" for c in CASES],
)
def test_exact_upstream_request(served, method, path, query, body, upstream_path, upstream_query) -> None:
    """Method, filled-in path with its trailing slash, bearer key, query and JSON body reach the upstream."""
    base, upstream, _ = served
    status = 201 if method == "POST" else 200
    upstream.reply(method, upstream_path, Reply(status=status, json={"answer": upstream_path}))
    response = httpx.request(method, base + path, params=query, json=body)
    assert response.status_code == (201 if method == "POST" else 200)
    assert response.json() == {"answer": upstream_path}
    sent = upstream.last
    assert (sent.method, sent.path) == (method, upstream_path)
    assert parse_qs(sent.query) == upstream_query
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    if body is None:
        assert sent.body == b""
    else:
        assert sent.headers["content-type"] == "application/json"
        assert json.loads(sent.body) == body


def test_caller_headers_and_undeclared_query_are_not_forwarded(served) -> None:
    """Only declared parameters travel; the caller's own credentials never reach the upstream."""
    base, upstream, _ = served
    httpx.get(f"{base}{V1}", params={"limit": "1", "surprise": "x"}, headers={"Authorization": "Bearer caller"})
    assert parse_qs(upstream.last.query) == {"limit": ["1"]}
    assert upstream.last.headers["authorization"] == f"Bearer {KEY}"


def test_path_values_are_percent_encoded(served) -> None:
    """A value can never change the shape of the upstream path."""
    base, upstream, _ = served
    httpx.get(f"{base}/v1/api/projects/42/tasks/a%2F..%2Fb%3Fx=1/runs")
    assert upstream.last.path == "/api/projects/42/tasks/a%2F..%2Fb%3Fx%3D1/runs/"
    assert upstream.last.query == ""
    response = httpx.get(f"{base}/v1/api/projects/42/tasks/%2E%2E/runs")
    assert upstream.last.path == "/api/projects/42/tasks/%2E%2E/runs/"
    assert response.status_code == 200


def test_upstream_status_and_error_body_pass_through(served) -> None:
    base, upstream, _ = served
    detail = {"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}
    upstream.reply("GET", f"{RUNS}/{RUN}/", Reply(status=404, json=detail))
    response = httpx.get(f"{base}{V1}/{RUN}")
    assert response.status_code == 404
    assert response.json() == detail


def test_missing_required_body_is_a_400_before_any_upstream_call(served) -> None:
    base, upstream, _ = served
    response = httpx.post(f"{base}{V1}/{RUN}/append-log")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "bad_request",
        "parameter": "body",
        "message": "missing required parameter 'body' (body)",
    }
    assert upstream.requests == []


def test_malformed_integer_query_is_a_400(served) -> None:
    base, upstream, _ = served
    response = httpx.get(f"{base}{V1}", params={"limit": "ten"})
    assert response.status_code == 400
    assert response.json()["error"]["parameter"] == "limit"
    assert upstream.requests == []


def test_unknown_route_and_wrong_method(served) -> None:
    base, _, _ = served
    missing = httpx.get(f"{base}/v1/nothing/here")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    wrong = httpx.delete(f"{base}{V1}/{RUN}")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET, PATCH"
    assert wrong.json()["error"]["type"] == "method_not_allowed"


def test_jsonl_logs_stream_through_with_their_headers(served) -> None:
    base, upstream, _ = served
    lines = b'{"type":"notification","n":1}\n{"type":"notification","n":2}\n'
    upstream.reply(
        "GET",
        f"{RUNS}/{RUN}/logs/",
        Reply(body=lines, content_type="application/jsonl", headers={"Cache-Control": "no-cache"}),
    )
    response = httpx.get(f"{base}{V1}/{RUN}/logs")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/jsonl"
    assert response.headers["cache-control"] == "no-cache"
    assert response.content == lines


def test_server_sent_events_are_streamed_not_buffered(served) -> None:
    """Each event must reach the caller while the upstream is still sending the next ones."""
    base, upstream, _ = served
    events = [f'data: {{"n": {i}}}\n\n'.encode() for i in range(4)]
    upstream.reply("GET", f"{RUNS}/{RUN}/stream/", Reply(content_type="text/event-stream", chunks=events, interval=0.4))
    arrivals: list[float] = []
    start = time.monotonic()
    with httpx.stream("GET", f"{base}{V1}/{RUN}/stream", timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        received = b""
        for chunk in response.iter_bytes():
            received += chunk
            arrivals.append(time.monotonic() - start)
    assert received == b"".join(events)
    assert arrivals[0] < 0.35, "the first event waited for the whole stream"
    assert arrivals[-1] > 1.0


def test_unreachable_upstream_is_a_502_naming_it(naftiko) -> None:
    process = naftiko(
        str(SEED),
        "--base-uri",
        "posthog-task-runs=http://127.0.0.1:9",
        "--port",
        f"{REST}=0",
        "--port",
        "posthog-task-runs-mcp=0",
        env={"POSTHOG_API_KEY": KEY},
    )
    base = process.wait_for(REST)[REST]
    response = httpx.get(f"{base}{V1}")
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "upstream_error" and error["upstream"] == "posthog-task-runs"
    assert "cannot connect to http://127.0.0.1:9" in error["message"]
    assert KEY not in response.text


def test_slow_upstream_is_a_504(served) -> None:
    base, upstream, _ = served
    upstream.reply("GET", f"{RUNS}/{RUN}/", Reply(json={}, delay=2.5))
    response = httpx.get(f"{base}{V1}/{RUN}", timeout=10)
    assert response.status_code == 504
    assert response.json()["error"]["type"] == "upstream_timeout"


def test_ctrl_c_stops_cleanly(served) -> None:
    _, _, process = served
    assert process.stop() == 0
    assert "stopped" in process.log[-1]
