"""The router API: a call arrives, is offered to a routable agent, answered, hung up."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from presencesync.web.api import schemas
from presencesync.web.api.common import engine_of
from presencesync.web.api.schemas import documented
from presencesync.web.auth import Caller, authenticate, require_role
from presencesync.web.errors import ApiError

if TYPE_CHECKING:
    from presencesync.service import Interaction

router = APIRouter(tags=["interactions"])


class InteractionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: Annotated[StrictStr, Field(min_length=1, max_length=100, examples=["support"])]


def _visible(request: Request, caller: Caller, interaction_id: str) -> Interaction:
    """The interaction, if the caller may see it: staff see the account's, an agent only the
    ones offered to it. Anything else is 'not found', so ids of others' calls leak nothing."""
    interaction = engine_of(request).router.get(caller.account_id, interaction_id)
    if caller.role == "agent" and interaction.agent_id != caller.agent_id:
        raise ApiError(404, "INTERACTION_NOT_FOUND", f"no interaction {interaction_id}")
    return interaction


def _acting_agent(request: Request, caller: Caller, interaction_id: str) -> str:
    """The agent an answer/decline/hangup acts for: the caller if an agent, else the agent
    the interaction is offered to (a supervisor acting on its behalf)."""
    interaction = _visible(request, caller, interaction_id)
    if caller.role == "agent":
        assert caller.agent_id is not None
        return caller.agent_id
    if interaction.agent_id is None:
        raise ApiError(
            409, "NOT_OFFERED", f"interaction {interaction_id} is not offered to any agent"
        )
    return str(interaction.agent_id)


@router.post(
    "/interactions",
    status_code=201,
    summary="A call arrives: offer it or queue it",
    **documented(schemas.Interaction, 201, "The interaction, offered or queued"),
)
def offer(
    request: Request,
    body: InteractionIn,
    caller: Annotated[Caller, Depends(require_role("admin", "supervisor"))],
) -> dict[str, Any]:
    return engine_of(request).router.offer(caller.account_id, body.queue).to_api()


@router.get(
    "/interactions/{interaction_id}",
    summary="One interaction",
    **documented(schemas.Interaction),
)
def get_interaction(
    request: Request,
    interaction_id: str,
    caller: Annotated[Caller, Depends(authenticate)],
) -> dict[str, Any]:
    return _visible(request, caller, interaction_id).to_api()


@router.post(
    "/interactions/{interaction_id}/answer",
    summary="Answer: state Busy/Inbound",
    **documented(schemas.Interaction),
)
def answer(
    request: Request,
    interaction_id: str,
    caller: Annotated[Caller, Depends(authenticate)],
) -> dict[str, Any]:
    agent_id = _acting_agent(request, caller, interaction_id)
    return engine_of(request).router.answer(caller.account_id, interaction_id, agent_id).to_api()


@router.post(
    "/interactions/{interaction_id}/decline",
    summary="Decline: offered to the next",
    **documented(schemas.Interaction),
)
def decline(
    request: Request,
    interaction_id: str,
    caller: Annotated[Caller, Depends(authenticate)],
) -> dict[str, Any]:
    agent_id = _acting_agent(request, caller, interaction_id)
    return engine_of(request).router.decline(caller.account_id, interaction_id, agent_id).to_api()


@router.post(
    "/interactions/{interaction_id}/hangup",
    summary="Hang up: Wrap/Auto, then Ready",
    **documented(schemas.Interaction),
)
def hangup(
    request: Request,
    interaction_id: str,
    caller: Annotated[Caller, Depends(authenticate)],
) -> dict[str, Any]:
    agent_id = _acting_agent(request, caller, interaction_id)
    return engine_of(request).router.hangup(caller.account_id, interaction_id, agent_id).to_api()
