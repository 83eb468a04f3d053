"""The skill adapter: a read-only catalogue of agent skills from an `exposes: type: skill` block.

`GET /skills`, `/skills/{name}`, `/skills/{name}/contents`, `/skills/{name}/contents/{file}`
and `/skills/{name}/download` (a ZIP of the skill's folder). Derived tools point at the
sibling REST or MCP action that runs them; this adapter never runs anything itself. Files are
served only from below the skill's `location`, through safe path segments.
"""

from __future__ import annotations

import io
import mimetypes
import re
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from ..rest.app import error_response
from ...engine import McpExposes, Runtime, Skill, SkillExposes, SkillTool

_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


def _folder(skill: Skill) -> Path | None:
    if not skill.location:
        return None
    parsed = urlparse(skill.location)
    return Path(unquote(parsed.netloc + parsed.path)) if parsed.scheme == "file" else Path(skill.location)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


class SkillCatalogue:
    """The JSON views of one skill block, built once at load."""

    def __init__(self, runtime: Runtime, exposes: SkillExposes) -> None:
        modes = {e.namespace: ("mcp" if isinstance(e, McpExposes) else "rest") for e in runtime.exposes if e.namespace}
        self.skills = {skill.name: skill for skill in exposes.skills}
        self.summary = {"count": len(exposes.skills), "skills": [self._summary(s) for s in exposes.skills]}
        self.details = {s.name: self._detail(s, modes) for s in exposes.skills}

    @staticmethod
    def _summary(skill: Skill) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": skill.name, "description": skill.description}
        if skill.license:
            entry["license"] = skill.license
        entry["tools"] = [tool.name for tool in skill.tools]
        return entry

    @staticmethod
    def _tool(tool: SkillTool, modes: dict[str, str]) -> dict[str, Any]:
        if tool.instruction is not None:
            return {
                "name": tool.name,
                "description": tool.description,
                "type": "instruction",
                "instruction": tool.instruction,
            }
        return {
            "name": tool.name,
            "description": tool.description,
            "type": "derived",
            "invocationRef": {
                "targetNamespace": tool.source_namespace,
                "action": tool.action,
                "mode": modes.get(tool.source_namespace or "", "rest"),
            },
        }

    def _detail(self, skill: Skill, modes: dict[str, str]) -> dict[str, Any]:
        detail: dict[str, Any] = {"name": skill.name, "description": skill.description}
        optional = {
            "license": skill.license,
            "compatibility": skill.compatibility,
            "metadata": skill.metadata or None,
            "allowed-tools": skill.allowed_tools,
            "argument-hint": skill.argument_hint,
        }
        detail.update({k: v for k, v in optional.items() if v is not None})
        detail["user-invocable"] = skill.user_invocable
        detail["disable-model-invocation"] = skill.disable_model_invocation
        detail["tools"] = [self._tool(tool, modes) for tool in skill.tools]
        return detail


def skill_app(runtime: Runtime, exposes: SkillExposes) -> Starlette:
    catalogue = SkillCatalogue(runtime, exposes)

    def find(request: Request) -> Skill | None:
        return catalogue.skills.get(request.path_params["name"])

    def unknown(request: Request) -> Response:
        return error_response(404, "not_found", f"no skill named '{request.path_params['name']}'")

    async def listing(request: Request) -> Response:
        return JSONResponse(catalogue.summary)

    async def detail(request: Request) -> Response:
        skill = find(request)
        return JSONResponse(catalogue.details[skill.name]) if skill else unknown(request)

    def files_of(request: Request) -> tuple[Skill, Path] | Response:
        """The skill and its folder, or the 404 to answer."""
        skill = find(request)
        if skill is None:
            return unknown(request)
        folder = _folder(skill)
        if folder is None or not folder.is_dir():
            return error_response(404, "not_found", f"skill '{skill.name}' has no files")
        return skill, folder

    async def contents(request: Request) -> Response:
        found = files_of(request)
        if isinstance(found, Response):
            return found
        skill, folder = found
        return JSONResponse({"name": skill.name, "files": _files(folder)})

    async def file(request: Request) -> Response:
        found = files_of(request)
        if isinstance(found, Response):
            return found
        _, folder = found
        segments = request.path_params["file"].split("/")
        if not all(_SAFE.match(s) and s not in (".", "..") for s in segments):
            return error_response(404, "not_found", "no such file")
        path = folder.joinpath(*segments)
        if not path.is_file():
            return error_response(404, "not_found", "no such file")
        return FileResponse(path, media_type=mimetypes.guess_type(path.name)[0] or "text/plain")

    async def download(request: Request) -> Response:
        found = files_of(request)
        if isinstance(found, Response):
            return found
        skill, folder = found
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in _files(folder):
                archive.write(folder / name, f"{skill.name}/{name}")
        return Response(
            buffer.getvalue(),
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{skill.name}.zip"'},
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        return error_response(404, "not_found", f"no route for {request.method} {request.url.path}")

    routes = [
        Route("/skills", listing),
        Route("/skills/{name}", detail),
        Route("/skills/{name}/contents", contents),
        Route("/skills/{name}/contents/{file:path}", file),
        Route("/skills/{name}/download", download),
    ]
    return Starlette(routes=routes, exception_handlers={404: not_found})
