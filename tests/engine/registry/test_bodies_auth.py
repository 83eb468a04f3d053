"""Request bodies in every form the spec allows, credentials for consumed APIs (bearer,
basic, API key, digest, OAuth2 client credentials) and protection of exposed servers, all
over real loopback HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import textwrap
from pathlib import Path
from typing import Any
from collections.abc import Iterator
from urllib.parse import parse_qs

import httpx
import pytest
from mcp import Client

from naftiko.engine import Runtime
from tests.support import RecordingUpstream, Reply, ThreadedServer

pytestmark = pytest.mark.anyio


HEAD = """\
naftiko: 1.0.0-alpha2
binds:
  - namespace: secrets
    keys:
      TOKEN: TEST_TOKEN
      USER: TEST_USER
      PASS: TEST_PASS
capability:
  consumes:
    - type: http
      namespace: api
      baseUri: http://localhost:1
"""


def capability(tmp_path: Path, consumes_extra: str, operations: str, exposes: str = "") -> Path:
    """A capability with one consumes namespace `api` whose resource `/things` has `operations`."""
    text = (
        HEAD
        + textwrap.indent(consumes_extra, " " * 6)
        + "      resources:\n        - name: things\n          path: /things\n          operations:\n"
        + textwrap.indent(operations, " " * 12)
        + exposes
    )
    path = tmp_path / "cap.yaml"
    path.write_text(text)
    return path


ENV = {"TEST_TOKEN": "tok-123", "TEST_USER": "ada", "TEST_PASS": "s3cret"}

BODIES = """\
- name: raw
  method: POST
  body: '{"name": "{{name}}"}'
- name: json-data
  method: POST
  body:
    type: json
    data: {crew: "{{crew}}", count: "{{count}}", label: "crew of {{name}}"}
- name: text
  method: POST
  body: {type: text, data: "hello {{name}}"}
- name: xml
  method: POST
  body: {type: xml, data: "<ship>{{name}}</ship>"}
- name: form
  method: POST
  body:
    type: formUrlEncoded
    data: {name: "{{name}}", kind: "a b"}
- name: multipart
  method: POST
  body:
    type: multipartForm
    data:
      - {name: note, value: "{{name}}"}
      - {name: file, value: "line {{count}}", filename: n.txt, contentType: text/plain}
- name: assembled
  method: POST
  inputParameters:
    - {name: title, in: body}
    - {name: size, in: body}
"""


async def test_every_body_form(tmp_path: Path, upstream: RecordingUpstream) -> None:
    runtime = Runtime.load(capability(tmp_path, "", BODIES), environ=ENV, base_uris={"api": upstream.url})
    params = {"name": "Star", "crew": ["a", "b"], "count": 3}
    async with runtime:
        sent = {}
        for op in ("raw", "json-data", "text", "xml", "form", "multipart"):
            await runtime.call(f"api.{op}", params)
            sent[op] = upstream.last
        await runtime.call("api.assembled", {"title": "T", "size": 2})
        sent["assembled"] = upstream.last
    assert (sent["raw"].headers["content-type"], sent["raw"].json) == ("application/json", {"name": "Star"})
    assert sent["json-data"].json == {"crew": ["a", "b"], "count": 3, "label": "crew of Star"}
    assert (sent["text"].headers["content-type"], sent["text"].body) == ("text/plain; charset=utf-8", b"hello Star")
    assert (sent["xml"].headers["content-type"], sent["xml"].body) == ("application/xml", b"<ship>Star</ship>")
    assert sent["form"].headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(sent["form"].body.decode()) == {"name": ["Star"], "kind": ["a b"]}
    multipart = sent["multipart"]
    boundary = multipart.headers["content-type"].split("boundary=")[1]
    assert multipart.body.decode() == (
        f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\nStar\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="n.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\nline 3\r\n--{boundary}--\r\n"
    )
    assert sent["assembled"].json == {"title": "T", "size": 2}


SIMPLE = "- {name: get, method: GET}\n"


@pytest.mark.parametrize(
    "auth,check",
    [
        (
            "authentication: {type: bearer, token: '{{secrets.TOKEN}}'}",
            lambda r: r.headers["authorization"] == "Bearer tok-123",
        ),
        (
            "authentication: {type: basic, username: '{{USER}}', password: '{{PASS}}'}",
            lambda r: r.headers["authorization"] == "Basic " + base64.b64encode(b"ada:s3cret").decode(),
        ),
        (
            "authentication: {type: apikey, key: X-Key, value: '{{TOKEN}}', placement: header}",
            lambda r: r.headers["x-key"] == "tok-123",
        ),
        (
            "authentication: {type: apikey, key: api_key, value: '<<secrets.TOKEN>>', placement: query}",
            lambda r: r.query == "api_key=tok-123",
        ),
    ],
)
async def test_client_credentials_from_bindings(tmp_path: Path, upstream: RecordingUpstream, auth: str, check) -> None:
    runtime = Runtime.load(capability(tmp_path, auth + "\n", SIMPLE), environ=ENV, base_uris={"api": upstream.url})
    async with runtime:
        await runtime.call("api.get", {"TOKEN": "caller-tries-to-override"})
    assert check(upstream.last)


class DigestServer:
    """An upstream that insists on HTTP digest authentication (RFC 7616, MD5, qop=auth)."""

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password, self.nonce = user, password, "n0nce"
        self.authorized = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        if self._valid(scope["method"], scope["raw_path"].decode(), headers.get("authorization", "")):
            self.authorized += 1
            status, extra, body = 200, [], b'{"ok": true}'
        else:
            challenge = f'Digest realm="test", nonce="{self.nonce}", qop="auth", algorithm=MD5'
            status, extra, body = 401, [(b"www-authenticate", challenge.encode())], b"{}"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), *extra],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _valid(self, method: str, uri: str, header: str) -> bool:
        if not header.startswith("Digest "):
            return False
        parts = dict(p.strip().split("=", 1) for p in header[7:].split(","))
        parts = {k: v.strip('"') for k, v in parts.items()}

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        ha1 = md5(f"{self.user}:test:{self.password}")
        ha2 = md5(f"{method}:{uri}")
        expected = md5(f"{ha1}:{self.nonce}:{parts.get('nc')}:{parts.get('cnonce')}:auth:{ha2}")
        return parts.get("username") == self.user and parts.get("response") == expected


async def test_digest_authentication(tmp_path: Path) -> None:
    server = DigestServer("ada", "s3cret")
    with ThreadedServer(server) as url:
        auth = "authentication: {type: digest, username: '{{USER}}', password: '{{PASS}}'}\n"
        runtime = Runtime.load(capability(tmp_path, auth, SIMPLE), environ=ENV, base_uris={"api": url})
        async with runtime:
            assert await runtime.call("api.get") == (200, {"ok": True})
            assert await runtime.call("api.get") == (200, {"ok": True})
    assert server.authorized == 2


async def test_oauth2_client_credentials_token_is_cached(tmp_path: Path, upstream: RecordingUpstream) -> None:
    token = {"access_token": "at-1", "token_type": "Bearer", "expires_in": 600}
    upstream.reply("POST", "/oauth/token", Reply(json=token))
    auth = textwrap.dedent(f"""\
        authentication:
          type: oauth2
          authorizationServerUri: {upstream.url}
          resource: https://api.example.test
          tokenEndpoint: {upstream.url}/oauth/token
          clientId: '{{{{USER}}}}'
          clientSecret: '{{{{PASS}}}}'
          scopes: [read, write]
        """)
    runtime = Runtime.load(capability(tmp_path, auth, SIMPLE), environ=ENV, base_uris={"api": upstream.url})
    async with runtime:
        await asyncio.gather(*(runtime.call("api.get") for _ in range(3)))
    token_requests = [r for r in upstream.requests if r.path == "/oauth/token"]
    assert len(token_requests) == 1, "the token is fetched once and reused"
    token = token_requests[0]
    assert token.headers["authorization"] == "Basic " + base64.b64encode(b"ada:s3cret").decode()
    assert parse_qs(token.body.decode()) == {
        "grant_type": ["client_credentials"],
        "scope": ["read write"],
        "audience": ["https://api.example.test"],
    }
    calls = [r for r in upstream.requests if r.path == "/things"]
    assert len(calls) == 3 and all(r.headers["authorization"] == "Bearer at-1" for r in calls)


PROTECTED = """\
  exposes:
    - type: rest
      namespace: api-rest
      port: 1
      authentication: {type: bearer, token: '{{TOKEN}}'}
      resources:
        - path: /things
          operations:
            - {method: GET, call: api.get}
    - type: rest
      namespace: api-key-rest
      port: 1
      authentication: {type: apikey, key: X-Api-Key, value: '{{TOKEN}}', placement: header}
      resources:
        - path: /things
          operations:
            - {method: GET, call: api.get}
    - type: rest
      namespace: api-basic-rest
      port: 1
      authentication: {type: basic, username: '{{USER}}', password: '{{PASS}}'}
      resources:
        - path: /things
          operations:
            - {method: GET, call: api.get}
    - type: mcp
      namespace: api-mcp
      port: 1
      authentication: {type: bearer, token: '{{TOKEN}}'}
      tools:
        - {name: get-things, description: Things., call: api.get}
"""


@pytest.fixture
def protected(tmp_path: Path, upstream: RecordingUpstream, naftiko) -> Iterator[dict[str, str]]:
    path = capability(tmp_path, "", SIMPLE, PROTECTED)
    names = ("api-rest", "api-key-rest", "api-basic-rest", "api-mcp")
    process = naftiko(
        str(path), "--base-uri", f"api={upstream.url}", *(a for n in names for a in ("--port", f"{n}=0")), env=ENV
    )
    yield process.wait_for(*names)


def test_exposed_rest_credentials(protected: dict[str, str], upstream: RecordingUpstream) -> None:
    bearer = protected["api-rest"] + "/things"
    denied = httpx.get(bearer, headers={"Authorization": "Bearer wrong"})
    assert denied.status_code == 401 and denied.headers["www-authenticate"] == 'Bearer realm="naftiko"'
    assert denied.json()["error"]["type"] == "unauthorized"
    assert httpx.get(bearer).status_code == 401
    assert httpx.get(bearer, headers={"Authorization": "Bearer tok-123"}).status_code == 200
    assert "authorization" not in upstream.last.headers, "the caller's credentials never reach the upstream"

    keyed = protected["api-key-rest"] + "/things"
    assert httpx.get(keyed, headers={"X-Api-Key": "nope"}).status_code == 401
    assert httpx.get(keyed, headers={"X-Api-Key": "tok-123"}).status_code == 200

    basic = protected["api-basic-rest"] + "/things"
    assert httpx.get(basic, auth=("ada", "wrong")).status_code == 401
    assert httpx.get(basic, auth=("ada", "s3cret")).status_code == 200


async def test_exposed_mcp_bearer(protected: dict[str, str]) -> None:
    url = protected["api-mcp"]
    assert httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).status_code == 401
    client = httpx.AsyncClient(headers={"Authorization": "Bearer tok-123"})
    from mcp.client.streamable_http import streamable_http_client

    async with Client(streamable_http_client(url, http_client=client), mode="legacy", cache=None) as mcp:
        assert [t.name for t in (await mcp.list_tools()).tools] == ["get-things"]
    await client.aclose()
