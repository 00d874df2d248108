"""Structured logs: one JSON object per line, each HTTP request with its request id.

The request id comes from the caller's `X-Request-ID` header when it looks sane, else is made
up; it is bound to every log line written while the request runs and echoed in the response.

No line ever carries a credential: the bridge takes its token in the WebSocket URL
(`?token=`), and uvicorn logs WebSocket URLs with their query; an exception's text may quote a
URL or a header. So every line is redacted as it is rendered (our request lines, uvicorn's,
tracebacks), and every standard-library record as it is made (`install_log_redaction`, for
handlers we do not configure, such as the emulator's uvicorn access log).
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
REDACTED = "[REDACTED]"

# Our tokens (`ps_` + 43 url-safe characters), secrets passed as URL or form parameters,
# bearer credentials, the session cookie.
_SECRETS = (
    (re.compile(r"\bps_[A-Za-z0-9_-]{8,}"), "ps_" + REDACTED),
    (
        re.compile(
            r"(?i)\b(token|access_token|refresh_token|client_secret|password|csrf_token)"
            r"(=|%3D)[^&\s\"'\\]+"
        ),
        r"\1\2" + REDACTED,
    ),
    (re.compile(r"(?i)\b(bearer)(\s+|%20)[A-Za-z0-9._~+/=-]+"), r"\1\2" + REDACTED),
    (re.compile(r"(presencesync_session|presencesync_login)=[^;\s\"']+"), r"\1=" + REDACTED),
)
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

log = structlog.get_logger("presencesync.http")


def redact(text: str) -> str:
    """`text` without anything that looks like a credential."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class _RedactingRenderer:
    """structlog's JSON renderer, then `redact` on the finished line."""

    def __init__(self) -> None:
        self._render = structlog.processors.JSONRenderer()

    def __call__(self, logger: Any, name: str, event_dict: Any) -> str:
        return redact(str(self._render(logger, name, event_dict)))


def install_log_redaction() -> None:
    """Redact every standard-library log record as it is created, whatever handler and
    formatter end up writing it (idempotent). Arguments are redacted one by one so that
    formatters which unpack them (uvicorn's access log) keep working."""
    base = logging.getLogRecordFactory()
    if getattr(base, "redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return record

    factory.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


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
            _RedactingRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        # Not cached: loggers made at import time must follow a later configure (tests).
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,  # tracebacks into the line, redacted
                _RedactingRenderer(),
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    install_log_redaction()
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
