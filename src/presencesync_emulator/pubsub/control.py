"""Control API of the emulated Pub/Sub API (tests and benchmarks; no auth, like all of 5b):

- `GET /emulator/v1/pubsub`: the bus and the open Subscribe streams
  `{"enabled", "topics": {topic: event count}, "latest_replay_id": hex, "purged_through": int,
  "retention_seconds", "keepalive_seconds", "idle_timeout_seconds", "subscriptions_opened",
  "subscriptions_refused", "refusals_pending", "streams": [{"id", "rpc_id", "topic", "user_id",
  "requested", "delivered", "pending", "keepalives", "fetch_requests"}]}`;
- `POST /emulator/v1/pubsub/faults` `{"abort_streams": bool, "refuse_next": int, "status":
  "UNAVAILABLE"|..., "message": str, "error_code": str}`: break every open stream now and/or
  refuse the next N Subscribe calls with that gRPC status (default UNAVAILABLE, the transient
  error Salesforce documents for a broken stream); answers `{"aborted", "refusals_pending"}`;
- `PUT /emulator/v1/pubsub/settings` `{"keepalive_seconds", "idle_timeout_seconds",
  "retention_seconds"}` (each optional, > 0).
"""

from __future__ import annotations

from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from presencesync_emulator.httputil import error_response, json_body, org_of
from presencesync_emulator.omni import OmniError
from presencesync_emulator.pubsub.bus import EventBus, Fault, encode_replay
from presencesync_emulator.pubsub.capture import TOPICS

_STATUSES = frozenset(c.name for c in grpc.StatusCode if c is not grpc.StatusCode.OK)


def _bus(request: Request) -> EventBus:
    bus = org_of(request).pubsub
    if bus is None:
        raise OmniError(409, "PUBSUB_DISABLED", "change data capture is off in this emulator")
    return bus


def _describe(bus: EventBus) -> dict[str, Any]:
    return {
        "enabled": True,
        "topics": {topic: bus.count(channels) for topic, channels in TOPICS.items()},
        "latest_replay_id": encode_replay(bus.tip()).hex(),
        "purged_through": bus.purged_through(),
        "retention_seconds": bus.retention_s,
        "keepalive_seconds": bus.keepalive_s,
        "idle_timeout_seconds": bus.idle_timeout_s,
        "subscriptions_opened": bus.subscriptions_opened,
        "subscriptions_refused": bus.subscriptions_refused,
        "refusals_pending": bus.pending_refusals(),
        "streams": [s.describe() for s in bus.streams()],
    }


async def status(request: Request) -> Response:
    try:
        return JSONResponse(_describe(_bus(request)))
    except OmniError as exc:
        return error_response(exc)


def _fault(body: dict[str, Any]) -> Fault:
    fault = Fault()
    status_name = body.get("status", fault.status)
    if not isinstance(status_name, str) or status_name not in _STATUSES:
        raise OmniError(
            422,
            "INVALID_BODY",
            f"'status' must be a gRPC status name other than OK, e.g. {fault.status}",
        )
    fault.status = status_name
    for key in ("message", "error_code"):
        if key in body:
            if not isinstance(body[key], str) or not body[key]:
                raise OmniError(422, "INVALID_BODY", f"'{key}' must be a non-empty string")
            setattr(fault, key, body[key])
    return fault


async def faults(request: Request) -> Response:
    try:
        bus = _bus(request)
        body = await json_body(request)
        abort = body.get("abort_streams", False)
        refuse = body.get("refuse_next", 0)
        if not isinstance(abort, bool):
            raise OmniError(422, "INVALID_BODY", "'abort_streams' must be a boolean")
        if not isinstance(refuse, int) or isinstance(refuse, bool) or not 0 <= refuse <= 1000:
            raise OmniError(422, "INVALID_BODY", "'refuse_next' must be an integer from 0 to 1000")
        if not abort and not refuse:
            raise OmniError(
                422, "INVALID_BODY", "nothing to do: set 'abort_streams' and/or 'refuse_next'"
            )
        fault = _fault(body)
        if refuse:
            bus.refuse_next(refuse, fault)
        aborted = bus.abort_streams(fault) if abort else 0
        return JSONResponse({"aborted": aborted, "refusals_pending": bus.pending_refusals()})
    except OmniError as exc:
        return error_response(exc)


async def settings(request: Request) -> Response:
    try:
        bus = _bus(request)
        body = await json_body(request)
        names = {
            "keepalive_seconds": "keepalive_s",
            "idle_timeout_seconds": "idle_timeout_s",
            "retention_seconds": "retention_s",
        }
        unknown = set(body) - set(names)
        if unknown:
            raise OmniError(422, "INVALID_BODY", f"unknown settings {sorted(unknown)}")
        values = {}
        for key, attr in names.items():
            if key in body:
                value = body[key]
                if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                    raise OmniError(422, "INVALID_BODY", f"'{key}' must be a number > 0")
                values[attr] = float(value)
        for attr, value in values.items():
            setattr(bus, attr, value)
        bus.notify()  # open streams re-arm their timers
        return JSONResponse(_describe(bus))
    except OmniError as exc:
        return error_response(exc)


_P = "/emulator/v1/pubsub"

routes = [
    Route(_P, status, methods=["GET"]),
    Route(f"{_P}/faults", faults, methods=["POST"]),
    Route(f"{_P}/settings", settings, methods=["PUT"]),
]
