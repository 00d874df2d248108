"""The mapping configuration: resolution both ways, and a validator that reports every problem
at once (tied to its row) plus warnings."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings

from presencesync.domain import (
    InvalidConfig,
    PresenceStatus,
    StateCatalog,
    StatusOption,
    validate_config,
)
from presencesync.domain.states import AWAY, READY
from tests.domain.strategies import examples, raw_configs
from tests.domain.support import EXAMPLE_RAW, example_config, example_statuses, s


def check(raw: dict[str, Any], statuses: list[PresenceStatus] | None = None):  # type: ignore[no-untyped-def]
    return validate_config(raw, StateCatalog.default(), statuses or example_statuses())


def test_the_example_is_valid_and_round_trips_through_the_api_shape() -> None:
    result = check(EXAMPLE_RAW)
    assert result.ok and result.config is not None
    api = result.config.to_api()
    assert api == {
        "enabled": True,
        "presence_mappings": EXAMPLE_RAW["presence_mappings"],
        "state_mappings": EXAMPLE_RAW["state_mappings"],
    }
    again = check(api)
    assert again.config == result.config


def test_validator_returns_every_problem_at_once() -> None:
    raw = {
        "enabled": True,
        "presence_mappings": [
            {"presence_status": "Available", "busy": False, "maps_to": None},
            {"presence_status": "Available", "busy": False, "maps_to": None},  # duplicate
            {"presence_status": "Gone", "busy": True, "maps_to": None},  # unknown status
            {"presence_status": "Busy", "busy": False, "maps_to": None},  # contradicts option
            {"presence_status": "On_Break", "busy": True, "maps_to": "Away/Nap"},  # unknown
            {"presence_status": "Lunch", "busy": True, "maps_to": "Busy/Inbound"},  # system
            {"presence_status": "On_a_Call", "busy": True, "maps_to": "Wrap/Auto"},  # system
        ],
        "state_mappings": [
            {"state": "Ready", "presence_status": "Available"},
            {"state": "Ready", "presence_status": "Busy"},  # duplicate
            {"state": "Busy", "presence_status": "Nope"},  # unknown status
            {"state": "Away/Siesta", "presence_status": "Busy"},  # unknown state
            {"state": "LoggedOut", "presence_status": "Busy"},  # not mappable
            {"state": "Away", "presence_status": "On_Break"},
            # Wrap and ExtendedAway missing (Busy's row is invalid, so Busy is missing too)
        ],
    }
    result = check(raw)
    assert not result.ok and result.config is None and result.warnings == ()
    found = sorted((p.code, p.section, p.index, p.key) for p in result.problems)
    assert found == sorted(
        [
            ("DUPLICATE_PRESENCE_MAPPING", "presence_mappings", 1, "Available"),
            ("UNKNOWN_PRESENCE_STATUS", "presence_mappings", 2, "Gone"),
            ("BUSY_CONTRADICTS_STATUS_OPTION", "presence_mappings", 3, "Busy"),
            ("UNKNOWN_STATE", "presence_mappings", 4, "On_Break"),
            ("MAPS_TO_SYSTEM_STATE", "presence_mappings", 5, "Lunch"),
            ("MAPS_TO_SYSTEM_STATE", "presence_mappings", 6, "On_a_Call"),
            ("DUPLICATE_STATE_MAPPING", "state_mappings", 1, "Ready"),
            ("UNKNOWN_PRESENCE_STATUS", "state_mappings", 2, "Busy"),
            ("UNKNOWN_STATE", "state_mappings", 3, "Away/Siesta"),
            ("LOGGED_OUT_NOT_MAPPABLE", "state_mappings", 4, "LoggedOut"),
            ("MISSING_MAJOR_MAPPING", "state_mappings", None, "Busy"),
            ("MISSING_MAJOR_MAPPING", "state_mappings", None, "Wrap"),
            ("MISSING_MAJOR_MAPPING", "state_mappings", None, "ExtendedAway"),
        ]
    )
    error = InvalidConfig(result.problems)
    assert error.code == "INVALID_CONFIG"
    assert error.message == "the configuration has 13 problems"
    assert {"code", "message", "field", "section", "index", "key"} <= set(error.details[0])
    assert error.details[0]["field"].startswith(error.details[0]["section"])


def test_messages_say_what_to_do() -> None:
    raw = {
        **EXAMPLE_RAW,
        "presence_mappings": [
            {"presence_status": "Busy", "busy": False},
            {"presence_status": "Lunch", "busy": True, "maps_to": "Busy/Inbound"},
        ],
    }
    messages = {p.code: p.message for p in check(raw).problems}
    assert "'busy': select Busy" in messages["BUSY_CONTRADICTS_STATUS_OPTION"]
    assert "Busy/Inbound is set by the system only" in messages["MAPS_TO_SYSTEM_STATE"]


def test_malformed_documents_are_problems_not_crashes() -> None:
    result = check({"enabled": "yes", "presence_mappings": {}, "state_mappings": "x"})
    codes = sorted(p.code for p in result.problems)
    assert codes.count("INVALID_FIELD") == 3
    assert codes.count("MISSING_MAJOR_MAPPING") == 5
    rows = check(
        {
            "presence_mappings": [7, {"busy": True}, {"presence_status": "Busy", "busy": "y"}],
            "state_mappings": [None, {"presence_status": "Busy"}, {"state": 3}],
        }
    )
    codes = sorted(p.code for p in rows.problems if p.code != "MISSING_MAJOR_MAPPING")
    expected = ["INVALID_ROW", "INVALID_FIELD", "INVALID_FIELD", "INVALID_ROW", "INVALID_FIELD"]
    assert codes == sorted([*expected, "UNKNOWN_STATE"])


def test_a_minor_row_without_a_status_means_use_the_major() -> None:
    rows = [*EXAMPLE_RAW["state_mappings"], {"state": "Away/Break", "presence_status": ""}]
    result = check({**EXAMPLE_RAW, "state_mappings": rows})
    assert result.ok and result.config is not None
    assert result.config.presence_for_state(s("Away/Break")) == "On_Break"


def test_warnings_asymmetric_round_trip_online_while_busy_and_unmapped_status() -> None:
    statuses = [
        *example_statuses(),
        PresenceStatus(
            "0N5000000000009", "Email_Only", "Email only", StatusOption.ONLINE, ("Case",)
        ),
    ]
    raw = {
        **EXAMPLE_RAW,
        "state_mappings": [
            *[r for r in EXAMPLE_RAW["state_mappings"] if r["state"] != "Wrap"],
            {"state": "Wrap", "presence_status": "Available"},  # online while wrapping
        ],
    }
    result = check(raw, statuses)
    assert result.ok
    by_code: dict[str, list[Any]] = {}
    for warning in result.warnings:
        by_code.setdefault(warning.code, []).append(warning)
    assert {w.key for w in by_code["ONLINE_WHILE_BUSY"]} >= {"Wrap", "Wrap/Auto", "Wrap/Manual"}
    wrap_row = next(w for w in by_code["ONLINE_WHILE_BUSY"] if w.key == "Wrap")
    assert wrap_row.index == len(raw["state_mappings"]) - 1
    (unmapped,) = by_code["UNMAPPED_PRESENCE_STATUS"]
    assert unmapped.key == "Email_Only" and "map to Ready" in unmapped.message
    trips = {w.key: w.round_trip for w in by_code["ASYMMETRIC_MAPPING"]}
    assert trips["Busy"] == ("Busy", "Away", "On_Break")
    # Email_Only follows its option to Ready, and Ready maps back to Available.
    assert trips["Email_Only"] == ("Email_Only", "Ready", "Available")
    assert by_code["ASYMMETRIC_MAPPING"][0].to_api()["round_trip"] == list(
        by_code["ASYMMETRIC_MAPPING"][0].round_trip
    )


def test_resolution_both_ways() -> None:
    config = example_config()
    assert config.state_for_presence("Available") == READY
    assert config.state_for_presence("Busy") == AWAY
    assert config.state_for_presence("NotFetched") is None  # rule 9
    assert config.presence_for_state(s("Wrap/Manual")) == "Busy"
    assert config.is_busy_status("Lunch") and not config.is_busy_status("Available")
    assert config.is_known_status("On_a_Call") and not config.is_known_status("NotFetched")


@settings(max_examples=examples(100), deadline=None)
@given(raw_configs())
def test_valid_configs_map_every_state_and_round_trip(drawn) -> None:  # type: ignore[no-untyped-def]
    raw, statuses = drawn
    result = validate_config(raw, StateCatalog.default(), statuses)
    assert result.ok and result.config is not None
    config = result.config
    names = {p.developer_name for p in statuses}
    for described in StateCatalog.default().states():
        target = config.presence_for_state(described.state)
        if described.state.is_logged_out:
            assert target is None
        else:
            assert target in names  # every state reaches a status: majors are all mapped
    for name in names:
        assert config.state_for_presence(name) is not None
    warned = {w.key for w in result.warnings if w.code == "ASYMMETRIC_MAPPING"}
    for name in names:
        state = config.state_for_presence(name)
        assert state is not None
        assert (config.presence_for_state(state) != name) == (name in warned)
    assert validate_config(config.to_api(), StateCatalog.default(), statuses).config == config
