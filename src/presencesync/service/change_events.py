"""Change Data Capture events -> the core's events (pure: no I/O, no clock of its own).

`ChangeAssembler` turns the decoded change events of one topic (`UserServicePresenceChangeEvent`
or `AgentWorkChangeEvent`, in stream order) into `Observation`s: an agent, a core event
(`PresenceCommitted` / `WorkCommitted`) and the event log's `source_id`. What a change means:

UserServicePresence (one row per status an agent was in; `IsCurrentState` marks the current one):
- a row **created** current, with `ServicePresenceStatusId` S: the agent is now in S (an Omni
  login, or the second half of a status change);
- the current row **updated** to `IsCurrentState = false` with no new current row for the same
  user: an Omni logout. A status change is that update *and* a create, in one transaction
  (update first, then create, in the emulator); since nothing in an update says a create
  follows, an update that ends a row is held for `window` seconds: a create of the same user
  arriving meanwhile, committed in the same transaction (or within `MERGE_MS`), makes the pair
  one status change. Other readings are covered too: the
  create first and the update after it (an update of a row other than the user's current one,
  or in the transaction that just created the current row, ends an old row: no logout), or the
  update and the create in two transactions (merged within the window), or the status id
  changed in place on the current row (a status change), or the current row deleted (a logout);
- anything else (capacity, durations, historic rows) means nothing to the agent.

AgentWork: a create or a change of `Status` is `WorkCommitted(status)` for the work's user.

Ids: `UserId` travels only in creates (an update carries the changed fields only, unless the
org enriches the event with it): the user of an updated row comes from the create we saw, or from
`owners` that the runner fills over REST (`owners_needed`). Status ids become developer names
through the account's last fetch (15-character prefixes compared); an id not in it is passed on
as it is, and the core reports it (rule 9). Users map to agents by `salesforce_user_id`.
GAP_* events (Salesforce lost the details) ask for a REST reconcile (`Resync`).

Times: an observation's event carries the commit time as `at`; the runner stamps it with the
time it reached the server before submitting (the core compares the two channels by arrival).

Replay: `confirmable()` is the last event such that it and every event before it are settled
(turned into observations, or known to mean nothing); a held update is not settled, so a restart
resumes before it and nothing is lost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from presencesync.domain.events import PresenceCommitted, WorkCommitted
from presencesync.salesforce.pubsub import ChangeEvent

PRESENCE = "UserServicePresence"
WORK = "AgentWork"
HOLD_SECONDS = 1.0  # how long an ended row waits for the create that makes it a status change
MERGE_MS = 1000  # an end and a create of one user committed this close are one status change
MAX_REMEMBERED = 50_000  # record owners and current rows kept (a cache: REST is the truth)

# Work item key prefixes (the first 3 characters of a Salesforce id) -> service channel label
# (the same reading as the bridge's: web/bridge_ws.py).
_ITEM_PREFIX_CHANNEL = {"500": "Case", "570": "Chat", "00Q": "Lead"}

V = TypeVar("V")


def short_id(value: object) -> str:
    """Salesforce ids come as 15 (case-sensitive) or 18 characters: compare the first 15."""
    return str(value)[:15] if value else ""


@dataclass(frozen=True)
class Observation:
    agent_id: str
    event: PresenceCommitted | WorkCommitted
    source_id: str  # the event log's key: "cdc:<event id>" of the change event it came from
    change: ChangeEvent = field(compare=False, repr=False)  # that change event


@dataclass(frozen=True)
class Resync:
    """Salesforce lost details (a GAP_* event): read the current state over REST."""

    reason: str


Output = Observation | Resync


@dataclass
class Directory:
    """What the translation needs from the account: its last fetch and its agents."""

    status_names: Mapping[str, str]  # 15-char ServicePresenceStatus id -> DeveloperName
    agents: Mapping[str, str]  # 15-char Salesforce user id -> agent_id

    @classmethod
    def build(cls, statuses: Mapping[str, str], agents_by_user: Mapping[str, str]) -> Directory:
        return cls(
            {short_id(k): v for k, v in statuses.items()},
            {short_id(k): v for k, v in agents_by_user.items()},
        )


@dataclass
class _Held:
    """An ended current row, waiting for a create of the same user (a status change)."""

    user: str
    event: ChangeEvent
    deadline: float


@dataclass
class _Slot:
    event: ChangeEvent
    settled: bool = False
    deferred: int = 0  # observations of it the runner has not applied yet


@dataclass
class ChangeAssembler:
    """Change events of one topic, in stream order -> observations (see the module docstring)."""

    window: float = HOLD_SECONDS
    owners: dict[str, str] = field(default_factory=dict)  # 15-char record id -> user id
    current_rows: dict[str, tuple[str, str]] = field(default_factory=dict)  # user -> (row, tx)
    _held: dict[str, _Held] = field(default_factory=dict)
    _slots: deque[_Slot] = field(default_factory=deque)
    _confirmable: ChangeEvent | None = None

    # --- what the runner asks ---------------------------------------------------------------

    def owners_needed(self, event: ChangeEvent) -> list[str]:
        """Record ids of `event` whose user is needed and unknown (to read over REST)."""
        if event.is_gap or event.change_type == "CREATE" or event.fields.get("UserId"):
            return []
        if not self._relevant_update(event):
            return []
        return [r for r in event.record_ids if short_id(r) not in self.owners]

    def owners_needed_in(self, batch: list[ChangeEvent]) -> list[str]:
        """`owners_needed` for events about to be added in this order: a row created earlier
        in the batch needs no lookup."""
        created: set[str] = set()
        needed: dict[str, None] = {}
        for event in batch:
            if event.change_type == "CREATE" and event.fields.get("UserId"):
                created.update(short_id(r) for r in event.record_ids)
                continue
            for record in self.owners_needed(event):
                if short_id(record) not in created:
                    needed[record] = None
        return list(needed)

    def learn_owner(self, record_id: str, user_id: str) -> None:
        self._remember(self.owners, short_id(record_id), short_id(user_id))

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def next_deadline(self) -> float | None:
        return min((h.deadline for h in self._held.values()), default=None)

    def confirmable(self) -> ChangeEvent | None:
        """The last event of the settled prefix (where a restart may resume after)."""
        while self._slots and self._slots[0].settled and not self._slots[0].deferred:
            self._confirmable = self._slots.popleft().event
        return self._confirmable

    def defer(self, observation: Observation) -> None:
        """The runner holds `observation` back: its change event is not settled until
        `applied(observation)` (call it before `confirmable()` passes the event)."""
        for slot in self._slots:
            if slot.event is observation.change:
                slot.deferred += 1
                return
        raise ValueError("that change event is past the replay position already")

    def applied(self, observation: Observation) -> None:
        for slot in self._slots:
            if slot.event is observation.change and slot.deferred:
                slot.deferred -= 1
                return

    # --- the translation --------------------------------------------------------------------

    def add(self, event: ChangeEvent, now: float, directory: Directory) -> list[Output]:
        slot = _Slot(event)
        self._slots.append(slot)
        out = self.due(now, directory)
        if event.is_gap:
            slot.settled = True
            return [*out, Resync(f"{event.entity} {event.change_type}: Salesforce lost details")]
        if event.entity == WORK:
            out += self._work(event, directory)
            slot.settled = True
            return out
        if event.entity != PRESENCE:
            slot.settled = True
            return out
        for record_id in event.record_ids or ("",):
            out += self._presence(event, short_id(record_id), slot, now, directory)
        if not any(h.event is event for h in self._held.values()):
            slot.settled = True
        return out

    def due(self, now: float, directory: Directory) -> list[Output]:
        """Held logouts whose window has passed: the row ended and no new one came."""
        out: list[Output] = []
        for user in [u for u, h in self._held.items() if h.deadline <= now]:
            out += self._release(user, directory)
        return out

    # --- UserServicePresence ----------------------------------------------------------------

    def _presence(
        self, event: ChangeEvent, record: str, slot: _Slot, now: float, directory: Directory
    ) -> list[Output]:
        kind = event.change_type
        user = short_id(event.fields.get("UserId")) or self.owners.get(record, "")
        if kind == "CREATE":
            if user:
                self._remember(self.owners, record, user)
            if not user or event.fields.get("IsCurrentState") is False:
                return []  # a row that is not (or no longer) anyone's current status
            out: list[Output] = []
            replaced = self._held.get(user)
            if replaced is not None:
                if _same_change(replaced.event, event):
                    del self._held[user]  # the row it replaces ended: one status change
                    self._settle(replaced.event)
                else:  # a logout, then a login of its own
                    out += self._release(user, directory)
            self._remember(self.current_rows, user, (record, event.transaction_key))
            return out + self._observe(user, event, self._status(event, directory), directory)
        if not user:
            return []  # nobody we can name (the runner could not read the owner)
        if kind == "UPDATE":
            changed = event.changed_fields
            if "IsCurrentState" in changed and event.value("IsCurrentState") is False:
                return self._ended(user, record, event, now, directory)
            if "ServicePresenceStatusId" in changed and event.value("ServicePresenceStatusId"):
                if self._old_row(user, record, event):
                    return []
                return self._observe(user, event, self._status(event, directory), directory)
            return []
        if kind == "DELETE":
            return self._ended(user, record, event, now, directory)
        return []

    def _old_row(self, user: str, record: str, event: ChangeEvent) -> bool:
        known = self.current_rows.get(user)
        return known is not None and (known[0] != record or known[1] == event.transaction_key)

    def _ended(
        self, user: str, record: str, event: ChangeEvent, now: float, directory: Directory
    ) -> list[Output]:
        known = self.current_rows.get(user)
        if known is not None and (known[0] != record or known[1] == event.transaction_key):
            return []  # an older row closed: the user has a newer current one
        out: list[Output] = []
        if user in self._held:
            out += self._release(user, directory)
        self._held[user] = _Held(user, event, now + self.window)
        return out

    def _release(self, user: str, directory: Directory) -> list[Output]:
        held = self._held.pop(user)
        self.current_rows.pop(user, None)
        self._settle(held.event)
        return self._observe(user, held.event, None, directory)

    def _settle(self, event: ChangeEvent) -> None:
        if any(h.event is event for h in self._held.values()):
            return  # the same event ended another user's row, still held
        for slot in self._slots:
            if slot.event is event:
                slot.settled = True

    @staticmethod
    def _status(event: ChangeEvent, directory: Directory) -> str:
        status_id = str(event.value("ServicePresenceStatusId") or "")
        # Not in the last fetch: the id itself, which the core reports (rule 9).
        return directory.status_names.get(short_id(status_id), status_id)

    def _observe(
        self, user: str, event: ChangeEvent, status: str | None, directory: Directory
    ) -> list[Output]:
        agent = directory.agents.get(user)
        if agent is None:
            return []
        committed = PresenceCommitted(
            at=event.commit_timestamp,
            commit_ms=_millis(event),
            transaction_key=event.transaction_key,
            sequence=event.sequence_number,
            presence_status=status,
        )
        return [Observation(agent, committed, f"cdc:{event.event_id}:{user}", event)]

    # --- AgentWork ------------------------------------------------------------------------------

    def _work(self, event: ChangeEvent, directory: Directory) -> list[Output]:
        out: list[Output] = []
        for record_id in event.record_ids:
            record = short_id(record_id)
            user = short_id(event.fields.get("UserId")) or self.owners.get(record, "")
            if user:
                self._remember(self.owners, record, user)
            if event.change_type == "CREATE":
                status = event.fields.get("Status")
            elif event.change_type == "UPDATE" and "Status" in event.changed_fields:
                status = event.value("Status")
            else:
                continue
            agent = directory.agents.get(user)
            if agent is None or not isinstance(status, str) or not status:
                continue
            item = event.fields.get("WorkItemId")
            channel = _ITEM_PREFIX_CHANNEL.get(str(item)[:3]) if item else None
            committed = WorkCommitted(
                at=event.commit_timestamp,
                commit_ms=_millis(event),
                transaction_key=event.transaction_key,
                sequence=event.sequence_number,
                work_id=str(record_id),
                status=status,
                channel=channel,
            )
            out.append(Observation(agent, committed, f"cdc:{event.event_id}:{record}", event))
        return out

    # --- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _relevant_update(event: ChangeEvent) -> bool:
        if event.change_type == "DELETE":
            return event.entity == PRESENCE
        if event.change_type != "UPDATE":
            return False
        changed = event.changed_fields
        if event.entity == WORK:
            return "Status" in changed
        return "IsCurrentState" in changed or "ServicePresenceStatusId" in changed

    @staticmethod
    def _remember(cache: dict[str, V], key: str, value: V) -> None:
        cache.pop(key, None)
        cache[key] = value
        if len(cache) > MAX_REMEMBERED:
            cache.pop(next(iter(cache)))


def _same_change(ended: ChangeEvent, created: ChangeEvent) -> bool:
    """An ended row and a new current row of one user are one status change when they were
    committed together (one transaction), or as good as together (two transactions within
    MERGE_MS: no person logs out and back in to Omni-Channel that fast)."""
    if ended.transaction_key and ended.transaction_key == created.transaction_key:
        return True
    return abs(_millis(created) - _millis(ended)) <= MERGE_MS


def _millis(event: ChangeEvent) -> int:
    return int(event.commit_timestamp.timestamp() * 1000)


__all__ = [
    "HOLD_SECONDS",
    "PRESENCE",
    "WORK",
    "ChangeAssembler",
    "Directory",
    "Observation",
    "Output",
    "Resync",
    "short_id",
]
