"""Security headers on every response, chosen by what the response is.

- Pages (HTML): a CSP with no inline script or style (the pages keep their scripts and styles
  in /static; the JSON data blocks in ContactPad are not scripts), no framing, no caching,
  and no referrer sent to other sites.
- API answers (JSON): nothing to execute or frame, never cached.
- `/static/bridge.js`: loaded by the agent's Salesforce console from another origin, so it
  may be embedded cross-origin (CORP) and read with CORS.
- Over HTTPS (directly, or behind a trusted proxy that says so): HSTS.

`Referrer-Policy: same-origin` rather than `no-referrer`: other sites get no referrer at all,
and our own form posts keep their real `Origin` (under `no-referrer` a browser sends
`Origin: null` on a form post, and the sign-in's CSRF check could not tell it from a forgery).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"
# FastAPI's /docs page loads Swagger UI from a CDN with an inline script: only forbid framing.
DOCS_CSP = "frame-ancestors 'none'"
HSTS = "max-age=31536000"
CROSS_ORIGIN_SCRIPTS = frozenset({"/static/bridge.js"})


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        https = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                _add(headers, path, https)
            await send(message)

        await self.app(scope, receive, with_headers)


def _add(headers: MutableHeaders, path: str, https: bool) -> None:
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if https:
        headers.setdefault("Strict-Transport-Security", HSTS)
    content_type = headers.get("content-type", "")
    if path in CROSS_ORIGIN_SCRIPTS:
        headers["Cross-Origin-Resource-Policy"] = "cross-origin"
        return
    if path.startswith("/static/"):
        headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return
    headers.setdefault("X-Frame-Options", "DENY")
    if path == "/docs" or path.startswith("/docs/"):
        headers.setdefault("Content-Security-Policy", DOCS_CSP)
    elif content_type.startswith("text/html"):
        headers.setdefault("Content-Security-Policy", PAGE_CSP)
    else:
        headers.setdefault("Content-Security-Policy", API_CSP)
    # Pages and API answers show account data: never kept by a browser or a proxy.
    headers.setdefault("Cache-Control", "no-store")
