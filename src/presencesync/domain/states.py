"""The contact-center state taxonomy (DESIGN.md section 2), modelled on ContactWorld's table.

A state is `Major` or `Major/Minor`. Minor states of Ready and Busy are fixed; an account defines
its own minor states of Away, ExtendedAway and Wrap (admins add, rename, disable them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from presencesync.domain.errors import InvalidState


class Major(StrEnum):
    READY = "Ready"
    BUSY = "Busy"
    WRAP = "Wrap"
    AWAY = "Away"
    EXTENDED_AWAY = "ExtendedAway"
    LOGGED_OUT = "LoggedOut"


# Minor states the account cannot change.
FIXED_MINOR_STATES: Mapping[Major, tuple[str, ...]] = {
    Major.READY: ("Outbound",),
    Major.BUSY: ("Inbound", "Outbound", "TransferIn", "Internal", "Callback"),
}
# The account-defined ones, and what a new account starts with.
CONFIGURABLE_MAJORS: tuple[Major, ...] = (Major.AWAY, Major.EXTENDED_AWAY, Major.WRAP)
DEFAULT_MINOR_STATES: Mapping[Major, tuple[str, ...]] = {
    Major.AWAY: ("Break", "ComfortBreak"),
    Major.EXTENDED_AWAY: ("Lunch", "Meeting", "Training"),
    # Wrap/Auto (timer), Wrap/Manual (agent extends) and Wrap/Transferred are what the system
    # itself uses after a call, so an account may add Wrap minors but never drop these three.
    Major.WRAP: ("Auto", "Manual", "Transferred"),
}
REQUIRED_WRAP_MINORS: tuple[str, ...] = ("Auto", "Manual", "Transferred")

_MINOR_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")


@dataclass(frozen=True, order=True)
class State:
    major: Major
    minor: str | None = None

    def __post_init__(self) -> None:
        # The core writes and compares states in every decision: keep the text once.
        text = self.major.value if self.minor is None else f"{self.major.value}/{self.minor}"
        object.__setattr__(self, "_text", text)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not State:
            return NotImplemented
        return self is other or self._text == other._text  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.major, self.minor))

    def __str__(self) -> str:
        return self._text  # type: ignore[attr-defined, no-any-return]

    @property
    def major_only(self) -> State:
        return State(self.major)

    @property
    def is_logged_out(self) -> bool:
        return self.major is Major.LOGGED_OUT


READY = State(Major.READY)
BUSY_INBOUND = State(Major.BUSY, "Inbound")
WRAP_AUTO = State(Major.WRAP, "Auto")
AWAY = State(Major.AWAY)
LOGGED_OUT = State(Major.LOGGED_OUT)


def parse_state_text(text: object) -> State:
    """Parse `Major` or `Major/Minor` syntactically (membership is the catalog's job)."""
    if not isinstance(text, str):
        raise InvalidState(f"a state is a string like 'Away/Lunch', not {type(text).__name__}")
    major_text, sep, minor = text.strip().partition("/")
    try:
        major = Major(major_text)
    except ValueError:
        majors = ", ".join(m.value for m in Major)
        raise InvalidState(
            f"unknown major state {major_text!r} in {text!r}; major states are {majors}"
        ) from None
    if not sep:
        return State(major)
    if not minor:
        raise InvalidState(f"{text!r} has a '/' but no minor state after it")
    return State(major, minor)


@dataclass(frozen=True)
class StateInfo:
    state: State
    agent_selectable: bool
    system: bool
    routable: bool

    def to_api(self) -> dict[str, object]:
        return {
            "state": str(self.state),
            "major": self.state.major.value,
            "minor": self.state.minor,
            "agent_selectable": self.agent_selectable,
            "system": self.system,
            "routable": self.routable,
        }


def _describe(state: State) -> StateInfo:
    major = state.major
    if major is Major.READY:
        # Ready/Outbound is "ready for outbound only": never offered an inbound interaction.
        return StateInfo(state, True, False, state.minor is None)
    if major is Major.BUSY:
        return StateInfo(state, False, True, False)
    if major is Major.WRAP:
        manual = state.minor == "Manual"
        return StateInfo(state, manual, not manual, False)
    if major in (Major.AWAY, Major.EXTENDED_AWAY):
        return StateInfo(state, True, False, False)
    return StateInfo(state, False, True, False)  # LoggedOut: reached only by logging out


@dataclass(frozen=True)
class StateCatalog:
    """The account's states: fixed ones plus its own minor states of Away, ExtendedAway, Wrap."""

    minor_states: Mapping[Major, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_MINOR_STATES)
    )

    @classmethod
    def default(cls) -> StateCatalog:
        return cls(dict(DEFAULT_MINOR_STATES))

    @classmethod
    def from_minor_states(cls, minor_states: Mapping[str, Iterable[str]]) -> StateCatalog:
        """Build a catalog from admin input, raising InvalidState listing every problem."""
        problems: list[dict[str, str]] = []
        result: dict[Major, tuple[str, ...]] = dict(DEFAULT_MINOR_STATES)
        for major_text, minors in minor_states.items():
            try:
                major = Major(major_text)
            except ValueError:
                problems.append(
                    {"major": major_text, "message": f"unknown major state {major_text!r}"}
                )
                continue
            if major not in CONFIGURABLE_MAJORS:
                problems.append(
                    {
                        "major": major_text,
                        "message": f"the minor states of {major_text} are fixed; only "
                        "Away, ExtendedAway and Wrap take account-defined minor states",
                    }
                )
                continue
            if isinstance(minors, str) or not isinstance(minors, Iterable):
                problems.append({"major": major_text, "message": "expected a list of names"})
                continue
            names = list(minors)
            seen: set[str] = set()
            for name in names:
                if not isinstance(name, str) or not _MINOR_NAME.match(name):
                    problems.append(
                        {
                            "major": major_text,
                            "message": f"{name!r} is not a valid minor state name "
                            "(a letter, then up to 39 letters, digits or '_')",
                        }
                    )
                elif name.lower() in seen:
                    problems.append({"major": major_text, "message": f"{name!r} is listed twice"})
                seen.add(str(name).lower())
            if major is Major.WRAP:
                for required in REQUIRED_WRAP_MINORS:
                    if required not in names:
                        problems.append(
                            {
                                "major": major_text,
                                "message": f"Wrap/{required} is used by the system "
                                "and cannot be removed",
                            }
                        )
            result[major] = tuple(str(n) for n in names)
        if problems:
            raise InvalidState("the minor states are not valid", problems)
        return cls(result)

    def minors_of(self, major: Major) -> tuple[str, ...]:
        return FIXED_MINOR_STATES.get(major, ()) or self.minor_states.get(major, ())

    def states(self) -> list[StateInfo]:
        """Every state of the account, majors first within each group, in table order."""
        out: list[StateInfo] = []
        for major in Major:
            out.append(_describe(State(major)))
            out.extend(_describe(State(major, minor)) for minor in self.minors_of(major))
        return out

    def contains(self, state: State) -> bool:
        return state.minor is None or state.minor in self.minors_of(state.major)

    def describe(self, state: State) -> StateInfo:
        if not self.contains(state):
            raise InvalidState(f"{state} is not a state of this account")
        return _describe(state)

    def parse(self, text: object) -> State:
        state = parse_state_text(text)
        if not self.contains(state):
            known = ", ".join(self.minors_of(state.major)) or "none"
            raise InvalidState(
                f"{text!r} is not a state of this account "
                f"(minor states of {state.major.value}: {known})"
            )
        return state

    def to_api(self) -> dict[str, list[str]]:
        return {
            major.value: list(self.minor_states.get(major, ())) for major in CONFIGURABLE_MAJORS
        }
