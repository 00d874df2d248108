"""The emulator's ASGI application: Salesforce paths, control API, console."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from presencesync_emulator import console, control, oauth, rest
from presencesync_emulator.events import EventHub
from presencesync_emulator.omni import Omni
from presencesync_emulator.org import DEFAULT_TOKEN_LIFETIME_S, Org
from presencesync_emulator.seed import seed_if_empty
from presencesync_emulator.store import Store

log = logging.getLogger("presencesync_emulator")

# How often Omni checks for pushed work whose push time-out ran out.
PUSH_TIMEOUT_TICK_S = 0.25


async def _expire_push_timeouts(org: Org) -> None:
    """Omni's push time-out: Assigned work nobody answered in time is declined and rerouted."""
    while True:
        await asyncio.sleep(PUSH_TIMEOUT_TICK_S)
        try:
            armed = org.store.query(
                'SELECT 1 FROM "QueueRoutingConfig" WHERE "PushTimeout" > 0 LIMIT 1'
            )
            if armed:
                org.publish(await asyncio.to_thread(org.omni.expire_push_timeouts))
        except Exception:  # the store closed under us at shutdown, ...
            log.exception("push time-out check failed")


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    task = asyncio.create_task(_expire_push_timeouts(app.state.org))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _index(request: Request) -> Response:
    return RedirectResponse("/emulator/v1/users")


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Salesforce answers an internal failure with its JSON error list, not an HTML page.
    return JSONResponse(
        [
            {
                "message": f"An unexpected error occurred: {type(exc).__name__}",
                "errorCode": "UNKNOWN_EXCEPTION",
            }
        ],
        status_code=500,
    )


def create_app(
    db: str = ":memory:",
    *,
    base_url: str | None = None,
    token_lifetime_s: float = DEFAULT_TOKEN_LIFETIME_S,
    daily_api_limit: int | None = None,
    bridge_url: str | None = None,
    bridge_server: str | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Starlette:
    """An emulated org on `db` (SQLite file path or ":memory:"), seeded when new.

    `base_url` is the URL clients reach the emulator by (instance_url, SOAP serverUrl,
    accepted JWT audience); when None each request's own base URL is used.
    """
    store = Store(db) if clock is None else Store(db, clock=clock)
    seed_if_empty(store)
    if daily_api_limit is not None:
        store.set_setting("daily_api_limit", str(daily_api_limit))
    omni = Omni(store)
    org = Org(
        store=store,
        omni=omni,
        hub=EventHub(store),
        base_url=base_url.rstrip("/") if base_url else None,
        token_lifetime_s=token_lifetime_s,
        bridge_url=bridge_url,
        bridge_server=bridge_server,
    )
    routes: list[Any] = [
        Route("/", _index),
        Route("/healthz", _healthz),
        *oauth.routes,
        *rest.routes,
        *control.routes,
        *console.routes,
        Mount(
            "/emulator/static",
            app=StaticFiles(directory=Path(__file__).parent / "static"),
            name="static",
        ),
    ]
    # The store is not closed on shutdown: the caller owns it (app.state.org.store.close()).
    app = Starlette(routes=routes, exception_handlers={Exception: _unexpected}, lifespan=_lifespan)
    app.state.org = org
    return app
