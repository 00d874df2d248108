"""Cross-site request forgery: what keeps another site from acting with a signed-in browser.

Three layers, each enough on its own in current browsers:

1. The session cookie is SameSite=Strict: other sites' requests do not carry it.
2. A synchronizer token bound to the session: `HMAC(key, session cookie)`, put in the page
   (`<meta name="csrf-token">`) and sent back by the pages' scripts in `X-CSRF-Token` on
   every unsafe request authenticated by the cookie. Another site can neither read the page
   nor compute the token (the cookie is HttpOnly, the key is the server's).
3. The browser's `Origin` (or, without it, `Referer`) of an unsafe request must be this
   server's own.

The sign-in form is protected against login CSRF (a forged sign-in into the attacker's
account) the same way: `GET /login` sets a random pre-session cookie and puts its HMAC in the
form; `POST /login` needs both to match, and an own Origin.

Requests with `Authorization: Bearer` are not affected: a browser never adds that header on
its own, so they cannot be forged.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
LOGIN_COOKIE = "presencesync_login"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def tokens_match(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())


def own_origin(conn: HTTPConnection) -> bool:
    """False when the browser says the request comes from another origin.

    `Origin` is compared with the `Host` the request was sent to (a proxy in front must pass
    it on); a request with neither `Origin` nor `Referer` is not from a browser form or script
    of another site (browsers send `Origin` on every unsafe cross-origin request) and passes.
    """
    host = conn.headers.get("host", "")
    origin = conn.headers.get("origin")
    if origin is not None:
        # "null": an opaque origin (sandboxed frame, data: URL, a redirect across sites).
        return origin != "null" and urlsplit(origin).netloc == host
    referer = conn.headers.get("referer")
    if referer is not None:
        return urlsplit(referer).netloc == host
    return True
