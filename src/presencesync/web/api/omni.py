"""Omni-Channel configuration: fetch the org's presence statuses, read and save the mappings."""

from __future__ import annotations

import inspect
import os
from collections import defaultdict
from collections.abc import Callable
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Body, Depends, Request
from starlette.concurrency import run_in_threadpool

from presencesync.domain import OpenWork, PresenceStatus
from presencesync.salesforce import (
    AsyncSalesforceClient,
    SalesforceApiError,
    SalesforceAuthError,
    SalesforceCredentials,
    SalesforceError,
    SalesforceLimitError,
    SalesforceUnavailable,
    current_presences,
    fetch_omni_configuration,
    open_work,
)
from presencesync.service import SalesforceView
from presencesync.store.secrets import SecretKeyError
from presencesync.web.api import schemas
from presencesync.web.api.common import engine_of, iso
from presencesync.web.api.schemas import documented
from presencesync.web.auth import Caller, require_role
from presencesync.web.errors import ApiError

router = APIRouter(tags=["omni-channel"])

# Given the account's SalesforceConnection, return a client that `fetch_omni_configuration`
# accepts (an AsyncSalesforceClient, or a SalesforceClient). Tests inject their own.
ClientFactory = Callable[[Any], Any]

CONFIG_EXAMPLE = {
    "enabled": True,
    "presence_mappings": [
        {"presence_status": "Available", "busy": False, "maps_to": None},
        {"presence_status": "Lunch", "busy": True, "maps_to": "ExtendedAway/Lunch"},
    ],
    "state_mappings": [
        {"state": "Ready", "presence_status": "Available"},
        {"state": "Away", "presence_status": "On_Break"},
    ],
}


_STRING_OR_NULL = {"anyOf": [{"type": "string"}, {"type": "null"}]}
# The body is validated by the core (every problem with its row), so FastAPI only parses JSON;
# this schema documents it.
CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "enabled": {"type": "boolean"},
        "presence_mappings": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "presence_status": {"type": "string", "description": "DeveloperName"},
                    "busy": {"type": "boolean"},
                    "maps_to": {**_STRING_OR_NULL, "description": "an agent-selectable state"},
                },
                "required": ["presence_status", "busy"],
            },
        },
        "state_mappings": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "state": {"type": "string", "description": "Major or Major/Minor"},
                    "presence_status": _STRING_OR_NULL,
                },
                "required": ["state"],
            },
        },
    },
    "required": ["enabled", "presence_mappings", "state_mappings"],
    "example": CONFIG_EXAMPLE,
}


def default_client_factory(connection: Any) -> AsyncSalesforceClient:
    credentials = SalesforceCredentials.from_connection(connection)
    return AsyncSalesforceClient(credentials, verify=getattr(connection, "verify", True))


def require_omni_admin(request: Request) -> Caller:
    """Admins of accounts that have the Omni-Channel integration feature."""
    caller = require_role("admin")(request)
    account = engine_of(request).get_account(caller.account_id)
    if not account.omni_feature:
        raise ApiError(
            403,
            "FEATURE_NOT_ENABLED",
            "the Omni-Channel integration is not enabled for this account; contact support",
        )
    return caller


OmniAdmin = Annotated[Caller, Depends(require_omni_admin)]


def config_view(engine: Any, account_id: str) -> dict[str, Any]:
    saved = engine.get_omni_config(account_id)
    statuses = [s.to_api() for s in engine.get_presence_statuses(account_id)]
    if saved is None:
        return {
            "enabled": False,
            "presence_mappings": [],
            "state_mappings": [],
            "warnings": [],
            "version": None,
            "saved_by": None,
            "saved_at": None,
            "presence_statuses": statuses,
        }
    return {
        **saved.config.to_api(),
        "warnings": [w.to_api() for w in saved.warnings],
        "version": saved.version,
        "saved_by": saved.saved_by,
        "saved_at": iso(saved.saved_at),
        "presence_statuses": statuses,
    }


def _salesforce_failure(error: Exception) -> ApiError:
    if isinstance(error, SalesforceAuthError):
        return ApiError(
            502,
            "SALESFORCE_AUTH_FAILED",
            str(error),
            {"error": error.error, "description": error.description},
        )
    if isinstance(error, SalesforceLimitError):
        return ApiError(
            502, "SALESFORCE_LIMIT_EXCEEDED", str(error), {"errorCode": error.error_code}
        )
    if isinstance(error, SalesforceApiError):
        return ApiError(502, "SALESFORCE_ERROR", str(error), {"errorCode": error.error_code})
    if isinstance(error, SalesforceUnavailable):
        return ApiError(502, "SALESFORCE_UNAVAILABLE", str(error), {"attempts": error.attempts})
    return ApiError(502, "SALESFORCE_UNAVAILABLE", f"Salesforce could not be reached: {error}")


async def _close(client: Any) -> None:
    closer = getattr(client, "aclose", None) or getattr(client, "close", None)
    if closer is not None:
        result = closer()
        if inspect.isawaitable(result):
            await result


async def _salesforce_client(request: Request, account_id: str) -> Any:
    engine = engine_of(request)
    try:
        connection = await run_in_threadpool(engine.get_salesforce_connection, account_id)
    except SecretKeyError as error:
        # The server's configuration, not the caller's request: say what to fix.
        raise ApiError(503, error.code, str(error)) from error
    if connection is None:
        raise ApiError(
            409,
            "SALESFORCE_NOT_CONNECTED",
            "no Salesforce connection is configured for this account",
        )
    factory: ClientFactory = request.app.state.salesforce_client_factory
    return factory(connection)


async def _read(result: Any) -> Any:
    # The connector's readers return the result for a sync client, an awaitable for an async one.
    return await result if inspect.isawaitable(result) else result


@router.post(
    "/omni/fetch",
    summary="Fetch Omni-channel configuration (the org's statuses)",
    **documented(schemas.Fetched, errors=schemas.SALESFORCE_ERRORS),
)
async def fetch(request: Request, caller: OmniAdmin) -> dict[str, Any]:
    engine = engine_of(request)
    client = await _salesforce_client(request, caller.account_id)
    try:
        fetched = await _read(fetch_omni_configuration(client))
    except (SalesforceError, httpx.HTTPError, OSError) as error:
        raise _salesforce_failure(error) from error
    finally:
        await _close(client)
    statuses = [PresenceStatus.from_api(s.to_api()) for s in fetched]
    await run_in_threadpool(
        engine.save_presence_statuses, caller.account_id, statuses, caller.actor
    )
    return {"presence_statuses": [s.to_api() for s in statuses]}


@router.get(
    "/omni/config",
    summary="The saved mapping configuration",
    **documented(schemas.OmniConfig),
)
def get_config(request: Request, caller: OmniAdmin) -> dict[str, Any]:
    return config_view(engine_of(request), caller.account_id)


@router.put(
    "/omni/config",
    summary="Save the mapping configuration (all or nothing)",
    **documented(schemas.OmniConfig),
    description="Returns the saved configuration with `warnings` (asymmetric maps, with the "
    "round trip). A 422 `INVALID_CONFIG` lists every problem with its section and row.",
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": CONFIG_SCHEMA}}}},
)
def put_config(
    request: Request,
    caller: OmniAdmin,
    body: Annotated[Any, Body()],
) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(422, "INVALID_REQUEST", "the configuration must be a JSON object")
    engine = engine_of(request)
    engine.save_omni_config(caller.account_id, body, caller.actor)
    return config_view(engine, caller.account_id)


def _linked_agents(engine: Any, account_id: str) -> list[Any]:
    records: list[Any] = []
    after: str | None = None
    while True:
        page = engine.list_agents(account_id, limit=500, after=after)
        records.extend(r for r in page if r.salesforce_user_id)
        if len(page) < 500:
            return records
        after = page[-1].agent_id


@router.post(
    "/omni/reconcile",
    summary="Correct drift: compare every linked agent with Salesforce's REST view",
    **documented(schemas.Reconciled, errors=schemas.SALESFORCE_ERRORS),
    description="Reads the current `UserServicePresence` rows and open `AgentWork` of every "
    "agent linked to a Salesforce user and lets the sync rules correct whatever disagrees "
    "(DESIGN.md 3.12). Agents with a command of ours still on its way are skipped: their "
    "REST view may predate it. Safe to call from a scheduler.",
)
async def reconcile(request: Request, caller: OmniAdmin) -> dict[str, Any]:
    engine = engine_of(request)
    records = await run_in_threadpool(_linked_agents, engine, caller.account_id)
    busy = sorted(r.agent_id for r in records if r.snapshot.pending)
    users = [r.salesforce_user_id for r in records if not r.snapshot.pending]
    client = await _salesforce_client(request, caller.account_id)
    try:
        presences = await _read(current_presences(client, users)) if users else []
        work = await _read(open_work(client, users)) if users else []
    except (SalesforceError, httpx.HTTPError, OSError) as error:
        raise _salesforce_failure(error) from error
    finally:
        await _close(client)
    status_of = {p.user_id: p.presence_status for p in presences}
    work_of: dict[str, list[OpenWork]] = defaultdict(list)
    for item in work:
        work_of[item.user_id].append(OpenWork(item.id, item.status == "Opened", item.channel))
    views = [SalesforceView(u, status_of.get(u), tuple(work_of[u])) for u in users]
    applied = await run_in_threadpool(engine.reconcile, caller.account_id, views)
    return {
        "checked": len(users),
        "corrected": sorted(a.decision.agent.agent_id for a in applied),
        "skipped_in_flight": busy,
    }


DOCTOR_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {
            "type": "object",
            "properties": {
                "server_url": {
                    "type": "string",
                    "description": "this server's URL as agents' browsers reach it (default: "
                    "PRESENCESYNC_PUBLIC_URL, else the URL of this request)",
                    "example": "https://presencesync.example.com",
                }
            },
            "additionalProperties": False,
        },
        {"type": "null", "description": "no body: every default"},
    ]
}


@router.post(
    "/omni/doctor",
    summary="Preflight check: the org, the integration user, the mapping, the agents, the bridge",
    description="The checks of `presencesync doctor`, for this account: login and token (each "
    "configured OAuth flow), REST API version, the integration user's API Enabled, View Setup "
    "and read access to the Omni-Channel objects, mapped presence statuses exist and are "
    "granted to every linked agent, linked agents' users exist and are active, the daily API "
    "budget, the bridge's reachability at `server_url` and the CSP Trusted Site for it. "
    "Answers 200 with `ok` false when a check finds a problem; every check has `status` "
    "(`ok`, `warning`, `problem`, `skipped`), `message` and `fix`.",
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": DOCTOR_SCHEMA}}}},
)
async def doctor(
    request: Request, caller: OmniAdmin, body: Annotated[Any, Body()] = None
) -> dict[str, Any]:
    from presencesync.service.doctor.probe import inputs_from_store, run_doctor

    if body is None:
        body = {}
    if not isinstance(body, dict) or set(body) - {"server_url"}:
        raise ApiError(422, "INVALID_REQUEST", "the body is an object with at most 'server_url'")
    server_url = body.get("server_url") or os.environ.get("PRESENCESYNC_PUBLIC_URL")
    server_url = server_url or str(request.base_url).rstrip("/")
    if not isinstance(server_url, str) or not server_url.startswith(("http://", "https://")):
        raise ApiError(
            422,
            "INVALID_REQUEST",
            "server_url must be an http:// or https:// URL",
            [
                {
                    "field": "server_url",
                    "location": "body",
                    "message": "not an http(s) URL",
                    "type": "value_error",
                }
            ],
        )
    engine = engine_of(request)
    inputs = await run_in_threadpool(
        inputs_from_store, engine, caller.account_id, server_url=server_url
    )
    report = await run_doctor(
        inputs,
        make_client=request.app.state.salesforce_client_factory,
        bridge_probe=getattr(request.app.state, "doctor_bridge_probe", None),
    )
    return report.to_api()
