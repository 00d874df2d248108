"""The state taxonomy (DESIGN.md 2): majors, minors, who sets them, what is routable, parsing."""

from __future__ import annotations

import pytest

from presencesync.domain import InvalidState, Major, State, StateCatalog, parse_state_text
from presencesync.domain.states import BUSY_INBOUND, LOGGED_OUT, READY


def info(text: str):  # type: ignore[no-untyped-def]
    catalog = StateCatalog.default()
    return catalog.describe(catalog.parse(text))


def test_parse_major_and_major_minor() -> None:
    assert parse_state_text("Ready") == READY
    assert parse_state_text("Busy/Inbound") == BUSY_INBOUND
    assert parse_state_text(" Away/Lunch ") == State(Major.AWAY, "Lunch")  # syntax only
    assert str(State(Major.EXTENDED_AWAY, "Lunch")) == "ExtendedAway/Lunch"
    assert State(Major.AWAY, "Break").major_only == State(Major.AWAY)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("Lunch", "unknown major state 'Lunch'"),
        ("ready", "major states are Ready, Busy, Wrap, Away, ExtendedAway, LoggedOut"),
        ("Away/", "has a '/' but no minor state"),
        ("", "unknown major state ''"),
        (42, "not int"),
        (None, "not NoneType"),
    ],
)
def test_parse_errors_are_clear(text: object, fragment: str) -> None:
    with pytest.raises(InvalidState) as raised:
        parse_state_text(text)
    assert fragment in raised.value.message
    assert raised.value.code == "INVALID_STATE"


def test_catalog_rejects_a_minor_the_account_does_not_have() -> None:
    catalog = StateCatalog.default()
    assert catalog.parse("ExtendedAway/Lunch") == State(Major.EXTENDED_AWAY, "Lunch")
    with pytest.raises(InvalidState) as raised:
        catalog.parse("Away/Lunch")
    assert "minor states of Away: Break, ComfortBreak" in raised.value.message
    with pytest.raises(InvalidState) as raised:
        catalog.parse("Ready/Lunch")
    assert "minor states of Ready: Outbound" in raised.value.message
    with pytest.raises(InvalidState) as raised:
        catalog.parse("LoggedOut/Gone")
    assert "minor states of LoggedOut: none" in raised.value.message


def test_who_sets_which_state_and_what_is_routable() -> None:
    expected = {
        # state: (agent_selectable, system, routable)
        "Ready": (True, False, True),
        "Ready/Outbound": (True, False, False),  # ready for outbound only
        "Busy": (False, True, False),
        "Busy/Inbound": (False, True, False),
        "Busy/Callback": (False, True, False),
        "Wrap/Auto": (False, True, False),
        "Wrap/Manual": (True, False, False),  # the agent extends the wrap
        "Wrap/Transferred": (False, True, False),
        "Away": (True, False, False),
        "Away/ComfortBreak": (True, False, False),
        "ExtendedAway/Training": (True, False, False),
        "LoggedOut": (False, True, False),
    }
    for text, flags in expected.items():
        described = info(text)
        assert (described.agent_selectable, described.system, described.routable) == flags, text


def test_catalog_lists_every_state_in_table_order() -> None:
    states = [str(i.state) for i in StateCatalog.default().states()]
    assert states == [
        "Ready",
        "Ready/Outbound",
        "Busy",
        "Busy/Inbound",
        "Busy/Outbound",
        "Busy/TransferIn",
        "Busy/Internal",
        "Busy/Callback",
        "Wrap",
        "Wrap/Auto",
        "Wrap/Manual",
        "Wrap/Transferred",
        "Away",
        "Away/Break",
        "Away/ComfortBreak",
        "ExtendedAway",
        "ExtendedAway/Lunch",
        "ExtendedAway/Meeting",
        "ExtendedAway/Training",
        "LoggedOut",
    ]
    assert StateCatalog.default().describe(LOGGED_OUT).to_api() == {
        "state": "LoggedOut",
        "major": "LoggedOut",
        "minor": None,
        "agent_selectable": False,
        "system": True,
        "routable": False,
    }


def test_account_defined_minor_states() -> None:
    catalog = StateCatalog.from_minor_states(
        {"Away": ["Break", "Coaching"], "Wrap": ["Auto", "Manual", "Transferred", "Survey"]}
    )
    assert catalog.parse("Away/Coaching") == State(Major.AWAY, "Coaching")
    assert catalog.parse("Wrap/Survey") == State(Major.WRAP, "Survey")
    assert catalog.minors_of(Major.EXTENDED_AWAY) == ("Lunch", "Meeting", "Training")  # default
    with pytest.raises(InvalidState):
        catalog.parse("Away/ComfortBreak")  # dropped by the admin
    assert catalog.to_api()["Away"] == ["Break", "Coaching"]


def test_minor_state_validation_reports_every_problem() -> None:
    with pytest.raises(InvalidState) as raised:
        StateCatalog.from_minor_states(
            {
                "Ready": ["Email"],  # fixed
                "Busy": ["Chat"],  # fixed
                "Nap": ["Short"],  # unknown major
                "Away": ["Break", "break", "9lives", "has space"],  # duplicate, bad names
                "Wrap": ["Auto"],  # drops Manual and Transferred
                "ExtendedAway": "Lunch",  # not a list
            }
        )
    problems = raised.value.details
    messages = [p["message"] for p in problems]
    assert len(problems) == 9, messages
    assert sum("are fixed" in m for m in messages) == 2
    assert any("unknown major state 'Nap'" in m for m in messages)
    assert any("'break' is listed twice" in m for m in messages)
    assert any("'9lives' is not a valid minor state name" in m for m in messages)
    assert any("'has space' is not a valid minor state name" in m for m in messages)
    assert any("Wrap/Manual is used by the system" in m for m in messages)
    assert any("Wrap/Transferred is used by the system" in m for m in messages)
    assert any(p["major"] == "ExtendedAway" and "list" in p["message"] for p in problems)
