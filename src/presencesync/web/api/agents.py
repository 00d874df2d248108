"""Agents: provisioning, listing, login/logout/state, history (DESIGN.md 5)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from presencesync.domain import AgentLoggedIn, AgentLoggedOut, Event, StateChangeRequested
from presencesync.web.api import schemas
from presencesync.web.api.common import agent_view, cause_of, engine_of, utcnow
from presencesync.web.api.schemas import documented
from presencesync.web.auth import Caller, authenticate, check_agent_access, require_role

router = APIRouter(tags=["agents"])

AGENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,79}$"
SALESFORCE_USER_ID_PATTERN = r"^005[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$"


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: Annotated[StrictStr, Field(pattern=AGENT_ID_PATTERN)]
    name: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    salesforce_user_id: Annotated[
        StrictStr,
        Field(pattern=SALESFORCE_USER_ID_PATTERN, description="a Salesforce user id (005...)"),
    ]


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: StrictStr | None = Field(default=None, examples=["Ready", "Away/Break"])


class StateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: StrictStr = Field(examples=["Away/Lunch"])


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="a retried request with the same key is applied once",
    ),
]


def _submit(
    request: Request, caller: Caller, agent_id: str, event: Event, key: str | None
) -> dict[str, Any]:
    engine = engine_of(request)
    check_agent_access(caller, agent_id)
    engine.get_agent(caller.account_id, agent_id)  # 404 before anything else
    source_id = None if key is None else f"{caller.role}:{agent_id}:{key}"
    engine.submit(caller.account_id, agent_id, event, source="api", source_id=source_id)
    return agent_view(engine.get_agent(caller.account_id, agent_id))


@router.post(
    "/agents",
    status_code=201,
    summary="Provision an agent (409 if it exists)",
    **documented(schemas.Agent, 201, "The agent, created"),
)
def create_agent(
    request: Request,
    body: AgentIn,
    caller: Annotated[Caller, Depends(require_role("admin"))],
) -> dict[str, Any]:
    record = engine_of(request).create_agent(
        caller.account_id, body.agent_id, body.name, body.salesforce_user_id
    )
    return agent_view(record)


@router.get(
    "/agents",
    summary="List agents with their current state (paged by agent_id)",
    **documented(list[schemas.Agent]),
)
def list_agents(
    request: Request,
    response: Response,
    caller: Annotated[Caller, Depends(require_role("admin", "supervisor"))],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    after: Annotated[str | None, Query(max_length=80)] = None,
) -> list[dict[str, Any]]:
    records = engine_of(request).list_agents(caller.account_id, limit=limit, after=after)
    metrics = request.app.state.metrics
    for record in records:
        metrics.seed_agent(caller.account_id, record.agent_id, record.snapshot.state.major.value)
    if len(records) == limit:
        query = urlencode({"limit": limit, "after": records[-1].agent_id})
        response.headers["Link"] = f'<{request.url.path}?{query}>; rel="next"'
    return [agent_view(r) for r in records]


@router.get(
    "/agents/{agent_id}",
    summary="One agent: state, presence, open Salesforce work",
    **documented(schemas.Agent),
)
def get_agent(
    request: Request,
    agent_id: str,
    caller: Annotated[Caller, Depends(authenticate)],
) -> dict[str, Any]:
    check_agent_access(caller, agent_id)
    return agent_view(engine_of(request).get_agent(caller.account_id, agent_id))


@router.post(
    "/agents/{agent_id}/login",
    summary="Log the agent in (rule 3)",
    **documented(schemas.Agent),
)
def login(
    request: Request,
    agent_id: str,
    caller: Annotated[Caller, Depends(authenticate)],
    idempotency_key: IdempotencyKey = None,
    body: Annotated[LoginIn | None, Body()] = None,
) -> dict[str, Any]:
    state = None
    if body is not None and body.state is not None:
        state = engine_of(request).get_catalog(caller.account_id).parse(body.state)
    event = AgentLoggedIn(at=utcnow(), state=state, cause=cause_of(caller.role))
    return _submit(request, caller, agent_id, event, idempotency_key)


@router.post(
    "/agents/{agent_id}/logout",
    summary="Log the agent out (rule 4)",
    **documented(schemas.Agent),
)
def logout(
    request: Request,
    agent_id: str,
    caller: Annotated[Caller, Depends(authenticate)],
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    event = AgentLoggedOut(at=utcnow(), cause=cause_of(caller.role))
    return _submit(request, caller, agent_id, event, idempotency_key)


@router.put(
    "/agents/{agent_id}/state",
    summary="Change the agent's state (rule 1)",
    **documented(schemas.Agent),
)
def set_state(
    request: Request,
    agent_id: str,
    body: StateIn,
    caller: Annotated[Caller, Depends(authenticate)],
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    check_agent_access(caller, agent_id)
    state = engine_of(request).get_catalog(caller.account_id).parse(body.state)
    event = StateChangeRequested(at=utcnow(), state=state, cause=cause_of(caller.role))
    return _submit(request, caller, agent_id, event, idempotency_key)


@router.get(
    "/agents/{agent_id}/history",
    summary="Every transition, both sides, newest first",
    **documented(list[schemas.Transition]),
)
def history(
    request: Request,
    agent_id: str,
    caller: Annotated[Caller, Depends(authenticate)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> list[dict[str, Any]]:
    check_agent_access(caller, agent_id)
    engine_of(request).get_agent(caller.account_id, agent_id)  # 404 for another account's
    transitions = engine_of(request).history(
        caller.account_id, agent_id, limit=limit, before=before
    )
    return [t.to_api() for t in transitions]
