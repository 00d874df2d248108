"""One error shape for the whole API: `{"error": {"code", "message", "details"}}`.

FastAPI's own bodies (`{"detail": ...}`) are replaced too, so that a client sees the same shape
for a malformed JSON body, a missing route and a rule the engine refuses.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

from presencesync.domain import DomainError, InvalidConfig, InvalidState, Rejected

log = structlog.get_logger("presencesync.web")

# Codes of DomainError that describe bad input rather than a refused action.
_UNPROCESSABLE_CODES = {"INVALID_SETTINGS", "INVALID_CONFIG", "INVALID_STATE", "INVALID_REQUEST"}

# What FastAPI says when reading the body raised anything but a JSON syntax error.
_FASTAPI_UNREADABLE_BODY = "There was an error parsing the body"

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "INVALID_REQUEST",
    429: "TOO_MANY_REQUESTS",
}


class ApiError(Exception):
    """Raised by endpoints for any 4xx/5xx answer."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code, headers=headers)


def domain_status(error: DomainError) -> int:
    """HTTP status of an engine/core refusal (see the service contract)."""
    name = type(error).__name__
    if name == "NotFound" or error.code.endswith("_NOT_FOUND"):
        return 404
    if name == "Conflict" or isinstance(error, Rejected):
        return 409
    if isinstance(error, InvalidConfig | InvalidState) or error.code in _UNPROCESSABLE_CODES:
        return 422
    return 422


def validation_details(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic's error list as `{"field", "message", "type"}` rows a person can read."""
    out: list[dict[str, Any]] = []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        # Drop the "body"/"query" prefix: the field path is what matters to the caller.
        where = loc[0] if loc else ""
        path = loc[1:] if where in {"body", "query", "path", "header", "cookie"} else loc
        field = ".".join(path) or where or "body"
        if err.get("type") == "json_invalid":
            field = "body"
        out.append(
            {
                "field": field,
                "location": where,
                "message": err.get("msg", "invalid value"),
                "type": err.get("type", "invalid"),
            }
        )
    return out


def _query_names(dependant: Any) -> Iterator[str]:
    """The query parameters an operation takes, its dependencies' included."""
    for param in dependant.query_params:
        yield param.alias
    for sub in dependant.dependencies:
        yield from _query_names(sub)


def strict_query(request: HTTPConnection) -> None:
    """FastAPI dependency of the API: refuse a query parameter the operation does not take
    (`?limt=5`) or one given twice (`?limit=5&limit=500`).

    FastAPI would silently ignore the first and keep the last value of the second: a request
    that says something we do not understand gets a 422 rather than a guess."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    known = None
    if dependant is not None:
        known = set(_query_names(dependant))
    problems = []
    for key in sorted(set(request.query_params)):
        values = request.query_params.getlist(key)
        if known is not None and key not in known:
            kind, msg = "unknown_parameter", "this operation takes no such query parameter"
        elif len(values) > 1:
            kind, msg = "repeated_parameter", "given more than once; this parameter takes one value"
        else:
            continue
        problems.append({"type": kind, "loc": ("query", key), "msg": msg, "input": values})
    if problems:
        raise RequestValidationError(problems)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(DomainError)
    async def _domain_error(request: Request, exc: DomainError) -> JSONResponse:
        return error_response(domain_status(exc), exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(exc.errors())
        count = len(details)
        if any(d["type"] == "json_invalid" for d in details):
            message = "the request body is not valid JSON"
        else:
            message = f"the request has {count} invalid field{'s' if count != 1 else ''}"
        return error_response(422, "INVALID_REQUEST", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _FASTAPI_UNREADABLE_BODY:
            # FastAPI's answer to a body it could not even decode (bytes that are not UTF-8):
            # malformed before it could be invalid JSON, hence 400 rather than 422.
            return error_response(
                400,
                "MALFORMED_BODY",
                "the request body could not be read: JSON must be encoded in UTF-8",
                [{"field": "body", "location": "body", "message": "not UTF-8", "type": "body"}],
            )
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        message = exc.detail if isinstance(exc.detail, str) else code.lower().replace("_", " ")
        return error_response(exc.status_code, code, message, None, exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return error_response(500, "INTERNAL_ERROR", "an unexpected error occurred")


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` (413) before anything reads them: no request of
    the API needs more than a configuration document. A declared `Content-Length` over the
    limit is refused before a byte of the body is read; a streamed (chunked) body is read up
    to the limit and refused as it passes it. Either way the connection is closed, so the
    server does not keep draining what the client still sends."""

    def __init__(self, app: Any, max_bytes: int = 1_000_000) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        if declared is not None:
            await self.app(scope, receive, send)  # the server enforces the declared length
            return
        # A streamed body: read it (up to the limit) before the app does, then replay it.
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its whole body
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _message(self) -> str:
        return f"the request body is larger than {self.max_bytes} bytes"

    async def _too_large(self, scope: Any, receive: Any, send: Any) -> None:
        # Connection: close, so that the server hangs up instead of draining the rest.
        response = error_response(
            413, "PAYLOAD_TOO_LARGE", self._message(), headers={"Connection": "close"}
        )
        await response(scope, receive, send)
