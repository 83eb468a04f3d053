"""Run artifacts: inline upload, presigned two-step upload, presign and download.

Bytes live in the app's :class:`~.storage.BlobStore` (a temp dir by default);
the run keeps the manifest. Storage paths follow production's layout
``tasks/artifacts/team_<t>/task_<task>/run_<run>/<id[:8]>_<name>``.
"""

from __future__ import annotations

import base64
import binascii
import os
import uuid
from typing import Any

from starlette.responses import JSONResponse, Response

from .context import Context
from .errors import run_error, validation_error
from .storage import URL_EXPIRY_SECONDS
from .store import TaskRun, iso, utcnow
from .validation import MISSING, Reader

ARTIFACT_TYPES = ("plan", "context", "reference", "output", "artifact", "tree_snapshot", "user_attachment")
MAX_ARTIFACT_BYTES = 30 * 1024 * 1024
MAX_PDF_ATTACHMENT_BYTES = 10 * 1024 * 1024


def clean_name(raw: str) -> str:
    """Basename of the supplied name, stripped, or ``artifact``."""
    return os.path.basename(raw.replace("\\", "/")).strip() or "artifact"


def run_prefix(ctx: Context, run: TaskRun) -> str:
    return f"tasks/artifacts/team_{ctx.store.project_id}/task_{run.task_id}/run_{run.id}/"


def size_cap(artifact_type: str, name: str, content_type: str | None) -> int:
    is_pdf = (content_type or "").lower() == "application/pdf" or name.lower().endswith(".pdf")
    return MAX_PDF_ATTACHMENT_BYTES if artifact_type == "user_attachment" and is_pdf else MAX_ARTIFACT_BYTES


def cap_message(name: str, cap: int) -> str:
    return f"{name} exceeds the {cap // (1024 * 1024)}MB attachment limit"


def manifest_entry(artifact_id: str, item: dict[str, Any], storage_path: str, size: int) -> dict[str, Any]:
    return {
        "id": artifact_id,
        "name": item["name"],
        "type": item["type"],
        "source": item.get("source") or "",
        "size": size,
        "content_type": item.get("content_type") or "",
        "storage_path": storage_path,
        "uploaded_at": iso(utcnow()),
    }


def read_items(body: Reader) -> list[Reader]:
    items = body.items("artifacts", is_required=True, allow_empty=False)
    return [body.nested("artifacts", i) for i in range(len(items))]


def read_common(item: Reader) -> dict[str, Any]:
    fields = {
        "name": item.string("name", is_required=True, blank=False, max_length=255),
        "type": item.choice("type", ARTIFACT_TYPES, is_required=True),
        "source": item.string("source", max_length=64),
        "content_type": item.string("content_type", nullable=True, max_length=255),
    }
    fields = {k: v for k, v in fields.items() if v is not MISSING}
    fields["name"] = clean_name(fields["name"])
    return fields


def decode_content(item: Reader) -> bytes:
    content = item.string("content", is_required=True)
    encoding = item.choice("content_encoding", ("utf-8", "base64"))
    if encoding == "base64":
        try:
            return base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise validation_error("Content is not valid base64.", item.attr("content")) from None
    return content.encode("utf-8")


async def upload(ctx: Context) -> Response:
    """Inline upload; answers with the run's whole manifest."""
    _, run = ctx.task_and_run()
    prepared = []
    for item in read_items(await ctx.body()):
        fields = read_common(item)
        data = decode_content(item)
        cap = size_cap(fields["type"], fields["name"], fields.get("content_type"))
        if len(data) > cap:
            raise validation_error(cap_message(fields["name"], cap), item.attr("content"))
        prepared.append((fields, data))
    for fields, data in prepared:
        artifact_id = uuid.uuid4().hex
        path = f"{run_prefix(ctx, run)}{artifact_id[:8]}_{fields['name']}"
        ctx.standin.blobs.put(path, data, fields.get("content_type"))
        run.artifacts.append(manifest_entry(artifact_id, fields, path, len(data)))
    run.updated_at = utcnow()
    return JSONResponse({"artifacts": run.artifacts})


async def prepare_upload(ctx: Context) -> Response:
    """Reserve ids and storage paths and hand out presigned POST forms (to this server)."""
    _, run = ctx.task_and_run()
    prepared = []
    for item in read_items(await ctx.body()):
        fields = read_common(item)
        size = item.integer("size", is_required=True, min_value=1, max_value=MAX_ARTIFACT_BYTES)
        cap = size_cap(fields["type"], fields["name"], fields.get("content_type"))
        if size > cap:
            raise validation_error(cap_message(fields["name"], cap), item.attr("size"))
        prepared.append((fields, size, cap))
    results = []
    for fields, size, cap in prepared:
        artifact_id = uuid.uuid4().hex
        path = f"{run_prefix(ctx, run)}{artifact_id[:8]}_{fields['name']}"
        post = ctx.standin.blobs.presigned_post(ctx.base_url, path, fields.get("content_type"), cap)
        results.append(
            {
                "id": artifact_id,
                "name": fields["name"],
                "type": fields["type"],
                "source": fields.get("source") or "",
                "size": size,
                "content_type": fields.get("content_type") or "",
                "storage_path": path,
                "expires_in": URL_EXPIRY_SECONDS,
                "presigned_post": post,
            }
        )
    return JSONResponse({"artifacts": results})


async def finalize_upload(ctx: Context) -> Response:
    """Record uploaded objects in the manifest; echoes already-finalized ids."""
    _, run = ctx.task_and_run()
    checked = []
    for item in read_items(await ctx.body()):
        fields = read_common(item)
        fields["id"] = item.string("id", is_required=True, blank=False)
        fields["storage_path"] = item.string("storage_path", is_required=True, blank=False)
        checked.append(fields)
    finalized = []
    for fields in checked:
        existing = run.artifact(artifact_id=fields["id"])
        if existing is not None:
            finalized.append(existing)
            continue
        path = fields["storage_path"]
        if not path.startswith(run_prefix(ctx, run)):
            raise run_error(400, "Artifact storage path is invalid for this run")
        size = ctx.standin.blobs.size(path)
        if size is None:
            raise run_error(400, "Artifact upload not found in object storage")
        cap = size_cap(fields["type"], fields["name"], fields.get("content_type"))
        if size > cap:
            raise run_error(400, cap_message(fields["name"], cap))
        entry = manifest_entry(fields["id"], fields, path, size)
        run.artifacts.append(entry)
        finalized.append(entry)
    run.updated_at = utcnow()
    return JSONResponse({"artifacts": finalized})


async def presign(ctx: Context) -> Response:
    """A one-hour download URL for an artifact of this run (not its ancestors)."""
    _, run = ctx.task_and_run()
    path = (await ctx.body()).string("storage_path", is_required=True, blank=False)
    if run.artifact(storage_path=path) is None:
        raise run_error(404, "Artifact not found on this run")
    url = ctx.standin.blobs.presigned_get_url(ctx.base_url, path)
    return JSONResponse({"url": url, "expires_in": URL_EXPIRY_SECONDS})


async def download(ctx: Context) -> Response:
    """Raw bytes; the artifact may belong to this run or any run it resumes."""
    _, run = ctx.task_and_run()
    path = (await ctx.body()).string("storage_path", is_required=True, blank=False)
    entry = next((e for link in reversed(ctx.store.resume_chain(run)) if (e := link.artifact(storage_path=path))), None)
    if entry is None:
        raise run_error(404, "Artifact not found on this run")
    data = ctx.standin.blobs.get(path)
    if data is None:
        raise run_error(404, "Artifact content not found")
    headers = {"Cache-Control": "no-cache", "Content-Disposition": f'attachment; filename="{entry["name"]}"'}
    return Response(data, media_type=entry.get("content_type") or "application/octet-stream", headers=headers)
