"""Live agent updates for ContactPad: `GET /api/v1/agents/{agent_id}/stream` (WebSocket).

Authentication is the session cookie (what a browser sends) or an `Authorization: Bearer`
header (what other clients send). The server sends `{"type": "agent", "agent": {...}}` (the
`GET /agents/{agent_id}` JSON) on connect and after every committed change of that agent;
messages from the client are ignored, except `{"type": "ping"}`, answered by `{"type": "pong"}`.

How a change reaches the feed:
- committed in this process: the engine's after-commit callback (any thread) hands the new
  snapshot to `AgentFeed.notify`; the feed wakes the agent's watchers on the event loop, and
  each sends the view built from that snapshot (no store read). Wake-ups are coalesced: one
  loop wake-up per burst of commits, and several changes of one agent in a burst are sent as
  one message with the newest state (what a screen needs; `version` orders snapshots).
- committed in another process sharing PostgreSQL: that process's `AgentChangeNotifier`
  NOTIFYs the agent's key after the commit; ours LISTENs and wakes the watchers, which re-read
  the agent.
- the safety net (SQLite shared by several processes; a process that dies between its commit
  and its NOTIFY): every `stream_poll_seconds` the feed reads the versions of all watched
  agents in one query (not one read per open ContactPad) and wakes those that changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from presencesync import fastjson
from presencesync.domain import AgentSnapshot, DomainError
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

Key = tuple[str, str]  # (account_id, agent_id)


class _Watch:
    """One open feed: woken when its agent changes, with the newest snapshot when known."""

    __slots__ = ("changed", "refresh", "snapshot")

    def __init__(self) -> None:
        self.changed = asyncio.Event()
        self.snapshot: AgentSnapshot | None = None  # newest committed here, not yet sent
        self.refresh = False  # changed elsewhere: read the store

    def offer(self, snapshot: AgentSnapshot | None) -> None:
        if snapshot is None:
            self.refresh = True
        elif self.snapshot is None or snapshot.version > self.snapshot.version:
            self.snapshot = snapshot
        self.changed.set()


class AgentFeed:
    """Who is watching which agent, and the wake-up of each watcher."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchers: dict[Key, set[_Watch]] = {}
        self._pending: dict[Key, AgentSnapshot | None] = {}
        self._pending_lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def watch(self, account_id: str, agent_id: str) -> _Watch:
        watch = _Watch()
        self._watchers.setdefault((account_id, agent_id), set()).add(watch)
        return watch

    def unwatch(self, account_id: str, agent_id: str, watch: _Watch) -> None:
        watchers = self._watchers.get((account_id, agent_id))
        if watchers is not None:
            watchers.discard(watch)
            if not watchers:
                del self._watchers[(account_id, agent_id)]

    def notify(self, account_id: str, agent_id: str, snapshot: AgentSnapshot | None = None) -> None:
        """Thread-safe: the agent changed (`snapshot`: its committed snapshot, None: read it).
        Nobody watching here: nothing to do."""
        key = (account_id, agent_id)
        loop = self._loop
        if key not in self._watchers or loop is None or loop.is_closed():
            return
        with self._pending_lock:
            first = not self._pending
            if key not in self._pending:
                self._pending[key] = snapshot
            else:
                known = self._pending[key]
                if snapshot is None or known is None:
                    self._pending[key] = None  # changed elsewhere too: read the store
                elif snapshot.version > known.version:
                    self._pending[key] = snapshot
        if first:
            with contextlib.suppress(RuntimeError):  # the loop is shutting down
                loop.call_soon_threadsafe(self._flush)

    def _flush(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        for key, snapshot in pending.items():
            for watch in self._watchers.get(key, ()):
                watch.offer(snapshot)

    async def poll(self, engine: Any, interval: float) -> None:
        """The safety net for changes no notification told us about (another process sharing
        SQLite; a NOTIFY lost with its sender): every `interval`, one read of the versions of
        all watched agents, and a wake-up (with a re-read) of the feeds whose agent changed.
        A newly watched agent is re-read once, at its first poll."""
        seen: dict[Key, int] = {}
        while True:
            await asyncio.sleep(interval)
            keys = self.watched()
            if not keys:
                seen.clear()
                continue
            try:
                versions = await asyncio.to_thread(_read_versions, engine, keys)
            except Exception:
                log.exception("polling agent versions failed")
                continue
            for key in keys:
                version = versions.get(key)
                if version is not None and seen.get(key) != version:
                    seen[key] = version
                    for watch in self._watchers.get(key, ()):
                        watch.offer(None)
            for key in list(seen):
                if key not in keys:
                    del seen[key]

    def watching(self, account_id: str, agent_id: str) -> int:
        return len(self._watchers.get((account_id, agent_id), ()))

    def watched(self) -> set[Key]:
        return set(self._watchers)


def _read_versions(engine: Any, keys: set[Key]) -> dict[Key, int]:
    """The store's version (events applied) of each agent in `keys`, in a few queries."""
    import sqlalchemy as sa

    from presencesync.store import tables

    agents = tables.agents
    by_account: dict[str, list[str]] = {}
    for account_id, agent_id in keys:
        by_account.setdefault(account_id, []).append(agent_id)
    out: dict[Key, int] = {}
    with engine.db.connect() as conn:
        for account_id, agent_ids in by_account.items():
            for start in range(0, len(agent_ids), 500):
                rows = conn.execute(
                    sa.select(agents.c.agent_id, agents.c.version).where(
                        agents.c.account_id == account_id,
                        agents.c.agent_id.in_(agent_ids[start : start + 500]),
                    )
                )
                out.update({(account_id, row.agent_id): int(row.version) for row in rows})
    return out


class AgentChangeNotifier:
    """PostgreSQL LISTEN/NOTIFY between the processes sharing the store: after a commit of
    ours, NOTIFY the agents' keys (batched: one NOTIFY per burst, payloads under PostgreSQL's
    8000-byte limit); every NOTIFY of another process wakes our feeds of those agents."""

    CHANNEL = "presencesync_agents"
    MAX_PAYLOAD = 7900

    def __init__(self, database_url: str, on_change: Callable[[str, str], None]) -> None:
        from presencesync.service.notify import libpq_url

        self._conninfo = libpq_url(database_url)
        self._on_change = on_change
        self.origin = uuid.uuid4().hex[:12]  # our own NOTIFYs are ignored
        self._pending: set[Key] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self.listening = threading.Event()
        self._threads = [
            threading.Thread(target=self._listen, name="presencesync-agents-listen", daemon=True),
            threading.Thread(target=self._send, name="presencesync-agents-notify", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def changed(self, account_id: str, agent_id: str) -> None:
        """Thread-safe, quick: queue the agent's key for the next NOTIFY."""
        with self._lock:
            self._pending.add((account_id, agent_id))
        self._wake.set()

    def payloads(self, keys: set[Key]) -> list[str]:
        out: list[str] = []
        lines: list[str] = []
        size = len(self.origin)
        for account_id, agent_id in sorted(keys):
            line = f"{account_id}\t{agent_id}"
            if lines and size + len(line) + 1 > self.MAX_PAYLOAD:
                out.append("\n".join([self.origin, *lines]))
                lines, size = [], len(self.origin)
            lines.append(line)
            size += len(line) + 1
        if lines:
            out.append("\n".join([self.origin, *lines]))
        return out

    def parse(self, payload: str) -> list[Key]:
        origin, _, body = payload.partition("\n")
        if origin == self.origin or not body:
            return []
        keys: list[Key] = []
        for line in body.split("\n"):
            account_id, sep, agent_id = line.partition("\t")
            if sep:
                keys.append((account_id, agent_id))
        return keys

    def _send(self) -> None:
        import psycopg

        while not self._stopped.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    while not self._stopped.is_set():
                        if not self._wake.wait(0.5):
                            continue
                        self._wake.clear()
                        with self._lock:
                            keys, self._pending = self._pending, set()
                        for payload in self.payloads(keys):
                            conn.execute("SELECT pg_notify(%s, %s)", (self.CHANNEL, payload))
            except Exception:
                logging.getLogger(__name__).exception("agent change NOTIFY failed; retrying")
                self._stopped.wait(1.0)

    def _listen(self) -> None:
        import psycopg

        while not self._stopped.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {self.CHANNEL}")
                    self.listening.set()
                    while not self._stopped.is_set():
                        for notify in conn.notifies(timeout=0.5):
                            for account_id, agent_id in self.parse(notify.payload):
                                self._on_change(account_id, agent_id)
            except Exception:
                self.listening.clear()
                logging.getLogger(__name__).exception("agent change LISTEN failed; retrying")
                self._stopped.wait(1.0)

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5)


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
    # Watch before the first read: a change committed in between is not missed.
    watch = feed.watch(caller.account_id, agent_id)
    try:
        record = await run_in_threadpool(engine.get_agent, caller.account_id, agent_id)
    except DomainError:
        feed.unwatch(caller.account_id, agent_id, watch)
        await websocket.close(code=CLOSE_NOT_FOUND)
        return

    await websocket.accept()
    log.info("stream_opened", account_id=caller.account_id, agent_id=agent_id, role=caller.role)
    reader = asyncio.create_task(_read(websocket))
    try:
        last = agent_view(record)
        sent_version = record.snapshot.version
        await websocket.send_text(fastjson.dumps({"type": "agent", "agent": last}))
        while not reader.done():
            waiter = asyncio.create_task(watch.changed.wait())
            await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if reader.done():
                break
            watch.changed.clear()
            snapshot, watch.snapshot = watch.snapshot, None
            if watch.refresh or snapshot is None:
                # Changed in another process (or found by the poll): ask the store.
                watch.refresh = False
                record = await run_in_threadpool(engine.get_agent, caller.account_id, agent_id)
            elif snapshot.version > sent_version:
                # Committed here: the snapshot is the agent's newest state, no read needed.
                record = replace(record, snapshot=snapshot)
            else:
                continue
            view = agent_view(record)
            sent_version = max(sent_version, record.snapshot.version)
            if view != last:
                last = view
                await websocket.send_text(fastjson.dumps({"type": "agent", "agent": view}))
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away mid-send
    finally:
        log.info("stream_closed", account_id=caller.account_id, agent_id=agent_id)
        feed.unwatch(caller.account_id, agent_id, watch)
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
