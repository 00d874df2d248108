"""The ASGI app: REST API under /api/v1, the pages, the WebSockets, health and metrics.

`create_app(engine)` wires everything to one engine. Its lifespan starts the outbox dispatcher
(commands to the consoles connected to this process, through the bridge hub) and the timer
runner (wrap time, session grace), and subscribes to the engine's commits: each commit wakes
the dispatcher, feeds the metrics and pushes the agent to the ContactPads watching it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from presencesync.domain import DomainError
from presencesync.web import pages
from presencesync.web.api import agents, interactions, omni, settings
from presencesync.web.auth import SessionCodec
from presencesync.web.bridge_ws import BridgeHub
from presencesync.web.bridge_ws import install as install_bridge
from presencesync.web.contactpad_ws import AgentChangeNotifier, AgentFeed
from presencesync.web.contactpad_ws import router as stream_router
from presencesync.web.errors import BodyLimitMiddleware, install_error_handlers
from presencesync.web.logging import RequestLogMiddleware
from presencesync.web.metrics import Metrics, seed_agent_gauge
from presencesync.web.openapi import install_openapi

log = structlog.get_logger("presencesync.web")

STATIC_DIR = Path(__file__).parent / "static"
API_PREFIX = "/api/v1"


def _health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness: the process answers and the store is reachable")
    def healthz(request: Request) -> JSONResponse:
        state = request.app.state
        body: dict[str, Any] = {"status": "ok"}
        try:
            state.engine.get_account("__healthz__")
        except DomainError:
            pass  # the store answered: no such account, as expected
        except Exception as error:  # any store failure means unhealthy
            body["status"] = "unavailable"
            body["error"] = type(error).__name__
            return JSONResponse(body, status_code=503)
        return JSONResponse(body)

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    def metrics(request: Request) -> Response:
        m: Metrics = request.app.state.metrics
        return Response(m.render(), media_type=m.content_type)

    return router


def create_app(
    engine: Any,
    *,
    salesforce_client_factory: Callable[[Any], Any] | None = None,
    start_background: bool = True,
    session_secret: str | bytes | None = None,
    secure_cookies: bool | None = None,
    stream_poll_seconds: float = 5.0,
) -> FastAPI:
    """The presencesync web app on top of `engine` (a `presencesync.service.Engine`).

    `salesforce_client_factory(connection)` returns the client `POST /omni/fetch` reads the
    org with (default: an AsyncSalesforceClient). `start_background=False` leaves out the
    outbox dispatcher and the timer runner (tests that drive the engine themselves).
    `secure_cookies=None` marks the session cookie Secure when the request came over HTTPS.
    `stream_poll_seconds`: how often the ContactPad feeds check their agents' versions (one
    query for all of them), for changes no notification reported (other processes sharing
    SQLite; PostgreSQL's are pushed by LISTEN/NOTIFY).
    """
    metrics = Metrics()
    feed = AgentFeed()
    hub = BridgeHub(engine)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        feed.bind(loop)
        tasks: list[asyncio.Task[None]] = []
        dispatcher = timers = None
        if start_background:
            from presencesync.service import OutboxDispatcher, TimerRunner

            # Only the commands of agents whose console is connected here: with several
            # processes on one store, each claims what it can deliver.
            dispatcher = OutboxDispatcher(
                engine, _counting_deliver(hub, metrics), claimable=hub.connected_agents
            )
            timers = TimerRunner(engine)
            tasks = [
                asyncio.create_task(dispatcher.run(), name="outbox-dispatcher"),
                asyncio.create_task(timers.run(), name="timer-runner"),
            ]

        # Other processes sharing PostgreSQL learn of our agents' changes (ContactPad feeds).
        notifier = (
            AgentChangeNotifier(engine.database_url, feed.notify)
            if getattr(engine, "postgres", False)
            else None
        )

        app.state.agent_notifier = notifier

        def on_commit(account_id: str, agent_id: str, applied: Any) -> None:
            # Any thread: keep this quick and thread-safe.
            metrics.observe_applied(account_id, agent_id, applied)
            feed.notify(account_id, agent_id, applied.decision.agent)
            if notifier is not None:
                notifier.changed(account_id, agent_id)
            # (the dispatcher registers its own waker with the engine)

        unsubscribe = engine.subscribe(on_commit)
        tasks.append(
            asyncio.create_task(feed.poll(engine, stream_poll_seconds), name="contactpad-poll")
        )
        if start_background:
            tasks.append(asyncio.create_task(_seed_gauge(engine, metrics), name="agents-gauge"))
        log.info("started", background=start_background)
        try:
            yield
        finally:
            unsubscribe()
            if notifier is not None:
                notifier.stop()
            for runner in (dispatcher, timers):
                if runner is not None:
                    with contextlib.suppress(Exception):
                        await runner.stop()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            hub.shutdown()  # last: the dispatcher and the consoles no longer call the engine

    app = FastAPI(
        title="presencesync",
        version="1.0",
        summary="Keeps contact-center agent state and Salesforce Omni-Channel presence in sync.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.metrics = metrics
    app.state.agent_feed = feed
    app.state.bridge_hub = hub
    app.state.session_codec = SessionCodec(session_secret)
    app.state.secure_cookies = secure_cookies
    app.state.stream_poll_seconds = stream_poll_seconds
    app.state.salesforce_client_factory = salesforce_client_factory or omni.default_client_factory

    install_error_handlers(app)
    api = APIRouter(prefix=API_PREFIX)
    for module in (settings, omni, agents, interactions):
        api.include_router(module.router)
    api.include_router(stream_router)
    app.include_router(api)
    app.include_router(_health_router())
    app.include_router(_health_router(), prefix=API_PREFIX, include_in_schema=False)
    app.include_router(pages.router)
    install_bridge(app, engine, hub)  # before /static, so its own routes come first
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_openapi(app, API_PREFIX)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(RequestLogMiddleware, metrics=metrics)
    return app


async def _seed_gauge(engine: Any, metrics: Metrics) -> None:
    try:
        count = await asyncio.to_thread(seed_agent_gauge, engine, metrics)
    except Exception:
        log.exception("counting agents by state failed")
    else:
        log.info("agents_counted", agents=count)


def _counting_deliver(hub: BridgeHub, metrics: Metrics) -> Callable[[Any], Any]:
    """The dispatcher's deliver: through the bridge hub, counting what was handed over."""

    async def deliver(command: Any) -> bool:
        delivered = bool(await hub.deliver(command))
        metrics.command_delivered(command.payload, delivered)
        return delivered

    return deliver
