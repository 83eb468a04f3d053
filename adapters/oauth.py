"""An exposed block as an OAuth 2 resource server: JWT access tokens checked against their issuer's keys.

This is what the MCP authorization spec asks of an MCP server (and what a REST block declaring
`type: oauth2` gets too):

- RFC 9728 protected-resource metadata, served without authentication at
  `/.well-known/oauth-protected-resource`, at that path followed by the declared `resource`'s path,
  and, for an MCP block, at `/.well-known/oauth-protected-resource/mcp`;
- every other request needs `Authorization: Bearer <JWT>` (RFC 6750 §2.1; never the query). The
  token's signature must verify with a key of the issuer's JWKS, and only with an asymmetric
  algorithm (`ALGORITHMS`: never `none`, never HS*); `iss` must be the issuer (a trailing slash
  aside), `aud` must hold `audience` or else `resource`, and `exp` must be present and not past;
  `nbf` and `iat` must not be in the future, with `leeway` seconds (60) of clock skew allowed;
- a token must carry every scope the block declares (in `scope`, space-separated, or `scp`, a
  list), as the reference engine requires: the `scope` attribute of RFC 6750 §3 lists the scopes
  needed to reach the resource, and the 401 challenge sends it, so a client asks for all of them;
- a missing token is a 401 with `WWW-Authenticate: Bearer resource_metadata="…"` (and `scope`),
  a bad one a 401 with `error="invalid_token"` too, a malformed header a 400 `invalid_request`,
  a token without a needed scope a 403 `insufficient_scope`; the body is JSON as everywhere;
- the metadata's URL in the challenge is built from the declared `resource`, never from the
  request's `Host` or `X-Forwarded-*` headers: behind a proxy those are whatever a caller or the
  proxy wrote, and a client follows the URL to find where to send its credentials.

Keys: the issuer's metadata is discovered as RFC 8414 §3.1 and the MCP spec say (the OAuth well-known
URI inserted before the issuer's path, then OpenID Connect's inserted and appended), its `issuer`
must be the one declared, then its `jwks_uri` is fetched and kept for `keys_max_age` (then refreshed
in the background while requests go on with the keys they have). A token with an unknown `kid`
refetches the JWKS at most once per `refetch_interval`. Fetches use the standard
library in a worker thread (the event loop never waits on them), one at a time, bounded by a
timeout, a total deadline, a size cap and a key cap; a key set that cannot be fetched keeps the old
keys in use. An issuer that cannot be reached while no usable key is known is a 503 that says so,
logged once per outage. The runtime's own upstream client is not used: it serves the consumes
namespaces and is not part of what the engine exports to adapters, and these fetches are rare.

Per request, a verified token is remembered (a bounded LRU keyed by the token, never past its
`exp` nor `cache_seconds`, cleared when the key set changes), so a client sending the same token
costs 1.3-1.5 µs through this middleware instead of a full check (120-155 µs here, RS256 or ES256).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import re
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, fields, replace
from typing import Any, Final
from urllib.parse import urlsplit

import jwt
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from ..engine import NaftikoError, ResourceServer

__all__ = ["ALGORITHMS", "OAuthSettings", "ResourceServerAuth", "IssuerKeys", "metadata_paths"]

log = logging.getLogger("naftiko.oauth")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: The signature algorithms a token may use: asymmetric only, so a public key can never be an HMAC secret.
ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_RSA_ALGORITHMS: Final = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGORITHMS: Final = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_OKP_CURVES: Final = frozenset({"Ed25519", "Ed448"})
WELL_KNOWN: Final = "/.well-known/oauth-protected-resource"
_TOKEN68: Final = re.compile(rb"[A-Za-z0-9\-._~+/]+=*")
_ENV_PREFIX: Final = "NAFTIKO_OAUTH_"


@dataclass(frozen=True, slots=True)
class OAuthSettings:
    """The bounds and clocks of token checking; each field is `NAFTIKO_OAUTH_<FIELD>` in the environment."""

    timeout: float = 10.0
    """Seconds a fetch of the issuer's metadata or keys may wait (to connect, for each read) and take for its body."""
    document_bytes: int = 512 * 1024
    """The largest metadata or JWKS document read."""
    max_keys: int = 100
    """The most keys of a JWKS that are used (the rest are ignored, with a warning)."""
    refetch_interval: float = 30.0
    """At most one fetch per this many seconds, for an unknown `kid` or after a failed fetch."""
    keys_max_age: float = 300.0
    """Seconds a fetched key set is used before the next token refreshes it (in the background)."""
    leeway: float = 60.0
    """Seconds of clock skew allowed for `exp`, `nbf` and `iat`."""
    token_bytes: int = 16 * 1024
    """The longest bearer token looked at; longer is a 401 without parsing it."""
    cache_entries: int = 10_000
    """Verified tokens remembered (least recently used dropped first)."""
    cache_seconds: float = 300.0
    """The longest a verified token is remembered (never past its `exp`)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OAuthSettings:
        """Defaults, then `NAFTIKO_OAUTH_*` variables (`NAFTIKO_OAUTH_TIMEOUT=5`)."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = env.get(_ENV_PREFIX + field.name.upper())
            if raw is None:
                continue
            kind = int if isinstance(getattr(cls(), field.name), int) else float
            try:
                value = kind(raw)
            except ValueError:
                value = -1
            if value < 0 or (value == 0 and field.name != "leeway"):
                raise NaftikoError(f"{_ENV_PREFIX}{field.name.upper()} expects a positive number; got '{raw}'")
            values[field.name] = value
        return replace(cls(), **values)


class Rejected(Exception):
    """The request's token is not good enough: control flow at this edge, answered as RFC 6750 says."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


class IssuerUnavailable(Exception):
    """No key to check the token with, because the issuer's metadata or keys cannot be fetched."""


class FetchFailed(Exception):
    """One fetch of a metadata or JWKS document failed; `reachable` when the issuer answered at all."""

    def __init__(self, message: str, *, reachable: bool) -> None:
        super().__init__(message)
        self.reachable = reachable


def _strip(uri: str) -> str:
    return uri[:-1] if uri.endswith("/") else uri


def discovery_urls(issuer: str) -> list[str]:
    """Where an issuer's metadata may be, in the order the MCP spec tries them (RFC 8414 §3.1, OIDC)."""
    parts = urlsplit(issuer)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = _strip(parts.path)
    if not path:
        return [f"{origin}/.well-known/oauth-authorization-server", f"{origin}/.well-known/openid-configuration"]
    return [
        f"{origin}/.well-known/oauth-authorization-server{path}",
        f"{origin}/.well-known/openid-configuration{path}",
        f"{origin}{path}/.well-known/openid-configuration",
    ]


def metadata_paths(resource: str, *, mcp: bool) -> tuple[str, tuple[str, ...]]:
    """The metadata's absolute URL (from the declared `resource`) and every path it is served at."""
    parts = urlsplit(resource)
    suffix = _strip(parts.path)
    url = f"{parts.scheme}://{parts.netloc}{WELL_KNOWN}{suffix}"
    paths = [WELL_KNOWN, WELL_KNOWN + suffix]
    if mcp:
        paths.append(WELL_KNOWN + "/mcp")
    return url, tuple(dict.fromkeys(paths))


class _HttpRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects followed to http(s) only (urllib would follow one to ftp://)."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise FetchFailed(f"{_shown(req.full_url)} redirects to a URL that is not http(s)", reachable=True)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER: Final = urllib.request.build_opener(_HttpRedirects)


def _shown(url: str) -> str:
    """`url` for a message: without any user or password it holds."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def fetch_document(url: str, settings: OAuthSettings) -> Any:
    """GET one JSON document, bounded in time and size (runs in a worker thread)."""
    shown = _shown(url)
    if urlsplit(url).scheme not in ("http", "https"):
        raise FetchFailed(f"{shown} is not an http(s) URL", reachable=True)
    deadline = time.monotonic() + settings.timeout
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "naftiko"})
    try:
        with _OPENER.open(request, timeout=settings.timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > settings.document_bytes:
                raise FetchFailed(f"{shown} answered {declared} bytes, over {settings.document_bytes}", reachable=True)
            body = bytearray()
            while chunk := response.read1(65536):
                body += chunk
                if len(body) > settings.document_bytes:
                    raise FetchFailed(f"{shown} answered more than {settings.document_bytes} bytes", reachable=True)
                if time.monotonic() > deadline:
                    raise FetchFailed(f"{shown} took longer than {settings.timeout:g} s", reachable=False)
    except urllib.error.HTTPError as exc:
        raise FetchFailed(f"{shown} answered HTTP {exc.code}", reachable=True) from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise FetchFailed(f"{shown} cannot be reached: {reason}", reachable=False) from None
    try:
        return json.loads(bytes(body))
    except ValueError:
        raise FetchFailed(f"{shown} did not answer JSON", reachable=True) from None


@dataclass(frozen=True, slots=True)
class Key:
    """One verification key of the issuer, with the algorithms it may check."""

    kid: str | None
    algorithms: frozenset[str]
    public: Any


def parse_key(jwk: Any) -> Key | None:
    """A signing key from a JWK, or None for what tokens must never be checked with (oct, enc, unknown)."""
    if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
        return None
    kty, crv = jwk.get("kty"), jwk.get("crv")
    reader: type[RSAAlgorithm] | type[ECAlgorithm] | type[OKPAlgorithm]
    if kty == "RSA":
        algorithms, reader = _RSA_ALGORITHMS, RSAAlgorithm
    elif kty == "EC" and crv in _EC_ALGORITHMS:
        algorithms, reader = frozenset({_EC_ALGORITHMS[crv]}), ECAlgorithm
    elif kty == "OKP" and crv in _OKP_CURVES:
        algorithms, reader = frozenset({"EdDSA"}), OKPAlgorithm
    else:
        return None
    if "alg" in jwk:
        algorithms = algorithms & {jwk["alg"]}
    try:
        public = reader.from_jwk(jwk)
    except (jwt.InvalidKeyError, ValueError, TypeError, KeyError):
        return None
    if hasattr(public, "public_key"):  # a JWKS that leaks the private part: keep the public half only
        public = public.public_key()
    kid = jwk.get("kid")
    return Key(kid if isinstance(kid, str) else None, algorithms, public) if algorithms else None


class IssuerKeys:
    """The issuer's verification keys, discovered, fetched and refreshed within `OAuthSettings`."""

    def __init__(
        self,
        issuer: str,
        settings: OAuthSettings,
        fetch: Callable[[str, OAuthSettings], Any] = fetch_document,
    ) -> None:
        self.issuer, self.settings, self._fetch = issuer, settings, fetch
        self.shown = _shown(issuer)
        self.jwks_uri: str | None = None
        self.keys: dict[str | None, Key] = {}
        self.all: tuple[Key, ...] = ()
        self.version = 0  # bumped whenever the key set changes
        self._fetched = float("-inf")  # when the keys were last fetched successfully
        self._tried = float("-inf")  # when a fetch was last tried
        self._attempts = 0  # fetches ended, successful or not
        self.refreshing: asyncio.Task[None] | None = None  # the refresh of a stale key set, in the background
        self._failure: str | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None, alg: str) -> Key:
        """The key a token with this `kid` and `alg` is checked with; Rejected or IssuerUnavailable otherwise."""
        seen = self._attempts
        if not self.all:
            await self._refresh(seen)
        elif time.monotonic() - self._fetched > self.settings.keys_max_age and self.refreshing is None:
            self.refreshing = asyncio.create_task(self._refresh_stale(seen))  # this request goes on meanwhile
        found = self._find(kid, alg)
        if found is None and kid is not None and kid not in self.keys:
            await self._refresh(seen, unknown=True)
            found = self._find(kid, alg)
        if found is None:
            if not self.all:
                raise IssuerUnavailable(self._failure or f"the authorization server {self.shown} published no keys")
            if kid is not None and kid not in self.keys:
                if self._failure is not None:
                    raise IssuerUnavailable(self._failure)
                raise Rejected(
                    401, "invalid_token", "the access token is signed with a key the issuer does not publish"
                )
            raise Rejected(401, "invalid_token", f"no key of the issuer checks {alg} tokens of this kind")
        return found

    async def _refresh_stale(self, seen: int) -> None:
        try:
            await self._refresh(seen)
        finally:
            self.refreshing = None

    def _find(self, kid: str | None, alg: str) -> Key | None:
        if kid is not None:
            key = self.keys.get(kid)
            return key if key is not None and alg in key.algorithms else None
        fitting = [key for key in self.all if alg in key.algorithms]
        return fitting[0] if len(fitting) == 1 else None

    async def _refresh(self, seen: int, *, unknown: bool = False) -> None:
        """Fetch the keys again, one fetch at a time, unless one ended since the caller looked (`seen`
        attempts) or, for an unknown kid or after a failure, one was tried within `refetch_interval`."""
        async with self._lock:
            if self._attempts != seen:
                return  # the requests that waited for that fetch use its result
            if time.monotonic() - self._tried < self.settings.refetch_interval and (unknown or self._failure):
                return
            self._tried = time.monotonic()
            try:
                keys = await asyncio.to_thread(self._load)
            except FetchFailed as exc:
                self._fail(str(exc))
                return
            finally:
                self._attempts += 1
            if self._failure is not None:
                log.warning("oauth2: the authorization server %s answers again", self.shown)
            self._failure = None
            self._fetched = time.monotonic()
            if keys != self.all:
                self.all = keys
                self.keys = {key.kid: key for key in keys if key.kid is not None}
                self.version += 1

    def _fail(self, reason: str) -> None:
        self.jwks_uri = None  # discover again next time: the issuer may have moved its keys
        if self._failure is None:
            kept = f"; the keys fetched before ({len(self.all)}) stay in use" if self.all else ""
            log.warning("oauth2: cannot fetch the keys of %s: %s%s", self.shown, reason, kept)
        self._failure = f"the authorization server {self.shown} cannot be reached to check tokens ({reason})"

    def _load(self) -> tuple[Key, ...]:
        """Discover the JWKS URI if needed, then fetch and read the key set (in a worker thread)."""
        if self.jwks_uri is None:
            self.jwks_uri = self._discover()
        document = self._fetch(self.jwks_uri, self.settings)
        listed = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(listed, list):
            raise FetchFailed(f"{_shown(self.jwks_uri)} is not a JWK set (no 'keys' list)", reachable=True)
        if len(listed) > self.settings.max_keys:
            log.warning(
                "oauth2: %s holds %d keys; the first %d are used (NAFTIKO_OAUTH_MAX_KEYS)",
                _shown(self.jwks_uri),
                len(listed),
                self.settings.max_keys,
            )
        keys = tuple(key for key in map(parse_key, listed[: self.settings.max_keys]) if key is not None)
        if not keys:
            raise FetchFailed(f"{_shown(self.jwks_uri)} holds no signing key naftiko can use", reachable=True)
        return keys

    def _discover(self) -> str:
        problems = []
        for url in discovery_urls(self.issuer):
            try:
                metadata = self._fetch(url, self.settings)
            except FetchFailed as exc:
                if not exc.reachable:
                    raise
                problems.append(str(exc))
                continue
            if not isinstance(metadata, dict):
                problems.append(f"{_shown(url)} is not a JSON object")
                continue
            named = metadata.get("issuer")
            if not isinstance(named, str) or _strip(named) != _strip(self.issuer):
                problems.append(f"{_shown(url)} names the issuer {str(named)[:200]!r}, not {self.shown!r}")
                continue
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str) or urlsplit(jwks_uri).scheme not in ("http", "https"):
                problems.append(f"{_shown(url)} has no http(s) 'jwks_uri'")
                continue
            return jwks_uri
        raise FetchFailed("; ".join(problems), reachable=True)


class TokenVerifier:
    """The checks of one block's tokens, with the verified ones remembered."""

    def __init__(self, server: ResourceServer, settings: OAuthSettings, keys: IssuerKeys | None = None) -> None:
        self.settings = settings
        self.keys = keys or IssuerKeys(server.authorization_server, settings)
        self.audience = server.audience or server.resource
        issuer = _strip(server.authorization_server)
        self.issuers = [issuer, issuer + "/"]
        self.scopes = server.scopes
        self._cache: OrderedDict[bytes, float] = OrderedDict()
        self._cache_version = 0

    def remembered(self, token: bytes) -> bool:
        """Whether `token` was verified lately and has not expired since (the per-request fast path)."""
        if self._cache_version != self.keys.version:  # the key set changed: check every token again
            self._cache.clear()
            self._cache_version = self.keys.version
            return False
        until = self._cache.get(token)
        if until is None:
            return False
        if until > time.time():
            self._cache.move_to_end(token)
            return True
        del self._cache[token]
        return False

    async def verify(self, token: bytes) -> None:
        """Check `token` (the Authorization header's credentials) fully; Rejected or IssuerUnavailable if it
        cannot be accepted."""
        if len(token) > self.settings.token_bytes:
            raise Rejected(401, "invalid_token", f"the access token is longer than {self.settings.token_bytes} bytes")
        if not _TOKEN68.fullmatch(token):
            raise Rejected(400, "invalid_request", "the Authorization header does not hold a bearer token")
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError):
            raise Rejected(401, "invalid_token", "the access token is not a signed JWT") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS:
            raise Rejected(401, "invalid_token", f"tokens signed with {str(alg)[:20]!r} are not accepted")
        key = await self.keys.key(kid if isinstance(kid, str) else None, alg)
        claims = self._decode(token, key, alg)
        self._check_scopes(claims)
        self._remember(token, claims)

    def _decode(self, token: bytes, key: Key, alg: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.public,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuers,
                leeway=self.settings.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Rejected(401, "invalid_token", "the access token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Rejected(
                401, "invalid_token", "the access token is not valid yet (nbf or iat in the future)"
            ) from None
        except jwt.InvalidAudienceError:
            raise Rejected(401, "invalid_token", f"the access token is not meant for {self.audience} (aud)") from None
        except jwt.InvalidIssuerError:
            raise Rejected(401, "invalid_token", f"the access token was not issued by {self.issuers[0]}") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Rejected(401, "invalid_token", f"the access token has no '{exc.claim}' claim") from None
        except jwt.InvalidSignatureError:
            raise Rejected(401, "invalid_token", "the access token's signature does not verify") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise Rejected(401, "invalid_token", "the access token is malformed") from None
        return claims

    def _check_scopes(self, claims: Mapping[str, Any]) -> None:
        if not self.scopes:
            return
        granted = set(_scopes(claims.get("scope"))) | set(_scopes(claims.get("scp")))
        missing = [scope for scope in self.scopes if scope not in granted]
        if missing:
            raise Rejected(403, "insufficient_scope", f"the access token lacks the scope {' '.join(missing)}")

    def _remember(self, token: bytes, claims: Mapping[str, Any]) -> None:
        exp = claims.get("exp")
        until = min(float(exp) if isinstance(exp, (int, float)) else 0.0, time.time() + self.settings.cache_seconds)
        if self._cache_version != self.keys.version:  # verified with the keys just fetched
            self._cache.clear()
            self._cache_version = self.keys.version
        self._cache[token] = until
        if len(self._cache) > self.settings.cache_entries:
            self._cache.popitem(last=False)


def _scopes(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return ()


def _quoted(value: str) -> str:
    """A challenge parameter value (RFC 9110 quoted-string, no line breaks)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ") + '"'


class ResourceServerAuth:
    """ASGI middleware: the block's protected-resource metadata, and a valid access token for the rest."""

    def __init__(
        self,
        app: Any,
        server: ResourceServer,
        *,
        mcp: bool,
        settings: OAuthSettings | None = None,
        verifier: TokenVerifier | None = None,
    ) -> None:
        self.app = app
        self.settings = settings or OAuthSettings()
        self.verifier = verifier or TokenVerifier(server, self.settings)
        self.metadata_url, paths = metadata_paths(server.resource, mcp=mcp)
        self.metadata_paths = frozenset(paths)
        document: dict[str, Any] = {"resource": server.resource, "authorization_servers": [server.authorization_server]}
        if server.scopes:
            document["scopes_supported"] = list(server.scopes)
        document["bearer_methods_supported"] = ["header"]
        self.metadata = json.dumps(document).encode()
        self.challenge_tail = f"resource_metadata={_quoted(self.metadata_url)}"
        if server.scopes:
            self.challenge_tail += f", scope={_quoted(' '.join(server.scopes))}"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.metadata_paths and scope["method"] in ("GET", "HEAD"):
            await self._answer(send, 200, self.metadata, [(b"cache-control", b"public, max-age=300")])
            return
        try:
            token = _bearer(scope["headers"])
            if token is None:
                raise Rejected(401, "", "this server needs an OAuth 2 bearer access token")
            if not self.verifier.remembered(token):
                await self.verifier.verify(token)
        except Rejected as exc:
            await self._reject(send, exc)
            return
        except IssuerUnavailable as exc:
            body = {"error": {"type": "unavailable", "message": str(exc)}}
            retry = str(int(self.settings.refetch_interval)).encode()
            await self._answer(send, 503, json.dumps(body).encode(), [(b"retry-after", retry)])
            return
        await self.app(scope, receive, send)

    async def _reject(self, send: Send, exc: Rejected) -> None:
        challenge = "Bearer "
        if exc.error:
            challenge += f"error={_quoted(exc.error)}, error_description={_quoted(exc.description)}, "
        challenge += self.challenge_tail
        kind = {401: "unauthorized", 403: "forbidden"}.get(exc.status, "bad_request")
        body: dict[str, Any] = {"type": kind, "message": exc.description}
        if exc.error:
            body["oauthError"] = exc.error
        headers = [(b"www-authenticate", challenge.encode("latin-1", "replace"))]
        await self._answer(send, exc.status, json.dumps({"error": body}).encode(), headers)

    @staticmethod
    async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": body})


def _bearer(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The bearer credentials of the request (checked by `TokenVerifier.verify` unless remembered), None
    without them; Rejected (400) for two Authorization headers."""
    found = None
    for name, value in headers:
        if name == b"authorization":
            if found is not None:
                raise Rejected(400, "invalid_request", "the request has more than one Authorization header")
            found = value
    if found is None:
        return None
    scheme, _, credentials = found.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    return credentials.strip()
