"""Server side of the console bridge: the WebSocket `/api/v1/bridge` (docs/bridge-protocol.md).

The bridge (static/bridge.js in the agent's Salesforce console, or the sandbox's headless console)
forwards Omni-Channel toolkit events here and runs our commands through the toolkit. One
connection carries one agent, authenticated by the agent's API token. Per connection:

1. `hello` (the toolkit's current status and open work) -> `SalesforceSnapshot(console_connected=
   True)` is submitted before anything else from that console (rule 12), then `welcome`.
2. `event` -> the matching domain event, submitted with `source_id = bridge:<session>:<seq>` so a
   replayed event is applied once; answered by `event_ack`. Events of a connection that a
   newer console of the agent replaced are not applied (`replaced`).
3. `ack` of one of our commands -> `CommandResult`.
4. `degraded` (a connection error, a toolkit that does not answer, another console took over
   Omni) -> `ConsoleDegraded`; the console's next hello clears it.
5. On close -> `ConsoleDisconnected` (the engine starts the grace timer), unless a newer
   connection of the same agent already took over.

The engine is synchronous (it blocks until the unit of work is committed), so every engine call
runs in a worker thread; the event loop only moves messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from presencesync import fastjson
from presencesync.domain import (
    Cause,
    CommandResult,
    ConsoleDegraded,
    ConsoleDisconnected,
    DegradedReason,
    DomainError,
    Event,
    LogoutReason,
    OmniLoggedIn,
    OmniLoggedOut,
    OpenWork,
    PresenceChanged,
    SalesforceSnapshot,
    StatusChangeReason,
    WorkAccepted,
    WorkAssigned,
    WorkClosed,
    WorkDeclined,
)

if TYPE_CHECKING:  # the engine is only called, never constructed, here
    from presencesync.service import Engine, OutboxCommand

log = logging.getLogger("presencesync.bridge")

BRIDGE_PATH = "/api/v1/bridge"
BRIDGE_JS_PATH = "/static/bridge.js"
BRIDGE_JS_FILE = Path(__file__).parent / "static" / "bridge.js"
SOURCE = "bridge"
PROTOCOL_VERSION = 1

# WebSocket close codes (4000-4999 are the application's own).
CLOSE_PROTOCOL = 4400  # malformed or out-of-order message
CLOSE_UNAUTHORIZED = 4401  # missing or unknown token: do not reconnect with it
CLOSE_FORBIDDEN = 4403  # not an agent token, or the console belongs to another user
CLOSE_NOT_FOUND = 4404  # the agent no longer exists
CLOSE_REPLACED = 4409  # a newer console of the same agent took over: do not reconnect
CLOSE_TOO_BIG = 1009  # RFC 6455: a message too big to process

HELLO_TIMEOUT_S = 15.0
STATUS_CACHE_S = 5.0
SEND_QUEUE_LIMIT = 1000  # messages waiting for one console before it counts as stuck
BRIDGE_THREADS = 64  # consoles' engine calls in flight at once (group commit batches them)

T = TypeVar("T")

EVENT_PREFIX = "lightning:omniChannel"

# Work item key prefixes (the first 3 characters of a Salesforce id) -> service channel label.
_ITEM_PREFIX_CHANNEL = {
    "500": "Case",
    "570": "Chat",
    "00Q": "Lead",
    "0Mw": "Messaging",  # MessagingSession
    "0LQ": "Voice",  # VoiceCall
}
# A bridge-made event (not the toolkit's): a work item the bridge had seen is no longer in
# getAgentWorks and no toolkit event said why (push time-out, cancel, transfer: Salesforce
# documents no console event for those).
WORK_GONE = "presencesync:workGone"


class ProtocolError(Exception):
    def __init__(self, code: str, message: str, close_code: int = CLOSE_PROTOCOL) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code


def _same_id(a: str | None, b: str | None) -> bool:
    """Salesforce ids come as 15 (case-sensitive) or 18 characters; compare the first 15."""
    if not a or not b:
        return False
    return a[:15] == b[:15]


def _now() -> datetime:
    return datetime.now(UTC)


def channel_of(work_item_id: Any) -> str | None:
    if isinstance(work_item_id, str):
        return _ITEM_PREFIX_CHANNEL.get(work_item_id[:3])
    return None


@dataclass
class _Connection:
    """One bridge socket. What the server sends it goes through a queue and one writer task,
    so that nobody waits on a slow console: the outbox dispatcher (which serves every agent of
    the process, one command after another) hands a command over without blocking on this
    socket's flow control, and the connection's own loop keeps reading while acknowledgements
    wait to be written. A console that lets SEND_QUEUE_LIMIT messages pile up is closed; it
    reconnects and reconciles (rule 12)."""

    websocket: WebSocket
    account_id: str
    agent_id: str
    salesforce_user_id: str | None  # an agent not linked yet: the welcome says null
    session: str
    snapshot_seq: int = 0
    closed: bool = False
    _queue: asyncio.Queue[dict[str, Any]] = field(
        default_factory=lambda: asyncio.Queue(SEND_QUEUE_LIMIT)
    )
    _writer: asyncio.Task[None] | None = None

    async def send(self, message: dict[str, Any]) -> bool:
        """Queue `message` for the socket; False when the connection is closed (or too slow)."""
        if self.closed or self.websocket.client_state is not WebSocketState.CONNECTED:
            return False
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("bridge %s/%s too slow; closing it", self.account_id, self.agent_id)
            self.closed = True
            self._writer.cancel()
            await _close(self.websocket, 1013, "too slow to read")
            return False
        return True

    async def _write(self) -> None:
        try:
            while True:
                message = await self._queue.get()
                await self.websocket.send_text(fastjson.dumps(message))
        except asyncio.CancelledError:
            raise
        except Exception:  # the peer vanished (reset, closed mid-send)
            self.closed = True

    async def flush(self, timeout: float = 5.0) -> None:
        """Let what is queued go out (before closing the socket with a code)."""
        if self._writer is None:
            return
        deadline = time.monotonic() + timeout
        while not self._queue.empty() and not self._writer.done():
            if time.monotonic() > deadline:
                return
            await asyncio.sleep(0.005)

    def stop_writer(self) -> None:
        if self._writer is not None:
            self._writer.cancel()


class BridgeHub:
    """Who is connected: one live bridge per agent; delivers the outbox's commands to it."""

    def __init__(self, engine: Engine, threads: int = BRIDGE_THREADS) -> None:
        self.engine = engine
        # The engine blocks a thread until the unit of work commits (group commit: a few ms
        # to a burst's worth). The consoles' submits get threads of their own, so that they
        # never queue the outbox dispatcher's and the timers' store calls (asyncio's default
        # executor has only min(32, CPUs + 4) threads) behind a thousand consoles' events.
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="presencesync-bridge")
        self._live: dict[tuple[str, str], _Connection] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._status_cache: dict[str, tuple[float, list[tuple[str, str]]]] = {}
        self.commands_sent = 0
        self.events_received = 0

    # --- public interface -----------------------------------------------------------------

    async def run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call the (blocking) engine on one of the bridge's threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(func, *args, **kwargs))

    def shutdown(self) -> None:
        """The server stops: no more engine calls from the bridge."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def is_connected(self, account_id: str, agent_id: str) -> bool:
        conn = self._live.get((account_id, agent_id))
        return conn is not None and not conn.closed

    def connected_agents(self) -> set[tuple[str, str]]:
        """(account_id, agent_id) of every agent whose console is connected to this process:
        the commands this process can deliver, so the only ones its dispatcher claims (call it
        on the event loop)."""
        return {key for key, conn in self._live.items() if not conn.closed}

    async def deliver(self, command: OutboxCommand) -> bool:
        """Hand one outbox command to the agent's live bridge; False when none is connected
        (its socket just closed: the dispatcher retries later; a reconnecting console
        reconciles first anyway)."""
        conn = self._live.get((command.account_id, command.agent_id))
        if conn is None or conn.closed:
            return False
        cached = self._cached_status_ids(command.account_id)
        presence = command.payload.get("presence_status")
        if cached is not None and (presence is None or presence in cached):
            message = self.command_message(command)  # no store access: stay on the loop
        else:
            message = await asyncio.to_thread(self.command_message, command)
        if message is None:
            return True  # not a Salesforce command: nothing for the console to do
        sent = await conn.send(message)
        if sent:
            self.commands_sent += 1
        return sent

    def command_message(self, command: OutboxCommand) -> dict[str, Any] | None:
        payload = dict(command.payload)
        kind = payload.get("kind")
        if kind not in ("set_presence", "omni_login", "omni_logout"):
            return None
        presence = payload.get("presence_status")
        status_id = None
        if isinstance(presence, str):
            status_id = self._status_ids(command.account_id).get(presence) or self._status_ids(
                command.account_id, refresh=True
            ).get(presence)
        return {
            "type": "command",
            "command_id": command.command_id,
            "kind": kind,
            "presence_status": presence,
            "status_id": status_id,
        }

    # --- helpers used by the endpoint -----------------------------------------------------

    def _lock(self, key: tuple[str, str]) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def _statuses(self, account_id: str, refresh: bool = False) -> list[tuple[str, str]]:
        """(id, developer name) of the account's last fetch. Cached briefly: every command
        needs it, and a status keeps its id across fetches (a miss reloads)."""
        now = time.monotonic()
        cached = self._status_cache.get(account_id)
        if cached is not None and cached[0] > now and not refresh:
            return cached[1]
        pairs = [(s.id, s.developer_name) for s in self.engine.get_presence_statuses(account_id)]
        self._status_cache[account_id] = (now + STATUS_CACHE_S, pairs)
        return pairs

    def _status_ids(self, account_id: str, refresh: bool = False) -> dict[str, str]:
        return {name: sid for sid, name in self._statuses(account_id, refresh)}

    def _cached_status_ids(self, account_id: str) -> dict[str, str] | None:
        cached = self._status_cache.get(account_id)
        if cached is None or cached[0] <= time.monotonic():
            return None
        return {name: sid for sid, name in cached[1]}

    def _status_names(self, account_id: str) -> list[tuple[str, str]]:
        return self._statuses(account_id)

    def developer_name_for(self, account_id: str, status_id: str | None) -> str | None:
        for sid, name in self._status_names(account_id):
            if _same_id(sid, status_id):
                return name
        return None

    async def _submit(
        self, conn: _Connection, event: Event, source_id: str | None
    ) -> Any:  # Applied
        return await self.run(
            self.engine.submit,
            conn.account_id,
            conn.agent_id,
            event,
            source=SOURCE,
            source_id=source_id,
        )

    async def open(self, conn: _Connection, hello: dict[str, Any]) -> None:
        """Rule 12: the console's view is applied before anything else it sends."""
        key = (conn.account_id, conn.agent_id)
        async with self._lock(key):
            snapshot = snapshot_from_hello(hello, _now())
            conn.snapshot_seq = snapshot.seq or 0
            await self._submit(conn, snapshot, None)
            old = self._live.get(key)
            self._live[key] = conn
        if old is not None and old is not conn:
            old.closed = True
            old.stop_writer()
            await _close(old.websocket, CLOSE_REPLACED, "a newer console took over")
        await self._console_here(key)

    async def _console_here(self, key: tuple[str, str]) -> None:
        """The agent's commands can be delivered from this process now: whatever was backing
        off for want of a console is due at once, and the dispatcher (claiming only for
        connected agents, so possibly asleep) is woken to send it."""
        try:
            await self.run(self.engine.make_due, *key)
        except Exception as exc:  # the commands still go out at their retry time
            log.warning("bridge open of %s/%s: make_due failed: %s", key[0], key[1], exc)
        self.engine.wake_dispatchers()

    async def close(self, conn: _Connection) -> None:
        key = (conn.account_id, conn.agent_id)
        async with self._lock(key):
            conn.closed = True
            if self._live.get(key) is not conn:
                return  # replaced by a newer console: that one is the agent's console now
            del self._live[key]
            try:
                await self._submit(conn, ConsoleDisconnected(at=_now()), None)
            except Exception as exc:  # the agent was deleted meanwhile, the server stops, ...
                log.warning("bridge close of %s/%s: %s", conn.account_id, conn.agent_id, exc)

    async def handle_event(self, conn: _Connection, message: dict[str, Any]) -> dict[str, Any]:
        seq = message.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise ProtocolError("INVALID_EVENT", "event.seq must be a positive integer")
        self.events_received += 1
        ack: dict[str, Any] = {"type": "event_ack", "seq": seq}
        if seq <= conn.snapshot_seq:
            # Happened before the hello's reading of the toolkit: the snapshot covers it.
            ack["outcome"] = "superseded"
            return ack
        if self._live.get((conn.account_id, conn.agent_id)) is not conn:
            # A newer console of the agent took over (4409 is on its way): what this one
            # still reports (e.g. its own duplicate-login logout) is not the agent's Omni.
            ack["outcome"] = "replaced"
            return ack
        try:
            if self._cached_status_ids(conn.account_id) is not None:
                # The statuses are cached: no store access, no thread hop.
                event = self.domain_event(conn.account_id, message, _now())
            else:
                event = await self.run(self.domain_event, conn.account_id, message, _now())
        except ProtocolError as exc:
            # Acknowledged, so that a buggy bridge does not replay it forever.
            ack["outcome"] = "rejected"
            ack["error"] = {"code": exc.code, "message": exc.message}
            return ack
        if event is None:
            ack["outcome"] = "ignored"
            return ack
        try:
            applied = await self._submit(conn, event, f"bridge:{conn.session}:{seq}")
        except DomainError as exc:
            ack["outcome"] = "rejected"
            ack["error"] = {"code": exc.code, "message": exc.message}
            return ack
        ack["outcome"] = "duplicate" if applied.duplicate else str(applied.decision.outcome)
        return ack

    async def handle_degraded(self, conn: _Connection, message: dict[str, Any]) -> None:
        try:
            # JSON, not necessarily a str: the enum refuses anything but a reason (ValueError).
            reason = DegradedReason(cast(str, message.get("reason")))
        except ValueError as exc:
            known = ", ".join(r.value for r in DegradedReason)
            raise ProtocolError(
                "INVALID_DEGRADED", f"degraded.reason must be one of {known}"
            ) from exc
        if self._live.get((conn.account_id, conn.agent_id)) is not conn:
            return
        try:
            await self._submit(conn, ConsoleDegraded(at=_now(), reason=reason), None)
        except DomainError as exc:
            log.warning("degraded console not recorded: %s", exc)

    async def handle_ack(self, conn: _Connection, message: dict[str, Any]) -> None:
        command_id = message.get("command_id")
        if not isinstance(command_id, str) or not command_id:
            raise ProtocolError("INVALID_ACK", "ack.command_id must be a string")
        error = message.get("error")
        result = CommandResult(
            at=_now(),
            command_id=command_id,
            ok=bool(message.get("ok")),
            error=None if error is None else str(error),
        )
        try:
            await self._submit(conn, result, f"bridge:{conn.session}:ack:{command_id}")
        except DomainError as exc:
            log.warning("command result %s not applied: %s", command_id, exc)

    def domain_event(self, account_id: str, message: dict[str, Any], at: datetime) -> Event | None:
        """Map one toolkit event to the core's event (None: nothing the core cares about)."""
        name = message.get("name")
        params = message.get("params")
        if not isinstance(name, str) or not isinstance(params, dict):
            raise ProtocolError("INVALID_EVENT", "event.name and event.params are required")
        seq = message["seq"]
        command_id = message.get("command_id")
        if not isinstance(command_id, str) or not command_id:
            command_id = None
        short = name.removeprefix("lightning:").removeprefix("omniChannel")
        if short == "StatusChanged":
            status = params.get("statusApiName") or self.developer_name_for(
                account_id, params.get("statusId")
            )
            if not isinstance(status, str):
                return None
            return PresenceChanged(
                at=at,
                seq=seq,
                presence_status=status,
                reason=_reason(params.get("reason")),
                command_id=command_id,
            )
        if short == "LoginSuccess":
            # The real event carries only statusId; the bridge adds statusApiName when it knows.
            status = self.developer_name_for(account_id, params.get("statusId")) or params.get(
                "statusApiName"
            )
            if not isinstance(status, str):
                return None  # the StatusChanged that follows a login names the status
            return OmniLoggedIn(at=at, seq=seq, presence_status=status, command_id=command_id)
        if short == "Logout":
            # `reason` (DuplicateLogin, MaintenanceLogout, ...) when Salesforce logged the agent
            # out; none (absent, null, empty) for the agent's own logout or an older org.
            return OmniLoggedOut(
                at=at, seq=seq, command_id=command_id, reason=_logout_reason(params.get("reason"))
            )
        if name == WORK_GONE:
            work_id = params.get("workId")
            if not isinstance(work_id, str) or not work_id:
                raise ProtocolError("INVALID_EVENT", "workGone needs a workId")
            if params.get("accepted"):
                return WorkClosed(at=at, seq=seq, work_id=work_id)
            return WorkDeclined(at=at, seq=seq, work_id=work_id)
        work_id = params.get("workId")
        if not isinstance(work_id, str) or not work_id:
            return None  # WorkloadChanged and friends: nothing the core tracks
        channel = params.get("channel") or channel_of(params.get("workItemId"))
        if short == "WorkAssigned":
            return WorkAssigned(at=at, seq=seq, work_id=work_id, channel=channel)
        if short == "WorkAccepted":
            return WorkAccepted(at=at, seq=seq, work_id=work_id, channel=channel)
        if short == "WorkDeclined":
            return WorkDeclined(at=at, seq=seq, work_id=work_id)
        if short == "WorkClosed":
            return WorkClosed(at=at, seq=seq, work_id=work_id)
        return None


def _logout_reason(value: Any) -> LogoutReason | None:
    if not value:
        return None
    try:
        return LogoutReason(value)
    except ValueError:
        # A reason this version does not know: the agent's own logout is the safe reading
        # (rule 5 logs the agent out of the contact center, as before reasons existed).
        log.warning("unknown Omni logout reason %r: treated as the agent's own logout", value)
        return None


def _reason(value: Any) -> StatusChangeReason:
    try:
        return StatusChangeReason(value)
    except ValueError:
        # An unknown reason is nobody's toolkit call of ours: treat it as the agent's own.
        return StatusChangeReason.MANUAL


def _open_work(raw: Any) -> tuple[OpenWork, ...] | None:
    if raw is None:
        return None  # the bridge could not read getAgentWorks: keep what we know
    if not isinstance(raw, list):
        raise ProtocolError("INVALID_HELLO", "hello.open_work must be a list or null")
    items: list[OpenWork] = []
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("work_id"), str):
            raise ProtocolError("INVALID_HELLO", "open_work entries need a work_id")
        channel = entry.get("channel") or channel_of(entry.get("work_item_id"))
        items.append(OpenWork(entry["work_id"], bool(entry.get("accepted")), channel))
    return tuple(items)


def snapshot_from_hello(hello: dict[str, Any], at: datetime) -> SalesforceSnapshot:
    presence = hello.get("presence_status")
    if presence is not None and not isinstance(presence, str):
        raise ProtocolError("INVALID_HELLO", "hello.presence_status must be a string or null")
    seq = hello.get("seq", 0)
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ProtocolError("INVALID_HELLO", "hello.seq must be a non-negative integer")
    unknown = hello.get("presence_unknown", False)
    if not isinstance(unknown, bool):
        raise ProtocolError("INVALID_HELLO", "hello.presence_unknown must be true or false")
    return SalesforceSnapshot(
        at=at,
        seq=seq,
        presence_status=presence or None,
        open_work=_open_work(hello.get("open_work", [])),
        console_connected=True,
        cause=Cause.RECONCILE,
        presence_known=not unknown,
    )


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):  # already closed
        await websocket.close(code=code, reason=reason)


async def _receive(websocket: WebSocket, timeout: float | None = None) -> dict[str, Any]:
    text = await asyncio.wait_for(websocket.receive_text(), timeout)
    limit = websocket.app.state.limits.max_ws_message_bytes
    if len(text) > limit // 4 and len(text.encode()) > limit:
        raise ProtocolError(
            "MESSAGE_TOO_BIG", f"messages are limited to {limit} bytes", CLOSE_TOO_BIG
        )
    try:
        message = fastjson.loads(text)
    except ValueError as exc:
        raise ProtocolError("INVALID_MESSAGE", "messages must be JSON objects") from exc
    if not isinstance(message, dict):
        raise ProtocolError("INVALID_MESSAGE", "messages must be JSON objects")
    return message


def bridge_endpoint(engine: Engine, hub: BridgeHub) -> Callable[[WebSocket], Any]:
    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        conn: _Connection | None = None
        try:
            hello = await _receive(websocket, HELLO_TIMEOUT_S)
            if hello.get("type") != "hello":
                raise ProtocolError("HELLO_FIRST", "the first message must be a hello")
            token = websocket.query_params.get("token") or hello.get("token")
            principal = (
                await hub.run(engine.resolve_token, token)
                if isinstance(token, str) and token
                else None
            )
            if principal is None:
                raise ProtocolError("UNAUTHORIZED", "a valid agent token is required", 4401)
            if principal.role != "agent" or not principal.agent_id:
                raise ProtocolError("FORBIDDEN", "the bridge needs an agent's token", 4403)
            try:
                agent = await hub.run(engine.get_agent, principal.account_id, principal.agent_id)
            except DomainError as exc:
                raise ProtocolError(exc.code, exc.message, CLOSE_NOT_FOUND) from exc
            user = hello.get("salesforce_user_id")
            if user and not _same_id(str(user), agent.salesforce_user_id):
                raise ProtocolError(
                    "WRONG_USER",
                    f"this console is Salesforce user {user}; the token's agent is linked to "
                    f"{agent.salesforce_user_id}",
                    CLOSE_FORBIDDEN,
                )
            session = hello.get("session")
            if not isinstance(session, str) or not 1 <= len(session) <= 100:
                raise ProtocolError("INVALID_HELLO", "hello.session must be a short string")
            conn = _Connection(
                websocket,
                principal.account_id,
                principal.agent_id,
                agent.salesforce_user_id,
                session,
            )
            try:
                await hub.open(conn, hello)
            except DomainError as exc:  # e.g. the agent was removed in between
                raise ProtocolError(exc.code, exc.message, CLOSE_NOT_FOUND) from exc
            statuses = await hub.run(engine.get_presence_statuses, conn.account_id)
            await conn.send(
                {
                    "type": "welcome",
                    "protocol": PROTOCOL_VERSION,
                    "agent_id": conn.agent_id,
                    "salesforce_user_id": conn.salesforce_user_id,
                    "session": session,
                    "snapshot_seq": conn.snapshot_seq,
                    "presence_statuses": [
                        {"id": s.id, "developer_name": s.developer_name, "label": s.label}
                        for s in statuses
                    ],
                }
            )
            log.info("bridge connected: %s/%s session %s", conn.account_id, conn.agent_id, session)
            while True:
                message = await _receive(websocket)
                kind = message.get("type")
                if kind == "event":
                    await conn.send(await hub.handle_event(conn, message))
                elif kind == "ack":
                    await hub.handle_ack(conn, message)
                elif kind == "degraded":
                    await hub.handle_degraded(conn, message)
                elif kind == "ping":
                    await conn.send({"type": "pong"})
                else:
                    raise ProtocolError("UNKNOWN_MESSAGE", f"unknown message type {kind!r}")
        except ProtocolError as exc:
            if conn is not None:
                await conn.flush()
                conn.stop_writer()
            if websocket.client_state is WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    await websocket.send_text(
                        fastjson.dumps({"type": "error", "code": exc.code, "message": exc.message})
                    )
            await _close(websocket, exc.close_code, exc.code)
        except (WebSocketDisconnect, TimeoutError):
            pass
        except Exception:  # never let one console take the server down; it will reconnect
            log.exception("bridge connection failed")
            await _close(websocket, 1011, "internal error")
        finally:
            if conn is not None:
                conn.stop_writer()
                await hub.close(conn)
                log.info("bridge closed: %s/%s", conn.account_id, conn.agent_id)

    return endpoint


async def bridge_js(request: Request) -> Response:
    # Served with no caching so that consoles pick up a new bridge on their next reload.
    return FileResponse(
        BRIDGE_JS_FILE,
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"},
    )


def install(app: FastAPI, engine: Engine, hub: BridgeHub) -> None:
    """Add the bridge WebSocket and /static/bridge.js (ahead of any /static mount)."""
    app.router.routes.insert(0, WebSocketRoute(BRIDGE_PATH, bridge_endpoint(engine, hub)))
    app.router.routes.insert(0, Route(BRIDGE_JS_PATH, bridge_js, methods=["GET", "HEAD"]))
    app.state.bridge_hub = hub


__all__ = [
    "BRIDGE_PATH",
    "BridgeHub",
    "bridge_endpoint",
    "channel_of",
    "install",
    "snapshot_from_hello",
]
