"""What one request may cost: body and WebSocket message sizes, request rates.

Every limit has an environment variable (README, "Configure"); `Limits.from_env()` reads them
and refuses a malformed value at start-up rather than running unprotected.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

MAX_BODY_ENV = "PRESENCESYNC_MAX_BODY_BYTES"
MAX_WS_MESSAGE_ENV = "PRESENCESYNC_MAX_WS_MESSAGE_BYTES"
API_RATE_ENV = "PRESENCESYNC_RATE_LIMIT_API"
LOGIN_RATE_ENV = "PRESENCESYNC_RATE_LIMIT_LOGIN"

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*s?\s*$")


@dataclass(frozen=True)
class Rate:
    """A token bucket: `burst` requests at once, refilled at `burst` per `per_seconds`."""

    burst: int
    per_seconds: float

    @property
    def refill_per_second(self) -> float:
        return self.burst / self.per_seconds

    def __str__(self) -> str:
        return f"{self.burst}/{self.per_seconds:g}s"

    @classmethod
    def parse(cls, text: str, name: str) -> Rate | None:
        """`"600/60"` (600 at once, 600 a minute); `"off"` for no limit."""
        if text.strip().lower() in {"off", "0", "none"}:
            return None
        match = _RATE.match(text)
        if match is None or int(match.group(1)) < 1 or float(match.group(2)) <= 0:
            raise ValueError(f"{name}={text!r}: write BURST/SECONDS, e.g. 600/60, or off")
        return cls(int(match.group(1)), float(match.group(2)))


def _size(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1024:
        raise ValueError(f"{name}={raw!r}: a number of bytes, at least 1024")
    return int(raw)


@dataclass(frozen=True)
class Limits:
    # No request of the API needs more than a configuration document.
    max_body_bytes: int = 1_000_000
    # A bridge hello with the console's open work is a few kilobytes.
    max_ws_message_bytes: int = 64 * 1024
    # Per token, API requests: 600 at once, 10 a second after that.
    api_rate: Rate | None = Rate(600, 60)
    # Per client address, failed sign-ins and invalid tokens; per submitted token, sign-ins.
    login_rate: Rate | None = Rate(10, 60)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        env = os.environ if environ is None else environ
        default = cls()
        api = env.get(API_RATE_ENV)
        login = env.get(LOGIN_RATE_ENV)
        return cls(
            max_body_bytes=_size(env, MAX_BODY_ENV, default.max_body_bytes),
            max_ws_message_bytes=_size(env, MAX_WS_MESSAGE_ENV, default.max_ws_message_bytes),
            api_rate=default.api_rate if api is None else Rate.parse(api, API_RATE_ENV),
            login_rate=default.login_rate if login is None else Rate.parse(login, LOGIN_RATE_ENV),
        )
