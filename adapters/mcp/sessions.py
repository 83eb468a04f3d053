"""The handshake era's sessions over HTTP: an `Mcp-Session-Id` per `initialize`, holding its version.

`initialize` opens a session (`Sessions.open`, whose id `http.McpHttpApp` sends back in the
`Mcp-Session-Id` header); a request that names an unknown or ended session gets 404 (the
client re-initializes), and DELETE ends one. A request with *no* session id is served anyway:
the Java reference engine never checks sessions and some clients call `tools/call` without a
handshake; our sessions hold nothing but the negotiated version, so requiring them would only
break those clients. The modern era is stateless and has no sessions.
"""

from __future__ import annotations

import secrets
from typing import Any, Final

from .eras import DEFAULT_LEGACY_VERSION

__all__ = ["SESSION_HEADER", "Sessions"]

SESSION_HEADER: Final = b"mcp-session-id"


class Sessions:
    """The open sessions' negotiated versions, the oldest forgotten beyond `max_sessions`."""

    __slots__ = ("_versions", "_max")

    def __init__(self, max_sessions: int) -> None:
        self._versions: dict[str, str] = {}  # session id -> negotiated legacy version
        self._max = max_sessions

    def version(self, session_id: str | None, header: str | None, message: Any) -> str | None:
        """The version a handshake-era request speaks: its session's, else its header's; None for an unknown session."""
        is_initialize = isinstance(message, dict) and message.get("method") == "initialize"
        if session_id is not None and not is_initialize:
            return self._versions.get(session_id)
        return header or DEFAULT_LEGACY_VERSION

    def open(self, version: str) -> str:
        """A new session's id."""
        while len(self._versions) >= self._max:  # forget the oldest session
            del self._versions[next(iter(self._versions))]
        session_id = secrets.token_urlsafe(24)
        self._versions[session_id] = version
        return session_id

    def end(self, session_id: str) -> bool:
        """Whether the session was open (it no longer is)."""
        return self._versions.pop(session_id, None) is not None
