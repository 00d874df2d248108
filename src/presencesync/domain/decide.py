"""The sync decision: decide(agent, event, config) -> (agent', commands, history).

Every rule of DESIGN.md section 3 lives here, as a function of the agent snapshot, one event
and the account's configuration. No I/O, no clock: time comes from the event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar, cast

from presencesync.domain.agent import RECENT_LIMIT, AgentSnapshot, BusyReason, Hold, PendingCommand
from presencesync.domain.channels import Channel, Drift, Sighting, judge, record, without_cdc
from presencesync.domain.commands import (
    Command,
    LogOut,
    OmniLogin,
    OmniLogout,
    SetPresence,
    SetState,
)
from presencesync.domain.errors import Rejected
from presencesync.domain.events import (
    AgentLoggedIn,
    AgentLoggedOut,
    CallAnswered,
    CallEnded,
    Cause,
    CommandResult,
    CommittedChange,
    ConsoleDegraded,
    ConsoleDisconnected,
    Event,
    InteractionOffered,
    InteractionOfferWithdrawn,
    LogoutReason,
    OmniLoggedIn,
    OmniLoggedOut,
    OpenWork,
    PresenceChanged,
    PresenceCommitted,
    SalesforceSnapshot,
    SessionGraceExpired,
    Side,
    StateChangeRequested,
    StatusChangeReason,
    WorkAccepted,
    WorkAssigned,
    WorkClosed,
    WorkCommitted,
    WorkDeclined,
    WrapEnded,
)
from presencesync.domain.mapping import OmniConfig
from presencesync.domain.presence import presence_label
from presencesync.domain.settings import SyncSettings
from presencesync.domain.states import (
    AWAY,
    BUSY_INBOUND,
    LOGGED_OUT,
    READY,
    WRAP_AUTO,
    Major,
    State,
    StateCatalog,
)

_T = TypeVar("_T")


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # same sequence as the last applied one from that side
    STALE = "stale"  # older than the last applied one from that side (rule 7)
    ECHO = "echo"  # the result of our own command (rule 7)
    HELD = "held"  # kept for after the call (rule 11)
    UNKNOWN_STATUS = "unknown_status"  # a status not in the last fetch (rule 9)
    IGNORED = "ignored"  # nothing to do
    FAILED = "failed"  # a command of ours failed in Salesforce


@dataclass(frozen=True)
class Transition:
    """One entry of the agent's history: a change on one side, and why."""

    seq: int
    at: datetime
    side: Side
    from_: str
    to: str
    cause: Cause
    rule: str | None = None
    caused_by_seq: int | None = None
    latency_ms: float | None = None
    # Salesforce side only: how the change reached us, and why the channels disagreed.
    channel: Channel | None = None
    drift: Drift | None = None

    def to_api(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "side": self.side.value,
            "from": self.from_,
            "to": self.to,
            "cause": self.cause.value,
            "rule": self.rule,
            "caused_by_seq": self.caused_by_seq,
            "latency_ms": self.latency_ms,
            "channel": None if self.channel is None else self.channel.value,
            "drift": None if self.drift is None else self.drift.to_api(),
        }


@dataclass(frozen=True)
class Decision:
    agent: AgentSnapshot
    commands: tuple[Command, ...] = ()
    transitions: tuple[Transition, ...] = ()
    outcome: Outcome = Outcome.APPLIED
    notes: tuple[str, ...] = ()


_SNAPSHOT_FIELDS = frozenset(f.name for f in fields(AgentSnapshot))
_ORDERED_EVENTS = frozenset({PresenceChanged, OmniLoggedIn, OmniLoggedOut})


def _frozen(cls: type[_T], **values: Any) -> _T:
    """Build one of the core's own frozen records with every field given, without the
    generated __init__ (a frozen dataclass sets each field through object.__setattr__: ~1 µs
    for a Transition, and a decision makes several). Callers pass every field."""
    record = object.__new__(cls)
    record.__dict__.update(values)
    return record


class _Step:
    """The decision being built for one event (mutable only inside `decide`).

    The snapshot is immutable, and a decision changes it several times. Copying it at every
    change was most of the core's time, so the changes are kept in a dict and the new snapshot
    is built only when a handler asks for `step.agent` (and once at the end). A snapshot a
    handler holds never changes under it: later updates build a new one.
    """

    __slots__ = (
        "_base",
        "_changes",
        "at",
        "catalog",
        "commands",
        "config",
        "event",
        "notes",
        "outcome",
        "settings",
        "syncing",
        "transitions",
        "unconfirmed",
    )

    def __init__(
        self,
        agent: AgentSnapshot,
        event: Event,
        config: OmniConfig | None,
        catalog: StateCatalog,
        settings: SyncSettings,
    ) -> None:
        self._base = agent
        self._changes: dict[str, Any] = {}
        self.event = event
        self.at: datetime = event.at
        self.config = config
        self.syncing = config is not None and config.enabled
        self.catalog = catalog
        self.settings = settings
        self.commands: list[Command] = []
        self.transitions: list[Transition] = []
        self.outcome = Outcome.APPLIED
        self.notes: list[str] = []
        self.unconfirmed: tuple[Sighting, ...] = ()  # sightings the other channel let expire

    @property
    def agent(self) -> AgentSnapshot:
        changes = self._changes
        if changes:
            updated = object.__new__(AgentSnapshot)
            updated.__dict__.update(self._base.__dict__, **changes)
            self._base = updated
            self._changes = {}
        return self._base

    @agent.setter
    def agent(self, value: AgentSnapshot) -> None:
        self._base = value
        self._changes = {}

    def get(self, name: str) -> Any:
        """One field of the snapshot being built (no copy)."""
        changes = self._changes
        return changes[name] if name in changes else self._base.__dict__[name]

    def update(self, **changes: Any) -> None:
        if not _SNAPSHOT_FIELDS.issuperset(changes):
            unknown = sorted(changes.keys() - _SNAPSHOT_FIELDS)
            raise TypeError(f"AgentSnapshot has no field(s) {unknown}")
        self._changes.update(changes)

    def set_last_seq(self, side: Side, seq: int) -> None:
        seqs = dict(self.get("last_seq"))
        seqs[side] = seq
        self._changes["last_seq"] = tuple(sorted(seqs.items()))

    def record(
        self,
        side: Side,
        from_: str,
        to: str,
        cause: Cause,
        rule: str | None = None,
        caused_by_seq: int | None = None,
        latency_ms: float | None = None,
    ) -> int:
        seq: int = self.get("history_seq") + 1
        self._changes["history_seq"] = seq
        self.transitions.append(
            _frozen(
                Transition,
                seq=seq,
                at=self.at,
                side=side,
                from_=from_,
                to=to,
                cause=cause,
                rule=rule,
                caused_by_seq=caused_by_seq,
                latency_ms=latency_ms,
            )
        )
        return seq

    # --- contact-center side ---------------------------------------------------------------

    def set_state(
        self, state: State, cause: Cause, rule: str | None = None, caused_by: int | None = None
    ) -> int | None:
        """Move the contact-center state; returns the history seq (None if nothing changed)."""
        old = self.get("state")
        if state == old:
            return None
        self.update(state=state, since=self.at)
        if state != BUSY_INBOUND:
            self.update(busy_reason=None)
        seq = self.record(Side.CONTACT_CENTER, str(old), str(state), cause, rule, caused_by)
        if cause not in (Cause.AGENT, Cause.SUPERVISOR, Cause.SYSTEM, Cause.ROUTER):
            # The contact center did not ask for this: tell it (ContactPad, an external ACD).
            if state.is_logged_out:
                self.commands.append(LogOut(caused_by_seq=seq))
            else:
                self.commands.append(SetState(state=state, caused_by_seq=seq))
        return seq

    # --- Salesforce side ---------------------------------------------------------------------

    def expected_presence(self) -> str | None:
        """Where Salesforce will be once our pending commands have run."""
        pending = self.get("pending")
        if not pending:
            presence: str | None = self.get("presence")
            return presence
        last = pending[-1]
        return None if last.kind == "omni_logout" else last.presence_status

    def drive_presence(self, desired: str | None, rule: str, caused_by: int | None) -> None:
        """Make Salesforce go to `desired` (None: offline), unless it is already going there."""
        self.update(desired_presence=desired)
        if not self.syncing:
            return
        expected = self.expected_presence()
        if desired == expected:
            return
        number = self.get("next_command_no")
        command_id = f"{self._base.agent_id}:{number}"
        command: SetPresence | OmniLogin | OmniLogout
        if desired is None:
            command = OmniLogout(command_id=command_id, caused_by_seq=caused_by)
            kind = "omni_logout"
        elif expected is None:
            command = OmniLogin(
                command_id=command_id, presence_status=desired, caused_by_seq=caused_by
            )
            kind = "omni_login"
        else:
            command = SetPresence(
                command_id=command_id, presence_status=desired, caused_by_seq=caused_by
            )
            kind = "set_presence"
        self.commands.append(command)
        pending = PendingCommand(command_id, kind, desired, self.at, caused_by, rule)
        self.update(next_command_no=number + 1, pending=(*self.get("pending"), pending))
        self.notes.append(f"rule {rule}: {kind} {presence_label(desired)}")

    def mapped_presence(self, state: State) -> str | None:
        assert self.config is not None
        return self.config.presence_for_state(state)

    def observe_presence(
        self,
        status: str | None,
        cause: Cause,
        caused_by: int | None = None,
        latency_ms: float | None = None,
        rule: str | None = None,
    ) -> int | None:
        old = self.get("presence")
        if status == old:
            return None
        self.update(presence=status)
        if status is None:
            self.forget_assigned_work()
        return self.record(
            Side.SALESFORCE,
            presence_label(old),
            presence_label(status),
            cause,
            rule,
            caused_by,
            latency_ms,
        )

    def forget_assigned_work(self) -> None:
        """Omni-Channel returns assigned (not yet accepted) work to the queue on logout; no
        decline event follows, so forget it or the agent is never routable again."""
        work = self.get("work")
        if any(not w.accepted for w in work):
            self.update(work=tuple(w for w in work if w.accepted))

    def finish(self) -> Decision:
        self._changes["version"] = self.get("version") + 1
        return _frozen(
            Decision,
            agent=self.agent,
            commands=tuple(self.commands),
            transitions=tuple(self.transitions),
            outcome=self.outcome,
            notes=tuple(self.notes),
        )


def decide(
    agent: AgentSnapshot,
    event: Event,
    config: OmniConfig | None,
    catalog: StateCatalog | None = None,
    settings: SyncSettings | None = None,
) -> Decision:
    """Apply one event to one agent. Raises `Rejected` for a request the rules refuse."""
    step = _Step(
        agent, event, config, catalog or StateCatalog.default(), settings or SyncSettings()
    )
    ordered = type(event) in _ORDERED_EVENTS
    if ordered and event.seq is not None:
        # `type(event) in` is cheaper than isinstance over a union, but mypy cannot narrow it:
        # these are the events that carry a command_id.
        numbered = cast("PresenceChanged | OmniLoggedIn | OmniLoggedOut", event)
        last = agent.last_seq_of(event.side)
        if last is not None and event.seq <= last:
            step.outcome = Outcome.DUPLICATE if event.seq == last else Outcome.STALE
            if numbered.command_id is not None:
                _complete_superseded(step, numbered.command_id)
            return step.finish()
    salesforce = event.side is Side.SALESFORCE
    seen = salesforce and _observe_before(step, event)
    presence_before = step.get("presence")
    if not seen:
        _HANDLERS[type(event)](step, event)
    if step.agent.omni_unavailable is not None and (
        step.agent.presence is not None or not step.agent.logged_in
    ):
        step.update(omni_unavailable=None)  # rule 3.5b: Omni is back (or no longer ours to drive)
    if ordered and event.seq is not None:
        step.set_last_seq(event.side, event.seq)
    if salesforce:
        _observe_after(step, event, presence_before, seen)
    return step.finish()


# --- contact-center events --------------------------------------------------------------------


def _logged_in(step: _Step, event: AgentLoggedIn) -> None:
    if step.agent.logged_in:
        raise Rejected("ALREADY_LOGGED_IN", f"agent is already logged in ({step.agent.state})")
    state = event.state or READY
    info = step.catalog.describe(state)
    if state.is_logged_out or (event.cause is Cause.AGENT and not info.agent_selectable):
        raise Rejected("STATE_NOT_SELECTABLE", f"an agent cannot log in to {state}")
    step.update(hold=None, busy_reason=None, interaction_id=None, offered_interaction_id=None)
    seq = step.set_state(state, event.cause)
    if step.syncing:
        step.drive_presence(step.mapped_presence(state), "3.3", seq)
    _settle_work(step, seq)


def _logged_out(step: _Step, event: AgentLoggedOut) -> None:
    if not step.agent.logged_in:
        step.outcome = Outcome.IGNORED
        return
    step.update(hold=None, interaction_id=None, offered_interaction_id=None, busy_reason=None)
    seq = step.set_state(LOGGED_OUT, event.cause)
    step.drive_presence(None, "3.4", seq)


def _state_change(step: _Step, event: StateChangeRequested) -> None:
    agent = step.agent
    if not agent.logged_in:
        raise Rejected("NOT_LOGGED_IN", "log in before changing state")
    state = event.state
    info = step.catalog.describe(state)
    if state.is_logged_out:
        raise Rejected("USE_LOGOUT", "LoggedOut is reached by logging out")
    human = event.cause in (Cause.AGENT,)
    if human and not info.agent_selectable:
        raise Rejected("STATE_NOT_SELECTABLE", f"{state} is set by the system only")
    if human and agent.busy_reason is BusyReason.CALL and agent.state.major is Major.BUSY:
        raise Rejected("ON_CALL", "the agent is on a call: the state changes when the call ends")
    if state == agent.state:
        step.outcome = Outcome.IGNORED
        return
    if agent.on_call and agent.state.major is Major.WRAP:
        # Picking a state during wrap ends the wrap; the agent's own choice beats a held one.
        step.update(interaction_id=None, hold=None)
    seq = step.set_state(state, event.cause)
    if step.syncing:
        step.drive_presence(step.mapped_presence(state), "3.1", seq)


def _offered(step: _Step, event: InteractionOffered) -> None:
    agent = step.agent
    if not (
        agent.state == READY
        and not agent.has_open_work
        and not agent.on_call
        and agent.offered_interaction_id is None
    ):
        raise Rejected("NOT_ROUTABLE", f"agent {agent.agent_id} cannot take an interaction now")
    step.update(offered_interaction_id=event.interaction_id)


def _offer_withdrawn(step: _Step, event: InteractionOfferWithdrawn) -> None:
    if step.agent.offered_interaction_id != event.interaction_id:
        step.outcome = Outcome.IGNORED
        return
    step.update(offered_interaction_id=None)


def _answered(step: _Step, event: CallAnswered) -> None:
    if step.agent.offered_interaction_id != event.interaction_id:
        raise Rejected("NOT_OFFERED", f"interaction {event.interaction_id} is not offered to agent")
    step.update(offered_interaction_id=None, interaction_id=event.interaction_id, hold=None)
    seq = step.set_state(BUSY_INBOUND, Cause.ROUTER)
    step.update(busy_reason=BusyReason.CALL)
    if step.syncing:
        step.drive_presence(step.mapped_presence(BUSY_INBOUND), "3.1", seq)


def _call_ended(step: _Step, event: CallEnded) -> None:
    agent = step.agent
    if agent.interaction_id != event.interaction_id or agent.state.major is not Major.BUSY:
        raise Rejected("NOT_ON_CALL", f"agent is not on interaction {event.interaction_id}")
    seq = step.set_state(WRAP_AUTO, Cause.SYSTEM)
    if step.syncing:
        if _held_logout(step.agent):
            step.update(desired_presence=None)  # rule 11: an Omni logout is not undone
        else:
            step.drive_presence(step.mapped_presence(WRAP_AUTO), "3.1", seq)


def _held_logout(agent: AgentSnapshot) -> bool:
    """Omni went offline (or the session ended) during the call: logout when it is over."""
    return agent.on_call and agent.hold is not None and agent.hold.presence_status is None


def _wrap_ended(step: _Step, event: WrapEnded) -> None:
    agent = step.agent
    if not agent.on_call or agent.state.major is not Major.WRAP:
        step.outcome = Outcome.IGNORED
        return
    if event.interaction_id is not None and event.interaction_id != agent.interaction_id:
        step.outcome = Outcome.IGNORED
        return
    hold = agent.hold
    step.update(interaction_id=None, hold=None)
    if hold is not None and step.syncing:
        caused_by = hold.caused_by_seq
        if hold.presence_status is None:
            seq = step.set_state(LOGGED_OUT, Cause.SYNC, "3.11", caused_by)
            step.drive_presence(None, "3.11", seq or caused_by)
            return
        target = hold.state or READY
        seq = step.set_state(target, Cause.SYNC, "3.11", caused_by)
        step.drive_presence(hold.presence_status, "3.11", seq or caused_by)
        _settle_work(step, seq)
        return
    if step.syncing and _accepted_work(step.agent):
        seq = step.set_state(BUSY_INBOUND, Cause.SYNC, "3.6")
        step.update(busy_reason=BusyReason.WORK, desired_presence=step.agent.presence)
        return
    seq = step.set_state(READY, Cause.SYSTEM)
    if step.syncing:
        step.drive_presence(step.mapped_presence(READY), "3.1", seq)


def _grace_expired(step: _Step, event: SessionGraceExpired) -> None:
    agent = step.agent
    if agent.console_connected or not agent.logged_in or event.policy == "none":
        step.outcome = Outcome.IGNORED
        return
    if event.policy == "away":
        if agent.on_call:
            away_status = step.mapped_presence(AWAY) if step.syncing else None
            step.update(hold=Hold(away_status, AWAY, None))
            step.outcome = Outcome.HELD
            return
        if agent.state.major in (Major.AWAY, Major.EXTENDED_AWAY):
            step.outcome = Outcome.IGNORED
            return
        seq = step.set_state(AWAY, Cause.SESSION_END, "3.12")
        if step.syncing:
            step.drive_presence(step.mapped_presence(AWAY), "3.12", seq)
        return
    if agent.on_call:
        step.update(hold=Hold(None, None, None))
        step.outcome = Outcome.HELD
        return
    step.update(busy_reason=None, offered_interaction_id=None)
    seq = step.set_state(LOGGED_OUT, Cause.SESSION_END, "3.12")
    # The console is gone; the logout waits in the outbox for a console, and reconciliation on
    # reconnect decides again anyway.
    step.drive_presence(None, "3.12", seq)


# --- Salesforce events -----------------------------------------------------------------------


def _match_pending(
    step: _Step, command_id: str | None, kinds: tuple[str, ...], status: str | None, by_status: bool
) -> int | None:
    """Index of the pending command this Salesforce event echoes, if any (rule 7)."""
    if command_id is not None:
        # The bridge said which command this is: that is authoritative. Matching by status
        # as well would take the late echo of an older command for a newer pending one.
        for index, pending in enumerate(step.agent.pending):
            if pending.command_id == command_id:
                return index
        return None
    if not by_status or not step.agent.pending:
        return None
    # Without a command id, only the oldest outstanding command can be the one that just ran
    # (the bridge runs them in order and reports each result before the next): matching a
    # later one by status would count the commands before it as done when they are not, and
    # their echoes would then pass for external changes (a manual Omni login with the status
    # of a pending command is indistinguishable from its echo; at worst it takes the head).
    head = step.agent.pending[0]
    if head.kind in kinds and head.presence_status == status:
        return 0
    return None


def _apply_echo(step: _Step, index: int, status: str | None) -> None:
    """Our own command came back: learn the new presence, propagate nothing."""
    pending = step.agent.pending[index]
    latency = (step.at - pending.issued_at).total_seconds() * 1000.0
    # Commands run in order, so the ones sent before this one are over too.
    done = step.agent.pending[: index + 1]
    recent = (*step.agent.recent_command_ids, *(p.command_id for p in done))[-RECENT_LIMIT:]
    step.update(pending=step.agent.pending[index + 1 :], recent_command_ids=recent)
    step.observe_presence(
        status, Cause.SYNC, pending.caused_by_seq, round(latency, 3), pending.rule
    )
    step.outcome = Outcome.ECHO
    _reassert_desired(step)


def _reassert_desired(step: _Step) -> None:
    """A command of ours landed after a newer decision was taken (an external change overtook
    it): put Salesforce where the latest decision wants it. Bounded: one command per echo, and
    only while `desired` differs, which only external events change."""
    agent = step.agent
    if agent.pending or not step.syncing or agent.presence == agent.desired_presence:
        return
    if agent.desired_presence is not None and not agent.logged_in:
        return
    step.drive_presence(agent.desired_presence, "3.7", None)


def _presence_changed(step: _Step, event: PresenceChanged) -> None:
    ours = event.reason in (StatusChangeReason.TOOLKIT, StatusChangeReason.LOGIN)
    cause = Cause.SUPERVISOR if event.reason is StatusChangeReason.SUPERVISOR else Cause.SALESFORCE
    _status_seen(
        step, event.presence_status, event.command_id, ("set_presence", "omni_login"), ours, cause
    )


def _status_seen(
    step: _Step,
    status: str,
    command_id: str | None,
    kinds: tuple[str, ...],
    by_status: bool,
    cause: Cause,
) -> None:
    """Salesforce reports the agent online in `status`: our own echo (rule 7), or a change
    the contact center must follow (rule 2)."""
    index = _match_pending(step, command_id, kinds, status, by_status)
    if index is not None:
        _apply_echo(step, index, status)
        return
    if command_id is not None and command_id in step.agent.recent_command_ids:
        _late_echo(step, status)
        return
    if status == step.agent.presence:
        step.outcome = Outcome.IGNORED
        return
    seq = step.observe_presence(status, cause)
    if _omni_back_after_maintenance(step, status, seq):
        return
    _follow_salesforce(step, status, seq)


def _late_echo(step: _Step, status: str | None) -> None:
    """The echo of a command whose result the bridge already reported, or of one that ran
    after a newer change overtook it (e.g. a set-presence that logged the agent back in to
    Omni after the agent logged out): learn where Salesforce is, propagate nothing, and put
    Salesforce back where the latest decision wants it."""
    step.observe_presence(status, Cause.SYNC)
    step.outcome = Outcome.ECHO
    _reassert_desired(step)


def _follow_salesforce(step: _Step, status: str, caused_by: int | None) -> None:
    """Rule 2 (with 6, 8, 9, 11): the contact center follows a Salesforce status change."""
    agent = step.agent
    config = step.config
    if config is None or not config.enabled or not agent.logged_in:
        # Not our business to log a person in to the contact center: just remember it.
        if not any(p.kind == "omni_logout" for p in agent.pending):
            step.update(desired_presence=status)
        return
    if agent.on_call:
        step.update(hold=Hold(status, config.state_for_presence(status), caused_by))
        step.outcome = Outcome.HELD
        step.notes.append("rule 3.11: kept for after the call")
        # Omni must route nothing into the call either: set it back.
        step.update(desired_presence=None)
        step.drive_presence(step.mapped_presence(agent.state), "3.11", caused_by)
        return
    step.update(desired_presence=status)
    if agent.busy_reason is BusyReason.WORK and agent.state == BUSY_INBOUND:
        step.notes.append("rule 3.6: Busy/Inbound until the last work item closes")
        return
    if step.settings.busy_status_means_busy_inbound and config.is_busy_status(status):
        if agent.state != BUSY_INBOUND:
            step.set_state(BUSY_INBOUND, Cause.SYNC, "3.8", caused_by)
        step.update(busy_reason=BusyReason.PRESENCE)
        return
    target = config.state_for_presence(status)
    if target is None:
        step.outcome = Outcome.UNKNOWN_STATUS
        step.notes.append(f"rule 3.9: {status} was not in the last fetch; state kept")
        return
    if (
        agent.busy_reason is not BusyReason.PRESENCE
        and config.presence_for_state(agent.state) == status
    ):
        return  # the current state already maps to that status: no needless change
    step.set_state(target, Cause.SYNC, "3.2", caused_by)


def _omni_logged_in(step: _Step, event: OmniLoggedIn) -> None:
    _status_seen(
        step, event.presence_status, event.command_id, ("omni_login",), True, Cause.SALESFORCE
    )


def _omni_logged_out(step: _Step, event: OmniLoggedOut) -> None:
    if event.reason is not None:
        _omni_logout_with_reason(step, event.reason)
        return
    # Also when we already knew Omni was offline (a REST reconcile said so before this event
    # arrived): an assignment from before the logout may have come in between.
    step.forget_assigned_work()
    index = _match_pending(step, event.command_id, ("omni_logout",), None, True)
    if index is not None:
        _apply_echo(step, index, None)
        return
    if step.agent.presence is None and not step.agent.pending:
        step.outcome = Outcome.IGNORED
        return
    seq = _omni_went_offline(step, Cause.SALESFORCE, None)
    _log_out_after_omni(step, seq, Cause.SYNC, "3.5")


def _omni_went_offline(step: _Step, cause: Cause, rule: str | None) -> int | None:
    """Learn that Omni is offline; returns the history seq of the Salesforce-side change."""
    seq = step.observe_presence(None, cause, rule=rule)
    # Whatever we had in flight cannot run on an offline Omni-Channel. Remember the ids: if
    # one runs anyway (a set-presence logs an offline agent in), its echo must not pass for
    # the agent logging in again.
    dropped = tuple(p.command_id for p in step.agent.pending)
    recent = (*step.agent.recent_command_ids, *dropped)[-RECENT_LIMIT:]
    step.update(pending=(), desired_presence=None, recent_command_ids=recent)
    return seq


def _log_out_after_omni(step: _Step, seq: int | None, cause: Cause, rule: str) -> None:
    """Rule 5: the contact center follows Omni offline (deferred by rule 11 during a call)."""
    agent = step.agent
    if not step.syncing or not agent.logged_in:
        return
    if agent.on_call:
        step.update(hold=Hold(None, None, seq))  # an Omni logout is not undone
        step.outcome = Outcome.HELD
        return
    step.update(busy_reason=None, offered_interaction_id=None)
    logged_out = step.set_state(LOGGED_OUT, cause, rule, seq)
    if logged_out is not None and cause is Cause.SUPERVISOR:
        # set_state tells the contact center only about changes it did not ask for; a
        # Salesforce supervisor is not the contact center's supervisor.
        step.commands.append(LogOut(caused_by_seq=logged_out))


# Rules 3.5a-c: an Omni-Channel logout that says why (lightning:omniChannelLogout `reason`).
_LOGOUT_RULES = {
    LogoutReason.DUPLICATE_LOGIN: "3.5a",
    LogoutReason.DUPLICATE_LOGIN_SAME_BROWSER: "3.5a",
    LogoutReason.MAINTENANCE: "3.5b",
    LogoutReason.SUPERVISOR: "3.5c",
}


def _omni_logout_with_reason(step: _Step, reason: LogoutReason) -> None:
    """The account's policy for this reason decides (SyncSettings.omni_logout_*). Never the
    echo of our own omni_logout: that one carries no reason."""
    rule = _LOGOUT_RULES[reason]
    policy = step.settings.omni_logout_policy(reason)
    if policy == "ignore":
        _duplicate_login_ignored(step, reason, rule)
        return
    cause = Cause.SUPERVISOR if reason is LogoutReason.SUPERVISOR else Cause.SALESFORCE
    step.forget_assigned_work()
    known_offline = step.agent.presence is None and not step.agent.pending
    seq = None if known_offline else _omni_went_offline(step, cause, rule)
    if policy == "logout":
        contact_center_cause = Cause.SUPERVISOR if cause is Cause.SUPERVISOR else Cause.SYNC
        before = step.agent.state
        _log_out_after_omni(step, seq, contact_center_cause, rule)
        if known_offline and step.agent.state == before and step.outcome is Outcome.APPLIED:
            step.outcome = Outcome.IGNORED
        return
    # "keep": the contact-center state stays. After a maintenance Omni is driven back to the
    # status mapped from it when it returns; after a supervisor's logout it stays offline
    # until the next contact-center change.
    if reason is LogoutReason.MAINTENANCE and step.agent.logged_in:
        step.update(omni_unavailable="maintenance")
    step.notes.append(f"rule {rule}: {reason.value}: contact-center state kept")
    if known_offline and reason is not LogoutReason.MAINTENANCE:
        step.outcome = Outcome.IGNORED


def _duplicate_login_ignored(step: _Step, reason: LogoutReason, rule: str) -> None:
    """Rule 3.5a: the same user opened Omni-Channel in another console, which logged this one
    out. The person is still online there: neither presence nor the contact-center state
    change, and the surviving console (its hello) is the one in charge from now on."""
    presence = presence_label(step.agent.presence)
    step.record(Side.SALESFORCE, presence, presence, Cause.SALESFORCE, rule)
    step.outcome = Outcome.IGNORED
    step.notes.append(f"rule {rule}: {reason.value}: another console took over; nothing changes")


def _omni_back_after_maintenance(step: _Step, status: str | None, caused_by: int | None) -> bool:
    """Rule 3.5b: Omni-Channel returns after a maintenance logout that kept the contact-center
    state: Omni is driven to the status mapped from that state, rather than the contact center
    following whatever status Omni came back in. True when it applied."""
    agent = step.agent
    if agent.omni_unavailable is None or not agent.logged_in or not step.syncing:
        return False
    target = step.mapped_presence(agent.state)
    step.update(desired_presence=status)
    if status != target:
        step.drive_presence(target, "3.5b", caused_by)
    step.notes.append(f"rule 3.5b: Omni is back after the maintenance; {presence_label(target)}")
    return True


def _accepted_work(agent: AgentSnapshot) -> bool:
    return any(w.accepted for w in agent.work)


def _work_assigned(step: _Step, event: WorkAssigned) -> None:
    agent = step.agent
    if event.work_id in agent.closed_work_ids or event.work_id in agent.open_work_ids:
        step.outcome = Outcome.IGNORED
        return
    last = agent.last_seq_of(Side.SALESFORCE)
    if agent.presence is None and event.seq is not None and last is not None and event.seq < last:
        # Assigned before an Omni logout we already applied: it went back to the queue.
        step.outcome = Outcome.STALE
        return
    step.update(work=(*agent.work, OpenWork(event.work_id, False, event.channel)))


def _work_accepted(step: _Step, event: WorkAccepted) -> None:
    agent = step.agent
    if event.work_id in agent.closed_work_ids:
        step.outcome = Outcome.IGNORED
        return
    existing = next((w for w in agent.work if w.work_id == event.work_id), None)
    if existing is not None and existing.accepted:
        step.outcome = Outcome.IGNORED
        return
    others = tuple(w for w in agent.work if w.work_id != event.work_id)
    channel = event.channel or (existing.channel if existing else None)
    step.update(work=(*others, OpenWork(event.work_id, True, channel)))
    _settle_work(step, None)


def _work_finished(step: _Step, work_id: str) -> None:
    agent = step.agent
    if work_id not in agent.open_work_ids:
        step.outcome = Outcome.IGNORED
    closed = (*agent.closed_work_ids, work_id)[-RECENT_LIMIT:]
    step.update(
        work=tuple(w for w in agent.work if w.work_id != work_id),
        closed_work_ids=closed if work_id not in agent.closed_work_ids else agent.closed_work_ids,
    )
    _settle_work(step, None)


def _work_declined(step: _Step, event: WorkDeclined) -> None:
    _work_finished(step, event.work_id)


def _work_closed(step: _Step, event: WorkClosed) -> None:
    _work_finished(step, event.work_id)


def _settle_work(step: _Step, caused_by: int | None) -> None:
    """Rule 6 both ways: accepted work puts the agent in Busy/Inbound; when the last item
    closes, the state returns to the one mapped from the current presence status."""
    agent = step.agent
    config = step.config
    if config is None or not config.enabled or not agent.logged_in or agent.on_call:
        return
    if _accepted_work(agent):
        if agent.state != BUSY_INBOUND:
            step.set_state(BUSY_INBOUND, Cause.SYNC, "3.6", caused_by)
        step.update(busy_reason=BusyReason.WORK, desired_presence=step.agent.presence)
        return
    if agent.busy_reason is not BusyReason.WORK or agent.state != BUSY_INBOUND:
        return
    presence = agent.presence
    if (
        presence is not None
        and step.settings.busy_status_means_busy_inbound
        and config.is_busy_status(presence)
    ):
        step.update(busy_reason=BusyReason.PRESENCE)
        return
    target = config.state_for_presence(presence) if presence is not None else None
    if target is None:
        # Unknown or no status: Away keeps the router away until the agent says otherwise.
        target = AWAY
        step.notes.append("rule 3.9: no known status to return to; Away")
    seq = step.set_state(target, Cause.SYNC, "3.6", caused_by)
    if presence is None:
        # Omni is offline (a console that came up offline, rule 12): a logged-in agent belongs
        # online, in the status of the state it returns to. Forgetting this undid the login
        # the reconnect had just sent: its echo was "corrected" to offline.
        step.drive_presence(step.mapped_presence(target), "3.6", seq or caused_by)
    else:
        step.update(desired_presence=presence)


def _complete_superseded(step: _Step, command_id: str) -> None:
    """Our command ran, but what we already know from Salesforce is newer than its echo or
    result: forget the command without rewinding the presence to its status, and put
    Salesforce where the latest decision wants it (rule 7 ordering)."""
    pending = step.agent.pending
    index = next((i for i, p in enumerate(pending) if p.command_id == command_id), None)
    if index is None:
        return
    recent = (*step.agent.recent_command_ids, command_id)[-RECENT_LIMIT:]
    step.update(pending=pending[:index] + pending[index + 1 :], recent_command_ids=recent)
    _reassert_desired(step)


def _command_result(step: _Step, event: CommandResult) -> None:
    index = _match_pending(step, event.command_id, (), None, False)
    if index is None:
        step.outcome = Outcome.IGNORED
        return
    last = step.agent.last_seq_of(Side.SALESFORCE)
    if event.ok and event.seq is not None and last is not None and event.seq < last:
        # A numbered result older than a Salesforce event already applied (a reordering
        # transport): its status is history.
        step.outcome = Outcome.STALE
        _complete_superseded(step, event.command_id)
        return
    pending = step.agent.pending[index]
    if event.ok:
        status = None if pending.kind == "omni_logout" else pending.presence_status
        _apply_echo(step, index, status)
        return
    step.update(pending=step.agent.pending[:index] + step.agent.pending[index + 1 :])
    step.outcome = Outcome.FAILED
    step.notes.append(f"command {event.command_id} failed in Salesforce: {event.error}")


def _snapshot(step: _Step, event: SalesforceSnapshot) -> None:
    """Rule 12 and drift reconciliation: Salesforce's full view of the agent is the truth about
    Salesforce; the contact-center state is the truth about the contact center."""
    before = step.agent
    if event.console_connected:
        # A new console: whatever was in flight to the old one will never run.
        seqs = tuple((side, seq) for side, seq in before.last_seq if side is not Side.SALESFORCE)
        step.update(
            console_connected=True,
            console_disconnected_at=None,
            console_degraded=None,
            pending=(),
            last_seq=seqs,
        )
        if event.seq is not None:
            step.set_last_seq(Side.SALESFORCE, event.seq)
    if event.open_work is not None:  # None: the console could not read it; keep ours
        open_ids = {w.work_id for w in event.open_work}
        step.update(
            work=tuple(event.open_work),
            closed_work_ids=tuple(c for c in before.closed_work_ids if c not in open_ids),
        )
    status = event.presence_status if event.presence_known else before.presence
    changed_in_salesforce = status != before.presence
    seq = step.observe_presence(status, event.cause)
    agent = step.agent
    if not step.syncing:
        step.update(desired_presence=status)
        return
    if event.presence_known and (event.console_connected or status is not None):
        if _omni_back_after_maintenance(step, status, seq):
            _settle_work(step, seq)
            return
    elif agent.omni_unavailable is not None and status is None:
        # A REST read during the maintenance: Omni is still down; its return (a console's
        # hello, a login) drives it (rule 3.5b). Driving now would only fail, every read.
        _settle_work(step, seq)
        return
    if not agent.logged_in:
        # An Omni-online agent we did not log in is the agent's own choice, unless a command
        # of ours was still in flight: a login or status change may be what we see, overtaken
        # by our logout; our logout itself never ran. Either way the logout stands (as for a
        # status change event while our logout is pending, see _follow_salesforce).
        ours_in_flight = bool(before.pending)
        if (changed_in_salesforce and not ours_in_flight) or agent.desired_presence is not None:
            step.update(desired_presence=status)
        elif status is not None:
            step.drive_presence(None, "3.12", seq)
        return
    if status is None and _held_logout(agent):
        step.update(desired_presence=None)  # rule 11: an Omni logout is not undone
    elif status is None:
        # A console that comes up Omni-offline while the agent works: put it back online.
        target = agent.hold.presence_status if agent.hold else None
        desired = target or step.mapped_presence(agent.state)
        if agent.busy_reason is BusyReason.WORK or agent.on_call:
            desired = step.mapped_presence(agent.state) if agent.on_call else agent.desired_presence
        step.drive_presence(desired or step.mapped_presence(agent.state), "3.12", seq)
    elif changed_in_salesforce and status != agent.desired_presence:
        _follow_salesforce(step, status, seq)
    elif status != agent.desired_presence and agent.desired_presence is not None:
        step.drive_presence(agent.desired_presence, "3.12", seq)
    _settle_work(step, seq)


def _console_disconnected(step: _Step, event: ConsoleDisconnected) -> None:
    if not step.agent.console_connected:
        step.outcome = Outcome.IGNORED
        return
    step.update(console_connected=False, console_disconnected_at=event.at, console_degraded=None)


def _console_degraded(step: _Step, event: ConsoleDegraded) -> None:
    """Rule 3.12a: the connected console cannot drive Omni for now. Nothing changes on either
    side; the agent's views say so, and the console's next hello reconciles (rule 12)."""
    reason = event.reason.value
    if not step.agent.console_connected or step.agent.console_degraded == reason:
        step.outcome = Outcome.IGNORED
        return
    step.update(console_degraded=reason)
    step.notes.append(f"rule 3.12a: the console is degraded ({reason})")


# --- Change Data Capture: the second channel (domain/channels.py) ---------------------------


def _presence_committed(step: _Step, event: PresenceCommitted) -> None:
    """A committed presence change: no reason, no command id, so our own command's change is
    recognised by its status, as the oldest command still awaiting its echo (rule 7)."""
    if event.presence_status is None:
        _omni_logged_out(step, OmniLoggedOut(at=event.at))
        return
    kinds = ("set_presence", "omni_login")
    _status_seen(step, event.presence_status, None, kinds, True, Cause.SALESFORCE)


# AgentWork.Status -> what it means for the agent's open work.
_WORK_STATUSES = {
    "Assigned": "assigned",
    "Opened": "accepted",
    "Closed": "closed",
    "Transferred": "closed",
    "Declined": "declined",
    "DeclinedOnPushTimeout": "declined",
    "Unavailable": "declined",
    "Canceled": "declined",
}


def _work_committed(step: _Step, event: WorkCommitted) -> None:
    meaning = _WORK_STATUSES.get(event.status)
    at, work_id = event.at, event.work_id
    if meaning == "assigned":
        _work_assigned(step, WorkAssigned(at=at, work_id=work_id, channel=event.channel))
    elif meaning == "accepted":
        _work_accepted(step, WorkAccepted(at=at, work_id=work_id, channel=event.channel))
    elif meaning in ("closed", "declined"):
        _work_finished(step, work_id)
    else:
        step.outcome = Outcome.IGNORED
        step.notes.append(f"AgentWork status {event.status!r} means nothing to the agent's work")


def _channel_of(event: Event) -> Channel:
    if isinstance(event, CommittedChange):
        return Channel.CHANGE_DATA_CAPTURE
    if isinstance(event, SalesforceSnapshot) and not event.console_connected:
        return Channel.REST
    return Channel.BRIDGE


_NO_PRESENCE = object()


def _reported_presence(event: Event) -> object:
    """The presence a Salesforce event reports as a change (None: offline), if it reports one."""
    if isinstance(event, PresenceChanged | OmniLoggedIn | PresenceCommitted):
        return event.presence_status
    if isinstance(event, OmniLoggedOut):
        return None
    return _NO_PRESENCE


def _mark_is_past(event: CommittedChange, mark: tuple[str, int, str, int]) -> Outcome | None:
    """DUPLICATE/STALE when `event` is not after the last change applied from its object."""
    _entity, commit_ms, key, sequence = mark
    if event.commit_ms < commit_ms:
        return Outcome.STALE
    if event.commit_ms == commit_ms and event.transaction_key == key:
        if event.sequence == sequence:
            return Outcome.DUPLICATE
        if event.sequence < sequence:
            return Outcome.STALE
    return None


def _observe_before(step: _Step, event: Event) -> bool:
    """Salesforce events, before their handler: CDC's order, and whether the other channel
    already reported this change (True: it did, or this is older; apply nothing)."""
    agent = step.agent
    cdc = isinstance(event, CommittedChange)
    if not cdc and not step.settings.change_data_capture:
        if agent.sightings or agent.cdc_marks or agent.reported:
            step.update(sightings=(), cdc_marks=(), reported=())  # CDC was turned off
        return False
    if isinstance(event, CommittedChange):
        entity = "AgentWork" if isinstance(event, WorkCommitted) else "UserServicePresence"
        mark = next((m for m in agent.cdc_marks if m[0] == entity), None)
        past = None if mark is None else _mark_is_past(event, mark)
        if past is not None:
            step.outcome = past
            step.notes.append(f"Change Data Capture: {entity} change already applied or older")
            return True
        marks = tuple(m for m in agent.cdc_marks if m[0] != entity)
        new = (entity, event.commit_ms, event.transaction_key, event.sequence)
        step.update(cdc_marks=tuple(sorted((*marks, new))))
    presence = _reported_presence(event)
    if presence is _NO_PRESENCE:
        return False
    assert presence is None or isinstance(presence, str)
    channel = _channel_of(event)
    label = presence_label(presence)
    command_id = getattr(event, "command_id", None)
    awaited = command_id is not None and any(p.command_id == command_id for p in agent.pending)
    reported = dict(agent.reported)
    repeated = channel.value in reported and reported[channel.value] == presence
    reported[channel.value] = presence
    step.update(reported=tuple(sorted(reported.items())))
    if repeated:
        if awaited:
            return False  # the echo of a command still awaited: the handler settles it
        step.outcome = Outcome.IGNORED
        step.notes.append(f"{label}: no change since this channel's last report")
        return True
    verdict = judge(step.agent.sightings, channel, presence, event.at)
    step.update(sightings=verdict.sightings)
    step.unconfirmed = verdict.expired
    if verdict.seen:
        if awaited:
            return False  # the echo of a command still awaited: the handler settles it
        if isinstance(event, OmniLoggedOut):
            step.forget_assigned_work()
        step.outcome = Outcome.DUPLICATE
        other = "the bridge" if channel is Channel.CHANGE_DATA_CAPTURE else "Change Data Capture"
        step.notes.append(f"{label}: already reported by {other}")
        return True
    if verdict.stale:
        step.outcome = Outcome.STALE
        newer = ", ".join(presence_label(s.presence) for s in verdict.sightings)
        step.notes.append(f"Change Data Capture: {label} is older than the bridge's {newer}")
        return True
    return False


def _observe_after(step: _Step, event: Event, presence_before: str | None, seen: bool) -> None:
    """Salesforce events, after their handler: say on the Salesforce-side history how the
    change came (and why the channels disagreed), and remember who reported it first."""
    channel = _channel_of(event)
    if any(t.side is Side.SALESFORCE for t in step.transitions):
        drift = (
            _drift(step, event, presence_before) if channel is Channel.CHANGE_DATA_CAPTURE else None
        )
        step.transitions = [
            t if t.side is not Side.SALESFORCE else _labelled(t, channel, drift)
            for t in step.transitions
        ]
    if not step.settings.change_data_capture and not isinstance(event, CommittedChange):
        return
    after = step.agent.presence
    if isinstance(event, SalesforceSnapshot):
        if event.console_connected:
            reported = dict(step.agent.reported, bridge=after)
            step.update(reported=tuple(sorted(reported.items())))
            sightings = without_cdc(step.agent.sightings)
            if after != presence_before:
                # What the console found is a change nobody reported: CDC's report of it (or
                # of older ones, still on their way) must not undo it.
                sightings = record(sightings, Channel.BRIDGE, after, event.at)
            step.update(sightings=sightings)
        return
    if not seen and after != presence_before:
        step.update(sightings=record(step.agent.sightings, channel, after, event.at))


def _labelled(transition: Transition, channel: Channel, drift: Drift | None) -> Transition:
    labelled = object.__new__(Transition)
    labelled.__dict__.update(transition.__dict__, channel=channel, drift=drift)
    return labelled


def _drift(step: _Step, event: Event, presence_before: str | None) -> Drift | None:
    """A change applied from CDC that the bridge contradicted or had not reported."""
    now = presence_label(step.agent.presence)
    if step.unconfirmed:
        reported = ", ".join(
            f"{presence_label(s.presence)} at {s.at.isoformat()}" for s in step.unconfirmed
        )
        return Drift(
            "BRIDGE_REPORT_UNCONFIRMED",
            f"the console's bridge reported {reported}, which Change Data Capture never "
            f"confirmed; Salesforce committed {now}",
        )
    if step.outcome is not Outcome.ECHO and step.agent.console_connected:
        return Drift(
            "BRIDGE_DID_NOT_REPORT",
            f"Salesforce committed {now}, which the connected console's bridge had not "
            f"reported (its last report: {presence_label(presence_before)})",
        )
    return None


_HANDLERS: dict[type[Event], Callable[[_Step, Any], None]] = {
    AgentLoggedIn: _logged_in,
    AgentLoggedOut: _logged_out,
    StateChangeRequested: _state_change,
    InteractionOffered: _offered,
    InteractionOfferWithdrawn: _offer_withdrawn,
    CallAnswered: _answered,
    CallEnded: _call_ended,
    WrapEnded: _wrap_ended,
    SessionGraceExpired: _grace_expired,
    PresenceChanged: _presence_changed,
    OmniLoggedIn: _omni_logged_in,
    OmniLoggedOut: _omni_logged_out,
    WorkAssigned: _work_assigned,
    WorkAccepted: _work_accepted,
    WorkDeclined: _work_declined,
    WorkClosed: _work_closed,
    CommandResult: _command_result,
    SalesforceSnapshot: _snapshot,
    ConsoleDisconnected: _console_disconnected,
    ConsoleDegraded: _console_degraded,
    PresenceCommitted: _presence_committed,
    WorkCommitted: _work_committed,
}
