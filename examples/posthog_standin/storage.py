"""A tiny S3 look-alike: bytes on local disk plus presigned POST/GET over loopback.

Production hands clients presigned S3 URLs (artifact uploads, downloads, the run
log). Here those URLs point back at this same server under ``/_standin/s3/``, are
HMAC-signed with a per-app secret and expire like S3's, so a client can do the
real round trip (prepare → POST to ``presigned_post`` → finalize → presign → GET)
with no PostHog credentials. These routes take no bearer key, as with S3.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import datetime, timedelta, UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from .context import Standin

URL_EXPIRY_SECONDS = 3600
S3_PREFIX = "/_standin/s3"
_AMZ_DATE = "%Y%m%dT%H%M%SZ"


class BlobStore:
    """Objects keyed by S3-style path, stored under ``root``; content types kept in memory."""

    def __init__(self, root: Path, secret: bytes) -> None:
        self.root = root
        self.secret = secret
        self.content_types: dict[str, str] = {}

    def path_for(self, key: str) -> Path:
        if not key or key.startswith("/") or any(part in ("", ".", "..") for part in key.split("/")):
            raise ValueError(f"invalid object key: {key!r}")
        return self.root / key

    def put(self, key: str, data: bytes, content_type: str | None = None) -> None:
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if content_type:
            self.content_types[key] = content_type

    def get(self, key: str) -> bytes | None:
        try:
            return self.path_for(key).read_bytes()
        except (OSError, ValueError):
            return None

    def size(self, key: str) -> int | None:
        try:
            return self.path_for(key).stat().st_size
        except (OSError, ValueError):
            return None

    # -- signing ---------------------------------------------------------------

    def _sign(self, message: str) -> str:
        return hmac.new(self.secret, message.encode(), hashlib.sha256).hexdigest()

    def presigned_get_url(self, base_url: str, key: str, expires_in: int = URL_EXPIRY_SECONDS) -> str:
        amz_date = datetime.now(UTC).strftime(_AMZ_DATE)
        query = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Date": amz_date,
            "X-Amz-Expires": str(expires_in),
            "X-Amz-Signature": self._sign(f"GET\n{key}\n{amz_date}\n{expires_in}"),
        }
        return f"{base_url}{S3_PREFIX}/{quote(key)}?{urlencode(query)}"

    def check_get_signature(self, key: str, query: dict[str, str]) -> str | None:
        """``None`` when the presigned GET is valid, else an S3 error code."""
        amz_date, expires = query.get("X-Amz-Date", ""), query.get("X-Amz-Expires", "")
        expected = self._sign(f"GET\n{key}\n{amz_date}\n{expires}")
        if not hmac.compare_digest(expected, query.get("X-Amz-Signature", "")):
            return "SignatureDoesNotMatch"
        try:
            issued = datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=UTC)
            deadline = issued + timedelta(seconds=int(expires))
        except ValueError:
            return "AuthorizationQueryParametersError"
        return "AccessDenied" if datetime.now(UTC) > deadline else None

    def presigned_post(self, base_url: str, key: str, content_type: str | None, max_size: int) -> dict[str, Any]:
        """``{url, fields}`` as boto3's ``generate_presigned_post`` returns them."""
        expiration = datetime.now(UTC) + timedelta(seconds=URL_EXPIRY_SECONDS)
        conditions: list[Any] = [{"key": key}, ["content-length-range", 0, max_size]]
        if content_type:
            conditions.append({"Content-Type": content_type})
        policy_doc = {"expiration": expiration.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "conditions": conditions}
        policy = base64.b64encode(json.dumps(policy_doc).encode()).decode()
        fields = {"key": key}
        if content_type:
            fields["Content-Type"] = content_type
        fields.update(
            {
                "x-amz-algorithm": "AWS4-HMAC-SHA256",
                "x-amz-credential": "standin/us-east-1/s3/aws4_request",
                "x-amz-date": datetime.now(UTC).strftime(_AMZ_DATE),
                "policy": policy,
                "x-amz-signature": self._sign(f"POST\n{policy}"),
            }
        )
        return {"url": f"{base_url}{S3_PREFIX}/", "fields": fields}

    def check_post_policy(self, fields: dict[str, str], size: int) -> str | None:
        """``None`` if the form satisfies its signed policy, else an S3 error code."""
        policy = fields.get("policy", "")
        if not hmac.compare_digest(self._sign(f"POST\n{policy}"), fields.get("x-amz-signature", "")):
            return "SignatureDoesNotMatch"
        try:
            doc = json.loads(base64.b64decode(policy))
            expires = datetime.strptime(doc["expiration"], "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=UTC)
        except (ValueError, KeyError, TypeError):
            return "InvalidPolicyDocument"
        if datetime.now(UTC) > expires:
            return "AccessDenied"
        for condition in doc.get("conditions", []):
            if isinstance(condition, dict):
                if any(fields.get(name) != value for name, value in condition.items()):
                    return "AccessDenied"
            elif condition[0] == "content-length-range" and not condition[1] <= size <= condition[2]:
                return "EntityTooLarge" if size > condition[2] else "EntityTooSmall"
        return None


_S3_STATUS = {"NoSuchKey": 404, "EntityTooLarge": 400, "EntityTooSmall": 400, "MalformedPOSTRequest": 400}


def s3_error(code: str, message: str = "") -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message or code}</Message></Error>"
    )
    return Response(body, status_code=_S3_STATUS.get(code, 403), media_type="application/xml")


def parse_multipart(body: bytes, content_type: str) -> list[tuple[str, bytes]]:
    """Minimal, binary-safe ``multipart/form-data`` parser: ``[(field name, value bytes)]``."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        return []
    delimiter = b"\r\n--" + match.group(1).encode()
    parts: list[tuple[str, bytes]] = []
    for chunk in (b"\r\n" + body).split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        name = re.search(rb';\s*name="([^"]*)"', head)
        if sep and name:
            parts.append((name.group(1).decode(), content))
    return parts


async def s3_post(request: Request) -> Response:
    """Browser-style presigned POST upload; answers 204 like S3's default."""
    blobs = _standin(request).blobs
    parts = parse_multipart(await request.body(), request.headers.get("content-type", ""))
    if not parts or parts[-1][0] != "file":
        return s3_error("MalformedPOSTRequest", "The body of your POST request is not well-formed multipart/form-data.")
    fields = {name: value.decode("utf-8", "replace") for name, value in parts[:-1]}
    data = parts[-1][1]
    problem = blobs.check_post_policy(fields, len(data))
    if problem:
        return s3_error(problem)
    try:
        blobs.put(fields["key"], data, fields.get("Content-Type"))
    except (KeyError, ValueError):
        return s3_error("InvalidArgument")
    return Response(status_code=204)


async def s3_get(request: Request) -> Response:
    """Presigned GET for artifacts and run logs."""
    standin = _standin(request)
    key = request.path_params["key"]
    problem = standin.blobs.check_get_signature(key, dict(request.query_params))
    if problem:
        return s3_error(problem)
    data = standin.blobs.get(key)
    if data is not None:
        content_type = standin.blobs.content_types.get(key, "binary/octet-stream")
        return Response(data, media_type=content_type)
    run = standin.store.run_for_log_key(key)
    if run is not None:
        return Response(standin.store.log_text(run).encode(), media_type="application/jsonl")
    return s3_error("NoSuchKey", "The specified key does not exist.")


def _standin(request: Request) -> Standin:
    return request.app.state.standin
