"""Structured logs: one JSON object per line, each HTTP request with its request id.

The request id comes from the caller's `X-Request-ID` header when it looks sane, else is made
up; it is bound to every log line written while the request runs and echoed in the response.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

log = structlog.get_logger("presencesync.http")


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for structlog and the standard library (uvicorn) alike."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        # Not cached: loggers made at import time must follow a later configure (tests).
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=structlog.processors.JSONRenderer(),
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log would duplicate our request lines, without the request id.
    logging.getLogger("uvicorn.access").disabled = True
    # Alembic narrates every migration step at INFO; the outcome is what matters.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))


class RequestLogMiddleware:
    """Binds a request id, logs one line per HTTP request, and counts requests."""

    def __init__(self, app: ASGIApp, metrics: Any = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope.get("headers", ()):
            if name == REQUEST_ID_HEADER.encode():
                incoming = value.decode("latin-1")
                break
        request_id = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
                who: dict[str, Any] = {}
                caller = scope["state"].get("caller")  # set by the auth dependency
                if caller is not None:
                    who = {"account_id": caller.account_id, "role": caller.role}
                    if caller.agent_id:
                        who["agent_id"] = caller.agent_id
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=elapsed_ms,
                    **who,
                )
                if self.metrics is not None:
                    self.metrics.http_requests.labels(
                        method=scope["method"], status=f"{status // 100}xx"
                    ).inc()
