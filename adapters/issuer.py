"""The authorization server an oauth2 block trusts: its metadata discovered, its signing keys fetched.

The issuer's metadata is discovered as RFC 8414 §3.1 and the MCP spec say (the OAuth well-known
URI inserted before the issuer's path, then OpenID Connect's inserted and appended), its `issuer`
must be the one declared, then its `jwks_uri` is fetched and kept for `keys_max_age` (then refreshed
in the background while requests go on with the keys they have). A token with an unknown `kid`
refetches the JWKS at most once per `refetch_interval`. Fetches use the standard library in a
worker thread (the event loop never waits on them), one at a time, bounded by a timeout, a total
deadline, a size cap and a key cap; a key set that cannot be fetched keeps the old keys in use.
The runtime's own upstream client is not used: it serves the consumes namespaces and is not part
of what the engine exports to adapters, and these fetches are rare. Only asymmetric keys are
kept (`ALGORITHMS`), so a public key can never serve as an HMAC secret.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Final
from urllib.parse import urlsplit

import jwt
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from ..engine import NaftikoError

__all__ = [
    "ALGORITHMS",
    "FetchFailed",
    "IssuerKeys",
    "IssuerUnavailable",
    "Key",
    "OAuthSettings",
    "Rejected",
    "discovery_urls",
    "fetch_document",
    "parse_key",
    "strip_slash",
]

log = logging.getLogger("naftiko.oauth")

#: The signature algorithms a token may use: asymmetric only, so a public key can never be an HMAC secret.
ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_RSA_ALGORITHMS: Final = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGORITHMS: Final = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_OKP_CURVES: Final = frozenset({"Ed25519", "Ed448"})
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


def strip_slash(uri: str) -> str:
    """An issuer or resource URI as compared: one trailing slash aside."""
    return uri[:-1] if uri.endswith("/") else uri


def discovery_urls(issuer: str) -> list[str]:
    """Where an issuer's metadata may be, in the order the MCP spec tries them (RFC 8414 §3.1, OIDC)."""
    parts = urlsplit(issuer)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = strip_slash(parts.path)
    if not path:
        return [f"{origin}/.well-known/oauth-authorization-server", f"{origin}/.well-known/openid-configuration"]
    return [
        f"{origin}/.well-known/oauth-authorization-server{path}",
        f"{origin}/.well-known/openid-configuration{path}",
        f"{origin}{path}/.well-known/openid-configuration",
    ]


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
            if not isinstance(named, str) or strip_slash(named) != strip_slash(self.issuer):
                problems.append(f"{_shown(url)} names the issuer {str(named)[:200]!r}, not {self.shown!r}")
                continue
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str) or urlsplit(jwks_uri).scheme not in ("http", "https"):
                problems.append(f"{_shown(url)} has no http(s) 'jwks_uri'")
                continue
            return jwks_uri
        raise FetchFailed("; ".join(problems), reachable=True)
