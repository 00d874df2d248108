"""The ASGI app: REST API under /api/v1, the pages, the WebSockets, health and metrics.

`create_app(engine, background=...)` wires everything to one engine. Its lifespan runs the
background runners it is given (the composition root, `presencesync.bootstrap`, passes the
outbox dispatcher, delivering through this app's bridge hub, and the timer runner) and
subscribes to the engine's commits: each commit feeds the metrics and pushes the agent to the
ContactPads watching it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from presencesync.domain import DomainError
from presencesync.web import pages
from presencesync.web.api import agents, change_data_capture, interactions, omni, settings
from presencesync.web.auth import SessionCodec, presented_token
from presencesync.web.bridge_ws import BridgeHub
from presencesync.web.bridge_ws import install as install_bridge
from presencesync.web.contactpad_ws import AgentChangeNotifier, AgentFeed
from presencesync.web.contactpad_ws import router as stream_router
from presencesync.web.errors import (
    BodyLimitMiddleware,
    install_error_handlers,
    strict_query,
)
from presencesync.web.headers import SecurityHeadersMiddleware
from presencesync.web.limits import Limits
from presencesync.web.logging import RequestLogMiddleware
from presencesync.web.metrics import Metrics, seed_agent_gauge
from presencesync.web.openapi import install_openapi
from presencesync.web.ratelimit import RateLimiter, RateLimitMiddleware

log = structlog.get_logger("presencesync.web")

STATIC_DIR = Path(__file__).parent / "static"
API_PREFIX = "/api/v1"


class BackgroundRunner(Protocol):
    """A loop the app runs while it serves (`run()` until `stop()`)."""

    async def run(self) -> None: ...

    async def stop(self) -> None: ...


# Given the app's bridge hub and metrics, the runners to run in its lifespan.
Background = Callable[[BridgeHub, Metrics], Sequence[BackgroundRunner]]


_HEALTH_CONTENT = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {
                "status": {"type": "string", "enum": ["ok", "unavailable"]},
                "error": {"type": "string", "description": "the store's failure"},
            },
            "required": ["status"],
        }
    }
}


def _health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get(
        "/healthz",
        summary="Liveness: the process answers and the store is reachable",
        responses={
            200: {"description": "Healthy", "content": _HEALTH_CONTENT},
            503: {"description": "The store is unreachable", "content": _HEALTH_CONTENT},
        },
    )
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
    background: Background | None = None,
    salesforce_client_factory: Callable[[Any], Any] | None = None,
    session_secret: str | bytes | None = None,
    secure_cookies: bool | None = None,
    stream_poll_seconds: float = 5.0,
    limits: Limits | None = None,
) -> FastAPI:
    """The presencesync web app on top of `engine` (a `presencesync.service.Engine`).

    `salesforce_client_factory(connection)` returns the client `POST /omni/fetch` reads the
    org with (default: an AsyncSalesforceClient). `background(hub, metrics)` makes the runners
    the lifespan runs (`presencesync.bootstrap.build_app` passes the outbox dispatcher and the
    timer runner); None runs nothing in the background, not even the first count of agents by
    state (tests that drive the engine themselves).
    `secure_cookies=None` marks the session cookie Secure when the request came over HTTPS.
    `stream_poll_seconds`: how often the ContactPad feeds check their agents' versions (one
    query for all of them), for changes no notification reported (other processes sharing
    SQLite; PostgreSQL's are pushed by LISTEN/NOTIFY). `limits`: body and message sizes, rate
    limits (default: from the environment, `Limits.from_env()`).
    """
    limits = Limits.from_env() if limits is None else limits
    metrics = Metrics()
    feed = AgentFeed()
    hub = BridgeHub(engine)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        feed.bind(loop)
        tasks: list[asyncio.Task[None]] = []
        runners = list(background(hub, metrics)) if background is not None else []
        for runner in runners:
            name = type(runner).__name__
            tasks.append(asyncio.create_task(runner.run(), name=name))

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
            # (an outbox dispatcher registers its own waker with the engine)

        unsubscribe = engine.subscribe(on_commit)
        tasks.append(
            asyncio.create_task(feed.poll(engine, stream_poll_seconds), name="contactpad-poll")
        )
        if background is not None:
            tasks.append(asyncio.create_task(_seed_gauge(engine, metrics), name="agents-gauge"))
        log.info("started", background=[type(r).__name__ for r in runners])
        try:
            yield
        finally:
            unsubscribe()
            if notifier is not None:
                notifier.stop()
            for runner in runners:
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
    app.state.limits = limits
    app.state.rate_limiter = RateLimiter(limits)
    app.state.secure_cookies = secure_cookies
    app.state.stream_poll_seconds = stream_poll_seconds
    app.state.salesforce_client_factory = salesforce_client_factory or omni.default_client_factory

    install_error_handlers(app)
    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(strict_query)])
    for module in (settings, omni, change_data_capture, agents, interactions):
        api.include_router(module.router)
    api.include_router(stream_router)
    app.include_router(api)
    app.include_router(_health_router())
    app.include_router(_health_router(), prefix=API_PREFIX, include_in_schema=False)
    app.include_router(pages.router)
    install_bridge(app, engine, hub)  # before /static, so its own routes come first
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_openapi(app, API_PREFIX)
    # Outermost last: the request log sees every answer, refusals included; the security
    # headers go on refusals too; rate limits come before the body is read.
    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_body_bytes)
    codec = app.state.session_codec
    app.add_middleware(
        RateLimitMiddleware,
        limiter=app.state.rate_limiter,
        token_of=lambda scope: presented_token(scope, codec),
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestLogMiddleware, metrics=metrics)
    return app


async def _seed_gauge(engine: Any, metrics: Metrics) -> None:
    try:
        count = await asyncio.to_thread(seed_agent_gauge, engine, metrics)
    except Exception:
        log.exception("counting agents by state failed")
    else:
        log.info("agents_counted", agents=count)
