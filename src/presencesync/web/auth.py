"""Who is calling: bearer tokens for the API, an encrypted session cookie for the pages.

A token belongs to one account and one role. The engine stores tokens hashed and resolves them;
this module only finds the token in the request. The session cookie carries the token encrypted
and authenticated (Fernet), so it never appears in a page, cannot be read by scripts (HttpOnly)
and is not sent by other sites (SameSite=Strict). Every request resolves the token again, so a
revoked token stops working at once, for the cookie too. Unsafe requests authenticated by the
cookie also need the session's CSRF token and an own Origin (csrf.py, `check_csrf`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.fernet import Fernet, InvalidToken
from fastapi import Request
from starlette.requests import HTTPConnection

from presencesync.web.csrf import CSRF_HEADER, SAFE_METHODS, own_origin, tokens_match
from presencesync.web.errors import ApiError

ROLES = ("admin", "supervisor", "agent")
SESSION_COOKIE = "presencesync_session"
SESSION_MAX_AGE = 12 * 3600


class _Principal(Protocol):
    account_id: str
    role: str
    agent_id: str | None


class _TokenResolver(Protocol):
    def resolve_token(self, token: str) -> Any: ...


@dataclass(frozen=True)
class Caller:
    account_id: str
    role: str
    agent_id: str | None
    via_cookie: bool = False

    @property
    def actor(self) -> str:
        """How the caller is named in saved configuration versions."""
        return f"{self.role}:{self.agent_id}" if self.agent_id else self.role


class SessionCodec:
    """Turns a token into a cookie value and back (encrypted, authenticated, expiring)."""

    def __init__(self, secret: str | bytes | None = None) -> None:
        if secret is None:
            secret = os.environ.get("PRESENCESYNC_SESSION_SECRET") or secrets.token_bytes(32)
        raw = secret.encode() if isinstance(secret, str) else secret
        key = base64.urlsafe_b64encode(hashlib.sha256(raw).digest())
        self._fernet = Fernet(key)
        # A key of its own for the CSRF tokens (web/csrf.py), derived from the same secret.
        self._mac_key = hashlib.sha256(b"presencesync csrf\0" + raw).digest()

    def encode(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode()

    def decode(self, value: str) -> str | None:
        try:
            return self._fernet.decrypt(value.encode(), ttl=SESSION_MAX_AGE).decode()
        except (InvalidToken, ValueError):
            return None

    def csrf_token(self, purpose: str, bound_to: str) -> str:
        """The CSRF token bound to a cookie value (`purpose`: "session" or "login")."""
        digest = hmac.new(self._mac_key, f"{purpose}\0{bound_to}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def bearer_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(
            401,
            "UNAUTHENTICATED",
            "use 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return value.strip()


def presented_token(scope: Any, codec: SessionCodec) -> str | None:
    """The token a request carries, unchecked (for rate limits): the bearer token, else the
    session cookie's token (or the cookie itself when it does not decrypt)."""
    conn = HTTPConnection(scope)
    scheme, _, value = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    cookie = conn.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    return codec.decode(cookie) or cookie


def caller_from(conn: HTTPConnection, engine: _TokenResolver, codec: SessionCodec) -> Caller | None:
    """The caller of a request or WebSocket, or None when it carries no credentials.

    Raises 401 for a token that is present but not valid.
    """
    token = bearer_token(conn)
    via_cookie = False
    if token is None:
        cookie = conn.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        token = codec.decode(cookie)
        via_cookie = True
        if token is None:
            raise ApiError(401, "SESSION_EXPIRED", "the session has expired; sign in again")
    principal: _Principal | None = engine.resolve_token(token)
    if principal is None:
        raise ApiError(
            401,
            "INVALID_TOKEN",
            "the access token is not valid",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return Caller(principal.account_id, principal.role, principal.agent_id, via_cookie)


def authenticate(request: Request) -> Caller:
    """FastAPI dependency: the authenticated caller, or 401."""
    state = request.app.state
    caller = caller_from(request, state.engine, state.session_codec)
    if caller is None:
        raise ApiError(
            401,
            "UNAUTHENTICATED",
            "an access token is required ('Authorization: Bearer <token>')",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if caller.via_cookie and request.method not in SAFE_METHODS:
        check_csrf(request, state.session_codec)
    request.state.caller = caller
    return caller


def check_csrf(request: Request, codec: SessionCodec) -> None:
    """An unsafe request authenticated by the session cookie must carry the session's CSRF
    token and come from this server's own pages (web/csrf.py); 403 otherwise."""
    if not own_origin(request):
        raise ApiError(
            403, "CSRF_CHECK_FAILED", "the request comes from another site (Origin/Referer)"
        )
    expected = codec.csrf_token("session", request.cookies.get(SESSION_COOKIE, ""))
    if not tokens_match(expected, request.headers.get(CSRF_HEADER)):
        raise ApiError(
            403,
            "CSRF_CHECK_FAILED",
            f"requests authenticated by the session cookie need the page's CSRF token in the "
            f"{CSRF_HEADER} header",
        )


def require_role(*roles: str) -> Callable[[Request], Caller]:
    """FastAPI dependency factory: the caller, if its role is one of `roles`, else 403."""
    allowed = set(roles)

    def dependency(request: Request) -> Caller:
        caller = authenticate(request)
        if caller.role not in allowed:
            raise ApiError(
                403,
                "FORBIDDEN",
                f"this needs the role {' or '.join(sorted(allowed))}; the token is {caller.role}",
            )
        return caller

    return dependency


def check_agent_access(caller: Caller, agent_id: str) -> None:
    """An agent token acts only on its own agent."""
    if caller.role == "agent" and caller.agent_id != agent_id:
        raise ApiError(403, "FORBIDDEN", "an agent token acts only on its own agent")
