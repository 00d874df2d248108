"""Events to and from JSON: the event log's `event` column, timers, and the bridge/web input.

The shape is `{"type": "<EventClass>", "at": ISO-8601, "seq": int|null, <fields>}`. Decoding is
strict: an unknown type or field, a missing field or a wrong type raises
DomainError("INVALID_EVENT") listing every problem, before anything touches the store.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import MISSING, fields
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from presencesync.domain import DomainError, OpenWork, State, parse_state_text
from presencesync.domain import events as ev

EVENT_TYPES: dict[str, type[ev.Event]] = {
    cls.__name__: cls
    for cls in (
        ev.AgentLoggedIn,
        ev.AgentLoggedOut,
        ev.StateChangeRequested,
        ev.InteractionOffered,
        ev.InteractionOfferWithdrawn,
        ev.CallAnswered,
        ev.CallEnded,
        ev.WrapEnded,
        ev.SessionGraceExpired,
        *ev.SALESFORCE_EVENTS,
    )
}


class InvalidEvent(DomainError):
    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__("INVALID_EVENT", message, details)


def event_type(event: ev.Event) -> str:
    return type(event).__name__


def event_to_json(event: ev.Event) -> dict[str, Any]:
    out: dict[str, Any] = {"type": event_type(event)}
    for f in fields(event):
        if f.init:
            out[f.name] = _encode(getattr(event, f.name))
    return out


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, State):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, OpenWork):
        return {"work_id": value.work_id, "accepted": value.accepted, "channel": value.channel}
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value


def event_from_json(data: Any) -> ev.Event:
    if not isinstance(data, Mapping):
        raise InvalidEvent("an event must be a JSON object")
    cls = EVENT_TYPES.get(data.get("type"))  # type: ignore[arg-type]
    if cls is None:
        known = ", ".join(sorted(EVENT_TYPES))
        raise InvalidEvent(f"unknown event type {data.get('type')!r}; known types: {known}")
    hints = typing.get_type_hints(cls)
    init_fields = {f.name: f for f in fields(cls) if f.init}
    problems: list[dict[str, str]] = []
    kwargs: dict[str, Any] = {}
    for name in data:
        if name != "type" and name not in init_fields:
            problems.append({"field": name, "message": f"{cls.__name__} has no field {name!r}"})
    for name, f in init_fields.items():
        if name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                problems.append({"field": name, "message": "is required"})
            continue
        try:
            kwargs[name] = _decode(hints[name], data[name])
        except (TypeError, ValueError, DomainError) as error:
            message = error.message if isinstance(error, DomainError) else str(error)
            problems.append({"field": name, "message": message})
    if problems:
        raise InvalidEvent(f"malformed {cls.__name__} event", problems)
    return cls(**kwargs)


def _decode(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None:
            if type(None) in options:
                return None
            raise TypeError("must not be null")
        (inner,) = [o for o in options if o is not type(None)]
        return _decode(inner, value)
    if value is None:
        raise TypeError("must not be null")
    if origin is tuple:
        (item, _ellipsis) = typing.get_args(hint)
        if not isinstance(value, list | tuple):
            raise TypeError("must be a list")
        return tuple(_decode(item, v) for v in value)
    if hint is datetime:
        if not isinstance(value, str):
            raise TypeError("must be an ISO-8601 date-time string")
        moment = datetime.fromisoformat(value)
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if hint is State:
        return parse_state_text(value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    if hint is OpenWork:
        if not isinstance(value, Mapping) or not isinstance(value.get("work_id"), str):
            raise TypeError("an open work item is {'work_id': str, 'accepted': bool, ...}")
        accepted = value.get("accepted", False)
        channel = value.get("channel")
        if not isinstance(accepted, bool) or not (channel is None or isinstance(channel, str)):
            raise TypeError("'accepted' must be true/false and 'channel' a string or null")
        return OpenWork(value["work_id"], accepted, channel)
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError("must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("must be an integer")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise TypeError("must be a string")
        return value
    raise TypeError(f"cannot decode a field of type {hint!r}")  # a new event field type
