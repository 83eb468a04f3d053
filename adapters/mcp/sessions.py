"""The handshake era's sessions over HTTP: an `Mcp-Session-Id` per `initialize` that any instance accepts.

`initialize` opens a session (`Sessions.open`, whose id `http.McpHttpApp` sends back in the
`Mcp-Session-Id` header); a request that names an unknown, tampered, expired or ended session
gets 404 (the client re-initializes), and DELETE ends one. A request with *no* session id is
served anyway: the Java reference engine never checks sessions and some clients call
`tools/call` without a handshake; a session holds nothing but the negotiated version (the
server sends no requests of its own, so no client capability changes what it does), so
requiring one would only break those clients. The modern era is stateless and has no sessions.

No store is shared between processes or machines, so the id carries the session itself and is
signed: behind a load balancer, consecutive requests of one session may reach any instance
started with the same secret (`NAFTIKO_SESSION_SECRET` for `naftiko serve`). Without one, each
app draws its own at start, which is right for a single process; workers that share a port
must be given one secret between them. The id is URL-safe base64 (no padding; 63 characters
for the versions we speak) of

    format (1 byte, 1) | issued, expires (uint32 big-endian, Unix seconds) | nonce (12 random bytes)
    | negotiated version (ASCII) | HMAC-SHA256 of all that, cut to 16 bytes

with a key derived from the secret and the server's name, checked in constant time. The
issuing instance's TTL is in the token, so instances configured differently still agree on
when a session ends. There is no sliding renewal (the protocol cannot hand a client a new id
mid-session): past its expiry a session is a 404 and the client opens another.

DELETE puts the id on this instance's deny-list until it expires, so an ended session is
refused by the instances that saw the DELETE; the others keep accepting it until its expiry.
That is the price of holding no shared store, and harmless: an ended session's id still names
only its version, never a caller's data or credentials. The deny-list is bounded
(`max_ended`): past it, the earliest ended id is dropped first (and accepted again here).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import logging
import re
import secrets
import struct
import time
from typing import Any, Final
from collections.abc import Callable

from .eras import DEFAULT_LEGACY_VERSION, LEGACY_VERSIONS

__all__ = ["DEFAULT_SESSION_TTL", "SESSION_HEADER", "Sessions"]

logger = logging.getLogger(__name__)

SESSION_HEADER: Final = b"mcp-session-id"
#: How long a session id is accepted after `initialize`, in seconds.
DEFAULT_SESSION_TTL: Final = 24 * 3600.0

_FORMAT: Final = 1
_HEAD: Final = struct.Struct(">BII")  # format, issued, expires
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16
_MIN_RAW: Final = _HEAD.size + _NONCE_BYTES + 1 + _TAG_BYTES
_MAX_CHARS: Final = 128  # far above any id we mint; anything longer is refused before decoding
_KEY_CONTEXT: Final = b"naftiko mcp session id v1"
_MIN_SECRET_BYTES: Final = 16
_ID_FORM: Final = re.compile(rf"[A-Za-z0-9_-]{{{_MIN_RAW * 4 // 3},{_MAX_CHARS}}}")

_Session = tuple[str, int, bytes]  # negotiated version, expiry (Unix seconds), signature tag


class Sessions:
    """Signed handshake-era session ids, and the deny-list of the ones ended here.

    `secret` is shared by the instances that must accept each other's sessions (None: one drawn
    at random, for this object alone); `scope` names the server, so ids do not pass between servers.
    `ttl` is how long an id is accepted after it was opened, in seconds; `max_ended` bounds the
    deny-list and `max_verified` the cache of ids whose signature was already checked (a check
    costs about 3 µs, a cached one 0.3 µs).
    """

    __slots__ = ("_mac", "_ttl", "_ended", "_max_ended", "_verified", "_max_verified", "_clock")

    def __init__(
        self,
        secret: bytes | None = None,
        *,
        scope: str = "",
        ttl: float = DEFAULT_SESSION_TTL,
        max_ended: int = 10_000,
        max_verified: int = 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if secret is None:
            secret = secrets.token_bytes(32)
        elif len(secret) < _MIN_SECRET_BYTES:
            logger.warning(
                "the MCP session secret is %d bytes long; use at least %d random bytes", len(secret), _MIN_SECRET_BYTES
            )
        if ttl < 1 or max_ended < 0 or max_verified < 0:
            raise ValueError("the session ttl must be at least 1 s, max_ended and max_verified not negative")
        # A key of our own for each server (`scope`, its name): a secret used elsewhere too signs nothing
        # here, and a session of one MCP server is no session of another served with the same secret.
        key = hmac.digest(secret, _KEY_CONTEXT + b"\0" + scope.encode(), hashlib.sha256)
        self._mac = hmac.new(key, digestmod=hashlib.sha256)  # copied per id: the keyed pads are computed once
        self._ttl = int(ttl)
        self._ended: dict[bytes, int] = {}  # tag of an ended id -> its expiry, in the order ended
        self._max_ended = max_ended
        self._verified: dict[str, _Session] = {}  # ids whose signature was checked, the oldest dropped first
        self._max_verified = max_verified
        self._clock = clock

    def version(self, session_id: str | None, header: str | None, message: Any) -> str | None:
        """The version a handshake-era request speaks: its session's, else its header's; None for an unknown session."""
        is_initialize = isinstance(message, dict) and message.get("method") == "initialize"
        if session_id is not None and not is_initialize:
            found = self._live(session_id)
            return None if found is None else found[0]
        return header or DEFAULT_LEGACY_VERSION

    def open(self, version: str) -> str:
        """A new session's id."""
        issued = int(self._clock())
        body = _HEAD.pack(_FORMAT, issued, issued + self._ttl) + secrets.token_bytes(_NONCE_BYTES) + version.encode()
        return _encode(body + self._tag(body))

    def end(self, session_id: str) -> bool:
        """Whether the session was open (here it no longer is)."""
        found = self._live(session_id)
        if found is None:
            return False
        _, expires, tag = found
        self._verified.pop(session_id, None)
        ended = self._ended
        now = self._clock()
        while ended and (len(ended) >= self._max_ended or next(iter(ended.values())) <= now):
            del ended[next(iter(ended))]  # the earliest ended first, or one past its expiry anyway
        if self._max_ended:
            ended[tag] = expires
        return True

    def _live(self, session_id: str) -> _Session | None:
        """The version, expiry and tag of a valid id that has neither expired nor been ended here."""
        found = self._verified.get(session_id)
        if found is None:
            found = self._verify(session_id)
            if found is None or found[2] in self._ended:
                return None
            verified = self._verified  # never holds an ended id: `end` takes it out
            while verified and len(verified) >= self._max_verified:
                del verified[next(iter(verified))]
            if self._max_verified:
                verified[session_id] = found
        return found if found[1] > self._clock() else None

    def _verify(self, session_id: str) -> _Session | None:
        """What a well-formed id signed with our key holds; None for anything else."""
        if not _ID_FORM.fullmatch(session_id):
            return None
        try:
            raw = binascii.a2b_base64(
                session_id.replace("-", "+").replace("_", "/") + "=" * (-len(session_id) % 4), strict_mode=True
            )
        except binascii.Error:
            return None
        if len(raw) < _MIN_RAW or _encode(raw) != session_id:  # one spelling only: unused bits zero
            return None
        body, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
        if not hmac.compare_digest(self._tag(body), tag):
            return None
        form, _, expires = _HEAD.unpack_from(body)
        version = body[_HEAD.size + _NONCE_BYTES :].decode("ascii", "replace")
        if form != _FORMAT or version not in LEGACY_VERSIONS:
            return None
        return version, expires, tag

    def _tag(self, body: bytes) -> bytes:
        mac = self._mac.copy()
        mac.update(body)
        return mac.digest()[:_TAG_BYTES]


def _encode(raw: bytes) -> str:
    """URL-safe base64 without padding (RFC 4648 section 5), as header-safe as a token can be."""
    return binascii.b2a_base64(raw, newline=False).decode().rstrip("=").replace("+", "-").replace("/", "_")
