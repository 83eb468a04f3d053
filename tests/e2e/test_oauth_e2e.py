"""OAuth 2 protection of exposed REST and MCP blocks, as an operator and an OAuth client meet it.

A local authorization server (metadata at the RFC 8414 path of an issuer with a path, a JWKS with
RSA and EC keys generated here, a client_credentials token endpoint that mints JWTs with PyJWT)
stands in for Keycloak or Auth0; `naftiko serve` runs as a real process; the official MCP SDK's
`ClientCredentialsOAuthProvider` discovers everything from the 401 on its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from mcp import Client

from tests.support import ROOT, NaftikoProcess, RecordingUpstream, ThreadedServer, free_port, read_body

pytestmark = pytest.mark.anyio

CLIENT_ID, CLIENT_SECRET = "agent-7", "s3cret-of-agent-7"
SCOPE = "things.read"


class Issuer:
    """A small authorization server: metadata, JWKS, client_credentials tokens; it counts what it serves."""

    def __init__(self) -> None:
        self.url = ""  # the issuer identifier: http://127.0.0.1:PORT/tenant
        self.private: dict[str, Any] = {
            "k1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "e1": ec.generate_private_key(ec.SECP256R1()),
        }
        self.published = ["k1", "e1"]
        self.hits: dict[str, int] = {}

    def public_jwk(self, kid: str) -> dict[str, Any]:
        key = self.private[kid]
        reader = RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else ECAlgorithm
        jwk: dict[str, Any] = json.loads(reader.to_jwk(key.public_key()))
        return {**jwk, "kid": kid, "use": "sig"}

    def mint(self, *, kid: str = "k1", audience: str | list[str], **claims: Any) -> str:
        now = int(time.time())
        body: dict[str, Any] = {"iss": self.url, "aud": audience, "sub": CLIENT_ID, "iat": now, "exp": now + 300}
        body["scope"] = SCOPE
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        key = self.private[kid]
        alg = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        path = scope["path"]
        self.hits[path] = self.hits.get(path, 0) + 1
        status, answer = 404, {"error": "not_found"}
        base = self.url.rsplit("/tenant", 1)[0]
        if path == "/.well-known/oauth-authorization-server/tenant":
            status, answer = (
                200,
                {
                    "issuer": self.url,
                    "authorization_endpoint": f"{self.url}/authorize",
                    "token_endpoint": f"{base}/tenant/token",
                    "jwks_uri": f"{base}/tenant/jwks",
                    "grant_types_supported": ["client_credentials"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                    "response_types_supported": ["code"],
                },
            )
        elif path == "/tenant/jwks":
            status, answer = 200, {"keys": [self.public_jwk(kid) for kid in self.published]}
        elif path == "/tenant/token" and scope["method"] == "POST":
            status, answer = self._token(scope, parse_qs(body.decode()))
        payload = json.dumps(answer).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    def _token(self, scope: dict[str, Any], form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        posted = form.get("client_id") == [CLIENT_ID] and form.get("client_secret") == [CLIENT_SECRET]
        if headers.get("authorization") != f"Basic {basic}" and not posted:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != ["client_credentials"] or "resource" not in form:
            return 400, {"error": "invalid_request"}
        scopes = form.get("scope", [""])[0]
        token = self.mint(audience=form["resource"][0], scope=scopes)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 300, "scope": scopes}


CAPABILITY = """\
naftiko: 1.0.0-alpha2
capability:
  consumes:
    - type: http
      namespace: api
      baseUri: http://localhost:1
      resources:
        - name: things
          path: /things
          operations:
            - {{name: get, method: GET}}
  exposes:
    - type: rest
      namespace: api-rest
      port: {rest}
      authentication:
        type: oauth2
        authorizationServerUri: {issuer}
        resource: http://127.0.0.1:{rest}
        scopes: [{scope}]
      resources:
        - path: /things
          operations:
            - {{method: GET, call: api.get}}
    - type: mcp
      namespace: api-mcp
      port: {mcp}
      authentication:
        type: oauth2
        authorizationServerUri: {issuer}
        resource: http://127.0.0.1:{mcp}/mcp
        scopes: [{scope}]
      tools:
        - {{name: get-things, description: Things., call: api.get}}
    - type: rest
      namespace: down-rest
      port: {down}
      authentication:
        type: oauth2
        authorizationServerUri: http://127.0.0.1:{dead}/tenant
        resource: http://127.0.0.1:{down}
      resources:
        - path: /things
          operations:
            - {{method: GET, call: api.get}}
"""


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    server = Issuer()
    with ThreadedServer(server) as url:
        server.url = url + "/tenant"
        yield server


@pytest.fixture(scope="module")
def stack(issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    recorder = RecordingUpstream()
    with ThreadedServer(recorder) as upstream_url:
        recorder.url = upstream_url
        ports = {"rest": free_port(), "mcp": free_port(), "down": free_port(), "dead": free_port()}
        path = tmp_path_factory.mktemp("oauth") / "protected.yaml"
        path.write_text(CAPABILITY.format(issuer=issuer.url, scope=SCOPE, **ports))
        env = {"NAFTIKO_OAUTH_REFETCH_INTERVAL": "0.5", "NAFTIKO_OAUTH_TIMEOUT": "3"}
        process = NaftikoProcess([str(path), "--base-uri", f"api={upstream_url}"], env)
        try:
            urls = process.wait_for("api-rest", "api-mcp", "down-rest")
            yield {"urls": urls, "ports": ports, "upstream": recorder, "process": process, "path": path}
        finally:
            process.stop()


def challenge(response: httpx.Response) -> dict[str, str]:
    """The parameters of a `WWW-Authenticate: Bearer k="v", ...` challenge."""
    header = response.headers["www-authenticate"]
    assert header.startswith("Bearer ")
    return dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', header))


def test_an_oauth_client_discovers_the_issuer_and_calls_rest(stack: dict[str, Any], issuer: Issuer) -> None:
    rest = f"http://127.0.0.1:{stack['ports']['rest']}"
    denied = httpx.get(rest + "/things")
    assert denied.status_code == 401
    assert denied.json()["error"]["type"] == "unauthorized"
    params = challenge(denied)
    assert "error" not in params, "no token presented: no error code (RFC 6750 §3.1)"
    assert params["scope"] == SCOPE
    assert params["resource_metadata"] == f"{rest}/.well-known/oauth-protected-resource"

    metadata = httpx.get(params["resource_metadata"]).json()
    assert metadata == {
        "resource": rest,
        "authorization_servers": [issuer.url],
        "scopes_supported": [SCOPE],
        "bearer_methods_supported": ["header"],
    }
    issuer_url = metadata["authorization_servers"][0]
    origin, _, tenant = issuer_url.partition("/tenant")
    as_metadata = httpx.get(f"{origin}/.well-known/oauth-authorization-server/tenant{tenant}").json()
    assert as_metadata["issuer"] == issuer_url
    token = httpx.post(
        as_metadata["token_endpoint"],
        data={"grant_type": "client_credentials", "scope": SCOPE, "resource": metadata["resource"]},
        auth=(CLIENT_ID, CLIENT_SECRET),
    ).json()["access_token"]

    answer = httpx.get(rest + "/things", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["echo"]["path"] == "/things"
    assert "authorization" not in stack["upstream"].last.headers, "the caller's token never goes upstream"
    again = httpx.get(rest + "/things", headers={"Authorization": f"bearer {token}"})
    assert again.status_code == 200, "the scheme is case-insensitive"


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_mcp_sdk_client_authorizes_itself_and_calls_a_tool(
    stack: dict[str, Any], issuer: Issuer, mode: str
) -> None:
    import httpx2
    from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
    from mcp.client.streamable_http import streamable_http_client

    url = stack["urls"]["api-mcp"]
    assert url.endswith("/mcp")
    before = issuer.hits.get("/tenant/token", 0)
    provider = ClientCredentialsOAuthProvider(
        server_url=url,
        storage=MemoryStorage(),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scope=SCOPE,
        issuer=issuer.url,
    )
    async with httpx2.AsyncClient(auth=provider) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode, cache=None) as client:
            assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
            assert [tool.name for tool in (await client.list_tools()).tools] == ["get-things"]
            result = await client.call_tool("get-things", {})
            assert not result.is_error, result
            echo = {"echo": {"method": "GET", "path": "/things", "query": ""}}
            assert result.structured_content == echo
    assert issuer.hits.get("/tenant/token", 0) == before + 1, "one token, reused for every message"

    mcp_origin = url.rsplit("/mcp", 1)[0]
    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        metadata = httpx.get(mcp_origin + path)
        assert metadata.status_code == 200 and metadata.json()["resource"] == url


def forged(header: dict[str, Any], claims: dict[str, Any], signer: Callable[[bytes], bytes] | None) -> str:
    """A JWT assembled by hand, for what PyJWT refuses to produce (alg none, HS256 with a public key)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    return head + "." + (b64(signer(head.encode())) if signer else "")


def test_bad_tokens_are_refused_with_the_right_error(stack: dict[str, Any], issuer: Issuer) -> None:
    rest = f"http://127.0.0.1:{stack['ports']['rest']}"
    aud = rest
    now = int(time.time())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    good_claims = {"iss": issuer.url, "aud": aud, "exp": now + 300, "scope": SCOPE}
    pem = issuer.private["k1"].public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    cases = {
        "expired": (issuer.mint(audience=aud, exp=now - 3600), 401, "invalid_token", "expired"),
        "wrong audience": (issuer.mint(audience="http://other.example"), 401, "invalid_token", "not meant for"),
        "wrong issuer": (issuer.mint(audience=aud, iss="http://evil.example"), 401, "invalid_token", "not issued by"),
        "not yet valid": (issuer.mint(audience=aud, nbf=now + 3600), 401, "invalid_token", "not valid yet"),
        "no exp": (issuer.mint(audience=aud, exp=None), 401, "invalid_token", "no 'exp' claim"),
        "bad signature": (
            jwt.encode(good_claims, other, algorithm="RS256", headers={"kid": "k1"}),
            401,
            "invalid_token",
            "does not verify",
        ),
        "alg none": (forged({"alg": "none", "kid": "k1"}, good_claims, None), 401, "invalid_token", "not accepted"),
        "HS256 keyed with the public key": (
            forged({"alg": "HS256", "kid": "k1"}, good_claims, lambda m: hmac.new(pem, m, hashlib.sha256).digest()),
            401,
            "invalid_token",
            "not accepted",
        ),
        "not a JWT": ("abc.def", 401, "invalid_token", "not a signed JWT"),
        "missing scope": (issuer.mint(audience=aud, scope="things.write"), 403, "insufficient_scope", SCOPE),
        "EC key, list audience": (issuer.mint(kid="e1", audience=["x", aud]), 200, "", ""),
        "scp as a list": (issuer.mint(audience=aud, scope=None, scp=[SCOPE, "more"]), 200, "", ""),
    }
    for name, (token, status, error, words) in cases.items():
        answer = httpx.get(rest + "/things", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == status, (name, answer.text)
        if status == 200:
            continue
        params = challenge(answer)
        assert params["error"] == error, name
        assert words in params["error_description"], (name, params)
        assert params["resource_metadata"] == f"{rest}/.well-known/oauth-protected-resource", name
        assert answer.json()["error"]["oauthError"] == error, name
        assert token not in answer.text and token not in "\n".join(stack["process"].log), "no token echoed"
        if status == 403:
            assert params["scope"] == SCOPE

    malformed = httpx.get(rest + "/things", headers={"Authorization": "Bearer a b"})
    assert malformed.status_code == 400 and challenge(malformed)["error"] == "invalid_request"
    basic = httpx.get(rest + "/things", headers={"Authorization": "Basic YTpi"})
    assert basic.status_code == 401 and "error" not in challenge(basic)
    in_query = httpx.get(rest + "/things", params={"access_token": issuer.mint(audience=aud)})
    assert in_query.status_code == 401, "a token in the query is never read (MCP authorization spec)"


def test_key_rotation_is_picked_up_and_unknown_kids_are_rate_limited(stack: dict[str, Any], issuer: Issuer) -> None:
    rest = f"http://127.0.0.1:{stack['ports']['rest']}"
    assert httpx.get(rest + "/things", headers={"Authorization": f"Bearer {issuer.mint(audience=rest)}"}).is_success
    issuer.private["k2"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer.published = ["k2", "e1"]  # k1 retired
    time.sleep(0.6)  # past NAFTIKO_OAUTH_REFETCH_INTERVAL, so the unknown kid refetches
    before = issuer.hits.get("/tenant/jwks", 0)
    rotated = httpx.get(rest + "/things", headers={"Authorization": f"Bearer {issuer.mint(kid='k2', audience=rest)}"})
    assert rotated.status_code == 200, rotated.text
    assert issuer.hits["/tenant/jwks"] == before + 1

    retired = httpx.get(rest + "/things", headers={"Authorization": f"Bearer {issuer.mint(audience=rest)}"})
    assert retired.status_code == 401, "a cached token signed with a retired key is checked again"

    issuer.private["k9"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    before, started = issuer.hits["/tenant/jwks"], time.monotonic()
    for _ in range(20):  # an unpublished kid, again and again: one refetch, not twenty
        unknown = issuer.mint(kid="k9", audience=rest)
        answer = httpx.get(rest + "/things", headers={"Authorization": f"Bearer {unknown}"})
        assert answer.status_code == 401 and "does not publish" in challenge(answer)["error_description"]
    allowed = 1 + int((time.monotonic() - started) / 0.5)  # one fetch per NAFTIKO_OAUTH_REFETCH_INTERVAL
    assert issuer.hits["/tenant/jwks"] - before <= min(allowed, 5)


def test_an_unreachable_issuer_is_a_503_logged_once(stack: dict[str, Any], issuer: Issuer) -> None:
    down = f"http://127.0.0.1:{stack['ports']['down']}"
    assert httpx.get(down + "/things").status_code == 401, "no token: a 401, without asking the issuer"
    token = issuer.mint(audience=down)
    for _ in range(3):
        answer = httpx.get(down + "/things", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 503
        error = answer.json()["error"]
        assert error["type"] == "unavailable" and "cannot be reached" in error["message"]
        assert answer.headers["retry-after"]
    logged = [line for line in stack["process"].log if f"127.0.0.1:{stack['ports']['dead']}" in line]
    assert len(logged) == 1, logged
    assert token not in "\n".join(stack["process"].log)


def test_validate_names_a_bad_oauth2_block(tmp_path: Path) -> None:
    text = CAPABILITY.format(
        issuer="https://as.example", scope="'two words'", rest=18601, mcp=18602, down=18603, dead=1
    )
    text = text.replace(
        "        scopes: ['two words']\n      tools:", "        tokenValidation: introspection\n      tools:"
    )
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "naftiko", "validate", str(path)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 1
    lines = text.splitlines()
    scope_line = next(n for n, line in enumerate(lines, 1) if "two words" in line)
    validation_line = next(n for n, line in enumerate(lines, 1) if "introspection" in line)
    assert f"{path}:{scope_line}:18: scope 'two words' is not one OAuth scope" in result.stderr, result.stderr
    assert f"{path}:{validation_line}:26: tokenValidation 'introspection' (RFC 7662) is not supported" in (
        result.stderr
    )


class MemoryStorage:
    """The SDK's TokenStorage, in memory."""

    def __init__(self) -> None:
        self.tokens: Any = None
        self.client: Any = None

    async def get_tokens(self) -> Any:
        return self.tokens

    async def set_tokens(self, tokens: Any) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> Any:
        return self.client

    async def set_client_info(self, client_info: Any) -> None:
        self.client = client_info
