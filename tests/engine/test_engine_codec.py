"""The event codec: every event type survives JSON, malformed input is refused with every
problem listed."""

from __future__ import annotations

import json
import typing
from dataclasses import MISSING, fields
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import pytest

from presencesync.domain import AWAY, DomainError, OpenWork, State
from presencesync.service.codec import EVENT_TYPES, event_from_json, event_to_json


def _sample(hint: Any) -> Any:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if args and typing.get_origin(hint) is not tuple:
        return _sample(args[0])
    if typing.get_origin(hint) is tuple:
        return (OpenWork("0Bz000000000001", True, "Case"), OpenWork("0Bz2", False, None))
    if hint is datetime:
        return datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=UTC)
    if hint is State:
        return AWAY
    if isinstance(hint, type) and issubclass(hint, Enum):
        return list(hint)[-1]
    return {bool: True, int: 7, str: "x1"}[hint]


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_every_event_type_round_trips_through_json(name: str):
    cls = EVENT_TYPES[name]
    hints = typing.get_type_hints(cls)
    event = cls(**{f.name: _sample(hints[f.name]) for f in fields(cls) if f.init})
    data = json.loads(json.dumps(event_to_json(event)))
    assert data["type"] == name
    assert event_from_json(data) == event


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_missing_required_fields_are_listed(name: str):
    cls = EVENT_TYPES[name]
    required = [
        f.name
        for f in fields(cls)
        if f.init and f.default is MISSING and f.default_factory is MISSING
    ]
    with pytest.raises(DomainError) as error:
        event_from_json({"type": name})
    assert error.value.code == "INVALID_EVENT"
    assert sorted(p["field"] for p in error.value.details) == sorted(required)


def test_wrong_types_are_refused_field_by_field():
    with pytest.raises(DomainError) as error:
        event_from_json(
            {
                "type": "SalesforceSnapshot",
                "at": "2026-11-27T10:00:00+00:00",
                "seq": "3",
                "presence_status": 5,
                "open_work": [{"work_id": 1}],
                "console_connected": "yes",
                "cause": "gremlins",
            }
        )
    fields_named = {p["field"] for p in error.value.details}
    assert fields_named == {"seq", "presence_status", "open_work", "console_connected", "cause"}


def test_a_naive_time_is_read_as_utc():
    event = event_from_json({"type": "AgentLoggedOut", "at": "2026-11-27T10:00:00"})
    assert event.at == datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
