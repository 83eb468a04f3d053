"""`GET /openapi.json` and a Swagger UI page at `GET /docs` for one REST exposes block.

The document is built once, on the first request for it (`naftiko.engine.export_openapi`), and
served as the same bytes to every caller; its server URL is `/` (or the mount point), so "Try it out" calls
the process that served it whatever port it listens on. The page's JavaScript and CSS come from
the `swagger-ui-py` package's own files, served from this process (no CDN); without that package
`/docs` is a 501 naming it and `/openapi.json` still works.

These answer only where the capability declares no route: a file that declares `/openapi.json` or
`/docs` (or a `/{x}` that matches them) is served its own route. They sit behind the block's
authentication like every other route, since the document lists the whole surface of the API.
"""

from __future__ import annotations

import importlib.util
from functools import cached_property
from pathlib import Path
from typing import Any

from starlette.responses import FileResponse, JSONResponse, Response
from starlette.types import Scope

from ...engine import RestExposes, Runtime, dumps, export_openapi

_ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="{root}/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="{root}/docs/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-spec="{root}/openapi.json"></div>
<script src="{root}/docs/swagger-ui-bundle.js"></script>
<script src="{root}/docs/init.js"></script>
</body>
</html>
"""
_INIT_JS = b"""(function () {
  var node = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: node.getAttribute("data-spec"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
})();
"""
_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'"
_CACHE = "public, max-age=86400"


def swagger_ui_folder() -> Path | None:
    """The folder of Swagger UI's files in the installed `swagger-ui-py`, found without importing it."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


class OpenApiRoutes:
    """What `/openapi.json`, `/docs` and `/docs/<asset>` answer; None for any other path."""

    def __init__(self, runtime: Runtime, exposes: RestExposes) -> None:
        self.runtime, self.exposes = runtime, exposes
        self.assets = swagger_ui_folder()
        self._mounted: tuple[str, bytes] | None = None  # the document for the last mount point seen

    @cached_property
    def document(self) -> dict[str, Any]:
        """Built on the first request for it, once: 10,000 routes take about 0.1 s no start-up should wait for."""
        return export_openapi(self.runtime, self.exposes, server_url="/")

    @cached_property
    def body(self) -> bytes:
        return dumps(self.document)

    @cached_property
    def title(self) -> str:
        return _escape(str(self.document["info"]["title"]))

    def answer(self, method: str, segments: list[str], scope: Scope) -> Response | None:
        """The answer for a request no capability route matched, or None when it is not ours."""
        if not segments or segments[0] not in ("openapi.json", "docs") or len(segments) > 2:
            return None
        if segments == ["openapi.json"]:
            return self._get(method) or Response(self._body(scope.get("root_path", "")), media_type="application/json")
        if segments == ["docs"]:
            if self.assets is None:
                return self._missing()
            page = _PAGE.format(title=self.title, root=_escape(scope.get("root_path", "")))
            return self._get(method) or Response(page, media_type="text/html; charset=utf-8", headers=_page_headers())
        name = segments[1]
        if name == "init.js":
            return self._get(method) or Response(_INIT_JS, media_type=_ASSETS["swagger-ui-bundle.js"])
        if name not in _ASSETS:
            return None
        if self.assets is None:
            return self._missing()
        return self._get(method) or FileResponse(
            self.assets / name, media_type=_ASSETS[name], headers={"Cache-Control": _CACHE}
        )

    def _body(self, root: str) -> bytes:
        """The document's bytes; mounted under a prefix, its server URL is that prefix (kept for the last one)."""
        if not root:
            return self.body
        if self._mounted is None or self._mounted[0] != root:
            self._mounted = (root, dumps({**self.document, "servers": [{"url": root}]}))
        return self._mounted[1]

    @staticmethod
    def _get(method: str) -> Response | None:
        if method in ("GET", "HEAD"):
            return None
        error = {"type": "method_not_allowed", "message": f"{method} is not allowed here; use GET", "allowed": ["GET"]}
        return JSONResponse({"error": error}, status_code=405, headers={"Allow": "GET, HEAD"})

    @staticmethod
    def _missing() -> Response:
        message = "the docs page needs the swagger-ui-py package (pip install swagger-ui-py); /openapi.json works"
        return JSONResponse({"error": {"type": "not_implemented", "message": message}}, status_code=501)


def _page_headers() -> dict[str, str]:
    return {"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff"}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
