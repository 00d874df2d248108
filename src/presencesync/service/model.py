"""The service layer's value types: what the engine hands to the web layer and the bridge."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, overload

from presencesync.domain import AgentSnapshot, Decision, Finding, OmniConfig, OpenWork

ROLES = ("admin", "supervisor", "agent")


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; everything we store is UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    omni_feature: bool


@dataclass(frozen=True)
class Principal:
    account_id: str
    role: str  # admin | supervisor | agent
    agent_id: str | None = None


@dataclass(frozen=True)
class Applied:
    """The result of `Engine.submit`: the event's id in the log and the decision taken."""

    event_id: int
    duplicate: bool
    decision: Decision


@dataclass(frozen=True)
class AgentRecord:
    agent_id: str
    name: str
    salesforce_user_id: str | None
    snapshot: AgentSnapshot


@dataclass(frozen=True)
class ConfigVersion:
    version: int
    config: OmniConfig
    warnings: tuple[Finding, ...]
    saved_by: str
    saved_at: datetime


@dataclass(frozen=True)
class SalesforceConnection:
    """How the account reaches its org. ``login_url`` is where tokens are requested (login or
    test.salesforce.com, or the org's My Domain URL); ``audience`` is the JWT bearer flow's
    ``aud`` (None: derived from ``login_url``, see ``salesforce.auth.default_audience``).
    ``pubsub_endpoint`` is where the Pub/Sub API (Change Data Capture) is reached: ``host:port``
    (TLS), ``grpcs://host:port`` or ``grpc://host:port`` (plaintext, the emulator); None:
    Salesforce's ``api.pubsub.salesforce.com:7443``."""

    login_url: str
    client_id: str
    username: str
    client_secret: str | None = None
    private_key_pem: str | None = None
    verify: str | bool = True
    audience: str | None = None
    pubsub_endpoint: str | None = None


@dataclass(frozen=True)
class CdcStatus:
    """An account's Change Data Capture subscription, as its holder last reported it."""

    account_id: str
    holder: str  # the process running it (host:pid)
    state: str  # starting | streaming | retrying | failed | stopped
    detail: str | None
    events: int  # change events applied since it started
    last_event_at: datetime | None
    started_at: datetime
    updated_at: datetime

    def to_api(self) -> dict[str, Any]:
        return {
            "holder": self.holder,
            "state": self.state,
            "detail": self.detail,
            "events": self.events,
            "last_event_at": None if self.last_event_at is None else self.last_event_at.isoformat(),
            "started_at": self.started_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class OutboxCommand:
    id: int
    account_id: str
    agent_id: str
    salesforce_user_id: str | None
    command_id: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime


@dataclass(frozen=True)
class Interaction:
    id: str
    account_id: str
    queue: str
    status: str  # offered | queued | answered | ended
    agent_id: str | None
    created_at: datetime

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "queue": self.queue,
            "status": self.status,
            "agent_id": self.agent_id,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class SalesforceView:
    """Salesforce's view of one user (REST: UserServicePresence + open AgentWork)."""

    salesforce_user_id: str
    presence_status: str | None
    open_work: tuple[OpenWork, ...] = field(default=())
