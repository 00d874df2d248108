"""Helpers shared by the API modules: the engine, the clock, the agent JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from fastapi import Request

from presencesync.domain import Cause

if TYPE_CHECKING:
    from presencesync.service import AgentRecord, Engine


def engine_of(request: Request) -> Engine:
    # Starlette's app.state is untyped; create_app puts the Engine there.
    return cast("Engine", request.app.state.engine)


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def cause_of(role: str) -> Cause:
    """A change an agent makes is the agent's; one made for it by anyone else is a supervisor's."""
    return Cause.AGENT if role == "agent" else Cause.SUPERVISOR


def pending_state(snapshot: Any) -> str | None:
    """Rule 11: what the agent goes to when the call's wrap ends (None: nothing held)."""
    hold = snapshot.hold
    if hold is None:
        return None
    if hold.presence_status is None:
        return "LoggedOut"
    return None if hold.state is None else str(hold.state)


def agent_view(record: AgentRecord) -> dict[str, Any]:
    """`GET /agents/{agent_id}`: DESIGN.md 5's fields first, then what ContactPad also shows."""
    snap = record.snapshot
    return {
        "agent_id": record.agent_id,
        "salesforce_user_id": record.salesforce_user_id,
        "logged_in": snap.logged_in,
        "state": str(snap.state),
        "since": iso(snap.since),
        "presence_status": snap.presence,
        "open_work_items": [
            {
                "id": work.work_id,
                "channel": work.channel,
                "status": "Opened" if work.accepted else "Assigned",
            }
            for work in snap.work
        ],
        "name": record.name,
        "pending_state": pending_state(snap),
        "desired_presence_status": snap.desired_presence,
        "busy_reason": None if snap.busy_reason is None else str(snap.busy_reason),
        "interaction_id": snap.interaction_id,
        "offered_interaction_id": snap.offered_interaction_id,
        "console_connected": snap.console_connected,
        # The console reported it cannot drive Omni for now (connection_error,
        # toolkit_unresponsive, displaced), cleared by its next hello.
        "console_degraded": snap.console_degraded,
        # Omni logged the agent out for maintenance and the state was kept (rule 3.5b).
        "omni_unavailable": snap.omni_unavailable,
        "version": snap.version,
        "salesforce_observed_via": observed_via(snap),
    }


def observed_via(snapshot: Any) -> str | None:
    """How presencesync sees the agent's Omni-Channel now: "console" (the bridge in the open
    console tab), "change_data_capture" (no console, but CDC has reported this agent: changes
    arrive from Salesforce's database; commands wait for a console), or None (neither)."""
    if snapshot.console_connected:
        return "console"
    if getattr(snapshot, "cdc_marks", ()):
        return "change_data_capture"
    return None
