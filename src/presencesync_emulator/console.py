"""The agent's Salesforce console: the console WebSocket (toolkit calls and Omni events) and
the console page with its Omni-Channel widget.

WebSocket protocol (`/emulator/v1/users/{user_id}/console[?widget=1&browser=<id>]`; a
`widget` console runs an Omni session, and a second one of the same user takes it over, see
consoles.py):
- server -> client, first: `{"type": "hello", "user_id", "online", "status": {...}|null}`,
  again whenever the console's Omni link comes back (after a connection error or maintenance)
- server -> client: `{"type": "event", "name": "lightning:omniChannel...", "params", "seq"}`
  for every Omni event of that user, whatever caused it.
- client -> server: `{"type": "call", "id", "method", "params"}`, answered by
  `{"type": "result", "id", "result"}` or `{"type": "error", "id", "error": {"message",
  "errorCode"}}`. The events a call causes are sent before its result.
Method names, arguments and results are those of Lightning's `lightning:omniToolkitAPI`.
"""

from __future__ import annotations

import asyncio
import json
import os
from html import escape
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from presencesync_emulator.consoles import HANG
from presencesync_emulator.events import Subscription
from presencesync_emulator.httputil import base_url_of
from presencesync_emulator.omni import REASON_TOOLKIT, Omni, OmniError, OmniEvent
from presencesync_emulator.org import Org

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


class ToolkitError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _work_id(params: dict[str, Any]) -> str:
    work_id = params.get("workId")
    if not isinstance(work_id, str) or not work_id:
        raise ToolkitError("INVALID_ARGUMENT", "workId is required")
    return work_id


def _status_id(omni: Omni, params: dict[str, Any]) -> Any:
    status_id = params.get("statusId")
    if not isinstance(status_id, str) or not status_id:
        raise ToolkitError("INVALID_ARGUMENT", "statusId is required")
    return omni.status_by_id(status_id)


def call_toolkit(
    omni: Omni, user_id: str, method: str, params: dict[str, Any]
) -> tuple[Any, list[OmniEvent]]:
    """Run one toolkit method for `user_id`: returns (result, events)."""
    if method == "login":
        return True, omni.login(user_id, _status_id(omni, params), REASON_TOOLKIT)
    if method == "logout":
        return True, omni.logout(user_id)
    if method == "setServicePresenceStatus":
        status = _status_id(omni, params)
        events = omni.set_status(user_id, status, REASON_TOOLKIT)
        return {**omni.status_info(status), "channels": status.channels_json()}, events
    if method == "getServicePresenceStatusId":
        return omni.status_info(_online_status(omni, user_id)), []
    if method == "getServicePresenceStatusChannels":
        return {"channels": _online_status(omni, user_id).channels_json()}, []
    if method == "getAgentWorks":
        # Documented fields only: workItemId, workId, isEngaged (engaged = accepted).
        works = [
            {
                "workId": w["Id"],
                "workItemId": w["WorkItemId"],
                "isEngaged": w["Status"] == "Opened",
            }
            for w in omni.work_items(user_id, open_only=True)
        ]
        return {"works": json.dumps(works)}, []
    if method == "getAgentWorkload":
        used = omni.used(user_id)
        return {
            "configuredCapacity": omni.capacity(user_id),
            "currentWorkload": int(used) if used.is_integer() else used,
            "configuredInterruptibleCapacity": omni.interruptible_capacity(user_id) or 0,
            "currentInterruptibleWorkload": 0,
        }, []
    if method == "acceptAgentWork":
        return True, omni.accept(_work_id(params), user_id)[1]
    if method == "declineAgentWork":
        reason = params.get("declineReason")
        reason = reason if isinstance(reason, str) else None
        return True, omni.decline(_work_id(params), reason, user_id)[1]
    if method == "closeAgentWork":
        return True, omni.close(_work_id(params), user_id)[1]
    raise ToolkitError("UNKNOWN_METHOD", f"unknown toolkit method {method!r}")


def _online_status(omni: Omni, user_id: str) -> Any:
    status = omni.current_status(user_id)
    if status is None:
        raise ToolkitError("OMNI_OFFLINE", "the agent is not logged in to Omni-Channel")
    return status


def hello(omni: Omni, user_id: str) -> dict[str, Any]:
    status = omni.current_status(user_id)
    return {
        "type": "hello",
        "user_id": user_id,
        "online": status is not None,
        "status": omni.status_info(status) if status else None,
    }


async def console_socket(websocket: WebSocket) -> None:
    org: Org = websocket.app.state.org
    await websocket.accept()
    try:
        user = org.omni.user(websocket.path_params["user_id"])
    except OmniError as exc:
        await websocket.send_json(
            {"type": "error", "id": None, "error": {"message": exc.message, "errorCode": exc.code}}
        )
        await websocket.close(code=4404)
        return
    uid = user["Id"]
    widget = websocket.query_params.get("widget", "") in ("1", "true")
    browser = websocket.query_params.get("browser") or None
    # Subscribe and read the state with no await in between, so no event is missed or doubled.
    sub = org.hub.subscribe(uid, widget=widget, browser=browser)
    org.consoles.attach(sub)
    sub.put(org.consoles.hello(sub))
    sender = asyncio.create_task(_send_loop(websocket, sub))
    try:
        while True:
            try:
                message = await websocket.receive_json()
            except (ValueError, KeyError):
                sub.put(_error(None, "INVALID_MESSAGE", "messages must be JSON"))
                continue
            _handle_call(org, uid, message, sub)
    except WebSocketDisconnect:
        pass
    finally:
        org.hub.unsubscribe(sub)
        sender.cancel()


def _handle_call(org: Org, uid: str, message: Any, sub: Subscription) -> None:
    if not isinstance(message, dict) or message.get("type") != "call":
        sub.put(_error(None, "INVALID_MESSAGE", "expected {'type': 'call', ...}"))
        return
    call_id = message.get("id")
    params = message.get("params") or {}
    method = message.get("method")
    if not isinstance(params, dict) or not isinstance(method, str):
        sub.put(_error(call_id, "INVALID_MESSAGE", "method must be a string"))
        return
    screened = org.consoles.screen(sub, method)
    if screened is HANG:
        return  # never answered: the caller's promise stays pending
    if isinstance(screened, tuple):
        sub.put(_error(call_id, *screened))
        return
    try:
        result, events = call_toolkit(org.omni, uid, method, params)
    except ToolkitError as exc:
        sub.put(_error(call_id, exc.code, exc.message))
        return
    except OmniError as exc:
        sub.put(_error(call_id, exc.code, exc.message))
        return
    org.publish(events)
    sub.put({"type": "result", "id": call_id, "result": result})


def _error(call_id: Any, code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "id": call_id, "error": {"message": message, "errorCode": code}}


async def _send_loop(websocket: WebSocket, sub: Subscription) -> None:
    try:
        while True:
            await websocket.send_json(await sub.get())
    except (WebSocketDisconnect, RuntimeError):
        return
    except Exception:  # the socket went away under us (e.g. connection reset)
        return


async def console_page(request: Request) -> Response:
    org: Org = request.app.state.org
    try:
        user = org.omni.user(request.path_params["user_id"])
    except OmniError as exc:
        return HTMLResponse(f"<h1>Not found</h1><p>{escape(exc.message)}</p>", status_code=404)
    bridge = (
        request.query_params.get("bridge")
        or org.bridge_url
        or os.environ.get("PRESENCESYNC_BRIDGE_URL")
    )
    server = (
        request.query_params.get("server")
        or org.bridge_server
        or os.environ.get("PRESENCESYNC_BRIDGE_SERVER")
    )
    base = base_url_of(request)
    ws_base = "wss" + base[5:] if base.startswith("https") else "ws" + base[4:]
    config = {
        "userId": user["Id"],
        "userName": user["Name"],
        "orgId": org.org_id,
        # The page's scripts use the paths against their own origin (whatever host name the
        # browser used); the absolute URLs are for other readers of the config.
        "consoleSocketPath": f"/emulator/v1/users/{user['Id']}/console",
        "consoleSocketUrl": f"{ws_base}/emulator/v1/users/{user['Id']}/console",
        "controlBaseUrl": "/emulator/v1",
        "bridgeUrl": bridge,
        "bridgeServer": server,
        "statuses": [
            {
                "statusId": s.id,
                "statusApiName": s.developer_name,
                "statusName": s.label,
                "online": s.online,
            }
            for s in org.omni.statuses.values()
        ],
    }
    html = _TEMPLATES.get_template("console.html").render(
        user=user, config_json=json.dumps(config).replace("</", "<\\/"), bridge_url=bridge
    )
    return HTMLResponse(html)


routes = [
    WebSocketRoute("/emulator/v1/users/{user_id}/console", console_socket),
    Route("/console/{user_id}", console_page, methods=["GET"]),
]
