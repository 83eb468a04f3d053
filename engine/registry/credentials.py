"""Client credentials of a consumes namespace that travel in the request: bearer, basic and API key.

`compile_auth` compiles the namespace's `authentication` once; `Auth.apply` renders it per call
(so credentials may use bindings or call parameters) into the headers, the query or the one
Cookie header. Digest and OAuth2 need exchanges with the server, so `engine.upstream.client`
handles those.
"""

from __future__ import annotations

import base64
from urllib.parse import quote

from ..spec.model import Authentication
from ..templates import Template
from .params import Scope


class Auth:
    """Client credentials, rendered per call so they may use bindings or call parameters."""

    __slots__ = ("kind", "templates", "placement", "key")

    def __init__(self, auth: Authentication) -> None:
        self.kind = auth.type
        self.placement = auth.placement or "header"
        self.key = auth.key
        raw = {"token": auth.token, "username": auth.username, "password": auth.password, "value": auth.value}
        self.templates = {k: Template.compile(v) for k, v in raw.items() if v is not None}

    def names(self) -> set[str]:
        return {name for t in self.templates.values() for name in t.names}

    def apply(self, scope: Scope, headers: list[tuple[str, str]], query: list[tuple[str, str]]) -> None:
        text = {k: t.render(scope) for k, t in self.templates.items()}
        if self.kind == "bearer":
            headers.append(("Authorization", f"Bearer {text['token']}"))
        elif self.kind == "basic":
            pair = f"{text['username']}:{text['password']}".encode()
            headers.append(("Authorization", "Basic " + base64.b64encode(pair).decode()))
        elif self.kind == "apikey" and self.key:
            if self.placement == "cookie":
                _add_cookie(headers, f"{self.key}={quote(text['value'], safe='')}")
            else:
                (query if self.placement == "query" else headers).append((self.key, text["value"]))


def _add_cookie(headers: list[tuple[str, str]], pair: str) -> None:
    """One Cookie header per request (RFC 6265), so a cookie key joins the parameters' cookies."""
    for index, (name, value) in enumerate(headers):
        if name.lower() == "cookie":
            headers[index] = (name, f"{value}; {pair}")
            return
    headers.append(("Cookie", pair))


def compile_auth(auth: Authentication | None) -> Auth | None:
    """Header/query credentials; digest and OAuth2 are handled by the namespace's client."""
    if auth is None or auth.type in ("digest", "oauth2"):
        return None
    return Auth(auth)


__all__ = ["Auth", "compile_auth"]
