"""The service layer: the durable engine over the store (see DESIGN.md section 4).

`open_engine(url)` migrates the store and returns an `Engine`: accounts, configuration, agents,
`submit` (the only way an agent changes), the outbox, durable timers, the router
(`engine.router`) and reconciliation. `OutboxDispatcher` and `TimerRunner` are the asyncio loops
that deliver the outbox and fire the timers (`presencesync.bootstrap` builds them).

Imports go one way: `engine` composes `router`, `uow`, `writer`, `outbox`, `timers`,
`transactions`; the parts depend on the unit of work and on small interfaces (`ports`), never
on the engine (tests/test_layering.py checks it).
"""

from presencesync.service.codec import InvalidEvent, event_from_json, event_to_json
from presencesync.service.engine import Engine, hash_token, open_engine
from presencesync.service.errors import Conflict, NotFound
from presencesync.service.model import (
    Account,
    AgentRecord,
    Applied,
    CdcStatus,
    ConfigVersion,
    Interaction,
    OutboxCommand,
    Principal,
    SalesforceConnection,
    SalesforceView,
)
from presencesync.service.router import Router
from presencesync.service.runners import OutboxDispatcher, TimerRunner

__all__ = [
    "Account",
    "AgentRecord",
    "Applied",
    "CdcStatus",
    "ConfigVersion",
    "Conflict",
    "Engine",
    "Interaction",
    "InvalidEvent",
    "NotFound",
    "OutboxCommand",
    "OutboxDispatcher",
    "Principal",
    "Router",
    "SalesforceConnection",
    "SalesforceView",
    "TimerRunner",
    "event_from_json",
    "event_to_json",
    "hash_token",
    "open_engine",
]
