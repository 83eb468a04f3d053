"""CORS for REST and MCP blocks (issue 14, item 3), called over real loopback HTTP as a browser calls
them: a preflight, then the request itself with its `Origin`, read through `Access-Control-*`.

The blocks are built with `build_app(..., cors_origins=...)` and served by uvicorn in a thread (one
runtime each, started by the app's lifespan); the last tests start `naftiko serve --cors-origin` as
a process. The upstream answers with a CORS policy of its own, which must never reach the page.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from collections.abc import Callable, Iterator

import httpx
import pytest
import uvicorn

from naftiko import Runtime, build_app
from naftiko.adapters.cors import DEFAULT_MAX_AGE, Cors
from naftiko.engine import NaftikoError
from tests.support import ROOT, NaftikoProcess, RecordingUpstream, Reply, ThreadedServer

APP = "https://app.example"
EVIL = "https://evil.example"
TOKEN = "tok-cors-123"
ENV = {"CORS_TEST_TOKEN": TOKEN}
LEGACY = "2025-06-18"

CAPABILITY = """\
naftiko: 1.0.0-alpha2
binds:
  - namespace: secrets
    keys:
      TOKEN: CORS_TEST_TOKEN
capability:
  consumes:
    - type: http
      namespace: notes
      baseUri: http://localhost:1
      resources:
        - name: note
          path: /notes/{{id}}
          operations:
            - name: get-note
              method: GET
              inputParameters:
                - {name: id, in: path}
  exposes:
    - type: rest
      namespace: notes-rest
      port: 1
      resources:
        - path: /notes/{id}
          operations:
            - {method: GET, call: notes.get-note}
    - type: rest
      namespace: notes-locked
      port: 2
      authentication: {type: bearer, token: '{{TOKEN}}'}
      resources:
        - path: /notes/{id}
          operations:
            - {method: GET, call: notes.get-note}
    - type: mcp
      namespace: notes-mcp
      port: 3
      tools:
        - {name: get-note, description: One note., call: notes.get-note}
"""

Serve = Callable[[str, list[str]], str]


class _LifespanServer(ThreadedServer):
    """`ThreadedServer` with the lifespan on, so the app starts and stops its own runtime."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)


@pytest.fixture
def capability(tmp_path: Path) -> Path:
    path = tmp_path / "notes.yaml"
    path.write_text(CAPABILITY)
    return path


@pytest.fixture
def upstream(upstream: RecordingUpstream) -> RecordingUpstream:
    """The upstream of every test here answers with its own, permissive CORS policy."""
    upstream.reply(
        "GET",
        "/notes/7",
        Reply(
            json={"id": 7, "text": "hello"},
            headers={"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Credentials": "true", "X-Note": "7"},
        ),
    )
    return upstream


@pytest.fixture
def serve(capability: Path, upstream: RecordingUpstream) -> Iterator[Serve]:
    """Serve one block of the capability with the given CORS origins; its base URL."""
    servers: list[_LifespanServer] = []

    def start(namespace: str, origins: list[str]) -> str:
        runtime = Runtime.load(capability, base_uris={"notes": upstream.url}, environ=ENV)
        server = _LifespanServer(build_app(runtime, namespace, cors_origins=origins))
        servers.append(server)
        return server.__enter__()

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def preflight(url: str, origin: str, method: str = "GET", headers: str | None = None, **extra: str) -> httpx.Response:
    """What a browser sends before a request that is not CORS-simple: no credentials, no body."""
    sent = {"Origin": origin, "Access-Control-Request-Method": method, **extra}
    if headers is not None:
        sent["Access-Control-Request-Headers"] = headers
    return httpx.options(url, headers=sent)


def cors_headers(response: httpx.Response) -> dict[str, list[str]]:
    return {
        name: response.headers.get_list(name)
        for name in {k.lower() for k in response.headers}
        if name.startswith("access-control-")
    }


def vary(response: httpx.Response) -> set[str]:
    return {v.strip().lower() for line in response.headers.get_list("vary") for v in line.split(",")}


def rpc(method: str, params: dict[str, Any] | None = None, id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id, "method": method, "params": params or {}}


INITIALIZE = rpc(
    "initialize", {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "page", "version": "1"}}
)


# --------------------------------------------------------------------------- REST


def test_rest_preflight_and_call_from_an_allowed_origin(serve: Serve, upstream: RecordingUpstream) -> None:
    base = serve("notes-rest", [APP])
    answer = preflight(f"{base}/notes/7", APP, headers="authorization,x-trace-id")
    assert answer.status_code == 204 and answer.content == b""
    assert cors_headers(answer) == {
        "access-control-allow-origin": [APP],
        "access-control-allow-credentials": ["true"],
        "access-control-allow-methods": ["GET, POST, PUT, PATCH, DELETE, OPTIONS"],
        "access-control-allow-headers": ["authorization,x-trace-id"],
        "access-control-max-age": [str(DEFAULT_MAX_AGE)],
    }
    assert "origin" in vary(answer) and "access-control-request-headers" in vary(answer)
    assert upstream.requests == [], "a preflight never reaches the block"

    got = httpx.get(f"{base}/notes/7", headers={"Origin": APP})
    assert got.status_code == 200 and got.json() == {"id": 7, "text": "hello"}
    cors = cors_headers(got)
    assert cors["access-control-allow-origin"] == [APP], "the upstream's own '*' is replaced, not added to"
    assert cors["access-control-allow-credentials"] == ["true"]
    exposed = {h.strip().lower() for h in cors["access-control-expose-headers"][0].split(",")}
    assert {"mcp-session-id", "mcp-protocol-version", "www-authenticate", "retry-after"} <= exposed
    assert "*" in exposed, "without credentials a page may read every header, X-Note included"
    assert "origin" in vary(got) and got.headers["x-note"] == "7"

    plain = httpx.options(f"{base}/notes/7", headers={"Origin": APP})
    assert plain.status_code == 405, "an OPTIONS that is not a preflight is the block's to answer"
    assert cors_headers(plain)["access-control-allow-origin"] == [APP]


def test_a_foreign_origin_is_refused_and_gets_no_cors_headers(serve: Serve, upstream: RecordingUpstream) -> None:
    base = serve("notes-rest", [APP])
    refused = preflight(f"{base}/notes/7", EVIL, headers="authorization")
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/json"
    assert refused.json()["error"]["type"] == "origin_not_allowed"
    assert refused.json()["error"]["origin"] == EVIL and EVIL in refused.json()["error"]["message"]
    assert cors_headers(refused) == {} and upstream.requests == []

    # A simple GET needs no preflight: the block answers, but the browser keeps the answer from the
    # page, because nothing in it (not even the upstream's own '*') says the page may read it.
    got = httpx.get(f"{base}/notes/7", headers={"Origin": EVIL})
    assert got.status_code == 200 and cors_headers(got) == {}
    assert "origin" in vary(got) and got.headers["x-note"] == "7"

    long = "https://" + "x" * 5000 + ".example"
    refused = preflight(f"{base}/notes/7", long)
    assert refused.status_code == 403 and len(refused.content) < 700, "a refused origin is quoted, bounded"


def test_no_origin_passes_through_untouched(serve: Serve, upstream: RecordingUpstream) -> None:
    base = serve("notes-rest", [APP])
    got = httpx.get(f"{base}/notes/8")
    assert got.status_code == 200 and "vary" not in got.headers
    assert not any(name.lower().startswith("access-control-") for name in got.headers)


def test_origins_are_compared_as_browsers_write_them(serve: Serve) -> None:
    base = serve("notes-rest", ["HTTPS://App.Example:443/", "http://localhost:5173"])
    assert preflight(f"{base}/notes/7", APP).headers["access-control-allow-origin"] == APP
    odd = "https://APP.example:443"  # not how a browser writes it: matched, and echoed as it was sent
    assert preflight(f"{base}/notes/7", odd).headers["access-control-allow-origin"] == odd
    assert preflight(f"{base}/notes/7", "http://localhost:5173").status_code == 204
    for other in ("http://app.example", "https://app.example:8443", "http://localhost:5174", "null"):
        assert preflight(f"{base}/notes/7", other).status_code == 403, other


def test_private_network_preflight_is_granted_to_an_allowed_origin(serve: Serve) -> None:
    base = serve("notes-rest", [APP])
    answer = preflight(f"{base}/notes/7", APP, **{"Access-Control-Request-Private-Network": "true"})
    assert answer.headers["access-control-allow-private-network"] == "true"
    assert "access-control-allow-private-network" not in preflight(f"{base}/notes/7", APP).headers


def test_a_malformed_request_headers_list_is_a_400(serve: Serve) -> None:
    answer = preflight(f"{serve('notes-rest', [APP])}/notes/7", APP, headers="x-a, (bad)")
    assert answer.status_code == 400 and answer.json()["error"]["type"] == "bad_preflight"


# --------------------------------------------------------------------------- credentials and '*'


def test_a_bearer_protected_block_preflights_without_credentials_and_its_401_reads(serve: Serve) -> None:
    base = serve("notes-locked", [APP])
    answer = preflight(f"{base}/notes/7", APP, headers="authorization")
    assert answer.status_code == 204, "a preflight carries no credentials and must not meet a 401"
    assert answer.headers["access-control-allow-headers"] == "authorization"

    denied = httpx.get(f"{base}/notes/7", headers={"Origin": APP})
    assert denied.status_code == 401 and denied.headers["www-authenticate"] == 'Bearer realm="naftiko"'
    assert denied.headers["access-control-allow-origin"] == APP
    assert "www-authenticate" in denied.headers["access-control-expose-headers"].lower()

    allowed = httpx.get(f"{base}/notes/7", headers={"Origin": APP, "Authorization": f"Bearer {TOKEN}"})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == APP
    assert allowed.headers["access-control-allow-credentials"] == "true"


def test_wildcard_is_answered_literally_and_never_with_credentials(serve: Serve) -> None:
    base = serve("notes-locked", ["*"])
    anonymous = httpx.get(f"{base}/notes/7", headers={"Origin": EVIL})
    assert anonymous.status_code == 401
    assert anonymous.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in anonymous.headers and "vary" not in anonymous.headers
    assert anonymous.headers["access-control-expose-headers"].endswith(", *")

    # A token the page sets itself: not a credential to Fetch, so '*' lets the page read the answer.
    with_token = httpx.get(f"{base}/notes/7", headers={"Origin": EVIL, "Authorization": f"Bearer {TOKEN}"})
    assert with_token.status_code == 200 and with_token.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in with_token.headers

    # Cookies (credentials: "include"): still '*' and no Allow-Credentials, which a browser refuses.
    cookies = {"Origin": EVIL, "Cookie": "session=abc", "Authorization": f"Bearer {TOKEN}"}
    credentialed = httpx.get(f"{base}/notes/7", headers=cookies)
    assert credentialed.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in credentialed.headers

    answer = preflight(f"{base}/notes/7", EVIL, headers="authorization")
    assert answer.status_code == 204 and answer.headers["access-control-allow-origin"] == "*"
    assert answer.headers["access-control-allow-headers"] == "authorization", "'*' would not cover Authorization"
    assert "access-control-allow-credentials" not in answer.headers


def test_named_origins_beside_the_wildcard_are_credentialed_and_everything_varies(serve: Serve) -> None:
    base = serve("notes-rest", ["*", APP])
    named = httpx.get(f"{base}/notes/7", headers={"Origin": APP, "Cookie": "session=abc"})
    assert named.headers["access-control-allow-origin"] == APP
    assert named.headers["access-control-allow-credentials"] == "true" and "origin" in vary(named)
    other = httpx.get(f"{base}/notes/7", headers={"Origin": EVIL, "Cookie": "session=abc"})
    assert other.headers["access-control-allow-origin"] == "*" and "origin" in vary(other)
    assert "access-control-allow-credentials" not in other.headers


# --------------------------------------------------------------------------- MCP


def test_mcp_from_an_allowed_origin_initialize_and_list_tools(serve: Serve) -> None:
    url = f"{serve('notes-mcp', [APP])}/mcp"
    answer = preflight(url, APP, "POST", "content-type,mcp-protocol-version,mcp-session-id")
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-headers"] == "content-type,mcp-protocol-version,mcp-session-id"

    with httpx.Client(headers={"Origin": APP}) as page:
        init = page.post(url, json=INITIALIZE)
        assert init.status_code == 200 and init.json()["result"]["protocolVersion"] == LEGACY
        assert init.headers["access-control-allow-origin"] == APP
        exposed = {h.strip().lower() for h in init.headers["access-control-expose-headers"].split(",")}
        assert "mcp-session-id" in exposed, "the page must be able to read its session id"
        session = {"Mcp-Session-Id": init.headers["mcp-session-id"], "MCP-Protocol-Version": LEGACY}
        listed = page.post(url, json=rpc("tools/list", id=2), headers=session)
    assert listed.status_code == 200 and listed.headers["access-control-allow-origin"] == APP
    assert [tool["name"] for tool in listed.json()["result"]["tools"]] == ["get-note"]


def test_mcp_refuses_a_foreign_origin_in_both_checks(serve: Serve) -> None:
    url = f"{serve('notes-mcp', [APP])}/mcp"
    assert preflight(url, EVIL, "POST", "content-type").status_code == 403
    refused = httpx.post(url, json=INITIALIZE, headers={"Origin": EVIL})
    assert refused.status_code == 403 and refused.json()["error"]["message"] == "Invalid Origin header"
    assert cors_headers(refused) == {}


def test_mcp_with_wildcard_lets_any_origin_through_the_origin_check(serve: Serve) -> None:
    url = f"{serve('notes-mcp', ['*'])}/mcp"
    init = httpx.post(url, json=INITIALIZE, headers={"Origin": EVIL})
    assert init.status_code == 200 and init.headers["access-control-allow-origin"] == "*"
    bad_host = httpx.post(url, json=INITIALIZE, headers={"Origin": EVIL, "Host": "evil.example"})
    assert bad_host.status_code == 421, "CORS widens the Origin check, never the Host check (DNS rebinding)"


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    "origin,says",
    [
        ("https://*.example.com", "patterns are not supported"),
        ("null", "sandboxed"),
        ("https://app.example/path", "no path"),
        ("app.example", "scheme://host"),
        ("https://user@app.example", "scheme://host"),
    ],
)
def test_an_unusable_origin_stops_start_up(origin: str, says: str) -> None:
    with pytest.raises(NaftikoError, match=says):
        Cors(object(), [origin])


def test_without_cors_an_upstream_policy_never_reaches_a_page(serve: Serve) -> None:
    base = serve("notes-rest", [])  # no origins: no middleware at all
    got = httpx.get(f"{base}/notes/7", headers={"Origin": EVIL})
    assert got.status_code == 200 and got.headers["x-note"] == "7"
    assert cors_headers(got) == {}, "the upstream's 'Access-Control-Allow-Origin: *' would let any page read it"


def test_the_cli_flag_and_environment_variable(capability: Path, upstream: RecordingUpstream, naftiko) -> None:
    ports = [a for ns in ("notes-rest", "notes-locked", "notes-mcp") for a in ("--port", f"{ns}=0")]
    process: NaftikoProcess = naftiko(
        str(capability), "--base-uri", f"notes={upstream.url}", *ports, "--cors-origin", APP, env=ENV
    )
    urls = process.wait_for("notes-rest", "notes-mcp")
    assert preflight(f"{urls['notes-rest']}/notes/7", APP).status_code == 204
    assert preflight(f"{urls['notes-rest']}/notes/7", EVIL).status_code == 403
    got = httpx.get(f"{urls['notes-rest']}/notes/7", headers={"Origin": APP})
    assert got.status_code == 200 and got.headers["access-control-allow-origin"] == APP
    assert preflight(urls["notes-mcp"], APP, "POST", "content-type").status_code == 204
    init = httpx.post(urls["notes-mcp"], json=INITIALIZE, headers={"Origin": APP})
    assert init.status_code == 200 and init.headers["access-control-allow-origin"] == APP
    assert httpx.post(urls["notes-mcp"], json=INITIALIZE, headers={"Origin": EVIL}).status_code == 403
    local = httpx.post(urls["notes-mcp"], json=INITIALIZE, headers={"Origin": "http://localhost:5173"})
    assert local.status_code == 200, "CORS origins widen the MCP Origin check; its local-origin default stays"

    env_only = naftiko(
        str(capability),
        "--base-uri",
        f"notes={upstream.url}",
        *ports,
        env={**ENV, "NAFTIKO_CORS_ORIGINS": f"http://localhost:5173, {APP}"},
    )
    rest = env_only.wait_for("notes-rest")["notes-rest"]
    assert preflight(f"{rest}/notes/7", "http://localhost:5173").status_code == 204
    assert preflight(f"{rest}/notes/7", APP).status_code == 204


def test_the_cli_refuses_an_unusable_origin_without_a_traceback(capability: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "naftiko", "serve", str(capability), "--cors-origin", "https://*.example.com"],
        cwd=ROOT,
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1, done.stderr
    assert "patterns are not supported" in done.stderr and "Traceback" not in done.stderr
