"""Account settings (rules 5, 8, 11, 12) and the account's states."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from presencesync.domain.settings import OMNI_LOGOUT_SETTINGS
from presencesync.web.api import schemas
from presencesync.web.api.common import engine_of
from presencesync.web.api.schemas import documented
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
    "omni_logout_duplicate_login": "ignore",
    "omni_logout_duplicate_login_same_browser": "ignore",
    "omni_logout_maintenance": "keep",
    "omni_logout_supervisor": "logout",
    "change_data_capture": False,
}

# What each Omni-Channel logout reason (lightning:omniChannelLogout `reason`) does, rule 3.5a-c.
_LOGOUT_DESCRIPTIONS = {
    "omni_logout_duplicate_login": "DuplicateLogin: the agent opened Omni-Channel elsewhere",
    "omni_logout_duplicate_login_same_browser": (
        "DuplicateLoginInSameBrowser: the agent opened Omni-Channel in another tab"
    ),
    "omni_logout_maintenance": "MaintenanceLogout: Salesforce maintenance",
    "omni_logout_supervisor": "OmniSupervisorLogout: a supervisor logged the agent out",
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
        **{
            name: {
                "type": "string",
                "enum": list(choices),
                "default": choices[0],
                "description": _LOGOUT_DESCRIPTIONS[name]
                + " (ignore: nothing changes, another console is in charge; keep: the"
                " contact-center state stays; logout: log out of the contact center)",
            }
            for name, choices in OMNI_LOGOUT_SETTINGS.values()
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


@router.get(
    "/states",
    tags=["states"],
    summary="The account's states",
    **documented(list[schemas.StateInfo]),
)
def get_states(
    request: Request, caller: Annotated[Caller, Depends(authenticate)]
) -> list[dict[str, Any]]:
    return _states_view(engine_of(request).get_catalog(caller.account_id))


@router.put(
    "/states",
    tags=["states"],
    summary="Define the account's own minor states",
    **documented(schemas.StatesSaved),
)
def put_states(
    request: Request,
    body: MinorStatesIn,
    caller: Annotated[Caller, Depends(require_role("admin"))],
) -> dict[str, Any]:
    catalog = engine_of(request).set_minor_states(
        caller.account_id, body.minor_states, caller.actor
    )
    return {"minor_states": catalog.to_api(), "states": _states_view(catalog)}


@router.get(
    "/settings",
    tags=["settings"],
    summary="Wrap time, session grace and policies",
    **documented(schemas.Settings),
)
def get_settings(
    request: Request,
    caller: Annotated[Caller, Depends(require_role("admin", "supervisor"))],
) -> dict[str, Any]:
    return dict(engine_of(request).get_settings(caller.account_id).to_api())


@router.put(
    "/settings",
    tags=["settings"],
    summary="Change settings (all or nothing; fields left out keep their value)",
    **documented(schemas.Settings),
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
