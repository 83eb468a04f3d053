"""The pieces of the OAuth 2 resource server one at a time: where metadata is looked for and served,
which JWKs are usable, the bounded fetch (against real loopback servers), the key cache's refetch
and failure rules, and the settings; the whole flow over real processes is tests/e2e/test_oauth_e2e.py."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from naftiko.adapters.issuer import (
    FetchFailed,
    IssuerKeys,
    IssuerUnavailable,
    OAuthSettings,
    Rejected,
    discovery_urls,
    fetch_document,
    parse_key,
)
from naftiko.adapters.oauth import ResourceServerAuth, TokenVerifier, metadata_paths
from naftiko.engine import Location, NaftikoError, ResourceServer
from tests.support import Reply, RecordingUpstream, ThreadedServer

pytestmark = pytest.mark.anyio

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP384R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
WHERE = Location("cap.yaml", 1, 1, "capability.exposes[0].authentication")
ISSUER = "https://as.example/tenant"
SERVER = ResourceServer(ISSUER, "https://api.example/mcp", WHERE, scopes=("read",))


def rsa_jwk(kid: str = "k1", key: Any = RSA_KEY, **extra: Any) -> dict[str, Any]:
    return {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": kid, **extra}


def test_discovery_follows_rfc8414_and_the_mcp_order() -> None:
    assert discovery_urls("https://as.example") == [
        "https://as.example/.well-known/oauth-authorization-server",
        "https://as.example/.well-known/openid-configuration",
    ]
    assert discovery_urls("https://as.example/tenant/1/") == [
        "https://as.example/.well-known/oauth-authorization-server/tenant/1",
        "https://as.example/.well-known/openid-configuration/tenant/1",
        "https://as.example/tenant/1/.well-known/openid-configuration",
    ]


def test_metadata_is_served_where_rfc9728_and_mcp_clients_look() -> None:
    url, paths = metadata_paths("https://api.example/v1/mcp", mcp=True)
    assert url == "https://api.example/.well-known/oauth-protected-resource/v1/mcp"
    assert paths == (
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/v1/mcp",
        "/.well-known/oauth-protected-resource/mcp",
    )
    assert metadata_paths("https://api.example/", mcp=False) == (
        "https://api.example/.well-known/oauth-protected-resource",
        ("/.well-known/oauth-protected-resource",),
    )


def test_only_asymmetric_signing_keys_are_used() -> None:
    rsa_key = parse_key(rsa_jwk())
    assert rsa_key is not None and rsa_key.algorithms == {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
    pinned = parse_key(rsa_jwk(alg="PS256"))
    assert pinned is not None and pinned.algorithms == {"PS256"}
    ec_key = parse_key({**json.loads(ECAlgorithm.to_jwk(EC_KEY.public_key())), "kid": "e"})
    assert ec_key is not None and ec_key.algorithms == {"ES384"}
    ed_key = parse_key(json.loads(OKPAlgorithm.to_jwk(ED_KEY.public_key())))
    assert ed_key is not None and ed_key.algorithms == {"EdDSA"} and ed_key.kid is None
    private = parse_key(json.loads(RSAAlgorithm.to_jwk(RSA_KEY)))
    assert private is not None and isinstance(private.public, rsa.RSAPublicKey), "only the public half is kept"
    assert parse_key({"kty": "oct", "k": "c2VjcmV0", "kid": "h"}) is None, "a shared secret is never a key"
    assert parse_key(rsa_jwk(use="enc")) is None
    assert parse_key(rsa_jwk(alg="HS256")) is None
    assert parse_key({"kty": "RSA", "n": "!!", "e": "AQAB"}) is None
    assert parse_key("not a key") is None


def test_settings_come_from_the_environment() -> None:
    settings = OAuthSettings.from_env({"NAFTIKO_OAUTH_TIMEOUT": "2.5", "NAFTIKO_OAUTH_MAX_KEYS": "3"})
    assert settings.timeout == 2.5 and settings.max_keys == 3 and settings.leeway == 60
    assert OAuthSettings.from_env({"NAFTIKO_OAUTH_LEEWAY": "0"}).leeway == 0
    for bad in ({"NAFTIKO_OAUTH_TIMEOUT": "soon"}, {"NAFTIKO_OAUTH_MAX_KEYS": "0"}, {"NAFTIKO_OAUTH_LEEWAY": "-1"}):
        with pytest.raises(NaftikoError, match="expects a positive number"):
            OAuthSettings.from_env(bad)


@pytest.fixture
def documents() -> Iterator[RecordingUpstream]:
    recorder = RecordingUpstream()
    with ThreadedServer(recorder) as url:
        recorder.url = url
        yield recorder


def test_fetch_is_bounded_in_size(documents: RecordingUpstream) -> None:
    settings = OAuthSettings(document_bytes=1000)
    documents.reply("GET", "/small", Reply(json={"keys": []}))
    assert fetch_document(documents.url + "/small", settings) == {"keys": []}
    documents.reply("GET", "/big", Reply(body=b"[" + b"1," * 5000 + b"1]", headers={"content-length": "10002"}))
    with pytest.raises(FetchFailed, match="over 1000") as declared:
        fetch_document(documents.url + "/big", settings)
    assert declared.value.reachable
    documents.reply("GET", "/chunked", Reply(chunks=[b"[" + b"1," * 300] * 5 + [b"1]"]))
    with pytest.raises(FetchFailed, match="more than 1000 bytes"):
        fetch_document(documents.url + "/chunked", settings)
    documents.reply("GET", "/missing", Reply(status=404, json={}))
    with pytest.raises(FetchFailed, match="HTTP 404"):
        fetch_document(documents.url + "/missing", settings)
    documents.reply("GET", "/html", Reply(body=b"<html>", content_type="text/html"))
    with pytest.raises(FetchFailed, match="did not answer JSON"):
        fetch_document(documents.url + "/html", settings)
    with pytest.raises(FetchFailed, match="not an http"):
        fetch_document("file:///etc/passwd", settings)
    documents.reply("GET", "/moved", Reply(status=302, headers={"location": "ftp://127.0.0.1/jwks"}))
    with pytest.raises(FetchFailed, match="redirects to a URL that is not http"):
        fetch_document(documents.url + "/moved", settings)
    documents.reply("GET", "/there", Reply(status=302, headers={"location": "/small"}))
    assert fetch_document(documents.url + "/there", settings) == {"keys": []}
    with_user = documents.url.replace("http://", "http://user:pa55@") + "/missing"
    with pytest.raises(FetchFailed) as caught:
        fetch_document(with_user, settings)
    assert "pa55" not in str(caught.value) and "user" not in str(caught.value)


def test_fetch_is_bounded_in_time() -> None:
    """A server that trickles its answer one byte at a time is cut off at the total deadline."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n")
        while not stop.is_set():
            try:
                conn.sendall(b" ")
            except OSError:
                break
            time.sleep(0.05)
        conn.close()

    threading.Thread(target=trickle, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(FetchFailed, match="took longer than 0.5 s") as caught:
            fetch_document(f"http://127.0.0.1:{listener.getsockname()[1]}/jwks", OAuthSettings(timeout=0.5))
    finally:
        stop.set()
        listener.close()
    assert time.monotonic() - started < 1.5
    assert not caught.value.reachable


class FakeIssuer:
    """The fetch function of IssuerKeys, answering from a dict and counting calls (unit tests only)."""

    def __init__(self, keys: list[dict[str, Any]], *, issuer: str = ISSUER) -> None:
        self.keys, self.issuer = keys, issuer
        self.calls: list[str] = []
        self.down = False

    def __call__(self, url: str, settings: OAuthSettings) -> Any:
        self.calls.append(url)
        if self.down:
            raise FetchFailed(f"{url} cannot be reached: connection refused", reachable=False)
        if url == "https://as.example/.well-known/oauth-authorization-server/tenant":
            return {"issuer": self.issuer, "jwks_uri": "https://as.example/jwks"}
        if url == "https://as.example/jwks":
            return {"keys": self.keys}
        raise FetchFailed(f"{url} answered HTTP 404", reachable=True)


async def test_keys_are_fetched_once_refetched_for_a_new_kid_and_rate_limited() -> None:
    fake = FakeIssuer([rsa_jwk("k1")])
    keys = IssuerKeys(ISSUER, OAuthSettings(refetch_interval=0.2), fake)
    found = await asyncio.gather(*(keys.key("k1", "RS256") for _ in range(10)))
    assert {key.kid for key in found} == {"k1"}
    assert len(fake.calls) == 2, "metadata and JWKS once, however many requests wait for them"

    with pytest.raises(Rejected, match="does not publish"):
        await keys.key("k2", "RS256")  # too soon after the last fetch: no refetch
    assert len(fake.calls) == 2
    fake.keys = [rsa_jwk("k1"), rsa_jwk("k2")]
    await asyncio.sleep(0.25)
    assert (await keys.key("k2", "RS256")).kid == "k2"
    assert fake.calls[-1] == "https://as.example/jwks" and len(fake.calls) == 3
    with pytest.raises(Rejected, match="no key of the issuer checks ES256"):
        await keys.key("k2", "ES256")


async def test_a_token_without_kid_needs_exactly_one_fitting_key() -> None:
    ec_jwk = json.loads(ECAlgorithm.to_jwk(EC_KEY.public_key()))
    keys = IssuerKeys(ISSUER, OAuthSettings(), FakeIssuer([rsa_jwk("k1"), ec_jwk]))
    assert (await keys.key(None, "ES384")).kid is None
    assert (await keys.key(None, "RS256")).kid == "k1"
    keys = IssuerKeys(ISSUER, OAuthSettings(), FakeIssuer([rsa_jwk("k1"), rsa_jwk("k2")]))
    with pytest.raises(Rejected):
        await keys.key(None, "RS256")


async def test_an_issuer_that_goes_down_keeps_its_keys_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeIssuer([rsa_jwk("k1")])
    keys = IssuerKeys(ISSUER, OAuthSettings(refetch_interval=0.05, keys_max_age=0.05), fake)
    await keys.key("k1", "RS256")
    fake.down = True
    caplog.set_level(logging.WARNING, "naftiko.oauth")
    for _ in range(5):
        await asyncio.sleep(0.06)
        assert (await keys.key("k1", "RS256")).kid == "k1", "stale keys stay in use while the issuer is down"
        assert keys.refreshing is not None, "a stale key set is refreshed in the background"
        await keys.refreshing
    with pytest.raises(IssuerUnavailable, match="cannot be reached"):
        await asyncio.sleep(0.06)
        await keys.key("k7", "RS256")  # a new kid cannot be told from a forged one: 503, not 401
    assert [r.getMessage() for r in caplog.records if "cannot fetch" in r.getMessage()] == [
        f"oauth2: cannot fetch the keys of {ISSUER}: https://as.example/jwks cannot be reached: connection refused;"
        " the keys fetched before (1) stay in use"
    ]
    fake.down = False
    await asyncio.sleep(0.06)
    assert (await keys.key("k1", "RS256")).kid == "k1"
    assert keys.refreshing is not None
    await keys.refreshing
    assert any("answers again" in r.getMessage() for r in caplog.records)


async def test_metadata_must_name_the_declared_issuer() -> None:
    keys = IssuerKeys(ISSUER, OAuthSettings(), FakeIssuer([rsa_jwk()], issuer="https://evil.example"))
    with pytest.raises(IssuerUnavailable, match="names the issuer 'https://evil.example'"):
        await keys.key("k1", "RS256")


async def test_a_jwks_past_the_key_cap_is_cut(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeIssuer([rsa_jwk(f"k{i}") for i in range(5)])
    keys = IssuerKeys(ISSUER, OAuthSettings(max_keys=2, refetch_interval=0), fake)
    await keys.key("k1", "RS256")
    assert sorted(k for k in keys.keys if k) == ["k0", "k1"]
    assert "holds 5 keys; the first 2 are used" in caplog.text
    with pytest.raises(Rejected):
        await keys.key("k4", "RS256")


def token(**claims: Any) -> bytes:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": SERVER.resource, "exp": now + 60, "scope": "read", **claims}
    return jwt.encode(body, RSA_KEY, algorithm="RS256", headers={"kid": "k1"}).encode()


async def test_verified_tokens_are_remembered_until_the_keys_change() -> None:
    fake = FakeIssuer([rsa_jwk("k1")])
    verifier = TokenVerifier(SERVER, OAuthSettings(refetch_interval=0), IssuerKeys(ISSUER, OAuthSettings(), fake))
    good = token()
    assert not verifier.remembered(good)
    await verifier.verify(good)
    assert verifier.remembered(good)
    short = token(exp=int(time.time()) - 1)  # within the leeway: accepted, never remembered past exp
    await verifier.verify(short)
    assert not verifier.remembered(short)
    verifier.keys.version += 1
    assert not verifier.remembered(good), "a new key set checks every token again"


async def test_the_cache_is_bounded() -> None:
    keys = IssuerKeys(ISSUER, OAuthSettings(), FakeIssuer([rsa_jwk("k1")]))
    verifier = TokenVerifier(SERVER, OAuthSettings(cache_entries=3), keys)
    await verifier.verify(token(jti="warm-up"))
    tokens = [token(jti=str(i)) for i in range(5)]
    for item in tokens:
        await verifier.verify(item)
    assert [verifier.remembered(item) for item in tokens] == [False, False, True, True, True]


async def test_an_overlong_or_oddly_signed_token_is_not_parsed() -> None:
    keys = IssuerKeys(ISSUER, OAuthSettings(), FakeIssuer([rsa_jwk("k1")]))
    verifier = TokenVerifier(SERVER, OAuthSettings(token_bytes=100), keys)
    with pytest.raises(Rejected, match="longer than 100 bytes"):
        await verifier.verify(token())
    assert keys.version == 0, "no fetch for a token refused before its signature"


async def test_metadata_needs_no_token_and_lifespan_passes_through() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    auth = ResourceServerAuth(app, SERVER, mcp=True, verifier=TokenVerifier(SERVER, OAuthSettings()))
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        sent.clear()
        await auth({"type": "http", "method": "GET", "path": path, "headers": []}, None, send)
        assert sent[0]["status"] == 200 and json.loads(sent[1]["body"])["resource"] == SERVER.resource
    sent.clear()
    await auth(
        {"type": "http", "method": "POST", "path": "/.well-known/oauth-protected-resource", "headers": []}, None, send
    )
    assert sent[0]["status"] == 401
    await auth({"type": "lifespan"}, None, send)
    assert seen == ["lifespan"]


async def test_hostile_tokens_are_only_ever_rejected() -> None:
    """Whatever the bytes after `Bearer`, the answer is a Rejected (a 400 or 401), never another exception."""

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    keys = IssuerKeys(ISSUER, OAuthSettings(), FakeIssuer([rsa_jwk("k1")]))
    verifier = TokenVerifier(SERVER, OAuthSettings(), keys)
    good = token()
    head, payload, signature = good.split(b".")
    rs256 = b64(b'{"alg":"RS256","kid":"k1"}')
    hostile = [
        b"",
        b"a.b.c",
        b"....",
        b64(b"[1]") + b"." + payload + b"." + signature,
        b64(b'{"alg":"RS256","kid":["k1"]}') + b"." + payload + b"." + signature,
        b64(b'{"alg":"RS256","kid":"k1","crit":["x"]}') + b"." + payload + b"." + signature,
        rs256 + b"." + b64(b"not json") + b"." + signature,
        rs256 + b"." + b64(b'{"exp":"soon"}') + b"." + signature,
        rs256 + b"." + payload + b"." + b"%%%",
        head + b"." + payload + b"." + signature[:-4],
        head + b"." + payload,
        good + b".extra",
    ]
    generator = random.Random(14)
    alphabet = b"ABCxyz0189-._~+/="
    hostile += [bytes(generator.choice(alphabet) for _ in range(generator.randrange(1, 300))) for _ in range(300)]
    hostile += [good[:cut] for cut in range(0, len(good), 7)]
    for item in hostile:
        with pytest.raises(Rejected) as caught:
            await verifier.verify(item)
        assert caught.value.status in (400, 401), item
