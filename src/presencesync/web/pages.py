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
from presencesync.web.csrf import LOGIN_COOKIE, new_nonce, own_origin, tokens_match
from presencesync.web.errors import ApiError
from presencesync.web.ratelimit import RateLimiter, Verdict, client_address, fingerprint

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

_DEGRADED = {
    "connection_error": "Omni-Channel connection error",
    "toolkit_unresponsive": "Omni-Channel not answering",
    "displaced": "another console took over Omni-Channel",
}


def console_text(agent: dict[str, Any]) -> str:
    """How the agent's Salesforce console is doing (same words as api.js consoleText)."""
    text = "connected" if agent.get("console_connected") else "not connected"
    if not agent.get("console_connected") and (
        agent.get("salesforce_observed_via") == "change_data_capture"
    ):
        text += " (Omni changes observed over Change Data Capture)"
    degraded = agent.get("console_degraded")
    if agent.get("console_connected") and degraded:
        text += f" (degraded: {_DEGRADED.get(degraded, degraded)})"
    if agent.get("omni_unavailable") == "maintenance":
        text += "; Omni-Channel down for maintenance"
    return text


templates.env.globals["console_text"] = console_text

HOME_BY_ROLE = {"admin": "/admin/omni-channel", "agent": "/contactpad", "supervisor": "/agents"}
ROLE_NAMES = {"admin": "Administrator", "supervisor": "Supervisor", "agent": "Agent"}
SESSION_END_POLICIES = (
    ("logout", "Log the agent out of ContactPad"),
    ("away", "Put the agent in Away"),
    ("none", "Do nothing"),
)
# One choice per lightning:omniChannelLogout reason (rules 3.5a-c); values as in the API.
OMNI_LOGOUT_POLICIES = (
    (
        "omni_logout_duplicate_login",
        "The agent opens Omni-Channel in another browser (DuplicateLogin)",
        (("ignore", "Nothing changes: the other console is in charge"), ("logout", "Log out")),
    ),
    (
        "omni_logout_duplicate_login_same_browser",
        "The agent opens Omni-Channel in another tab (DuplicateLoginInSameBrowser)",
        (("ignore", "Nothing changes: the other console is in charge"), ("logout", "Log out")),
    ),
    (
        "omni_logout_maintenance",
        "Salesforce maintenance logs the agent out (MaintenanceLogout)",
        (
            ("keep", "Keep the state; set Omni-Channel back when it returns"),
            ("logout", "Log out"),
        ),
    ),
    (
        "omni_logout_supervisor",
        "A supervisor logs the agent out of Omni-Channel (OmniSupervisorLogout)",
        (("logout", "Log out"), ("keep", "Keep the state")),
    ),
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
    # Security headers (CSP, framing, caching) are set for every page by web/headers.py.
    session = request.cookies.get(SESSION_COOKIE)
    csrf_token = None
    if caller is not None and caller.via_cookie and session:
        csrf_token = request.app.state.session_codec.csrf_token("session", session)
    return templates.TemplateResponse(
        request,
        template,
        {
            "caller": caller,
            "role_name": ROLE_NAMES.get(caller.role) if caller else None,
            "csrf_token": csrf_token,
            **context,
        },
        status_code=status_code,
    )


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


def _login_page(
    request: Request, caller: Caller | None, status_code: int = 200, error: str | None = None
) -> HTMLResponse:
    """The sign-in form, with its login-CSRF token bound to a pre-session cookie."""
    codec = request.app.state.session_codec
    nonce = request.cookies.get(LOGIN_COOKIE) or new_nonce()
    response = _render(
        request,
        "login.html",
        caller,
        status_code=status_code,
        error=error,
        login_csrf=codec.csrf_token("login", nonce),
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=SESSION_MAX_AGE,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


def _secure(request: Request) -> bool:
    secure = request.app.state.secure_cookies
    return request.url.scheme == "https" if secure is None else bool(secure)


@router.get("/login")
async def login_form(request: Request) -> HTMLResponse:
    caller = await run_in_threadpool(_page_caller, request)
    return _login_page(request, caller)


def _too_many(request: Request, verdict: Verdict) -> HTMLResponse:
    response = _login_page(
        request,
        None,
        status_code=429,
        error=f"Too many sign-in attempts. Wait {verdict.retry_after_header} seconds and "
        "try again.",
    )
    response.headers["Retry-After"] = verdict.retry_after_header
    return response


@router.post("/login")
async def login_submit(
    request: Request,
    token: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    codec = request.app.state.session_codec
    limiter: RateLimiter = request.app.state.rate_limiter
    token = token.strip()
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not (
        own_origin(request) and nonce and tokens_match(codec.csrf_token("login", nonce), csrf_token)
    ):
        # A forged sign-in from another site, or a form older than its cookie.
        return _login_page(
            request,
            None,
            status_code=403,
            error="This sign-in form has expired or did not come from this site. Sign in again.",
        )
    address = client_address(request.scope)
    key = fingerprint(token) if token else None
    verdict = limiter.guessing(address, key)
    if verdict.allowed and key is not None:
        verdict = limiter.sign_ins.take(key)
    if not verdict.allowed:
        return _too_many(request, verdict)
    engine = request.app.state.engine
    principal = await run_in_threadpool(engine.resolve_token, token) if token else None
    if principal is None:
        limiter.failed(address)
        return _login_page(
            request,
            None,
            status_code=401,
            error="That access token is not valid. Check it and try again.",
        )
    assert key is not None
    limiter.authenticated(key)
    response = RedirectResponse(HOME_BY_ROLE[principal.role], status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        codec.encode(token),
        max_age=SESSION_MAX_AGE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login", httponly=True, samesite="strict")
    return response


@router.get("/logout")
async def logout(request: Request) -> Response:
    response = _to_login()
    # A link on another site must not sign anyone out (Sec-Fetch-Site: browsers' own word).
    if request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none"):
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
        "logout_policies": OMNI_LOGOUT_POLICIES,
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
