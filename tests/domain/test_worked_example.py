"""The worked example the seed promises ("Using the example settings in steps 5 and 6, the
following events will occur.") and never gives: one agent, the settings below, fourteen events.

Every row is asserted here, and the markdown in tests/domain/WORKED_EXAMPLE.md is generated
from the same run: the test fails if the file differs. To rewrite the file after a deliberate
change: PRESENCESYNC_WRITE_WORKED_EXAMPLE=1 pytest tests/domain/test_worked_example.py
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from presencesync.domain import (
    AgentLoggedIn,
    CallAnswered,
    CallEnded,
    InteractionOffered,
    StateCatalog,
    StateChangeRequested,
    StatusChangeReason,
    WrapEnded,
    validate_config,
)
from presencesync.domain.commands import ContactCenterCommand
from presencesync.domain.presence import presence_label
from tests.domain.support import (
    EXAMPLE_RAW,
    Sim,
    Step,
    describe_command,
    example_config,
    example_statuses,
    s,
)

MARKDOWN = Path(__file__).with_name("WORKED_EXAMPLE.md")


@dataclass(frozen=True)
class Row:
    event: str
    act: Callable[[Sim], None]
    state: str  # ContactPad after, "(pending X)" for a held change
    presence: str  # Omni-Channel after
    commands: tuple[str, ...]  # sent, in order (ContactPad notifications marked)
    rules: tuple[str, ...]  # the rules of DESIGN.md 3 that applied


def _offer_and_answer(sim: Sim) -> None:
    assert sim.apply(InteractionOffered(at=sim.now(), interaction_id="call-1")) is not None
    assert sim.external_cc(CallAnswered(at=sim.now(), interaction_id="call-1"))


def _accept_case(sim: Sim) -> None:
    sim.external_sf(sim.sf.assign_work(sim.now(), "Case"))
    sim.run_until_quiet()
    (work_id,) = sim.sf.work
    sim.external_sf(sim.sf.accept_work(work_id, sim.now()))


def _close_case(sim: Sim) -> None:
    (work_id,) = sim.sf.work
    sim.external_sf(sim.sf.close_work(work_id, sim.now()))


ROWS = (
    Row(
        "Agent logs in to ContactPad (Ready)",
        lambda sim: sim.external_cc(AgentLoggedIn(at=sim.now())),  # type: ignore[func-returns-value]
        "Ready",
        "Available",
        ("omni_login Available",),
        ("3.3",),
    ),
    Row(
        "Agent picks Away/Break in ContactPad",
        lambda sim: sim.external_cc(StateChangeRequested(at=sim.now(), state=s("Away/Break"))),  # type: ignore[func-returns-value]
        "Away/Break",
        "On_Break",
        ("set_presence On_Break",),
        ("3.1",),
    ),
    Row(
        "Agent picks Available in the Omni-Channel widget",
        lambda sim: sim.external_sf(sim.sf.agent_set_status("Available", sim.now())),
        "Ready",
        "Available",
        ("ContactPad: set_state Ready",),
        ("3.2",),
    ),
    Row(
        "Omni-Channel pushes a case; the agent accepts it",
        _accept_case,
        "Busy/Inbound",
        "Available",
        ("ContactPad: set_state Busy/Inbound",),
        ("3.6",),
    ),
    Row(
        "Agent sets Lunch in the widget while working the case",
        lambda sim: sim.external_sf(sim.sf.agent_set_status("Lunch", sim.now())),
        "Busy/Inbound",
        "Lunch",
        (),
        ("3.6",),
    ),
    Row(
        "Agent closes the case (the last open work item)",
        _close_case,
        "ExtendedAway/Lunch",
        "Lunch",
        ("ContactPad: set_state ExtendedAway/Lunch",),
        ("3.6",),
    ),
    Row(
        "Agent picks Ready in ContactPad",
        lambda sim: sim.external_cc(StateChangeRequested(at=sim.now(), state=s("Ready"))),  # type: ignore[func-returns-value]
        "Ready",
        "Available",
        ("set_presence Available",),
        ("3.1",),
    ),
    Row(
        "A call is routed to the agent, who answers it",
        _offer_and_answer,
        "Busy/Inbound",
        "On_a_Call",
        ("set_presence On_a_Call",),
        ("3.1",),
    ),
    Row(
        "A supervisor sets Available in Omni-Channel during the call",
        lambda sim: sim.external_sf(
            sim.sf.agent_set_status("Available", sim.now(), StatusChangeReason.SUPERVISOR)
        ),
        "Busy/Inbound (pending Ready)",
        "On_a_Call",
        ("set_presence On_a_Call",),
        ("3.11",),
    ),
    Row(
        "The call ends",
        lambda sim: sim.external_cc(CallEnded(at=sim.now(), interaction_id="call-1")),  # type: ignore[func-returns-value]
        "Wrap/Auto (pending Ready)",
        "Busy",
        ("set_presence Busy",),
        ("3.1",),
    ),
    Row(
        "The wrap time runs out",
        lambda sim: sim.external_cc(WrapEnded(at=sim.now(), interaction_id="call-1")),  # type: ignore[func-returns-value]
        "Ready",
        "Available",
        ("ContactPad: set_state Ready", "set_presence Available"),
        ("3.11",),
    ),
    Row(
        "Agent picks Busy in the widget",
        lambda sim: sim.external_sf(sim.sf.agent_set_status("Busy", sim.now())),
        "Away",
        "Busy",
        ("ContactPad: set_state Away",),
        ("3.2",),
    ),
    Row(
        "Agent goes offline in the Omni-Channel widget",
        lambda sim: sim.external_sf(sim.sf.agent_logout(sim.now())),
        "LoggedOut",
        "Offline",
        ("ContactPad: log_out",),
        ("3.5",),
    ),
    Row(
        "Agent logs in to ContactPad in Away/Break",
        lambda sim: sim.external_cc(AgentLoggedIn(at=sim.now(), state=s("Away/Break"))),  # type: ignore[func-returns-value]
        "Away/Break",
        "On_Break",
        ("omni_login On_Break",),
        ("3.3",),
    ),
)

_RULE_NOTE = re.compile(r"rule (3\.\d+)")


@dataclass(frozen=True)
class Observed:
    state: str
    presence: str
    commands: tuple[str, ...]
    rules: tuple[str, ...]


def play() -> list[Observed]:
    sim = Sim(example_config())
    observed = []
    for row in ROWS:
        step = Step(sim)
        row.act(sim)
        sim.run_until_quiet()  # the console runs our commands; their echoes come back
        commands = tuple(
            ("ContactPad: " if isinstance(c, ContactCenterCommand) else "") + describe_command(c)
            for d in step.decisions
            for c in d.commands
        )
        rules = {t.rule for d in step.decisions for t in d.transitions if t.rule}
        rules |= {m for d in step.decisions for note in d.notes for m in _RULE_NOTE.findall(note)}
        rules.discard("3.7")  # echoes are everywhere; the table shows what caused them
        state = str(sim.agent.state)
        if sim.agent.hold is not None and sim.agent.hold.state is not None:
            state += f" (pending {sim.agent.hold.state})"
        observed.append(
            Observed(state, presence_label(sim.sf.presence), commands, tuple(sorted(rules)))
        )
        assert presence_label(sim.agent.presence) == presence_label(sim.sf.presence)
        assert not sim.agent.pending
    return observed


def render(observed: list[Observed]) -> str:
    config = example_config()
    result = validate_config(EXAMPLE_RAW, StateCatalog.default(), example_statuses())
    lines = [
        "# Worked example",
        "",
        "<!-- Generated by tests/domain/test_worked_example.py, which asserts every row. -->",
        "",
        'The seed promises the events that occur "using the example settings in steps 5 and 6"',
        "and never lists them. Here they are, for one agent, with these settings.",
        "",
        "**Step 5, Presence Status Configuration** (Salesforce -> contact center):",
        "",
        "| Presence status | Status option | Busy | Maps to | Agent goes to |",
        "|---|---|---|---|---|",
    ]
    options = {p.developer_name: p for p in example_statuses()}
    for row in EXAMPLE_RAW["presence_mappings"]:
        name = row["presence_status"]
        option = options[name]
        channels = f" ({', '.join(option.channels)})" if option.channels else ""
        lines.append(
            f"| {name} | {option.status_option.value}{channels} | "
            f"{'yes' if row['busy'] else 'no'} | {row['maps_to'] or '-'} | "
            f"{config.state_for_presence(name)} |"
        )
    lines += [
        "",
        "**Step 6, ContactWorld to Salesforce State Mapping** (contact center -> Salesforce);",
        "unmapped minor states use their major's row, LoggedOut is always offline:",
        "",
        "| State | Presence status |",
        "|---|---|",
    ]
    lines += [f"| {r['state']} | {r['presence_status']} |" for r in EXAMPLE_RAW["state_mappings"]]
    lines += ["", "The mapping check accepts this and warns (rule 10):", ""]
    lines += [f"- `{w.code}`: {w.message}" for w in result.warnings]
    lines += [
        "",
        "`On_a_Call` cannot map to `Busy/Inbound`: Maps to names only states an agent can",
        "select, so its Busy box sends the agent to Away (and the state mapping sends",
        "`Busy/*` back to `On_a_Call`).",
        "",
        "**Events** (after each one, the console bridge runs the commands and their echoes come",
        "back, recognised as ours and not propagated: rule 7):",
        "",
        "| # | Event | ContactPad state after | Omni-Channel after | Commands sent | Rules |",
        "|---|---|---|---|---|---|",
    ]
    for n, (row, seen) in enumerate(zip(ROWS, observed, strict=True), start=1):
        commands = "; ".join(f"`{c}`" for c in seen.commands) or "none"
        lines.append(
            f"| {n} | {row.event} | {seen.state} | {seen.presence} | {commands} | "
            f"{', '.join(seen.rules)} |"
        )
    lines += [
        "",
        "Row 9: the call is not cut; ContactPad shows the pending state and Omni-Channel is set",
        "back so that it routes nothing into the call (rule 11). Row 12: the asymmetric round",
        "trip of the warning above: ContactPad shows Away, Omni-Channel stays in Busy, and no",
        "change is pushed back.",
        "",
    ]
    return "\n".join(lines)


def test_worked_example_every_row() -> None:
    observed = play()
    for n, (row, seen) in enumerate(zip(ROWS, observed, strict=True), start=1):
        expected = Observed(row.state, row.presence, row.commands, row.rules)
        assert seen == expected, f"row {n}: {row.event}"


def test_worked_example_markdown_is_current() -> None:
    text = render(play())
    if os.environ.get("PRESENCESYNC_WRITE_WORKED_EXAMPLE"):
        MARKDOWN.write_text(text)
    assert MARKDOWN.read_text() == text, "regenerate WORKED_EXAMPLE.md (see module docstring)"
