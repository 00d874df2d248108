"""The composition root: the one place that builds presencesync's parts and wires them together,
for `presencesync serve`, the sandbox's demo, the tests and the benchmarks alike.

    engine = open_engine(database_url)   # the store migrated to the newest schema, the engine
                                         # on it (it composes the router, the writers, the
                                         # unit of work, the outbox and the timers)
    app = build_app(engine)              # the web app; its lifespan runs the outbox dispatcher
                                         # (delivering through the app's bridge hub) and the
                                         # timer runner
    serve(host, port, database_url)      # both under uvicorn until stopped (`presencesync serve`)

Nothing else constructs an `OutboxDispatcher`, a `TimerRunner` or a `ChangeDataCaptureRunner` for
a running server.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI

from presencesync.service import Engine, OutboxCommand, OutboxDispatcher, TimerRunner
from presencesync.service import open_engine as _migrate_and_open
from presencesync.service.cdc import ChangeDataCaptureRunner
from presencesync.web.app import Background, BackgroundRunner, create_app
from presencesync.web.bridge_ws import BridgeHub
from presencesync.web.metrics import Metrics

__all__ = ["build_app", "open_engine", "runners", "serve"]


def open_engine(database_url: str, *, group_commit: bool = True, migrate: bool = True) -> Engine:
    """The engine on `database_url`, the store migrated first (`migrate=False`: a store that
    someone else migrated, e.g. a second process's)."""
    if migrate:
        return _migrate_and_open(database_url, group_commit=group_commit)
    return Engine(database_url, group_commit=group_commit)


def runners(engine: Engine) -> Background:
    """What a serving app runs beside its requests: the outbox dispatcher, which claims only
    the commands of agents whose console is connected to this process (with several processes
    on one store, each claims what it can deliver) and hands them to the bridge hub, the
    timer runner (wrap time, session grace, ring time), and the Change Data Capture runner
    (a Pub/Sub API subscription per account with `change_data_capture` on, one process per
    account: service/cdc.py)."""

    def make(hub: BridgeHub, metrics: Metrics) -> Sequence[BackgroundRunner]:
        deliver = _deliver_through(hub, metrics)
        dispatcher = OutboxDispatcher(engine, deliver, claimable=hub.connected_agents)
        return [dispatcher, TimerRunner(engine), ChangeDataCaptureRunner(engine)]

    return make


def build_app(engine: Engine, *, background: bool = True, **options: Any) -> FastAPI:
    """The web app on `engine`; `background=False` leaves out the dispatcher and the timer
    runner (tests that drive the engine themselves). `options` go to `web.app.create_app`
    (`salesforce_client_factory`, `session_secret`, `secure_cookies`, `stream_poll_seconds`)."""
    return create_app(engine, background=runners(engine) if background else None, **options)


def serve(host: str, port: int, database_url: str) -> None:
    """`presencesync serve`: JSON-line logs, the store migrated, the app under uvicorn."""
    from presencesync.web.logging import configure_logging
    from presencesync.web.server import run

    configure_logging(os.environ.get("PRESENCESYNC_LOG_LEVEL", "INFO"))
    engine = open_engine(database_url)
    try:
        run(build_app(engine), host=host, port=port)
    finally:
        engine.close()


def _deliver_through(
    hub: BridgeHub, metrics: Metrics
) -> Callable[[OutboxCommand], Awaitable[bool]]:
    """The dispatcher's deliver: through the bridge hub, counting what was handed over."""

    async def deliver(command: OutboxCommand) -> bool:
        delivered = bool(await hub.deliver(command))
        metrics.command_delivered(command.payload, delivered)
        return delivered

    return deliver
