"""The emulator's ASGI application: Salesforce paths, control API, console."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
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
from presencesync_emulator.org import DEFAULT_JWT_AUDIENCES, DEFAULT_TOKEN_LIFETIME_S, Org
from presencesync_emulator.permissions import seed_permissions
from presencesync_emulator.pubsub import control as pubsub_control
from presencesync_emulator.pubsub.bus import (
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_KEEPALIVE_S,
    DEFAULT_RETENTION_S,
    EventBus,
)
from presencesync_emulator.pubsub.capture import ChangeCapture
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
    change_data_capture: bool = True,
    pubsub_retention_s: float = DEFAULT_RETENTION_S,
    pubsub_keepalive_s: float = DEFAULT_KEEPALIVE_S,
    pubsub_idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
    jwt_audiences: Sequence[str] | None = None,
) -> Starlette:
    """An emulated org on `db` (SQLite file path or ":memory:"), seeded when new.

    `base_url` is the URL clients reach the emulator by (instance_url, SOAP serverUrl, the My
    Domain URL); when None each request's own base URL is used. `jwt_audiences` are the `aud`
    values the JWT bearer flow accepts (default: https://login.salesforce.com, a production
    org; https://test.salesforce.com plays a sandbox; add an Experience Cloud site URL). The
    base URL itself is refused as an audience, as Salesforce refuses a My Domain URL.
    `change_data_capture` publishes UserServicePresence and AgentWork changes to the event bus
    that the Pub/Sub API serves (pubsub/); the `pubsub_*` options set its retention, keepalive
    interval and idle timeout (Salesforce: 72 h, 270 s, 60 s).
    """
    store = Store(db) if clock is None else Store(db, clock=clock)
    seed_if_empty(store)
    seed_permissions(store)  # also upgrades an org seeded before permissions existed
    bus: EventBus | None = None
    if change_data_capture:
        # After the seed: yesterday's shift is history, not news.
        bus = EventBus(
            store,
            retention_s=pubsub_retention_s,
            keepalive_s=pubsub_keepalive_s,
            idle_timeout_s=pubsub_idle_timeout_s,
        )
        ChangeCapture(store, bus)
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
        pubsub=bus,
        login_audiences=tuple(a.rstrip("/") for a in (jwt_audiences or DEFAULT_JWT_AUDIENCES)),
    )
    routes: list[Any] = [
        Route("/", _index),
        Route("/healthz", _healthz),
        *oauth.routes,
        *rest.routes,
        *control.routes,
        *pubsub_control.routes,
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
