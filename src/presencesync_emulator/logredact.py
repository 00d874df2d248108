"""Keep credentials out of the emulator's logs (uvicorn's access log above all): console URLs
carry the bridge's token (`/console/{user}?token=...`), OAuth requests carry secrets, REST calls
carry bearer tokens. The emulator is a program of its own, so it has its own redaction rather
than the product's (`presencesync.web.logging` does the same for the server)."""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[REDACTED]"
_SECRETS = (
    (re.compile(r"\bps_[A-Za-z0-9_-]{8,}"), "ps_" + REDACTED),
    (
        re.compile(
            r"(?i)\b(token|access_token|refresh_token|client_secret|password|assertion)"
            r"(=|%3D)[^&\s\"'\\]+"
        ),
        r"\1\2" + REDACTED,
    ),
    (re.compile(r"(?i)\b(bearer)(\s+|%20)[A-Za-z0-9._~+/=!-]+"), r"\1\2" + REDACTED),
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def install_log_redaction() -> None:
    """Redact every standard-library log record as it is created (idempotent). Arguments are
    redacted one by one so that formatters which unpack them (uvicorn's access log) still work."""
    base = logging.getLogRecordFactory()
    if getattr(base, "emulator_redacting", False):
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

    factory.emulator_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
