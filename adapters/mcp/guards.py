"""Who may reach the MCP endpoint over HTTP: its paths, the Host and Origin allow-lists, JSON only.

`Guard.refusal` turns a request away before its method is looked at: a path that is not the
endpoint (404), a `Host` that is not allowed (421: DNS rebinding), a present `Origin` that is
neither allowed, nor same-origin, nor one the block's CORS allows (403; `adapters.cors` marks
those in the scope, so the two checks agree on every origin, `*` included). Allowed origins are
compared as browsers write them (`https://App.Example:443` is `https://app.example`).
`http.McpHttpApp` then reads a POST only when `accepts_json` and `is_json_type` agree (406, 415):
a page on any origin may send `text/plain` without a CORS preflight, and must not reach a tool
that way.
"""

from __future__ import annotations

from typing import Any, Final
from collections.abc import Iterable, MutableMapping
from urllib.parse import urlsplit

from ..cors import ALLOWED_ORIGIN, origin_key
from .headers import Headers

__all__ = ["DEFAULT_ALLOWED_HOSTS", "Guard", "accepts_json", "is_json_type"]

DEFAULT_ALLOWED_HOSTS: Final = ("localhost", "127.0.0.1", "[::1]")
_LOCAL_HOSTNAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})
_HOST_VERDICTS: Final = 64  # Host values whose check is remembered


class Guard:
    """The endpoint's paths and allow-lists, as `McpHttpApp` documents its options."""

    __slots__ = ("_paths", "_any_host", "_hosts_exact", "_hosts_any_port", "_host_verdicts", "_origins", "_any_origin")

    def __init__(
        self, paths: Iterable[str], allowed_hosts: Iterable[str] | None, allowed_origins: Iterable[str] | None
    ) -> None:
        self._paths = frozenset(paths)
        hosts = [h.strip().lower() for h in (allowed_hosts if allowed_hosts is not None else DEFAULT_ALLOWED_HOSTS)]
        self._any_host = "*" in hosts
        self._hosts_exact = frozenset(h for h in hosts if _has_port(h))
        self._hosts_any_port = frozenset(h for h in hosts if not _has_port(h))
        self._host_verdicts: dict[str, bool] = {}
        self._origins: frozenset[str] | None = None
        self._any_origin = False
        if allowed_origins is not None:
            origins = [o.strip().lower().rstrip("/") for o in allowed_origins]
            self._any_origin = "*" in origins
            self._origins = frozenset(origins) | {key for o in origins if (key := origin_key(o)) is not None}

    def refusal(self, scope: MutableMapping[str, Any], headers: Headers) -> tuple[int, str] | None:
        """Why a request is turned away before its method is looked at (wrong path, Host, Origin)."""
        if _route_path(scope) not in self._paths:
            return 404, "Not Found: the MCP endpoint is /mcp"
        if not self._host_allowed(headers.host):
            return 421, "Invalid Host header"
        if (
            headers.origin is not None
            and ALLOWED_ORIGIN not in scope
            and not self._origin_allowed(headers.origin, headers.host)
        ):
            return 403, "Invalid Origin header"
        return None

    def _host_allowed(self, host: str | None) -> bool:
        if host is None or self._any_host:
            return True  # no Host header: nothing a rebinding attack could have set
        verdict = self._host_verdicts.get(host)
        if verdict is None:
            lowered = host.lower()
            verdict = (
                lowered in self._hosts_any_port
                or lowered in self._hosts_exact
                or _strip_port(lowered) in self._hosts_any_port
            )
            if len(self._host_verdicts) < _HOST_VERDICTS:  # a client can send any Host: keep few
                self._host_verdicts[host] = verdict
        return verdict

    def _origin_allowed(self, origin: str, host: str | None) -> bool:
        if self._any_origin:
            return True
        origin = origin.lower().rstrip("/")
        if self._origins is not None and (origin in self._origins or origin_key(origin) in self._origins):
            return True
        try:
            parts = urlsplit(origin)
            hostname, netloc = parts.hostname, parts.netloc
        except ValueError:
            return False
        if host is not None and netloc and netloc == host.lower():
            return True  # same origin as the (already validated) Host
        return self._origins is None and parts.scheme in ("http", "https") and hostname in _LOCAL_HOSTNAMES


def accepts_json(accept: str | None) -> bool:
    """Only an Accept header that clearly rules JSON out is refused."""
    if not accept or "json" in accept or "*/*" in accept:
        return True
    return any(part.split(";", 1)[0].strip().lower() == "application/*" for part in accept.split(","))


def is_json_type(content_type: bytes | None) -> bool:
    """`application/json`, with parameters (a charset) or not, in any case."""
    if content_type == b"application/json":
        return True
    if content_type is None:
        return False
    return content_type.split(b";", 1)[0].strip().lower() == b"application/json"


def _route_path(scope: MutableMapping[str, Any]) -> str:
    """The path below any mount point (ASGI `path` includes `root_path`)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


def _has_port(host: str) -> bool:
    return host.rsplit("]", 1)[-1].count(":") == 1


def _strip_port(host: str) -> str:
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end > 0 else host
    return host.split(":", 1)[0]
