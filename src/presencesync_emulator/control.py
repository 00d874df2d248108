"""The emulator control API (DESIGN.md 5b): what an agent does in the Omni-Channel widget.

No authentication: the emulator binds to loopback. Errors are
`{"error": {"code", "message"}}` with 404 (unknown user/work), 409 (illegal transition) or
422 (bad body); a refused call changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from presencesync_emulator import ids
from presencesync_emulator.httputil import (
    base_url_of,
    error_response,
    json_body,
    org_of,
    string_field,
)
from presencesync_emulator.omni import REASON_MANUAL, REASONS, OmniError

Handler = Callable[[Request], Awaitable[Response]]


def _guard(handler: Handler) -> Handler:
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except OmniError as exc:
            return error_response(exc)

    return wrapped


def _user_json(request: Request, user: dict[str, Any]) -> dict[str, Any]:
    status = org_of(request).omni.current_status(user["Id"])
    return {
        "id": user["Id"],
        "name": user["Name"],
        "username": user["Username"],
        "email": user["Email"],
        "is_active": user["IsActive"],
        "online": status is not None,
        "presence_status": status.developer_name if status else None,
    }


async def list_users(request: Request) -> Response:
    omni = org_of(request).omni
    return JSONResponse([_user_json(request, u) for u in omni.users()])


async def create_user(request: Request) -> Response:
    body = await json_body(request)
    name = string_field(body, "name")
    username = string_field(body, "username")
    assert name is not None and username is not None
    user = org_of(request).omni.create_user(name, username)
    return JSONResponse(_user_json(request, user), status_code=201)


async def get_user(request: Request) -> Response:
    user = org_of(request).omni.user(request.path_params["user_id"])
    return JSONResponse(_user_json(request, user))


async def get_omni(request: Request) -> Response:
    return JSONResponse(org_of(request).omni.snapshot(request.path_params["user_id"]))


async def omni_login(request: Request) -> Response:
    org = org_of(request)
    user = org.omni.user(request.path_params["user_id"])
    body = await json_body(request)
    status = org.omni.status_by_dev(string_field(body, "presence_status") or "")
    org.publish(org.omni.login(user["Id"], status, REASON_MANUAL))
    return JSONResponse(org.omni.snapshot(user["Id"]))


async def omni_logout(request: Request) -> Response:
    org = org_of(request)
    user = org.omni.user(request.path_params["user_id"])
    org.publish(org.omni.logout(user["Id"]))
    return JSONResponse(org.omni.snapshot(user["Id"]))


async def omni_status(request: Request) -> Response:
    org = org_of(request)
    user = org.omni.user(request.path_params["user_id"])
    body = await json_body(request)
    status = org.omni.status_by_dev(string_field(body, "presence_status") or "")
    reason = string_field(body, "reason", required=False) or REASON_MANUAL
    if reason not in REASONS:
        raise OmniError(
            422, "INVALID_BODY", f"unknown reason {reason!r} (known: {', '.join(sorted(REASONS))})"
        )
    org.publish(org.omni.set_status(user["Id"], status, reason))
    return JSONResponse(org.omni.snapshot(user["Id"]))


async def create_work(request: Request) -> Response:
    org = org_of(request)
    body = await json_body(request)
    channel = string_field(body, "channel") or ""
    subject = body.get("subject", "")
    if not isinstance(subject, str):
        raise OmniError(422, "INVALID_BODY", "field 'subject' must be a string")
    work, events = org.omni.create_work(channel, subject)
    org.publish(events)
    return JSONResponse(work, status_code=201)


async def get_work(request: Request) -> Response:
    """An AgentWork by its id, or a work item's routing state by the Case/Chat/Lead id."""
    omni = org_of(request).omni
    ref = request.path_params["work_id"]
    rid = ids.normalize(ref) if ids.is_valid_id(ref) else ref
    work = org_of(request).store.get("AgentWork", rid)
    if work is not None:
        return JSONResponse(omni.describe_work(work))
    if omni.work_item_known(rid):
        return JSONResponse(omni.describe_item(rid))
    raise OmniError(404, "NOT_FOUND", f"no work {ref!r}")


async def work_action(request: Request) -> Response:
    org = org_of(request)
    ref = request.path_params["work_id"]
    action = request.path_params["action"]
    if action == "accept":
        work, events = org.omni.accept(ref)
    elif action == "decline":
        body = await json_body(request, required=False)
        reason = string_field(body, "reason", required=False)
        work, events = org.omni.decline(ref, reason)
    elif action == "close":
        work, events = org.omni.close(ref)
    else:
        raise OmniError(404, "NOT_FOUND", f"no action {action!r}")
    org.publish(events)
    return JSONResponse(work)


async def oauth_clients(request: Request) -> Response:
    store = org_of(request).store
    rows = store.query(
        "SELECT c.client_id, c.client_secret, c.username, c.certificate_pem, c.private_key_pem, "
        "c.name, k.password, k.security_token FROM emu_oauth_client c "
        "LEFT JOIN emu_credential k ON k.username = c.username ORDER BY c.rowid"
    )
    return JSONResponse([dict(r) for r in rows])


async def presence_statuses(request: Request) -> Response:
    omni = org_of(request).omni
    return JSONResponse(
        [
            {
                "id": s.id,
                "developer_name": s.developer_name,
                "label": s.label,
                "status_option": "online" if s.online else "busy",
                "channels": [c.developer_name for c in s.channels],
            }
            for s in omni.statuses.values()
        ]
    )


async def channels(request: Request) -> Response:
    omni = org_of(request).omni
    return JSONResponse(
        [
            {
                "id": c.id,
                "developer_name": c.developer_name,
                "channel": c.key,
                "related_entity": c.related_entity,
                "capacity_weight": c.weight,
            }
            for c in omni.channels.values()
        ]
    )


async def expire_sessions(request: Request) -> Response:
    store = org_of(request).store
    with store.tx() as conn:
        n = conn.execute("UPDATE emu_session SET revoked = 1 WHERE revoked = 0").rowcount
    return JSONResponse({"expired": n})


async def get_limits(request: Request) -> Response:
    from presencesync_emulator.oauth import api_usage_today

    org = org_of(request)
    return JSONResponse(
        {"daily_api_requests": org.daily_api_limit, "used": api_usage_today(org.store)}
    )


async def put_limits(request: Request) -> Response:
    org = org_of(request)
    body = await json_body(request)
    limit = body.get("daily_api_requests")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise OmniError(422, "INVALID_BODY", "'daily_api_requests' must be an integer >= 0")
    org.store.set_setting("daily_api_limit", str(limit))
    if body.get("reset_usage"):
        org.store.execute("DELETE FROM emu_api_usage")
    return await get_limits(request)


async def get_presence_config(request: Request) -> Response:
    org = org_of(request)
    status = org.omni.decline_status
    config = org.store.get("PresenceUserConfig", org.store.setting("presence_user_config_id") or "")
    return JSONResponse(
        {
            "developer_name": config["DeveloperName"] if config else None,
            "capacity": config["Capacity"] if config else None,
            "decline_status": status.developer_name if status else None,
        }
    )


async def put_presence_config(request: Request) -> Response:
    """Set the presence configuration's status on decline (OmniDeclineWork); null = none."""
    body = await json_body(request)
    if "decline_status" not in body:
        raise OmniError(422, "INVALID_BODY", "field 'decline_status' is required (or null)")
    value = body["decline_status"]
    if value is not None and not isinstance(value, str):
        raise OmniError(422, "INVALID_BODY", "'decline_status' must be a status name or null")
    org_of(request).omni.set_decline_status(value)
    return await get_presence_config(request)


async def org_info(request: Request) -> Response:
    org = org_of(request)
    return JSONResponse(
        {
            "org_id": org.org_id,
            "name": org.store.setting("org_name"),
            "instance_url": base_url_of(request),
            "token_url": base_url_of(request) + "/services/oauth2/token",
            "token_lifetime_seconds": org.token_lifetime_s,
        }
    )


_P = "/emulator/v1"

routes = [
    Route(f"{_P}/org", _guard(org_info), methods=["GET"]),
    Route(f"{_P}/users", _guard(list_users), methods=["GET"]),
    Route(f"{_P}/users", _guard(create_user), methods=["POST"]),
    Route(f"{_P}/users/{{user_id}}", _guard(get_user), methods=["GET"]),
    Route(f"{_P}/users/{{user_id}}/omni", _guard(get_omni), methods=["GET"]),
    Route(f"{_P}/users/{{user_id}}/omni/login", _guard(omni_login), methods=["POST"]),
    Route(f"{_P}/users/{{user_id}}/omni/logout", _guard(omni_logout), methods=["POST"]),
    Route(f"{_P}/users/{{user_id}}/omni/status", _guard(omni_status), methods=["PUT"]),
    Route(f"{_P}/work", _guard(create_work), methods=["POST"]),
    Route(f"{_P}/work/{{work_id}}", _guard(get_work), methods=["GET"]),
    Route(f"{_P}/work/{{work_id}}/{{action}}", _guard(work_action), methods=["POST"]),
    Route(f"{_P}/oauth-clients", _guard(oauth_clients), methods=["GET"]),
    Route(f"{_P}/presence-statuses", _guard(presence_statuses), methods=["GET"]),
    Route(f"{_P}/channels", _guard(channels), methods=["GET"]),
    Route(f"{_P}/presence-config", _guard(get_presence_config), methods=["GET"]),
    Route(f"{_P}/presence-config", _guard(put_presence_config), methods=["PUT"]),
    Route(f"{_P}/sessions/expire", _guard(expire_sessions), methods=["POST"]),
    Route(f"{_P}/limits", _guard(get_limits), methods=["GET"]),
    Route(f"{_P}/limits", _guard(put_limits), methods=["PUT"]),
]
