"""Live agent updates for ContactPad: `GET /api/v1/agents/{agent_id}/stream` (WebSocket).

Authentication is the session cookie (what a browser sends) or an `Authorization: Bearer`
header (what other clients send). The server sends `{"type": "agent", "agent": {...}}` (the
`GET /agents/{agent_id}` JSON) on connect and after every committed change of that agent;
messages from the client are ignored, except `{"type": "ping"}`, answered by `{"type": "pong"}`.

The engine's after-commit callback may run on any thread: it only marks the agent dirty on the
event loop, and each connection's task reads the agent afresh. Several changes in a burst are
therefore sent as one message with the newest state (what a screen needs). The callback sees
only this process's commits; when several processes share the store, each connection also
re-reads its agent every `stream_poll_seconds` and sends it if it changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from presencesync.domain import DomainError
from presencesync.web.api.common import agent_view
from presencesync.web.auth import caller_from
from presencesync.web.errors import ApiError

log = structlog.get_logger("presencesync.contactpad")
router = APIRouter()

# WebSocket close codes (RFC 6455 private range) so a client can tell why it was closed.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_BIG = 1009  # RFC 6455: a message too big to process


class AgentFeed:
    """Who is watching which agent, and the wake-up of each watcher."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchers: dict[tuple[str, str], set[asyncio.Event]] = defaultdict(set)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def watch(self, account_id: str, agent_id: str) -> asyncio.Event:
        changed = asyncio.Event()
        self._watchers[(account_id, agent_id)].add(changed)
        return changed

    def unwatch(self, account_id: str, agent_id: str, changed: asyncio.Event) -> None:
        watchers = self._watchers.get((account_id, agent_id))
        if watchers is not None:
            watchers.discard(changed)
            if not watchers:
                del self._watchers[(account_id, agent_id)]

    def notify(self, account_id: str, agent_id: str) -> None:
        """Thread-safe: wake everyone watching this agent."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop is shutting down
            loop.call_soon_threadsafe(self._wake, (account_id, agent_id))

    def _wake(self, key: tuple[str, str]) -> None:
        for changed in self._watchers.get(key, ()):
            changed.set()

    def watching(self, account_id: str, agent_id: str) -> int:
        return len(self._watchers.get((account_id, agent_id), ()))


def _same_origin(websocket: WebSocket) -> bool:
    """A browser always sends Origin on a WebSocket handshake; refuse other sites' pages."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser
    host = websocket.headers.get("host", "")
    return urlsplit(origin).netloc == host


@router.websocket("/agents/{agent_id}/stream")
async def agent_stream(websocket: WebSocket, agent_id: str) -> None:
    app = websocket.app
    engine = app.state.engine
    feed: AgentFeed = app.state.agent_feed
    try:
        caller = await run_in_threadpool(caller_from, websocket, engine, app.state.session_codec)
    except ApiError:
        caller = None
    if caller is None or not _same_origin(websocket):
        await websocket.close(code=CLOSE_UNAUTHENTICATED)
        return
    if caller.role == "agent" and caller.agent_id != agent_id:
        await websocket.close(code=CLOSE_FORBIDDEN)
        return
    try:
        record = await run_in_threadpool(engine.get_agent, caller.account_id, agent_id)
    except DomainError:
        await websocket.close(code=CLOSE_NOT_FOUND)
        return

    changed = feed.watch(caller.account_id, agent_id)
    await websocket.accept()
    log.info("stream_opened", account_id=caller.account_id, agent_id=agent_id, role=caller.role)
    reader = asyncio.create_task(_read(websocket))
    poll = app.state.stream_poll_seconds
    try:
        last = agent_view(record)
        await websocket.send_json({"type": "agent", "agent": last})
        while not reader.done():
            waiter = asyncio.create_task(changed.wait())
            await asyncio.wait({waiter, reader}, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if reader.done():
                break
            changed.clear()
            record = await run_in_threadpool(engine.get_agent, caller.account_id, agent_id)
            view = agent_view(record)
            if view != last:
                last = view
                await websocket.send_json({"type": "agent", "agent": view})
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away mid-send
    finally:
        log.info("stream_closed", account_id=caller.account_id, agent_id=agent_id)
        feed.unwatch(caller.account_id, agent_id, changed)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


async def _read(websocket: WebSocket) -> None:
    """Answer pings until the client disconnects."""
    limit = websocket.app.state.limits.max_ws_message_bytes
    try:
        while True:
            text = await websocket.receive_text()
            if len(text.encode()) > limit:
                await websocket.close(code=CLOSE_TOO_BIG, reason="message too big")
                return
            message: Any = json.loads(text)
            if isinstance(message, dict) and message.get("type") == "ping":
                await websocket.send_json({"type": "pong"})
    except (WebSocketDisconnect, RuntimeError, ValueError, KeyError):
        return
