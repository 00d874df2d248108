"""Rate limits: token buckets per API token, per client address and per submitted token.

- **API** (`/api/...`): one bucket per token (bearer or session cookie), `api_rate`.
- **Guessing tokens**: every failed sign-in and every API request answered 401 takes one from
  the client address's bucket (`login_rate`); while it is empty, that address may not sign in
  nor use a token that has not authenticated in this process yet (tokens already seen valid
  keep working, so a legitimate user behind the same address as a guesser is not locked out).
- **Sign-in with one token**: every `POST /login` takes one from the submitted token's bucket
  (`login_rate`), wherever it comes from.

A refusal is 429 with `Retry-After` (seconds) and a machine code, `RATE_LIMITED` or
`TOO_MANY_FAILED_ATTEMPTS`. Buckets live in the process: several `serve` processes each
enforce their own budget (N processes behind a balancer allow up to N times the rate).
Tokens are keyed by a hash, never kept in clear; the tables are bounded (least recently used
buckets go first, a full bucket is the same as no bucket).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from presencesync.web.errors import error_response
from presencesync.web.limits import Limits, Rate

Clock = Callable[[], float]
MAX_KEYS = 100_000


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: float = 0.0

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after)))


class Buckets:
    """Token buckets by key, refilled continuously; thread-safe."""

    def __init__(self, rate: Rate | None, clock: Clock, max_keys: int = MAX_KEYS) -> None:
        self.rate = rate
        self.clock = clock
        self._max_keys = max_keys
        self._levels: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (level, at)
        self._lock = threading.Lock()

    def _level(self, key: str, now: float) -> float:
        assert self.rate is not None
        level, at = self._levels.get(key, (float(self.rate.burst), now))
        return min(float(self.rate.burst), level + (now - at) * self.rate.refill_per_second)

    def _wait(self, level: float) -> float:
        assert self.rate is not None
        return (1.0 - level) / self.rate.refill_per_second

    def take(self, key: str) -> Verdict:
        """Spend one if there is one."""
        if self.rate is None:
            return Verdict(True)
        with self._lock:
            now = self.clock()
            level = self._level(key, now)
            if level < 1.0:
                self._store(key, level, now)
                return Verdict(False, self._wait(level))
            self._store(key, level - 1.0, now)
            return Verdict(True)

    def check(self, key: str) -> Verdict:
        """Would one be there (spends nothing)?"""
        if self.rate is None:
            return Verdict(True)
        with self._lock:
            level = self._level(key, self.clock())
            return Verdict(level >= 1.0, 0.0 if level >= 1.0 else self._wait(level))

    def spend(self, key: str) -> None:
        """Spend one, even into an empty bucket's refill (failures are counted, never refused)."""
        if self.rate is None:
            return
        with self._lock:
            now = self.clock()
            self._store(key, max(0.0, self._level(key, now) - 1.0), now)

    def _store(self, key: str, level: float, now: float) -> None:
        self._levels[key] = (level, now)
        self._levels.move_to_end(key)
        while len(self._levels) > self._max_keys:
            self._levels.popitem(last=False)


class RateLimiter:
    """The three budgets of one app (see the module docstring)."""

    def __init__(self, limits: Limits, clock: Clock = time.monotonic) -> None:
        self.api = Buckets(limits.api_rate, clock)
        self.failures = Buckets(limits.login_rate, clock)
        self.sign_ins = Buckets(limits.login_rate, clock)
        self._known_good: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def set_clock(self, clock: Clock) -> None:
        for buckets in (self.api, self.failures, self.sign_ins):
            buckets.clock = clock

    def authenticated(self, token_fingerprint: str) -> None:
        with self._lock:
            self._known_good[token_fingerprint] = None
            self._known_good.move_to_end(token_fingerprint)
            while len(self._known_good) > MAX_KEYS:
                self._known_good.popitem(last=False)

    def known_good(self, token_fingerprint: str) -> bool:
        with self._lock:
            return token_fingerprint in self._known_good

    def failed(self, address: str) -> None:
        self.failures.spend(address)

    def guessing(self, address: str, token_fingerprint: str | None) -> Verdict:
        """Refuse an address that failed too often, unless its token is known to be valid."""
        if token_fingerprint is not None and self.known_good(token_fingerprint):
            return Verdict(True)
        return self.failures.check(address)


def client_address(scope: Scope) -> str:
    # uvicorn puts the proxy's X-Forwarded-For here when the proxy is trusted
    # (--forwarded-allow-ips), else the peer's address.
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def too_many(code: str, message: str, verdict: Verdict, rate: Rate | None) -> Any:
    return error_response(
        429,
        code,
        f"{message}; retry in {verdict.retry_after_header} s",
        {"retry_after_seconds": int(verdict.retry_after_header), "limit": str(rate)},
        headers={"Retry-After": verdict.retry_after_header},
    )


class RateLimitMiddleware:
    """The API's budgets, applied before the request is read or its token resolved."""

    def __init__(
        self, app: ASGIApp, limiter: RateLimiter, token_of: Callable[[Scope], str | None]
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.token_of = token_of  # the token a request carries (bearer or session cookie)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        limiter = self.limiter
        token = self.token_of(scope)
        key = None if token is None else fingerprint(token)
        address = client_address(scope)
        if key is not None:
            verdict = limiter.guessing(address, key)
            if not verdict.allowed:
                response = too_many(
                    "TOO_MANY_FAILED_ATTEMPTS",
                    "too many invalid tokens or failed sign-ins from this address",
                    verdict,
                    limiter.failures.rate,
                )
                await response(scope, receive, send)
                return
            verdict = limiter.api.take(key)
            if not verdict.allowed:
                response = too_many(
                    "RATE_LIMITED", "too many requests with this token", verdict, limiter.api.rate
                )
                await response(scope, receive, send)
                return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and key is not None:
                if message["status"] == 401:
                    limiter.failed(address)
                elif scope.get("state", {}).get("caller") is not None:
                    # The auth dependency resolved this token: it is nobody's guess.
                    limiter.authenticated(key)
            await send(message)

        await self.app(scope, receive, watch)
