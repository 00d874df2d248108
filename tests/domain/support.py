"""Shared test support for the pure core: the worked-example configuration, a clock, and a
small simulation of both systems (a model Salesforce behind the console bridge, the contact
center as the core's `decide` applied to one agent snapshot) joined by a lossy, reordering,
duplicating channel. The example tests, the property tests and the stateful test all use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from presencesync.domain import (
    AgentSnapshot,
    BusyReason,
    Command,
    CommandResult,
    ConsoleDegraded,
    Decision,
    DegradedReason,
    Event,
    LogoutReason,
    OmniConfig,
    OmniLoggedIn,
    OmniLoggedOut,
    OmniLogin,
    OmniLogout,
    OpenWork,
    Outcome,
    PresenceChanged,
    PresenceStatus,
    Rejected,
    SalesforceSnapshot,
    SetPresence,
    StateCatalog,
    StatusChangeReason,
    SyncSettings,
    WorkAccepted,
    WorkAssigned,
    WorkClosed,
    WorkDeclined,
    decide,
    is_routable,
    new_agent,
    validate_config,
)
from presencesync.domain.commands import SalesforceCommand
from presencesync.domain.events import PresenceCommitted, WorkCommitted
from presencesync.domain.example import EXAMPLE_CHANNELS, EXAMPLE_RAW_CONFIG, example_statuses
from presencesync.domain.states import BUSY_INBOUND, State

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def at(second: float) -> datetime:
    return T0 + timedelta(seconds=second)


# --- the worked example: the settings of the seed's "steps 5 and 6" ---------------------------

CHANNELS = EXAMPLE_CHANNELS
EXAMPLE_RAW = EXAMPLE_RAW_CONFIG


def example_config(**overrides: Any) -> OmniConfig:
    raw = {**EXAMPLE_RAW, **overrides}
    result = validate_config(raw, StateCatalog.default(), example_statuses())
    assert result.ok, result.problems
    assert result.config is not None
    return result.config


def s(text: str) -> State:
    return StateCatalog.default().parse(text)


# --- the simulation ---------------------------------------------------------------------------


@dataclass
class SfWork:
    work_id: str
    channel: str
    accepted: bool = False


@dataclass
class ModelSalesforce:
    """Omni-Channel as one agent's console sees it, plus the bridge that forwards its events
    (numbered per console session) and runs our commands through the toolkit exactly once per
    command id (the command id is the idempotency key)."""

    statuses: dict[str, PresenceStatus]
    online: bool = False
    status: str | None = None
    work: dict[str, SfWork] = field(default_factory=dict)
    session: int = 0
    seq: int = 0
    executed: set[str] = field(default_factory=set)
    work_no: int = 0
    # Omni-Channel is down for maintenance: nobody can log in until it ends.
    maintenance: bool = False
    # Another console of the same user took over Omni: this console's toolkit calls fail (a
    # real one would take Omni back, logging the other out: that is a duplicate login again).
    displaced: bool = False
    # Change Data Capture: every committed change, in commit order, one stream per object
    # (the Pub/Sub API topics), whether a console is open or not.
    cdc_presence: list[Event] = field(default_factory=list)
    cdc_work: list[Event] = field(default_factory=list)
    commits: int = 0

    @property
    def presence(self) -> str | None:
        return self.status if self.online else None

    def _commit(self) -> tuple[int, str]:
        self.commits += 1
        return self.commits, f"tx{self.commits}"

    def _presence_committed(self, now: datetime) -> None:
        ms, key = self._commit()
        self.cdc_presence.append(
            PresenceCommitted(
                at=now, commit_ms=ms, transaction_key=key, sequence=1, presence_status=self.presence
            )
        )

    def _work_committed(self, work_id: str, status: str, now: datetime) -> None:
        ms, key = self._commit()
        channel = self.work[work_id].channel if work_id in self.work else None
        self.cdc_work.append(
            WorkCommitted(
                at=now,
                commit_ms=ms,
                transaction_key=key,
                sequence=1,
                work_id=work_id,
                status=status,
                channel=channel,
            )
        )

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def routes_work(self) -> bool:
        if not self.online or self.status is None:
            return False
        return not self.statuses[self.status].is_busy

    # Salesforce-side actions. Each returns the events the bridge forwards.

    def _login(self, status: str, now: datetime, command_id: str | None) -> list[Event]:
        self.online, self.status = True, status
        self._presence_committed(now)
        return [
            OmniLoggedIn(
                at=now, seq=self.next_seq(), presence_status=status, command_id=command_id
            ),
            PresenceChanged(
                at=now,
                seq=self.next_seq(),
                presence_status=status,
                reason=StatusChangeReason.LOGIN,
                command_id=command_id,
            ),
        ]

    def agent_login(self, status: str, now: datetime) -> list[Event]:
        assert not self.online
        return self._login(status, now, None)

    def agent_logout(self, now: datetime, reason: LogoutReason | None = None) -> list[Event]:
        """The agent's own logout (no reason), a supervisor's, or Omni's maintenance."""
        assert self.online
        if reason is LogoutReason.MAINTENANCE:
            self.maintenance = True
        return self._logout(now, None, reason)

    def duplicate_login(self, now: datetime, same_browser: bool) -> list[Event]:
        """The agent opens Omni-Channel in a second console: Omni stays online there, and this
        console is logged out with a DuplicateLogin reason (its successor says hello later)."""
        assert self.online
        self.displaced = True
        reason = (
            LogoutReason.DUPLICATE_LOGIN_SAME_BROWSER
            if same_browser
            else LogoutReason.DUPLICATE_LOGIN
        )
        return [OmniLoggedOut(at=now, seq=self.next_seq(), reason=reason)]

    def _logout(
        self, now: datetime, command_id: str | None, reason: LogoutReason | None = None
    ) -> list[Event]:
        self.online, self.status = False, None
        self._presence_committed(now)
        # Assigned (not yet accepted) work goes back to the queue; opened work stays.
        for work_id in [k for k, w in self.work.items() if not w.accepted]:
            self._work_committed(work_id, "Unavailable", now)
        self.work = {k: w for k, w in self.work.items() if w.accepted}
        return [OmniLoggedOut(at=now, seq=self.next_seq(), command_id=command_id, reason=reason)]

    def agent_set_status(
        self, status: str, now: datetime, reason: StatusChangeReason = StatusChangeReason.MANUAL
    ) -> list[Event]:
        assert self.online and status != self.status
        self.status = status
        self._presence_committed(now)
        return [PresenceChanged(at=now, seq=self.next_seq(), presence_status=status, reason=reason)]

    def assign_work(self, now: datetime, channel: str = "Case") -> list[Event]:
        assert self.routes_work()
        self.work_no += 1
        work_id = f"0Bz{self.work_no:012d}"
        self.work[work_id] = SfWork(work_id, channel)
        self._work_committed(work_id, "Assigned", now)
        return [WorkAssigned(at=now, seq=self.next_seq(), work_id=work_id, channel=channel)]

    def accept_work(self, work_id: str, now: datetime) -> list[Event]:
        item = self.work[work_id]
        assert not item.accepted
        item.accepted = True
        self._work_committed(work_id, "Opened", now)
        return [WorkAccepted(at=now, seq=self.next_seq(), work_id=work_id, channel=item.channel)]

    def decline_work(self, work_id: str, now: datetime) -> list[Event]:
        assert not self.work[work_id].accepted
        self._work_committed(work_id, "Declined", now)
        del self.work[work_id]
        return [WorkDeclined(at=now, seq=self.next_seq(), work_id=work_id)]

    def push_timeout(self, work_id: str, now: datetime) -> list[Event]:
        """The agent let a pushed item time out: Omni declines it and moves the agent to a
        status without channels (`reason` OmniPushTimeout), if the org has one."""
        events = self.decline_work(work_id, now)
        away = sorted(n for n, st in self.statuses.items() if st.is_busy)
        if self.online and away and self.status != away[0]:
            events += self.agent_set_status(away[0], now, StatusChangeReason.PUSH_TIMEOUT)
        return events

    def close_work(self, work_id: str, now: datetime) -> list[Event]:
        assert self.work[work_id].accepted
        self._work_committed(work_id, "Closed", now)
        del self.work[work_id]
        return [WorkClosed(at=now, seq=self.next_seq(), work_id=work_id)]

    def open_work(self) -> tuple[OpenWork, ...]:
        return tuple(OpenWork(w.work_id, w.accepted, w.channel) for w in self.work.values())

    def snapshot(self, now: datetime, console: bool = True) -> SalesforceSnapshot:
        return SalesforceSnapshot(
            at=now,
            seq=self.next_seq() if console else None,  # REST reads are not console events
            presence_status=self.presence,
            open_work=self.open_work(),
            console_connected=True if console else None,
        )

    def new_session(self) -> None:
        self.session += 1
        self.seq = 0
        self.displaced = False  # the new console is the one in charge

    # The bridge running one of our commands.

    def execute(self, command: SalesforceCommand, now: datetime) -> list[Event]:
        cid = command.command_id
        if cid in self.executed:  # at least once delivery, exactly once effect
            return [CommandResult(at=now, seq=self.next_seq(), command_id=cid, ok=True)]
        self.executed.add(cid)
        events: list[Event] = []
        refused = self.displaced or (self.maintenance and not isinstance(command, OmniLogout))
        if refused:
            # The toolkit rejects the call: another console owns Omni, or Omni is down.
            self.executed.discard(cid)
            return [
                CommandResult(at=now, seq=self.next_seq(), command_id=cid, ok=False, error="NO")
            ]
        if isinstance(command, SetPresence | OmniLogin):
            target = command.presence_status
            if not self.online:
                # setServicePresenceStatus logs an offline agent in, as `login` does.
                events += self._login(target, now, cid)
            elif self.status != target:
                self.status = target
                self._presence_committed(now)
                events.append(
                    PresenceChanged(
                        at=now,
                        seq=self.next_seq(),
                        presence_status=target,
                        reason=StatusChangeReason.TOOLKIT,
                        command_id=cid,
                    )
                )
        elif isinstance(command, OmniLogout) and self.online:
            # (already offline: bridge.js answers ok without calling logout)
            events += self._logout(now, cid)
        events.append(CommandResult(at=now, seq=self.next_seq(), command_id=cid, ok=True))
        return events


@dataclass
class Message:
    session: int
    body: Event | Command


class Sim:
    """One agent in both systems. The contact center is the core itself (its events are applied
    at once, in order, as the engine does); Salesforce talks to it through `to_cc` (events) and
    listens on `to_sf` (commands), both of which may lose, duplicate and reorder messages."""

    def __init__(
        self,
        config: OmniConfig,
        settings: SyncSettings | None = None,
        catalog: StateCatalog | None = None,
        agent_id: str = "a1",
    ) -> None:
        self.config = config
        self.settings = settings or SyncSettings()
        self.catalog = catalog or StateCatalog.default()
        self.agent: AgentSnapshot = new_agent(agent_id)
        self.sf = ModelSalesforce({st.developer_name: st for st in config.presence_statuses})
        self.to_sf: list[Message] = []
        self.to_cc: list[Message] = []
        self.clock = 0.0
        self.external = 0  # external changes: an agent, supervisor or Salesforce acting
        self.sf_commands = 0  # Salesforce commands the core sent
        self.lost = False  # a message was dropped: the console must reconnect to converge
        self.console_connected = True
        # In the order the core saw things, the agent (not a command of ours) brought Omni
        # online while logged out of the contact center: then the agent may stay Omni-online
        # (see test_properties).
        self.omni_online_by_hand = False
        # A supervisor logged the agent out of Omni and the account keeps the contact-center
        # state (omni_logout_supervisor = keep): Omni stays offline until the next change.
        self.omni_kept_offline = False
        self.decisions: list[tuple[Event, Decision]] = []
        self.call_no = 0
        # Change Data Capture on: the core also hears Salesforce's committed changes, in
        # order per object, late, sometimes twice (a subscriber restarted before confirming).
        self.cdc = self.settings.change_data_capture
        self.cdc_last: dict[str, Event] = {}
        self.connect()

    # --- plumbing ----------------------------------------------------------------------------

    def now(self) -> datetime:
        self.clock += 1.0
        return at(self.clock)

    def apply(self, event: Event) -> Decision | None:
        """Apply one event to the core; enqueue the Salesforce commands it sends."""
        before = self.agent
        try:
            decision = decide(before, event, self.config, self.catalog, self.settings)
        except Rejected:
            return None
        self.agent = decision.agent
        self.decisions.append((event, decision))
        if (
            isinstance(
                event, OmniLoggedIn | PresenceChanged | SalesforceSnapshot | PresenceCommitted
            )
            and getattr(event, "command_id", None) is None
            and decision.outcome is Outcome.APPLIED
            and before.presence is None
            and decision.agent.presence is not None
            and decision.agent.desired_presence is not None  # kept, not logged out again
            and not decision.agent.logged_in
        ):
            self.omni_online_by_hand = True
        if decision.agent.logged_in or decision.agent.presence is None:
            self.omni_online_by_hand = False
        after = decision.agent
        if (
            isinstance(event, OmniLoggedOut)
            and event.reason is LogoutReason.SUPERVISOR
            and self.settings.omni_logout_supervisor == "keep"
            and after.logged_in
            and after.presence is None
        ):
            self.omni_kept_offline = True
        elif after.desired_presence is not None or not after.logged_in:
            self.omni_kept_offline = False
        for command in decision.commands:
            if isinstance(command, SalesforceCommand):
                self.sf_commands += 1
                self.to_sf.append(Message(self.sf.session, command))
        self.check_step()
        return decision

    def emit(self, events: Iterable[Event]) -> None:
        for event in events:
            if self.console_connected:
                self.to_cc.append(Message(self.sf.session, event))
            else:
                self.lost = True  # nobody forwards it: the reconnect snapshot must repair

    def check_step(self) -> None:
        """Invariants that hold after every single decision."""
        agent = self.agent
        if is_routable(agent):
            assert not agent.work, "routable with open Salesforce work"
            assert agent.state != BUSY_INBOUND
        if agent.state == BUSY_INBOUND:
            assert not is_routable(agent)

    # --- delivery ----------------------------------------------------------------------------

    def deliver_to_sf(self, index: int) -> None:
        message = self.to_sf.pop(index)
        if message.session != self.sf.session or not self.console_connected:
            return  # meant for a console that is gone
        assert isinstance(message.body, SalesforceCommand)
        self.emit(self.sf.execute(message.body, self.now()))

    def deliver_to_cc(self, index: int) -> None:
        message = self.to_cc.pop(index)
        if message.session != self.sf.session:
            return
        assert isinstance(message.body, Event)
        self.apply(message.body)

    def cdc_queue(self, topic: str) -> list[Event]:
        return self.sf.cdc_presence if topic == "presence" else self.sf.cdc_work

    def cdc_pending(self) -> bool:
        return self.cdc and bool(self.sf.cdc_presence or self.sf.cdc_work)

    def deliver_cdc(self, topic: str) -> None:
        """The next change event of a topic reaches the server (it arrives now)."""
        queue = self.cdc_queue(topic)
        if not self.cdc or not queue:
            return
        event = queue.pop(0)
        self.cdc_last[topic] = event
        self.apply(replace(event, at=self.now()))

    def redeliver_cdc(self, topic: str) -> None:
        """The subscriber restarted before confirming: the last event of a topic again."""
        event = self.cdc_last.get(topic)
        if self.cdc and event is not None:
            self.apply(replace(event, at=self.now()))

    def drop(self, to_sf: bool, index: int) -> None:
        queue = self.to_sf if to_sf else self.to_cc
        if queue:
            queue.pop(index % len(queue))
            self.lost = True

    def duplicate(self, to_sf: bool, index: int) -> None:
        queue = self.to_sf if to_sf else self.to_cc
        if queue:
            queue.append(queue[index % len(queue)])

    def connect(self) -> None:
        """A console (re)connects: in-flight messages die with the old socket; the new console
        says hello with Salesforce's whole view (rule 12)."""
        self.to_sf.clear()
        self.to_cc.clear()
        self.console_connected = True
        self.sf.new_session()
        self.lost = False
        self.apply(self.sf.snapshot(self.now()))

    def disconnect(self) -> None:
        from presencesync.domain import ConsoleDisconnected

        self.console_connected = False
        self.lost = True
        self.apply(ConsoleDisconnected(at=self.now(), seq=None))

    def run_until_quiet(self, limit: int = 500) -> None:
        """Deliver everything in flight, in order, until nothing moves (bounded: a loop fails)."""
        steps = 0
        while self.to_sf or self.to_cc or self.cdc_pending():
            steps += 1
            assert steps < limit, "the systems never go quiet: a loop"
            if self.to_sf:
                self.deliver_to_sf(0)
            if self.to_cc:
                self.deliver_to_cc(0)
            self.deliver_cdc("presence")
            self.deliver_cdc("work")

    def quiesce(self) -> None:
        if not self.console_connected:
            self.connect()
        self.run_until_quiet()
        if self.sf.maintenance:
            self.end_maintenance()
            self.run_until_quiet()
        # A lost message, the surviving console of a duplicate login, a recovered toolkit:
        # each says hello.
        if self.lost or self.sf.displaced or self.agent.console_degraded is not None:
            self.connect()
            self.run_until_quiet()

    def end_maintenance(self) -> None:
        """Omni-Channel is back: the consoles reconnect to it and say hello (rule 3.5b)."""
        self.sf.maintenance = False
        self.connect()

    # --- external actions (each returns whether it did anything) ---------------------------

    def external_cc(self, event: Event) -> bool:
        decision = self.apply(event)
        if decision is None:
            return False
        self.external += 1
        return True

    def external_sf(self, events: list[Event]) -> None:
        self.external += 1
        self.emit(events)

    # --- checks ------------------------------------------------------------------------------

    def target_for_presence(self, status: str) -> State | None:
        if self.settings.busy_status_means_busy_inbound and self.config.is_busy_status(status):
            return BUSY_INBOUND
        return self.config.state_for_presence(status)

    def check_converged(self) -> None:
        """DESIGN.md 6 once both sides are quiet (call after `quiesce`)."""
        agent, sf = self.agent, self.sf
        assert not self.to_sf and not self.to_cc
        assert agent.presence == sf.presence, (agent.presence, sf.presence)
        assert set(agent.open_work_ids) == set(sf.work), (agent.work, sf.work)
        assert not agent.pending, agent.pending
        assert agent.console_degraded is None and agent.omni_unavailable is None
        if not agent.logged_in:
            assert sf.presence is None or self.omni_online_by_hand, (
                "logged out of the contact center but online in Omni",
                sf.presence,
            )
            return
        if self.omni_kept_offline:
            assert sf.presence is None
            return
        mapped = self.config.presence_for_state(agent.state)
        if agent.on_call:
            # Rule 11: Salesforce is held at the status of the call's state (or stays offline
            # after an Omni logout, which is not undone); the held change waits in `hold`.
            if agent.hold is not None and agent.hold.presence_status is None:
                assert sf.presence in (None, mapped)
            else:
                assert sf.presence == mapped, (agent.state, sf.presence, mapped)
            return
        if agent.state == BUSY_INBOUND and agent.busy_reason is BusyReason.WORK:
            assert any(w.accepted for w in agent.work)
            return  # rule 6: Omni status is the agent's business while the work is open
        assert sf.presence is not None, "logged in to the contact center but offline in Omni"
        if any(w.accepted for w in agent.work):
            # The agent left Busy/Inbound by hand while work is open: ordinary rule 1.
            assert sf.presence == mapped, (agent.state, sf.presence, mapped)
            return
        assert sf.presence == mapped or agent.state == self.target_for_presence(sf.presence), (
            str(agent.state),
            sf.presence,
            mapped,
        )

    def check_bounded(self, factor: int) -> None:
        assert self.sf_commands <= factor * max(1, self.external), (
            self.sf_commands,
            self.external,
        )


# --- actions shared by the property test and the stateful test --------------------------------


def selectable_states(catalog: StateCatalog) -> list[State]:
    return [i.state for i in catalog.states() if i.agent_selectable]


def perform(sim: Sim, action: str, pick: int) -> None:
    """Play one action, if it applies now; `pick` chooses among the possible arguments."""
    from presencesync.domain import (
        AgentLoggedIn,
        AgentLoggedOut,
        CallAnswered,
        CallEnded,
        InteractionOffered,
        InteractionOfferWithdrawn,
        SessionGraceExpired,
        StateChangeRequested,
        WrapEnded,
        choose_agent,
    )

    agent, sf = sim.agent, sim.sf
    states = selectable_states(sim.catalog)
    statuses = sorted(sf.statuses)
    work = sorted(sf.work)
    if action == "cc_login":
        if not agent.logged_in:
            sim.external_cc(AgentLoggedIn(at=sim.now(), state=states[pick % len(states)]))
    elif action == "cc_logout":
        sim.external_cc(AgentLoggedOut(at=sim.now()))
    elif action == "cc_state":
        if agent.logged_in:
            sim.external_cc(StateChangeRequested(at=sim.now(), state=states[pick % len(states)]))
    elif action == "call":
        chosen = choose_agent([agent])
        sim.call_no += 1
        iid = f"call-{sim.call_no}"
        offered = sim.apply(InteractionOffered(at=sim.now(), interaction_id=iid))
        # No double routing: the core accepts an offer only for a routable agent.
        assert (offered is not None) == (chosen is agent), (offered, chosen, agent)
        if offered is not None:
            assert not agent.work and agent.state != BUSY_INBOUND
            assert sim.external_cc(CallAnswered(at=sim.now(), interaction_id=iid))
    elif action == "offer":  # the router offers a call; the agent has not answered yet
        chosen = choose_agent([agent])
        sim.call_no += 1
        offered = sim.apply(InteractionOffered(at=sim.now(), interaction_id=f"call-{sim.call_no}"))
        assert (offered is not None) == (chosen is agent)
    elif action == "answer":
        if agent.offered_interaction_id is not None:
            iid = agent.offered_interaction_id
            assert sim.external_cc(CallAnswered(at=sim.now(), interaction_id=iid))
    elif action == "decline_offer":
        if agent.offered_interaction_id is not None:
            iid = agent.offered_interaction_id
            assert sim.external_cc(InteractionOfferWithdrawn(at=sim.now(), interaction_id=iid))
    elif action == "hangup":
        if agent.on_call and agent.state.major.value == "Busy":
            sim.external_cc(CallEnded(at=sim.now(), interaction_id=agent.interaction_id or ""))
    elif action == "wrap_end":
        if agent.on_call:
            sim.external_cc(WrapEnded(at=sim.now(), interaction_id=agent.interaction_id))
    elif action == "grace_expire":
        if not sim.console_connected:
            sim.external_cc(
                SessionGraceExpired(at=sim.now(), policy=sim.settings.session_end_policy)
            )
    elif action == "disconnect":
        if sim.console_connected:
            sim.external += 1
            sim.disconnect()
    elif action == "rest_reconcile":  # drift reconciliation over REST (no console involved)
        sim.external += 1
        sim.apply(sf.snapshot(sim.now(), console=False))
    elif action == "reconnect":
        sim.external += 1
        sim.connect()
    elif action in ("sf_status", "sf_supervisor"):
        if sf.online:
            status = statuses[pick % len(statuses)]
            if status != sf.status:
                reason = (
                    StatusChangeReason.MANUAL
                    if action == "sf_status"
                    else StatusChangeReason.SUPERVISOR
                )
                sim.external_sf(sf.agent_set_status(status, sim.now(), reason))
    elif action == "sf_login":
        if not sf.online and not sf.maintenance:
            sim.external_sf(sf.agent_login(statuses[pick % len(statuses)], sim.now()))
    elif action == "sf_logout":
        if sf.online:
            sim.external_sf(sf.agent_logout(sim.now()))
    elif action in ("sf_supervisor_logout", "sf_maintenance"):
        if sf.online:
            reason = (
                LogoutReason.SUPERVISOR
                if action == "sf_supervisor_logout"
                else LogoutReason.MAINTENANCE
            )
            sim.external_sf(sf.agent_logout(sim.now(), reason))
    elif action == "sf_maintenance_end":
        if sf.maintenance:
            sim.external += 1
            sim.end_maintenance()
    elif action in ("sf_duplicate_login", "sf_duplicate_same_browser"):
        if sf.online and not sf.displaced:
            same_browser = action == "sf_duplicate_same_browser"
            sim.external_sf(sf.duplicate_login(sim.now(), same_browser))
    elif action == "console_degraded":
        if sim.console_connected:
            reasons = list(DegradedReason)
            sim.external_sf([ConsoleDegraded(at=sim.now(), reason=reasons[pick % len(reasons)])])
    elif action == "work_assign":
        if sf.routes_work():
            sim.external_sf(sf.assign_work(sim.now(), CHANNELS[pick % len(CHANNELS)]))
    elif action in ("work_accept", "work_decline", "push_timeout"):
        assigned = [w for w in work if not sf.work[w].accepted]
        if assigned:
            work_id = assigned[pick % len(assigned)]
            if action == "work_accept":
                sim.external_sf(sf.accept_work(work_id, sim.now()))
            elif action == "work_decline":
                sim.external_sf(sf.decline_work(work_id, sim.now()))
            else:
                sim.external_sf(sf.push_timeout(work_id, sim.now()))
    elif action == "work_close":
        opened = [w for w in work if sf.work[w].accepted]
        if opened:
            sim.external_sf(sf.close_work(opened[pick % len(opened)], sim.now()))
    elif action == "deliver_sf":
        if sim.to_sf:
            sim.deliver_to_sf(pick % len(sim.to_sf))
    elif action == "deliver_cc":
        if sim.to_cc:
            sim.deliver_to_cc(pick % len(sim.to_cc))
    elif action == "deliver_cdc":
        sim.deliver_cdc("presence" if pick % 2 == 0 else "work")
    elif action == "redeliver_cdc":
        sim.redeliver_cdc("presence" if pick % 2 == 0 else "work")
    elif action == "drop_sf":
        sim.drop(True, pick)
    elif action == "drop_cc":
        sim.drop(False, pick)
    elif action == "dup_sf":
        sim.duplicate(True, pick)
    elif action == "dup_cc":
        sim.duplicate(False, pick)
    else:  # pragma: no cover - a typo in a test
        raise AssertionError(f"unknown action {action}")


CC_ACTIONS = (
    "cc_login",
    "cc_logout",
    "cc_state",
    "call",
    "offer",
    "answer",
    "decline_offer",
    "hangup",
    "wrap_end",
)
SF_ACTIONS = (
    "sf_status",
    "sf_supervisor",
    "sf_login",
    "sf_logout",
    "sf_supervisor_logout",
    "sf_maintenance",
    "sf_maintenance_end",
    "sf_duplicate_login",
    "sf_duplicate_same_browser",
    "work_assign",
    "work_accept",
    "work_decline",
    "push_timeout",
    "work_close",
)
# Salesforce actions after which a console says hello by design (Omni back after a maintenance,
# the surviving console of a duplicate login).
HELLO_ACTIONS = (
    "sf_maintenance",
    "sf_maintenance_end",
    "sf_duplicate_login",
    "sf_duplicate_same_browser",
)
CHANNEL_ACTIONS = (
    "deliver_sf",
    "deliver_cc",
    "drop_sf",
    "drop_cc",
    "dup_sf",
    "dup_cc",
    "deliver_cdc",
    "redeliver_cdc",
)
SESSION_ACTIONS = ("disconnect", "reconnect", "grace_expire", "rest_reconcile", "console_degraded")
ALL_ACTIONS = CC_ACTIONS + SF_ACTIONS + CHANNEL_ACTIONS + SESSION_ACTIONS


# --- helpers for example tests ----------------------------------------------------------------


def describe_command(command: Command) -> str:
    """`set_presence On_Break`, `omni_logout`, `set_state Away` (contact-center side)."""
    from presencesync.domain import command_kind, command_payload

    payload = command_payload(command)
    arg = payload.get("presence_status") or payload.get("state")
    return command_kind(command) + (f" {arg}" if arg else "")


class Step:
    """Marks a point in a Sim's history, to read what happened after it."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.start = len(sim.decisions)

    @property
    def decisions(self) -> list[Decision]:
        return [d for _, d in self.sim.decisions[self.start :]]

    @property
    def commands(self) -> list[str]:
        return [describe_command(c) for d in self.decisions for c in d.commands]

    @property
    def salesforce_commands(self) -> list[str]:
        return [
            describe_command(c)
            for d in self.decisions
            for c in d.commands
            if isinstance(c, SalesforceCommand)
        ]


def logged_in_sim(
    config: OmniConfig | None = None, settings: SyncSettings | None = None, state: str = "Ready"
) -> Sim:
    """An agent logged in to both systems, everything delivered."""
    from presencesync.domain import AgentLoggedIn

    sim = Sim(config or example_config(), settings)
    assert sim.external_cc(AgentLoggedIn(at=sim.now(), state=s(state)))
    sim.run_until_quiet()
    return sim
