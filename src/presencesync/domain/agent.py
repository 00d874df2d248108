"""The agent snapshot: everything the core knows about one agent between two events.

The store keeps it as JSON (`to_json` / `from_json`); the core never mutates it, it returns a
new one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from presencesync.domain.channels import Sighting
from presencesync.domain.events import OpenWork, Side
from presencesync.domain.states import LOGGED_OUT, Major, State, parse_state_text


class BusyReason(StrEnum):
    """Why the agent is in Busy/Inbound, so that each cause ends it correctly."""

    CALL = "call"  # answered a contact-center interaction
    WORK = "work"  # accepted Salesforce work (rule 6)
    PRESENCE = "presence"  # a busy presence status, with the rule 8 option on


@dataclass(frozen=True)
class PendingCommand:
    """A Salesforce command we sent and whose echo we still expect."""

    command_id: str
    kind: str  # "set_presence" | "omni_login" | "omni_logout"
    presence_status: str | None
    issued_at: datetime
    caused_by_seq: int | None
    rule: str | None = None  # the rule that sent it, shown on the echo's history entry


@dataclass(frozen=True)
class Hold:
    """Rule 11: a Salesforce change that arrived during a call, applied when the wrap ends."""

    presence_status: str | None  # None: Omni went offline (log out when the call is over)
    state: State | None  # the state it maps to (None: unknown status, or logout)
    caused_by_seq: int | None


# How many finished work ids and command ids to remember, to recognise late duplicates.
RECENT_LIMIT = 32


@dataclass(frozen=True)
class AgentSnapshot:
    agent_id: str
    state: State = LOGGED_OUT
    since: datetime | None = None
    presence: str | None = None  # last known Salesforce status (None: Omni offline)
    desired_presence: str | None = None  # what Salesforce should be in per our last decision
    work: tuple[OpenWork, ...] = ()  # open Salesforce work: assigned or accepted
    busy_reason: BusyReason | None = None
    interaction_id: str | None = None  # the call the agent is on or wrapping
    offered_interaction_id: str | None = None  # reserved by the router, not yet answered
    hold: Hold | None = None
    last_seq: tuple[tuple[Side, int], ...] = ()
    pending: tuple[PendingCommand, ...] = ()
    recent_command_ids: tuple[str, ...] = ()
    closed_work_ids: tuple[str, ...] = ()
    console_connected: bool = False
    console_disconnected_at: datetime | None = None
    # The connected console reported it cannot drive Omni for now (a DegradedReason value).
    console_degraded: str | None = None
    # Omni-Channel logged the agent out for a reason that keeps the contact-center state
    # ("maintenance", rule 3.5b): presence is driven again when Omni comes back.
    omni_unavailable: str | None = None
    next_command_no: int = 1
    history_seq: int = 0
    # Events applied to this agent, whatever their outcome: lets a reader (ContactPad) tell a
    # newer snapshot from an older one that arrived late.
    version: int = 0
    # Change Data Capture (domain/channels.py): presence changes one channel reported that the
    # other has not yet, and per object the last committed change applied (commit_ms,
    # transaction_key, sequence): an older or repeated one is stale.
    sightings: tuple[Sighting, ...] = ()
    cdc_marks: tuple[tuple[str, int, str, int], ...] = ()
    # The presence each channel reported last ("bridge", "change_data_capture"): a report that
    # repeats it is no change (the toolkit's status event after its login event, for one).
    reported: tuple[tuple[str, str | None], ...] = ()

    @property
    def logged_in(self) -> bool:
        return self.state.major is not Major.LOGGED_OUT

    @property
    def open_work_ids(self) -> tuple[str, ...]:
        return tuple(w.work_id for w in self.work)

    @property
    def has_open_work(self) -> bool:
        return bool(self.work)

    @property
    def on_call(self) -> bool:
        """On a contact-center interaction: talking or wrapping it up (rule 11)."""
        return self.interaction_id is not None

    def last_seq_of(self, side: Side) -> int | None:
        for known, seq in self.last_seq:
            if known == side:
                return seq
        return None

    def with_last_seq(self, side: Side, seq: int) -> AgentSnapshot:
        seqs = dict(self.last_seq)
        seqs[side] = seq
        return replace(self, last_seq=tuple(sorted(seqs.items())))

    # --- persistence --------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "state": str(self.state),
            "since": _dt(self.since),
            "presence": self.presence,
            "desired_presence": self.desired_presence,
            "work": [
                {"work_id": w.work_id, "accepted": w.accepted, "channel": w.channel}
                for w in self.work
            ],
            "busy_reason": None if self.busy_reason is None else self.busy_reason.value,
            "interaction_id": self.interaction_id,
            "offered_interaction_id": self.offered_interaction_id,
            "hold": None
            if self.hold is None
            else {
                "presence_status": self.hold.presence_status,
                "state": None if self.hold.state is None else str(self.hold.state),
                "caused_by_seq": self.hold.caused_by_seq,
            },
            "last_seq": {side.value: seq for side, seq in self.last_seq},
            "pending": [
                {
                    "command_id": p.command_id,
                    "kind": p.kind,
                    "presence_status": p.presence_status,
                    "issued_at": _dt(p.issued_at),
                    "caused_by_seq": p.caused_by_seq,
                    "rule": p.rule,
                }
                for p in self.pending
            ],
            "recent_command_ids": list(self.recent_command_ids),
            "closed_work_ids": list(self.closed_work_ids),
            "console_connected": self.console_connected,
            "console_disconnected_at": _dt(self.console_disconnected_at),
            "console_degraded": self.console_degraded,
            "omni_unavailable": self.omni_unavailable,
            "next_command_no": self.next_command_no,
            "history_seq": self.history_seq,
            "version": self.version,
            "sightings": [sighting.to_json() for sighting in self.sightings],
            "cdc_marks": {entity: [ms, key, seq] for entity, ms, key, seq in self.cdc_marks},
            "reported": dict(self.reported),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AgentSnapshot:
        hold = data.get("hold")
        return cls(
            agent_id=data["agent_id"],
            state=parse_state_text(data["state"]),
            since=_parse_dt(data.get("since")),
            presence=data.get("presence"),
            desired_presence=data.get("desired_presence"),
            work=tuple(
                OpenWork(w["work_id"], bool(w["accepted"]), w.get("channel"))
                for w in data.get("work", [])
            ),
            busy_reason=BusyReason(data["busy_reason"]) if data.get("busy_reason") else None,
            interaction_id=data.get("interaction_id"),
            offered_interaction_id=data.get("offered_interaction_id"),
            hold=None
            if hold is None
            else Hold(
                presence_status=hold.get("presence_status"),
                state=parse_state_text(hold["state"]) if hold.get("state") else None,
                caused_by_seq=hold.get("caused_by_seq"),
            ),
            last_seq=tuple(sorted((Side(k), int(v)) for k, v in data.get("last_seq", {}).items())),
            pending=tuple(
                PendingCommand(
                    command_id=p["command_id"],
                    kind=p["kind"],
                    presence_status=p.get("presence_status"),
                    issued_at=_parse_dt(p["issued_at"]) or datetime.min,
                    caused_by_seq=p.get("caused_by_seq"),
                    rule=p.get("rule"),
                )
                for p in data.get("pending", [])
            ),
            recent_command_ids=tuple(data.get("recent_command_ids", [])),
            closed_work_ids=tuple(data.get("closed_work_ids", [])),
            console_connected=bool(data.get("console_connected", False)),
            console_disconnected_at=_parse_dt(data.get("console_disconnected_at")),
            console_degraded=data.get("console_degraded"),
            omni_unavailable=data.get("omni_unavailable"),
            next_command_no=int(data.get("next_command_no", 1)),
            history_seq=int(data.get("history_seq", 0)),
            version=int(data.get("version", 0)),
            sightings=tuple(Sighting.from_json(x) for x in data.get("sightings", ())),
            cdc_marks=tuple(
                (entity, int(mark[0]), str(mark[1]), int(mark[2]))
                for entity, mark in sorted(data.get("cdc_marks", {}).items())
            ),
            reported=tuple(sorted(data.get("reported", {}).items())),
        )


def _dt(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def new_agent(agent_id: str) -> AgentSnapshot:
    return AgentSnapshot(agent_id=agent_id)


__all__ = ["AgentSnapshot", "BusyReason", "Hold", "PendingCommand", "new_agent"]
