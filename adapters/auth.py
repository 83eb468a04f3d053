"""Protect an exposed server: bearer, API key (header or query), basic credentials, or OAuth 2 tokens.

The expected secret is rendered from the runtime's bindings once, at build time; every
request is compared in constant time. Failures are 401 with a JSON body and a
`WWW-Authenticate` challenge; the lifespan protocol passes through untouched. `oauth2`
makes the block an OAuth 2 resource server (`oauth.ResourceServerAuth`): `server_auth` returns
that middleware itself, `ServerAuth` hands it each request.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any
from urllib.parse import parse_qsl

from ..engine import Authentication, CapabilityError, McpExposes, MissingValue, Runtime, Scope, Template


def server_auth(app: Any, auth: Authentication, runtime: Runtime) -> Any:
    """`app` behind the block's authentication `auth`: a `ServerAuth`, or the OAuth 2 resource server."""
    if auth.type != "oauth2":
        return ServerAuth(app, auth, runtime)
    from .issuer import OAuthSettings
    from .oauth import ResourceServerAuth

    server = auth.resource_server
    if server is None:
        raise CapabilityError.at(auth.where, "oauth2 authentication needs 'authorizationServerUri' and 'resource'")
    if server.token_validation != "jwks":
        raise CapabilityError.at(
            server.where, f"oauth2 tokenValidation '{server.token_validation}' is not supported; use jwks"
        )
    mcp = any(isinstance(e, McpExposes) and e.authentication is auth for e in runtime.exposes)
    return ResourceServerAuth(app, server, mcp=mcp, settings=OAuthSettings.from_env(runtime.environ))


class ServerAuth:
    """ASGI middleware checking one credential before the wrapped app sees the request."""

    def __init__(self, app: Any, auth: Authentication, runtime: Runtime) -> None:
        self.app = app
        self.kind = auth.type
        self.oauth: Any = None
        if self.kind == "oauth2":
            self.oauth = server_auth(app, auth, runtime)
            return
        if self.kind not in ("bearer", "apikey", "basic"):
            raise CapabilityError.at(
                auth.where,
                f"{auth.type} authentication of exposed servers is not supported yet; use bearer, apikey, basic"
                " or oauth2",
            )
        scope = Scope(runtime.bindings_for(None), {}, runtime.prefixes)

        def secret(name: str, value: str | None) -> bytes:
            if not value:
                raise CapabilityError.at(auth.where, f"{auth.type} authentication needs '{name}'")
            try:
                return Template.compile(value).render(scope, strict=True).encode()
            except MissingValue as exc:
                raise CapabilityError.at(
                    auth.where, f"{auth.type} authentication uses {{{{{exc.name}}}}}, which no binding provides"
                ) from None

        if self.kind == "bearer":
            self.expected = secret("token", auth.token)
            self.challenge = 'Bearer realm="naftiko"'
        elif self.kind == "basic":
            self.expected = secret("username", auth.username) + b":" + secret("password", auth.password)
            self.challenge = 'Basic realm="naftiko", charset="UTF-8"'
        else:
            self.key = auth.key or "X-API-Key"
            self.placement = auth.placement or "header"
            self.expected = secret("value", auth.value)
            self.challenge = f'ApiKey realm="naftiko", {self.placement}="{self.key}"'

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.oauth is not None:
            await self.oauth(scope, receive, send)
            return
        if scope["type"] != "http" or self._allowed(scope):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": {"type": "unauthorized", "message": "missing or invalid credentials"}}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", self.challenge.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _allowed(self, scope: Any) -> bool:
        presented = self._presented(scope)
        return presented is not None and secrets.compare_digest(presented, self.expected)

    def _presented(self, scope: Any) -> bytes | None:
        if self.kind == "apikey" and self.placement == "query":
            for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
                if key == self.key:
                    return value.encode()
            return None
        wanted = (self.key if self.kind == "apikey" else "authorization").lower().encode()
        header = next((v for k, v in scope["headers"] if k == wanted), None)
        if header is None or self.kind == "apikey":
            return header
        scheme, _, credentials = header.partition(b" ")
        if self.kind == "bearer":
            return credentials.strip() if scheme.lower() == b"bearer" else None
        if scheme.lower() != b"basic":
            return None
        try:
            return base64.b64decode(credentials.strip(), validate=True)
        except ValueError:
            return None
