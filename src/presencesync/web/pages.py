"""Server-rendered pages (DESIGN.md 5d): sign in, Omni-channel Configuration, ContactPad, and
the supervisors' agents overview.

Pages read through the engine and render; every change goes through the JSON API (the pages'
scripts call it with the session cookie), so the rules and validation live in one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from presencesync.domain import DomainError, Major
from presencesync.web.api.change_data_capture import cdc_overview
from presencesync.web.api.common import agent_view
from presencesync.web.api.omni import config_view
from presencesync.web.auth import SESSION_COOKIE, SESSION_MAX_AGE, Caller, caller_from
from presencesync.web.errors import ApiError

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

HOME_BY_ROLE = {"admin": "/admin/omni-channel", "agent": "/contactpad", "supervisor": "/agents"}
ROLE_NAMES = {"admin": "Administrator", "supervisor": "Supervisor", "agent": "Agent"}
SESSION_END_POLICIES = (
    ("logout", "Log the agent out of ContactPad"),
    ("away", "Put the agent in Away"),
    ("none", "Do nothing"),
)


def _page_caller(request: Request) -> Caller | None:
    try:
        return caller_from(request, request.app.state.engine, request.app.state.session_codec)
    except ApiError:
        return None


def _render(
    request: Request,
    template: str,
    caller: Caller | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    response = templates.TemplateResponse(
        request,
        template,
        {"caller": caller, "role_name": ROLE_NAMES.get(caller.role) if caller else None, **context},
        status_code=status_code,
    )
    # Pages show account data: never cache them, never frame them.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self' ws: wss:; frame-ancestors 'none'; form-action 'self'"
    )
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _forbidden(request: Request, caller: Caller, what: str) -> HTMLResponse:
    return _render(request, "forbidden.html", caller, status_code=403, what=what)


def _to_login() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


@router.get("/")
async def home(request: Request) -> Response:
    caller = await run_in_threadpool(_page_caller, request)
    if caller is None:
        return _to_login()
    return RedirectResponse(HOME_BY_ROLE[caller.role], status_code=303)


@router.get("/login")
async def login_form(request: Request) -> HTMLResponse:
    caller = await run_in_threadpool(_page_caller, request)
    return _render(request, "login.html", caller, error=None)


@router.post("/login")
async def login_submit(request: Request, token: Annotated[str, Form()] = "") -> Response:
    engine = request.app.state.engine
    principal = await run_in_threadpool(engine.resolve_token, token.strip()) if token else None
    if principal is None:
        return _render(
            request,
            "login.html",
            None,
            status_code=401,
            error="That access token is not valid. Check it and try again.",
        )
    response = RedirectResponse(HOME_BY_ROLE[principal.role], status_code=303)
    secure = request.app.state.secure_cookies
    response.set_cookie(
        SESSION_COOKIE,
        request.app.state.session_codec.encode(token.strip()),
        max_age=SESSION_MAX_AGE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" if secure is None else secure,
    )
    return response


@router.get("/logout")
async def logout(request: Request) -> Response:
    response = _to_login()
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _admin_context(engine: Any, account_id: str) -> dict[str, Any]:
    account = engine.get_account(account_id)
    catalog = engine.get_catalog(account_id)
    config = config_view(engine, account_id)
    statuses = config["presence_statuses"]
    by_status = {m["presence_status"]: m for m in config["presence_mappings"]}
    by_state = {m["state"]: m["presence_status"] for m in config["state_mappings"]}
    selectable = [str(i.state) for i in catalog.states() if i.agent_selectable]
    presence_rows = []
    for status in statuses:
        saved = by_status.get(status["developer_name"])
        presence_rows.append(
            {
                **status,
                "busy": saved["busy"] if saved else status["status_option"] == "busy",
                "maps_to": saved["maps_to"] if saved else None,
            }
        )
    state_rows = []
    for info in catalog.states():
        state = info.state
        if state.major is Major.LOGGED_OUT:
            continue
        state_rows.append(
            {
                "state": str(state),
                "major": state.major.value,
                "required": state.minor is None,
                "presence_status": by_state.get(str(state)),
            }
        )
    return {
        "account": account,
        "config": config,
        "presence_rows": presence_rows,
        "state_rows": state_rows,
        "selectable_states": selectable,
        "fetched_names": {s["developer_name"] for s in statuses},
        "settings": engine.get_settings(account_id).to_api(),
        "policies": SESSION_END_POLICIES,
        "minor_states": catalog.to_api(),
        "warnings": config["warnings"],
        "cdc": cdc_overview(engine, account_id),
    }


@router.get("/admin/omni-channel")
async def admin_page(request: Request) -> Response:
    caller = await run_in_threadpool(_page_caller, request)
    if caller is None:
        return _to_login()
    if caller.role != "admin":
        return _forbidden(request, caller, "Omni-channel Configuration is for administrators.")
    engine = request.app.state.engine
    context = await run_in_threadpool(_admin_context, engine, caller.account_id)
    return _render(request, "admin_omni.html", caller, **context)


def _contactpad_context(engine: Any, caller: Caller) -> dict[str, Any]:
    assert caller.agent_id is not None
    record = engine.get_agent(caller.account_id, caller.agent_id)
    catalog = engine.get_catalog(caller.account_id)
    labels = {s.developer_name: s.label for s in engine.get_presence_statuses(caller.account_id)}
    agent = agent_view(record)
    return {
        "agent": agent,
        "labels": labels,
        "selectable_states": [str(i.state) for i in catalog.states() if i.agent_selectable],
        "presence_label": labels.get(agent["presence_status"] or "", agent["presence_status"]),
    }


@router.get("/contactpad")
async def contactpad(request: Request) -> Response:
    caller = await run_in_threadpool(_page_caller, request)
    if caller is None:
        return _to_login()
    if caller.role != "agent" or caller.agent_id is None:
        return _forbidden(request, caller, "ContactPad is for agents: sign in with an agent token.")
    engine = request.app.state.engine
    try:
        context = await run_in_threadpool(_contactpad_context, engine, caller)
    except DomainError:
        return _forbidden(request, caller, "Your agent no longer exists in this account.")
    return _render(request, "contactpad.html", caller, **context)


def _overview_context(engine: Any, account_id: str) -> dict[str, Any]:
    records = engine.list_agents(account_id, limit=500)
    return {"agents": [agent_view(r) for r in records]}


@router.get("/agents")
async def agents_overview(request: Request) -> Response:
    caller = await run_in_threadpool(_page_caller, request)
    if caller is None:
        return _to_login()
    if caller.role not in ("admin", "supervisor"):
        return _forbidden(request, caller, "The agents overview is for supervisors.")
    engine = request.app.state.engine
    context = await run_in_threadpool(_overview_context, engine, caller.account_id)
    return _render(request, "agents.html", caller, **context)
