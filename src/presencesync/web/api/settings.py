"""Account settings (rules 8, 11, 12) and the account's states."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from presencesync.web.api.common import engine_of
from presencesync.web.auth import Caller, authenticate, require_role
from presencesync.web.errors import ApiError

router = APIRouter()


class MinorStatesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    minor_states: dict[str, list[StrictStr]] = Field(
        examples=[{"Away": ["Break", "ComfortBreak"], "ExtendedAway": ["Lunch", "Meeting"]}]
    )


SETTINGS_EXAMPLE = {
    "wrap_seconds": 30,
    "session_grace_seconds": 60,
    "session_end_policy": "logout",
    "busy_status_means_busy_inbound": False,
    "offer_timeout_seconds": 20,
    "change_data_capture": False,
}


SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "wrap_seconds": {"type": "integer", "minimum": 0, "maximum": 86400},
        "session_grace_seconds": {"type": "integer", "minimum": 0, "maximum": 86400},
        "session_end_policy": {"type": "string", "enum": ["logout", "away", "none"]},
        "busy_status_means_busy_inbound": {"type": "boolean"},
        "offer_timeout_seconds": {
            "type": "integer",
            "minimum": 0,
            "maximum": 600,
            "description": "ring time before an unanswered call moves on; 0: no timeout",
        },
        "change_data_capture": {
            "type": "boolean",
            "description": "observe Omni-Channel from the server too: Change Data Capture of "
            "UserServicePresence and AgentWork over the Pub/Sub API (the org must publish "
            "them: salesforce/SETUP.md)",
        },
    },
    "example": SETTINGS_EXAMPLE,
}


def _states_view(catalog: Any) -> list[dict[str, Any]]:
    return [info.to_api() for info in catalog.states()]


@router.get("/states", tags=["states"], summary="The account's states")
def get_states(
    request: Request, caller: Annotated[Caller, Depends(authenticate)]
) -> list[dict[str, Any]]:
    return _states_view(engine_of(request).get_catalog(caller.account_id))


@router.put("/states", tags=["states"], summary="Define the account's own minor states")
def put_states(
    request: Request,
    body: MinorStatesIn,
    caller: Annotated[Caller, Depends(require_role("admin"))],
) -> dict[str, Any]:
    catalog = engine_of(request).set_minor_states(
        caller.account_id, body.minor_states, caller.actor
    )
    return {"minor_states": catalog.to_api(), "states": _states_view(catalog)}


@router.get("/settings", tags=["settings"], summary="Wrap time, session grace and policies")
def get_settings(
    request: Request,
    caller: Annotated[Caller, Depends(require_role("admin", "supervisor"))],
) -> dict[str, Any]:
    return dict(engine_of(request).get_settings(caller.account_id).to_api())


@router.put(
    "/settings",
    tags=["settings"],
    summary="Change settings (all or nothing; fields left out keep their value)",
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": SETTINGS_SCHEMA}}}},
)
def put_settings(
    request: Request,
    caller: Annotated[Caller, Depends(require_role("admin"))],
    body: Annotated[Any, Body()],
) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(422, "INVALID_REQUEST", "the settings must be a JSON object")
    saved = engine_of(request).save_settings(caller.account_id, body, caller.actor)
    return dict(saved.to_api())
