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

from presencesync_emulator import ids, permissions
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
    """The agent logs out (no body), or Omni logs the agent out with a `reason`:
    OmniSupervisorLogout, MaintenanceLogout, DuplicateLogin, DuplicateLoginInSameBrowser."""
    org = org_of(request)
    user = org.omni.user(request.path_params["user_id"])
    body = await json_body(request, required=False)
    reason = string_field(body, "reason", required=False)
    org.publish(org.omni.logout(user["Id"], reason))
    return JSONResponse(org.omni.snapshot(user["Id"]))


def _active(body: dict[str, Any]) -> bool:
    value = body.get("active")
    if not isinstance(value, bool):
        raise OmniError(422, "INVALID_BODY", "field 'active' must be true or false")
    return value


async def get_maintenance(request: Request) -> Response:
    return JSONResponse({"active": org_of(request).omni.maintenance})


async def put_maintenance(request: Request) -> Response:
    """Omni-Channel maintenance: `active: true` logs every online agent out with
    MaintenanceLogout and refuses logins; `active: false` ends it and the consoles' Omni link
    comes back (each console gets a fresh hello)."""
    org = org_of(request)
    active = _active(await json_body(request))
    if active:
        org.publish(org.omni.start_maintenance())
    elif org.omni.maintenance:
        org.omni.end_maintenance()
        org.consoles.reconnect_consoles(org.hub.users())
    return await get_maintenance(request)


async def put_connection_error(request: Request) -> Response:
    """`active: true` raises lightning:omniChannelConnectionError in the user's Omni consoles
    (optional `error` object) and makes their toolkit calls reject until `active: false`."""
    org = org_of(request)
    user = org.omni.user(request.path_params["user_id"])
    body = await json_body(request)
    active = _active(body)
    error = body.get("error", {"message": "Omni-Channel lost its connection to Salesforce"})
    if not isinstance(error, dict):
        raise OmniError(422, "INVALID_BODY", "field 'error' must be an object")
    if active:
        org.consoles.start_connection_error(user["Id"], error)
    else:
        org.consoles.end_connection_error(user["Id"])
    return JSONResponse({"active": user["Id"] in org.consoles.connection_errors})


async def get_toolkit_faults(request: Request) -> Response:
    org = org_of(request)
    user = org.omni.user(request.path_params["user_id"])
    return JSONResponse(dict(org.consoles.faults.get(user["Id"], {})))


async def put_toolkit_faults(request: Request) -> Response:
    """`{"<toolkit method>": "reject" | "reject_when_offline" | "hang" | null}`."""
    org = org_of(request)
    user = org.omni.user(request.path_params["user_id"])
    body = await json_body(request)
    return JSONResponse(org.consoles.set_faults(user["Id"], body))


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
    elif action == "push-timeout":
        work, events = org.omni.push_timeout(ref)
    elif action == "cancel":
        work, events = org.omni.cancel(ref)
    elif action == "transfer":
        body = await json_body(request, required=False)
        work, events = org.omni.transfer(ref, string_field(body, "user_id", required=False))
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


def _count(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise OmniError(422, "INVALID_BODY", f"{name!r} must be an integer >= 0")
    return value


async def put_limits(request: Request) -> Response:
    """`daily_api_requests` sets the limit; `reset_usage` forgets today's usage; `used` sets
    it (e.g. to the limit: the org's API budget is exhausted)."""
    from presencesync_emulator.oauth import _today

    org = org_of(request)
    body = await json_body(request)
    limit = _count(body, "daily_api_requests")
    used = _count(body, "used")
    if limit is None and used is None and not body.get("reset_usage"):
        raise OmniError(422, "INVALID_BODY", "give 'daily_api_requests', 'used' or 'reset_usage'")
    if limit is not None:
        org.store.set_setting("daily_api_limit", str(limit))
    if body.get("reset_usage"):
        org.store.execute("DELETE FROM emu_api_usage")
    if used is not None:
        org.store.execute(
            "INSERT INTO emu_api_usage (day, count) VALUES (?, ?) "
            "ON CONFLICT(day) DO UPDATE SET count = excluded.count",
            (_today(org.store), used),
        )
    return await get_limits(request)


async def get_presence_config(request: Request) -> Response:
    org = org_of(request)
    omni = org.omni
    status = omni.decline_status
    on_timeout = omni.push_timeout_status
    config = org.store.get("PresenceUserConfig", org.store.setting("presence_user_config_id") or "")
    seconds = {omni.push_timeout_seconds(c) for c in omni.channels}
    return JSONResponse(
        {
            "developer_name": config["DeveloperName"] if config else None,
            "capacity": config["Capacity"] if config else None,
            "interruptible_capacity": config["InterruptibleCapacity"] if config else None,
            "decline_status": status.developer_name if status else None,
            "push_timeout_status": on_timeout.developer_name if on_timeout else None,
            "push_timeout_seconds": seconds.pop() if len(seconds) == 1 else None,
            "push_timeout_declined_event": omni.push_timeout_declined_event,
        }
    )


_PRESENCE_CONFIG_FIELDS = (
    "decline_status",
    "push_timeout_status",
    "push_timeout_seconds",
    "push_timeout_declined_event",
    "interruptible_capacity",
)


async def put_presence_config(request: Request) -> Response:
    """The presence configuration's status on decline (OmniDeclineWork) and on push time-out
    (OmniPushTimeout) (null = none), the push time-out of every routing configuration (seconds,
    0 = off), whether a push time-out also raises WorkDeclined, the interruptible capacity."""
    org = org_of(request)
    body = await json_body(request)
    unknown = [k for k in body if k not in _PRESENCE_CONFIG_FIELDS]
    if unknown or not body:
        known = ", ".join(_PRESENCE_CONFIG_FIELDS)
        raise OmniError(422, "INVALID_BODY", f"give one or more of {known}")
    problems = []
    for key in ("decline_status", "push_timeout_status"):
        if key in body and body[key] is not None and not isinstance(body[key], str):
            problems.append(f"'{key}' must be a status name or null")
    for key in ("push_timeout_seconds", "interruptible_capacity"):
        value = body.get(key, 0)
        nullable = key == "interruptible_capacity" and value is None
        if not nullable and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            problems.append(f"'{key}' must be a whole number >= 0")
    if not isinstance(body.get("push_timeout_declined_event", False), bool):
        problems.append("'push_timeout_declined_event' must be true or false")
    if problems:
        raise OmniError(422, "INVALID_BODY", "; ".join(problems))
    omni = org.omni
    for key in ("decline_status", "push_timeout_status"):  # unknown names: 422, nothing saved
        if body.get(key) is not None:
            omni.status_by_dev(body[key])
    with org.store.tx():
        if "decline_status" in body:
            omni.set_decline_status(body["decline_status"])
        if "push_timeout_status" in body:
            omni.set_push_timeout_status(body["push_timeout_status"])
        if "push_timeout_seconds" in body:
            omni.set_push_timeout_seconds(body["push_timeout_seconds"])
        if "push_timeout_declined_event" in body:
            omni.set_push_timeout_declined_event(body["push_timeout_declined_event"])
        if "interruptible_capacity" in body:
            config_id = org.store.setting("presence_user_config_id") or ""
            org.store.update(
                "PresenceUserConfig",
                config_id,
                {"InterruptibleCapacity": body["interruptible_capacity"]},
            )
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


# -- access control: what an admin changes in Setup (Users, Permission Sets, Trusted URLs) --


async def patch_user(request: Request) -> Response:
    """`{"is_active": false}` deactivates the user (their sessions end, logins are refused)."""
    org = org_of(request)
    user = org.omni.user(request.path_params["user_id"])
    body = await json_body(request)
    active = body.get("is_active")
    if not isinstance(active, bool):
        raise OmniError(422, "INVALID_BODY", "'is_active' must be true or false")
    org.store.update("User", user["Id"], {"IsActive": active})
    if not active:
        org.store.execute(
            "UPDATE emu_session SET revoked = 1 WHERE user_id = ? AND revoked = 0", (user["Id"],)
        )
    return JSONResponse(_user_json(request, org.omni.user(user["Id"])))


def _permission_set(request: Request) -> dict[str, Any]:
    name = request.path_params["name"]
    ps = permissions.permission_set(org_of(request).store, name)
    if ps is None:
        raise OmniError(404, "NOT_FOUND", f"no permission set {name!r} (Name or Label)")
    return ps


async def list_permission_sets(request: Request) -> Response:
    store = org_of(request).store
    return JSONResponse(
        [
            permissions.describe_permission_set(store, ps)
            for ps in store.find("PermissionSet", order='"Name"')
        ]
    )


async def get_permission_set(request: Request) -> Response:
    store = org_of(request).store
    return JSONResponse(permissions.describe_permission_set(store, _permission_set(request)))


_PERMISSION_FIELDS = {
    "api_enabled": "PermissionsApiEnabled",
    "api_only": "PermissionsApiUserOnly",
    "view_setup": "PermissionsViewSetup",
}


async def patch_permission_set(request: Request) -> Response:
    """`{"api_enabled": bool, "view_setup": bool, "api_only": bool,
    "object_read": {"AgentWork": false, ...}}` (every key optional)."""
    from presencesync_emulator.schema import OBJECTS

    store = org_of(request).store
    ps = _permission_set(request)
    body = await json_body(request)
    unknown = set(body) - {*_PERMISSION_FIELDS, "object_read"}
    if unknown:
        raise OmniError(422, "INVALID_BODY", f"unknown fields {sorted(unknown)}")
    changes: dict[str, Any] = {}
    for key, column in _PERMISSION_FIELDS.items():
        if key in body:
            if not isinstance(body[key], bool):
                raise OmniError(422, "INVALID_BODY", f"{key!r} must be true or false")
            changes[column] = body[key]
    reads = body.get("object_read", {})
    if not isinstance(reads, dict) or not all(
        isinstance(v, bool) and k in OBJECTS for k, v in reads.items()
    ):
        raise OmniError(422, "INVALID_BODY", "'object_read' maps object names to true or false")
    with store.tx():
        if changes:
            store.update("PermissionSet", ps["Id"], changes)
        for sobject, read in reads.items():
            permissions.set_object_read(store, ps["Id"], sobject, read)
    return JSONResponse(
        permissions.describe_permission_set(store, store.get("PermissionSet", ps["Id"]) or ps)
    )


async def permission_set_assignment(request: Request) -> Response:
    """PUT assigns the permission set to the user, DELETE removes the assignment."""
    org = org_of(request)
    ps = _permission_set(request)
    user = org.omni.user(request.path_params["user_id"])
    if request.method == "PUT":
        permissions.assign(org.store, ps["Id"], user["Id"])
    else:
        permissions.unassign(org.store, ps["Id"], user["Id"])
    return JSONResponse(permissions.describe_permission_set(org.store, ps))


async def permission_set_status(request: Request) -> Response:
    """PUT grants the presence status (Service Presence Status Access), DELETE revokes it."""
    org = org_of(request)
    ps = _permission_set(request)
    status = org.omni.status_by_dev(request.path_params["status"])
    if request.method == "PUT":
        permissions.grant_status(org.store, ps["Id"], status.id)
    else:
        permissions.revoke_status(org.store, ps["Id"], status.id)
    return JSONResponse(permissions.describe_permission_set(org.store, ps))


def _site_json(site: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": site["Id"],
        "developer_name": site["DeveloperName"],
        "endpoint_url": site["EndpointUrl"],
        "is_active": site["IsActive"],
        "context": site["Context"],
        "connect_src": site["IsApplicableToConnectSrc"],
    }


async def list_trusted_sites(request: Request) -> Response:
    store = org_of(request).store
    return JSONResponse(
        [_site_json(s) for s in store.find("CspTrustedSite", order='"DeveloperName"')]
    )


_CSP_CONTEXTS = ("All", "Communities", "FieldServiceMobileExtension", "LEX", "VisualForce")


async def put_trusted_site(request: Request) -> Response:
    """Create or replace a Trusted URL: `{"endpoint_url", "is_active": true, "context": "LEX",
    "connect_src": true}` (what the package's CspTrustedSite deploys)."""
    store = org_of(request).store
    name = request.path_params["developer_name"]
    body = await json_body(request)
    url = string_field(body, "endpoint_url")
    context = body.get("context", "LEX")
    if context not in _CSP_CONTEXTS:
        raise OmniError(422, "INVALID_BODY", f"'context' must be one of {list(_CSP_CONTEXTS)}")
    flags = {k: body.get(k, True) for k in ("is_active", "connect_src")}
    if not all(isinstance(v, bool) for v in flags.values()):
        raise OmniError(422, "INVALID_BODY", "'is_active' and 'connect_src' are true or false")
    values = {
        "DeveloperName": name,
        "MasterLabel": name,
        "EndpointUrl": url,
        "IsActive": flags["is_active"],
        "Context": context,
        "IsApplicableToConnectSrc": flags["connect_src"],
        "IsApplicableToFontSrc": False,
        "IsApplicableToFrameSrc": False,
        "IsApplicableToImgSrc": False,
        "IsApplicableToMediaSrc": False,
        "IsApplicableToStyleSrc": False,
    }
    with store.tx():
        existing = store.find("CspTrustedSite", '"DeveloperName" = ?', (name,))
        if existing:
            store.update("CspTrustedSite", existing[0]["Id"], values)
            site_id = existing[0]["Id"]
        else:
            site_id = store.insert("CspTrustedSite", values)
    site = store.get("CspTrustedSite", site_id)
    assert site is not None
    return JSONResponse(_site_json(site))


async def delete_trusted_site(request: Request) -> Response:
    store = org_of(request).store
    name = request.path_params["developer_name"]
    rows = store.find("CspTrustedSite", '"DeveloperName" = ?', (name,))
    if not rows:
        raise OmniError(404, "NOT_FOUND", f"no trusted URL {name!r}")
    store.delete("CspTrustedSite", rows[0]["Id"])
    return JSONResponse({"deleted": name})


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
    Route(
        f"{_P}/users/{{user_id}}/omni/connection-error",
        _guard(put_connection_error),
        methods=["PUT"],
    ),
    Route(
        f"{_P}/users/{{user_id}}/omni/toolkit-faults", _guard(get_toolkit_faults), methods=["GET"]
    ),
    Route(
        f"{_P}/users/{{user_id}}/omni/toolkit-faults", _guard(put_toolkit_faults), methods=["PUT"]
    ),
    Route(f"{_P}/omni/maintenance", _guard(get_maintenance), methods=["GET"]),
    Route(f"{_P}/omni/maintenance", _guard(put_maintenance), methods=["PUT"]),
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
    Route(f"{_P}/users/{{user_id}}", _guard(patch_user), methods=["PATCH"]),
    Route(f"{_P}/permission-sets", _guard(list_permission_sets), methods=["GET"]),
    Route(f"{_P}/permission-sets/{{name}}", _guard(get_permission_set), methods=["GET"]),
    Route(f"{_P}/permission-sets/{{name}}", _guard(patch_permission_set), methods=["PATCH"]),
    Route(
        f"{_P}/permission-sets/{{name}}/assignments/{{user_id}}",
        _guard(permission_set_assignment),
        methods=["PUT", "DELETE"],
    ),
    Route(
        f"{_P}/permission-sets/{{name}}/presence-statuses/{{status}}",
        _guard(permission_set_status),
        methods=["PUT", "DELETE"],
    ),
    Route(f"{_P}/csp-trusted-sites", _guard(list_trusted_sites), methods=["GET"]),
    Route(f"{_P}/csp-trusted-sites/{{developer_name}}", _guard(put_trusted_site), methods=["PUT"]),
    Route(
        f"{_P}/csp-trusted-sites/{{developer_name}}",
        _guard(delete_trusted_site),
        methods=["DELETE"],
    ),
]
