"""Two observers of one Salesforce: the console's bridge and Change Data Capture (pure).

Salesforce's presence of an agent has one history: the rows of `UserServicePresence`, committed
in order. Two channels report it to us:

- the **bridge** (the Omni-Channel toolkit's events in the agent's console, plus what a console
  reads when it connects): quick, carries `reason` and our command ids, but only while a console
  is open, and it may miss changes (a closed tab, a dropped socket);
- **Change Data Capture** (CDC, over the Pub/Sub API): every committed change, in commit order,
  with or without a console, but later than the bridge and without reason or command id.

So every change can arrive twice. The core applies it at its first report and recognises the
second as the same change. A *sighting* is a presence change one channel reported that the
other has not reported yet; the sightings of an agent always come from one channel (the one
that is ahead). When a report arrives from the other channel:

- from CDC, naming the presence of the bridge's oldest sighting: it is that change again
  (CDC reports every change in order, so the first sighting it reaches is the oldest): that
  sighting is done, nothing is applied;
- from CDC, naming anything else: CDC has not reached the bridge's sightings yet, so this is an
  older change the bridge never reported: it is stale, nothing is applied (the newer state is
  already applied);
- from the bridge, naming the presence of one of CDC's sightings: it is that change again (the
  first match: the bridge reports in order but may skip some): the sightings up to it are
  done, nothing is applied;
- it names none of them and comes from the bridge: the bridge skipped what CDC reported (it
  reports changes in order too, just not all of them), so this is newer than all of them: it
  is applied, and the CDC sightings are dropped (the bridge will never report them).

A sighting nobody confirms within `CONFIRM_WINDOW` (measured on the server's clock, by the
events' `at`) is dropped: a channel that is never going to report it (a console that never
comes back, a change the bridge invented) must not hold the other one back for long. CDC is the
committed truth, the bridge is quicker: when they disagree once that window is over, CDC's
report is applied, and the history says why (`Drift`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class Channel(StrEnum):
    """How a Salesforce-side change reached us (the history's `channel`)."""

    BRIDGE = "bridge"  # the console's toolkit events, command results and its hello
    REST = "rest"  # drift reconciliation over the REST API
    CHANGE_DATA_CAPTURE = "change_data_capture"


# Long enough for CDC's usual delay behind the bridge (seconds), short enough that a sighting
# nobody will confirm does not hold the other channel back for long.
CONFIRM_WINDOW = timedelta(seconds=60)
MAX_SIGHTINGS = 16


@dataclass(frozen=True)
class Sighting:
    """A presence change (`presence`, None = Omni offline) that `channel` reported first."""

    channel: Channel
    presence: str | None
    at: datetime

    @property
    def from_cdc(self) -> bool:
        return self.channel is Channel.CHANGE_DATA_CAPTURE

    def to_json(self) -> dict[str, Any]:
        return {"channel": self.channel.value, "presence": self.presence, "at": self.at.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sighting:
        return cls(
            Channel(data["channel"]), data.get("presence"), datetime.fromisoformat(data["at"])
        )


@dataclass(frozen=True)
class Drift:
    """Why the two channels disagreed on a change (a history entry's `drift`)."""

    code: str  # BRIDGE_DID_NOT_REPORT | BRIDGE_REPORT_UNCONFIRMED
    message: str

    def to_api(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Judgement:
    """What a report is, given the sightings: the same change again, an older one, or new."""

    sightings: tuple[Sighting, ...]  # what is left once the report is judged
    seen: bool = False  # the other channel reported this change already: apply nothing
    stale: bool = False  # CDC reports a change older than the bridge's sightings
    expired: tuple[Sighting, ...] = ()  # sightings the other channel never confirmed


def judge(
    sightings: tuple[Sighting, ...], channel: Channel, presence: str | None, at: datetime
) -> Judgement:
    """Judge one report of a presence change from `channel` (see the module docstring)."""
    live = tuple(s for s in sightings if at - s.at <= CONFIRM_WINDOW)
    expired = tuple(s for s in sightings if at - s.at > CONFIRM_WINDOW)
    cdc = channel is Channel.CHANGE_DATA_CAPTURE
    if not live or live[0].from_cdc == cdc:
        return Judgement(live, expired=expired)  # this channel is ahead, or they are even
    if cdc:
        # CDC reports every change in order: the first of the bridge's sightings it reaches
        # is the oldest one. Anything else it reports before that is older.
        if live[0].presence == presence:
            return Judgement(live[1:], seen=True, expired=expired)
        return Judgement(live, stale=True, expired=expired)
    for index, sighting in enumerate(live):  # the bridge may have skipped some of CDC's
        if sighting.presence == presence:
            return Judgement(live[index + 1 :], seen=True, expired=expired)
    return Judgement((), expired=expired)


def record(
    sightings: tuple[Sighting, ...], channel: Channel, presence: str | None, at: datetime
) -> tuple[Sighting, ...]:
    """The sightings once a report from `channel` changed the known presence to `presence`."""
    cdc = channel is Channel.CHANGE_DATA_CAPTURE
    kept = tuple(s for s in sightings if s.from_cdc == cdc)
    return (*kept, Sighting(channel, presence, at))[-MAX_SIGHTINGS:]


def without_cdc(sightings: tuple[Sighting, ...]) -> tuple[Sighting, ...]:
    """A new console reports only changes from now on: it will never confirm CDC's."""
    return tuple(s for s in sightings if not s.from_cdc)


__all__ = [
    "CONFIRM_WINDOW",
    "MAX_SIGHTINGS",
    "Channel",
    "Drift",
    "Judgement",
    "Sighting",
    "judge",
    "record",
    "without_cdc",
]
