"""Small helpers shared by the emulator's HTTP handlers."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from presencesync_emulator.omni import OmniError
from presencesync_emulator.org import Org


def org_of(request: Request) -> Org:
    org: Org = request.app.state.org
    return org


def base_url_of(request: Request) -> str:
    """The URL clients reach us by: configured, else what this request was addressed to."""
    org = org_of(request)
    if org.base_url:
        return org.base_url.rstrip("/")
    return str(request.base_url).rstrip("/")


async def json_body(request: Request, *, required: bool = True) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        if required:
            raise OmniError(422, "INVALID_BODY", "a JSON object body is required")
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise OmniError(422, "INVALID_BODY", f"body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise OmniError(422, "INVALID_BODY", "body must be a JSON object")
    return body


def string_field(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise OmniError(422, "INVALID_BODY", f"field {name!r} is required")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise OmniError(422, "INVALID_BODY", f"field {name!r} must be a non-empty string")
    return value


def error_response(exc: OmniError) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status
    )
