"""Events from either side, as the pure core sees them.

Every event says when it happened (`at`) and, when its source numbers its events, its sequence
(`seq`, per agent and side): the core drops an event older than the last one applied from the
same side (rule 7). Work-item events are facts about one item and are applied in any order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from presencesync.domain.states import State


class Side(StrEnum):
    CONTACT_CENTER = "contact_center"
    SALESFORCE = "salesforce"


class Cause(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    SYSTEM = "system"
    ROUTER = "router"
    SALESFORCE = "salesforce"
    SYNC = "sync"
    RECONCILE = "reconcile"
    SESSION_END = "session_end"


class StatusChangeReason(StrEnum):
    """`reason` of lightning:omniChannelStatusChanged."""

    TOOLKIT = "OmniToolkitStatusChange"
    MANUAL = "OmniManualStatusChange"
    SUPERVISOR = "OmniSupervisorStatusChange"
    PUSH_TIMEOUT = "OmniPushTimeout"
    DECLINE_WORK = "OmniDeclineWork"
    LOGIN = "OmniLoginStatusChange"


class LogoutReason(StrEnum):
    """`reason` of lightning:omniChannelLogout. The agent's own logout (widget, toolkit) carries
    none; an older org carries none at all."""

    DUPLICATE_LOGIN = "DuplicateLogin"  # the same user opened Omni-Channel somewhere else
    DUPLICATE_LOGIN_SAME_BROWSER = "DuplicateLoginInSameBrowser"  # ... in another tab
    MAINTENANCE = "MaintenanceLogout"
    SUPERVISOR = "OmniSupervisorLogout"


class DegradedReason(StrEnum):
    """Why a connected console cannot be relied on to drive Omni-Channel for now."""

    CONNECTION_ERROR = "connection_error"  # lightning:omniChannelConnectionError
    TOOLKIT_UNRESPONSIVE = "toolkit_unresponsive"  # toolkit calls neither resolve nor reject
    DISPLACED = "displaced"  # another console of the same user took over Omni (duplicate login)


@dataclass(frozen=True, kw_only=True)
class Event:
    at: datetime
    seq: int | None = None

    side: Side = field(init=False, default=Side.CONTACT_CENTER)


# --- contact-center side -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AgentLoggedIn(Event):
    state: State | None = None  # None: Ready
    cause: Cause = Cause.AGENT


@dataclass(frozen=True, kw_only=True)
class AgentLoggedOut(Event):
    cause: Cause = Cause.AGENT


@dataclass(frozen=True, kw_only=True)
class StateChangeRequested(Event):
    state: State
    cause: Cause = Cause.AGENT


@dataclass(frozen=True, kw_only=True)
class InteractionOffered(Event):
    interaction_id: str


@dataclass(frozen=True, kw_only=True)
class InteractionOfferWithdrawn(Event):
    """The agent declined the offer, or it timed out: the agent is free again."""

    interaction_id: str


@dataclass(frozen=True, kw_only=True)
class CallAnswered(Event):
    interaction_id: str


@dataclass(frozen=True, kw_only=True)
class CallEnded(Event):
    interaction_id: str


@dataclass(frozen=True, kw_only=True)
class WrapEnded(Event):
    """The account's wrap time ran out (the engine's timer)."""

    interaction_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class SessionGraceExpired(Event):
    """The console stayed disconnected longer than the account's grace period (rule 12)."""

    policy: str = "logout"  # "logout" | "away" | "none"


# --- Salesforce side -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SalesforceEvent(Event):
    side: Side = field(init=False, default=Side.SALESFORCE)


@dataclass(frozen=True, kw_only=True)
class PresenceChanged(SalesforceEvent):
    presence_status: str  # DeveloperName (statusApiName)
    reason: StatusChangeReason = StatusChangeReason.MANUAL
    command_id: str | None = None  # set by the bridge when it is the echo of our command


@dataclass(frozen=True, kw_only=True)
class OmniLoggedIn(SalesforceEvent):
    presence_status: str
    command_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class OmniLoggedOut(SalesforceEvent):
    command_id: str | None = None
    reason: LogoutReason | None = None  # None: the agent's own logout (rule 5)


@dataclass(frozen=True, kw_only=True)
class WorkAssigned(SalesforceEvent):
    work_id: str
    channel: str | None = None


@dataclass(frozen=True, kw_only=True)
class WorkAccepted(SalesforceEvent):
    work_id: str
    channel: str | None = None


@dataclass(frozen=True, kw_only=True)
class WorkDeclined(SalesforceEvent):
    work_id: str


@dataclass(frozen=True, kw_only=True)
class WorkClosed(SalesforceEvent):
    work_id: str


@dataclass(frozen=True, kw_only=True)
class CommandResult(SalesforceEvent):
    """The bridge ran (or failed to run) one of our commands through the toolkit."""

    command_id: str
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class OpenWork:
    work_id: str
    accepted: bool
    channel: str | None = None


@dataclass(frozen=True, kw_only=True)
class SalesforceSnapshot(SalesforceEvent):
    """Salesforce's whole view of the agent: from a console that (re)connects (rule 12) or from
    drift reconciliation over REST. Authoritative for presence and open work."""

    presence_status: str | None  # None: offline
    # None: the console could not read its work (getAgentWorks rejected or never answered):
    # what the core knows about work is kept.
    open_work: tuple[OpenWork, ...] | None = ()
    console_connected: bool | None = None  # True from a console hello, None from REST
    cause: Cause = Cause.RECONCILE
    # False: the console could not read its status (the toolkit never answered): the presence
    # the core knows is kept.
    presence_known: bool = True


@dataclass(frozen=True, kw_only=True)
class ConsoleDisconnected(SalesforceEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class ConsoleDegraded(SalesforceEvent):
    """The connected console reports that it cannot drive Omni-Channel for now (a connection
    error, a toolkit that does not answer, another console took over). Cleared by the
    console's next hello (rule 12) or its disconnect."""

    reason: DegradedReason = DegradedReason.CONNECTION_ERROR


# --- Salesforce side, as committed: Change Data Capture (domain/channels.py) ----------------


@dataclass(frozen=True, kw_only=True)
class CommittedChange(SalesforceEvent):
    """A change Salesforce committed, read from Change Data Capture: no console, no `reason`,
    no command id. Ordered per object by its commit (`commit_ms`, then the transaction's
    `sequence`); `transaction_key` tells two transactions of the same millisecond apart."""

    commit_ms: int
    transaction_key: str = ""
    sequence: int = 0


@dataclass(frozen=True, kw_only=True)
class PresenceCommitted(CommittedChange):
    """`UserServicePresence`: the agent's current status is now `presence_status` (a login or
    a status change), or None: the current row ended without a new one (Omni logout)."""

    presence_status: str | None


@dataclass(frozen=True, kw_only=True)
class WorkCommitted(CommittedChange):
    """`AgentWork`: work item `work_id` is now in `status` (AgentWork.Status: Assigned,
    Opened, Closed, Declined, DeclinedOnPushTimeout, Unavailable, Canceled, Transferred)."""

    work_id: str
    status: str
    channel: str | None = None


SALESFORCE_EVENTS = (
    PresenceChanged,
    OmniLoggedIn,
    OmniLoggedOut,
    WorkAssigned,
    WorkAccepted,
    WorkDeclined,
    WorkClosed,
    CommandResult,
    SalesforceSnapshot,
    ConsoleDisconnected,
    ConsoleDegraded,
    PresenceCommitted,
    WorkCommitted,
)
