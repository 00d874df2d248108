"""Bookkeeping of the end-to-end bench (bench/e2e_sync.py): which change is waiting for what,
its latency when it arrives, and the counts that must hold (one command per contact-center
change, none for a Salesforce-side change, no call routed to a busy agent).

Pure and single-threaded (one per load-generator process, used on its event loop), so that a
unit test can drive it (tests/bench/test_e2e_ledger.py).

Directions:
- contact center -> Salesforce: a change made through the presencesync API (state, login,
  logout, answer, hangup) is waiting for the Salesforce command it must cause; it arrives when
  the `command` frame reaches the agent's simulated console (bridge protocol, pushed).
- Salesforce -> contact center: a change made in the emulated org (the widget's status, a work
  item accepted or closed) is waiting for the contact-center state it must cause; it arrives
  when the agent's ContactPad WebSocket pushes a view in that state.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

CC_TO_SF = "cc_to_sf"
SF_TO_CC = "sf_to_cc"
OFFLINE = "(offline)"  # the presence an omni_logout command asks for


@dataclass
class Waiting:
    direction: str
    expected: str  # the command's presence status (OFFLINE for a logout) or the pushed state
    started: float  # time.monotonic() when the change was sent
    phase: str


@dataclass
class Ledger:
    """Per load-generator process. Times are `time.monotonic()` seconds."""

    phase: str = "setup"
    waiting: dict[tuple[str, str], Waiting] = field(default_factory=dict)
    latencies: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # ms
    counts: dict[str, int] = field(default_factory=dict)
    seen_commands: set[str] = field(default_factory=set)
    # Changes given up on: a command that still comes for one is late, not a loop.
    expired: dict[tuple[str, str], Waiting] = field(default_factory=dict)

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    # --- changes made ------------------------------------------------------------------

    def cc_change(self, agent: str, presence: str | None, now: float) -> None:
        """A contact-center change was sent that must cause exactly one Salesforce command
        setting `presence` (None: an Omni logout)."""
        self.count(f"{self.phase}:cc_changes")
        self.expired.pop((agent, CC_TO_SF), None)
        self.waiting[(agent, CC_TO_SF)] = Waiting(
            CC_TO_SF, OFFLINE if presence is None else presence, now, self.phase
        )

    def sf_change(self, agent: str, state: str | None, now: float) -> None:
        """A Salesforce-side change was made; `state`: the contact-center state it must cause,
        pushed to ContactPad (None: not measured, e.g. the agent has no ContactPad open)."""
        self.count(f"{self.phase}:sf_changes")
        if state is not None:
            self.waiting[(agent, SF_TO_CC)] = Waiting(SF_TO_CC, state, now, self.phase)

    def cancel(self, agent: str, direction: str) -> None:
        """The change was refused (HTTP error): nothing will arrive for it."""
        waiting = self.waiting.pop((agent, direction), None)
        if waiting is not None:
            self.count(f"{waiting.phase}:{'cc' if direction == CC_TO_SF else 'sf'}_changes", -1)

    def is_waiting(self, agent: str, direction: str | None = None) -> bool:
        if direction is None:
            return (agent, CC_TO_SF) in self.waiting or (agent, SF_TO_CC) in self.waiting
        return (agent, direction) in self.waiting

    # --- what arrives ----------------------------------------------------------------------

    def command(self, agent: str, command_id: str, presence: str | None, now: float) -> None:
        """A `command` frame reached the agent's console (presence None: omni_logout)."""
        if command_id in self.seen_commands:
            self.count("duplicate_commands")  # redelivered (at least once): not a new command
            return
        self.seen_commands.add(command_id)
        key = (agent, CC_TO_SF)
        waiting = self.waiting.get(key)
        got = OFFLINE if presence is None else presence
        if waiting is None or waiting.expected != got:
            late = self.expired.get(key)
            if late is not None and late.expected == got:
                del self.expired[key]
                self.count(f"{late.phase}:commands")
                self.count(f"{late.phase}:late_commands")  # after --timeout: counted lost
                return
            # No contact-center change of ours asked for it: a loop, or a change's second
            # command.
            self.count(f"{self.phase}:commands")
            self.count(f"{self.phase}:unexpected_commands")
            return
        del self.waiting[key]
        self.count(f"{waiting.phase}:commands")  # the phase of the change that caused it
        self._record(waiting, now)

    def pushed_state(self, agent: str, state: str, now: float) -> None:
        """ContactPad received a view of the agent in `state`."""
        key = (agent, SF_TO_CC)
        waiting = self.waiting.get(key)
        if waiting is None or waiting.expected != state:
            return
        del self.waiting[key]
        self._record(waiting, now)

    def _record(self, waiting: Waiting, now: float) -> None:
        ms = (now - waiting.started) * 1000.0
        self.latencies.setdefault((waiting.phase, waiting.direction), []).append(ms)

    def expire(self, now: float, older_than: float) -> int:
        """Give up on changes waiting longer than `older_than` seconds (counted as lost)."""
        stale = [k for k, w in self.waiting.items() if now - w.started > older_than]
        for key in stale:
            waiting = self.waiting.pop(key)
            self.expired[key] = waiting
            self.count(f"{waiting.phase}:{waiting.direction}:lost")
        return len(stale)

    def double_routing(self) -> None:
        """A call was offered to (or answered by) an agent the server knew to be busy."""
        self.count(f"{self.phase}:double_routings")

    def report(self) -> dict[str, Any]:
        return {
            "counts": dict(self.counts),
            "latencies": {f"{p}|{d}": list(v) for (p, d), v in self.latencies.items()},
        }


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of sorted `values`, nearest rank; NaN when empty."""
    if not values:
        return math.nan
    rank = max(1, math.ceil(q / 100.0 * len(values)))
    return values[min(rank, len(values)) - 1]


def merge_reports(reports: Iterable[dict[str, Any]]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    latencies: dict[str, list[float]] = {}
    for report in reports:
        for name, n in report["counts"].items():
            counts[name] = counts.get(name, 0) + n
        for key, values in report["latencies"].items():
            latencies.setdefault(key, []).extend(values)
    for values in latencies.values():
        values.sort()
    return {"counts": counts, "latencies": latencies}


def summarize(merged: dict[str, Any], phase: str, seconds: float) -> dict[str, Any]:
    """One row of the bench's table for `phase`."""
    counts = merged["counts"]
    lat = merged["latencies"]

    def n(name: str) -> int:
        return int(counts.get(f"{phase}:{name}", 0))

    row: dict[str, Any] = {
        "phase": phase,
        "seconds": seconds,
        "cc_changes": n("cc_changes"),
        "sf_changes": n("sf_changes"),
        "other_changes": n("other_changes"),
        "commands": n("commands"),
        "unexpected_commands": n("unexpected_commands"),
        "late_commands": n("late_commands"),
        "double_routings": n("double_routings"),
        "lost": n(f"{CC_TO_SF}:lost") + n(f"{SF_TO_CC}:lost"),
        "http_errors": n("http_errors"),
    }
    # Changes made inside the measured window (what a phase's drain adds is left out).
    changes = n("changes_in_window") or row["cc_changes"] + row["sf_changes"] + row["other_changes"]
    row["changes_per_s"] = changes / seconds if seconds > 0 else math.nan
    row["commands_per_cc_change"] = (
        row["commands"] / row["cc_changes"] if row["cc_changes"] else math.nan
    )
    for direction in (CC_TO_SF, SF_TO_CC):
        values = lat.get(f"{phase}|{direction}", [])
        row[direction] = {
            "n": len(values),
            "p50": percentile(values, 50),
            "p95": percentile(values, 95),
            "p99": percentile(values, 99),
            "max": values[-1] if values else math.nan,
        }
    return row
