"""Decisions per second of the pure core (presencesync.domain.decide), on one core.

A realistic day is recorded first: 1,000 agents (by default) with the worked example's
configuration, agents acting in ContactPad and in the Omni-Channel widget, Omni pushing work,
calls being routed, answered and wrapped, and every Salesforce command of ours coming back as
its echo and command result (about a third of all events are echoes, as in production).
The recorded stream is then replayed through `decide` again and again, timing each call,
after a warm-up pass. Nothing else is measured: no store, no network.

    .venv/bin/python bench/core_decisions.py [--seconds 10] [--agents 1000] [--events 50000]
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from presencesync.domain import (
    AgentLoggedIn,
    AgentLoggedOut,
    AgentSnapshot,
    CallAnswered,
    CallEnded,
    CommandResult,
    Event,
    InteractionOffered,
    OmniConfig,
    OmniLoggedIn,
    OmniLoggedOut,
    OmniLogin,
    OmniLogout,
    PresenceChanged,
    Rejected,
    SetPresence,
    StateCatalog,
    StateChangeRequested,
    StatusChangeReason,
    SyncSettings,
    WorkAccepted,
    WorkAssigned,
    WorkClosed,
    WrapEnded,
    decide,
    new_agent,
    validate_config,
)
from presencesync.domain.example import EXAMPLE_RAW_CONFIG, example_statuses

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

STATUSES = example_statuses()
RAW_CONFIG = EXAMPLE_RAW_CONFIG
AGENT_STATES = ["Ready", "Ready", "Ready", "Away/Break", "ExtendedAway/Lunch", "Away"]
WIDGET_STATUSES = ["Available", "Available", "On_Break", "Lunch", "Busy"]


class Recorder:
    """Plays one agent in both systems with a perfect channel, recording every event."""

    def __init__(self, agent_id: str, config: OmniConfig, catalog: StateCatalog) -> None:
        self.agent: AgentSnapshot = new_agent(agent_id)
        self.config = config
        self.catalog = catalog
        self.settings = SyncSettings()
        self.online = False
        self.status: str | None = None
        self.seq = 0
        self.work: dict[str, bool] = {}
        self.work_no = 0
        self.call_no = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def apply(self, event: Event, out: list[tuple[int, Event]], index: int) -> bool:
        try:
            decision = decide(self.agent, event, self.config, self.catalog, self.settings)
        except Rejected:
            return False
        out.append((index, event))
        self.agent = decision.agent
        for command in decision.commands:
            self.execute(command, event.at, out, index)
        return True

    def execute(
        self, command: object, now: datetime, out: list[tuple[int, Event]], index: int
    ) -> None:
        """The console bridge runs our command and the echo comes straight back."""
        events: list[Event] = []
        if isinstance(command, SetPresence | OmniLogin):
            cid, target = command.command_id, command.presence_status
            if not self.online:
                self.online, self.status = True, target
                events.append(
                    OmniLoggedIn(
                        at=now, seq=self.next_seq(), presence_status=target, command_id=cid
                    )
                )
            elif self.status != target:
                self.status = target
                events.append(
                    PresenceChanged(
                        at=now,
                        seq=self.next_seq(),
                        presence_status=target,
                        reason=StatusChangeReason.TOOLKIT,
                        command_id=cid,
                    )
                )
            events.append(CommandResult(at=now, command_id=cid, ok=True))
        elif isinstance(command, OmniLogout):
            self.online, self.status = False, None
            self.work = {k: v for k, v in self.work.items() if v}
            events.append(OmniLoggedOut(at=now, seq=self.next_seq(), command_id=command.command_id))
            events.append(CommandResult(at=now, command_id=command.command_id, ok=True))
        for event in events:
            self.apply(event, out, index)

    def act(self, rng: random.Random, now: datetime, out: list[tuple[int, Event]], i: int) -> None:
        agent = self.agent
        roll = rng.random()
        if not agent.logged_in:
            state = self.catalog.parse(rng.choice(AGENT_STATES))
            self.apply(AgentLoggedIn(at=now, state=state), out, i)
        elif agent.on_call:
            if agent.state.major.value == "Busy":
                if roll < 0.15:  # a supervisor moves the agent during the call (rule 11)
                    self.widget(rng.choice(WIDGET_STATUSES), now, out, i, supervisor=True)
                else:
                    self.apply(CallEnded(at=now, interaction_id=agent.interaction_id or ""), out, i)
            else:
                self.apply(WrapEnded(at=now, interaction_id=agent.interaction_id), out, i)
        elif roll < 0.02:
            self.apply(AgentLoggedOut(at=now), out, i)
        elif roll < 0.03 and self.online:
            self.online, self.status = False, None
            self.work = {k: v for k, v in self.work.items() if v}
            self.apply(OmniLoggedOut(at=now, seq=self.next_seq()), out, i)
        elif roll < 0.28:
            state = self.catalog.parse(rng.choice(AGENT_STATES))
            self.apply(StateChangeRequested(at=now, state=state), out, i)
        elif roll < 0.48 and self.online:
            self.widget(rng.choice(WIDGET_STATUSES), now, out, i)
        elif roll < 0.70:
            self.salesforce_work(rng, now, out, i)
        else:
            self.call_no += 1
            call = f"{agent.agent_id}-call-{self.call_no}"
            if self.apply(InteractionOffered(at=now, interaction_id=call), out, i):
                self.apply(CallAnswered(at=now, interaction_id=call), out, i)

    def widget(
        self,
        status: str,
        now: datetime,
        out: list[tuple[int, Event]],
        i: int,
        supervisor: bool = False,
    ) -> None:
        if not self.online or status == self.status:
            return
        self.status = status
        reason = StatusChangeReason.SUPERVISOR if supervisor else StatusChangeReason.MANUAL
        self.apply(
            PresenceChanged(at=now, seq=self.next_seq(), presence_status=status, reason=reason),
            out,
            i,
        )

    def salesforce_work(
        self, rng: random.Random, now: datetime, out: list[tuple[int, Event]], i: int
    ) -> None:
        accepted = [w for w, a in self.work.items() if a]
        assigned = [w for w, a in self.work.items() if not a]
        if assigned:
            work_id = assigned[0]
            self.work[work_id] = True
            self.apply(WorkAccepted(at=now, seq=self.next_seq(), work_id=work_id), out, i)
        elif accepted and rng.random() < 0.6:
            work_id = accepted[0]
            del self.work[work_id]
            self.apply(WorkClosed(at=now, seq=self.next_seq(), work_id=work_id), out, i)
        elif self.online and self.status == "Available":
            self.work_no += 1
            work_id = f"{self.agent.agent_id}-w{self.work_no}"
            self.work[work_id] = False
            self.apply(
                WorkAssigned(at=now, seq=self.next_seq(), work_id=work_id, channel="Case"), out, i
            )


def record(agents: int, events: int, seed: int) -> tuple[OmniConfig, list[tuple[int, Event]]]:
    catalog = StateCatalog.default()
    result = validate_config(RAW_CONFIG, catalog, STATUSES)
    assert result.config is not None
    config = result.config
    rng = random.Random(seed)
    recorders = [Recorder(f"agent-{n:05d}", config, catalog) for n in range(agents)]
    out: list[tuple[int, Event]] = []
    tick = 0
    while len(out) < events:
        tick += 1
        i = rng.randrange(agents)
        recorders[i].act(rng, T0 + timedelta(milliseconds=tick), out, i)
    return config, out[:events]


def replay(
    config: OmniConfig,
    stream: list[tuple[int, Event]],
    agents: int,
    samples: list[int] | None,
    deadline: float,
) -> int:
    """Run the stream through `decide` from fresh snapshots; returns decisions made."""
    catalog = StateCatalog.default()
    settings = SyncSettings()
    snapshots = [new_agent(f"agent-{n:05d}") for n in range(agents)]
    clock = time.perf_counter_ns
    done = 0
    for i, event in stream:
        start = clock()
        try:  # noqa: SIM105 - a bare try costs nothing inside the timed region
            snapshots[i] = decide(snapshots[i], event, config, catalog, settings).agent
        except Rejected:
            pass
        elapsed = clock() - start
        if samples is not None:
            samples.append(elapsed)
        done += 1
        if done % 4096 == 0 and time.perf_counter() > deadline:
            break
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time (default 10)")
    parser.add_argument("--agents", type=int, default=1000, help="agents (default 1000)")
    parser.add_argument(
        "--events", type=int, default=50_000, help="recorded events (default 50000)"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    t = time.perf_counter()
    config, stream = record(args.agents, args.events, args.seed)
    kinds: dict[str, int] = {}
    for _, event in stream:
        kinds[type(event).__name__] = kinds.get(type(event).__name__, 0) + 1
    print(
        f"recorded {len(stream):,} events for {args.agents:,} agents in "
        f"{time.perf_counter() - t:.1f} s"
    )
    print(
        "mix: "
        + ", ".join(
            f"{k} {100 * v / len(stream):.0f}%"
            for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])
        )
    )

    replay(config, stream, args.agents, None, time.perf_counter() + max(1.0, args.seconds / 5))

    samples: list[int] = []
    decisions = 0
    gc.collect()
    cpu_started = time.process_time()
    started = time.perf_counter()
    deadline = started + args.seconds
    while time.perf_counter() < deadline:
        decisions += replay(config, stream, args.agents, samples, deadline)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started

    samples.sort()
    p50 = samples[len(samples) // 2] / 1000
    p99 = samples[int(len(samples) * 0.99)] / 1000
    rate = decisions / wall
    in_decide = sum(samples) / 1e9
    print()
    print(f"| python | {platform.python_version()} ({platform.machine()}), one core |")
    print("|---|---|")
    print(f"| agents | {args.agents:,} |")
    print(f"| decisions | {decisions:,} in {wall:.1f} s |")
    print(f"| events/s = decisions/s (wall) | {rate:,.0f} |")
    print(f"| decisions/s (time inside decide) | {decisions / in_decide:,.0f} |")
    # On a shared machine the process is descheduled now and then; its CPU time is not.
    print(f"| decisions per CPU-second of this process | {decisions / cpu:,.0f} |")
    print(f"| µs per decision p50 / p99 | {p50:.1f} / {p99:.1f} |")
    print(f"| µs per decision mean | {statistics.fmean(samples) / 1000:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
