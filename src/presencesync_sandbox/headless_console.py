"""A headless Salesforce console with our bridge in it, in Python: the agent's open console tab,
without a browser.

It does what `presencesync/web/static/bridge.js` does in an agent's browser: it speaks the
emulator's console WebSocket (`/emulator/v1/users/{user_id}/console`: the Omni-Channel toolkit's
calls and events), through the emulator's own client of it
(`presencesync_emulator.console_client.ConsoleClient`), on one side, and our bridge WebSocket
(`/api/v1/bridge`, docs/bridge-protocol.md) on the other, reconnecting both with backoff. The
demo runs one per agent (`--consoles headless`); tests and benchmarks use it to stand in for the
agent's open console tab.

    console = HeadlessConsole(emulator_url, "005...", server_url, agent_token)
    task = asyncio.create_task(console.run())
    await console.wait_ready()
    ...
    await console.stop()

`HeadlessConsoles` (or `start_headless_consoles()`) runs several on a background thread (for
synchronous tests and the demo).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from presencesync_emulator.console_client import ConsoleClient as ConsoleSocket
from presencesync_emulator.console_client import ToolkitCallError

log = logging.getLogger("presencesync_sandbox.headless_console")

EVENT_PREFIX = "lightning:omniChannel"
# The toolkit events the bridge forwards (WorkloadChanged and the like are of no use to the core).
FORWARDED = frozenset(
    {
        "LoginSuccess",
        "StatusChanged",
        "Logout",
        "WorkAssigned",
        "WorkAccepted",
        "WorkDeclined",
        "WorkClosed",
    }
)
# `reason`s of a status change that a toolkit call (ours) causes.
TOOLKIT_REASONS = frozenset({"OmniToolkitStatusChange", "OmniLoginStatusChange"})
# lightning:omniChannelLogout `reason`s that mean another console of the user took Omni over.
DUPLICATE_LOGIN_REASONS = frozenset({"DuplicateLogin", "DuplicateLoginInSameBrowser"})
# A bridge-made event: work the bridge had seen that getAgentWorks no longer lists.
WORK_GONE = "presencesync:workGone"
# Close codes after which reconnecting with the same token is pointless.
FATAL_CLOSE_CODES = frozenset({4401, 4403, 4404, 4409})
MAX_UNACKED = 1000
MAX_REMEMBERED_COMMANDS = 256

_NETWORK_ERRORS = (OSError, ConnectionClosed, InvalidHandshake, InvalidURI, TimeoutError, EOFError)


class BridgeRefused(Exception):
    """The server refused this console for good (bad token, wrong user, replaced)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class ConsoleStats:
    console_connects: int = 0
    bridge_connects: int = 0
    events_seen: int = 0
    events_sent: int = 0
    events_acked: int = 0
    ack_outcomes: dict[str, int] = field(default_factory=dict)
    commands_received: int = 0
    commands_executed: int = 0
    commands_repeated: int = 0
    command_failures: int = 0


@dataclass
class _Expectation:
    """The echo we expect from the command being run, so its events carry its command id."""

    command_id: str
    kind: str
    status_id: str | None


def _same_id(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and bool(a) and a[:15] == b[:15]


def _ws_base(url: str) -> str:
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def parse_agent_works(result: Any) -> list[dict[str, Any]]:
    """getAgentWorks resolves to `{works: <JSON string of a list>}` in Lightning; accept a list
    too. Returns the open work as the bridge's hello lists it."""
    works: Any = result.get("works") if isinstance(result, dict) else result
    if isinstance(works, str):
        try:
            works = json.loads(works)
        except ValueError:
            works = []
    items: list[dict[str, Any]] = []
    for work in works if isinstance(works, list) else []:
        if not isinstance(work, dict) or not isinstance(work.get("workId"), str):
            continue
        accepted = bool(
            work.get("isEngaged") or work.get("isAccepted") or work.get("status") == "Opened"
        )
        items.append(
            {
                "work_id": work["workId"],
                "work_item_id": work.get("workItemId"),
                "accepted": accepted,
            }
        )
    return items


class HeadlessConsole:
    def __init__(
        self,
        emulator_url: str,
        salesforce_user_id: str,
        server_url: str,
        token: str,
        *,
        session: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        backoff_initial: float = 0.05,
        backoff_max: float = 2.0,
        name: str | None = None,
        browser: str | None = None,
        toolkit_timeout: float = 5.0,
        probe_interval: float = 2.0,
        work_check_delay: float = 0.3,
    ) -> None:
        self.emulator_url = emulator_url
        self.salesforce_user_id = salesforce_user_id
        self.bridge_url = f"{_ws_base(server_url)}/api/v1/bridge"
        self.token = token
        self.session = session or uuid.uuid4().hex
        self.ssl_context = ssl_context
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.name = name or salesforce_user_id
        self.stats = ConsoleStats()
        self.refused: BridgeRefused | None = None
        # The browser this console runs in: two consoles of one user in the same browser are
        # tabs (DuplicateLoginInSameBrowser when one takes Omni over from the other).
        self.browser = browser or uuid.uuid4().hex
        # A toolkit call that neither resolves nor rejects is given up after this long.
        self.toolkit_timeout = toolkit_timeout
        self.probe_interval = probe_interval
        self.work_check_delay = work_check_delay
        # Why this console cannot drive Omni now (None: it can): "connection_error",
        # "toolkit_unresponsive", "displaced".
        self.degraded: str | None = None
        self._work: dict[str, bool] = {}  # open work seen (work id -> accepted)
        self._probe: asyncio.Task[None] | None = None
        self._closing: asyncio.Future[None] | None = None
        self._work_check: asyncio.Task[None] | None = None

        self._seq = 0
        self._unacked: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._outgoing: deque[dict[str, Any]] = deque()  # command acks, sent after events
        self._wake = asyncio.Event()
        self._commands: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._queued: set[str] = set()
        self._executed: OrderedDict[str, tuple[bool, str | None]] = OrderedDict()
        self._expect: _Expectation | None = None
        self._status_ids: dict[str, str] = {}  # developer name -> id
        self._status_names: dict[str, str] = {}  # id[:15] -> developer name
        self._online = False

        self._console: ConsoleSocket | None = None
        self._bridge: ClientConnection | None = None
        self._console_ready = asyncio.Event()
        self._ready = asyncio.Event()
        self._bridge_allowed = asyncio.Event()
        self._bridge_allowed.set()
        self._stopping = False
        self._stopped = asyncio.Event()
        # The latest toolkit events seen, for tests and debugging (bounded: the demo runs long).
        self._toolkit_events: deque[tuple[str, dict[str, Any]]] = deque(maxlen=1000)
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- public ------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Both sockets are up and the server has applied our hello."""
        return self._ready.is_set()

    @property
    def unacked(self) -> int:
        return len(self._unacked)

    @property
    def toolkit_events(self) -> list[tuple[str, dict[str, Any]]]:
        """The toolkit events this console saw (name, params), oldest first (the last 1000)."""
        return list(self._toolkit_events)

    async def wait_ready(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def run(self) -> None:
        """Keep the console and the bridge connected (reconnecting with backoff) until stop()."""
        self._loop = asyncio.get_running_loop()
        worker = asyncio.create_task(self._command_worker())
        backoff = self.backoff_initial
        try:
            while not self._stopping:
                console = ConsoleSocket(
                    self.emulator_url,
                    self.salesforce_user_id,
                    ssl_context=self.ssl_context,
                    queue_events=False,  # handled as they come; a demo console runs for days
                    widget=True,  # this console runs the user's Omni-Channel session
                    browser=self.browser,
                )
                console.on("*", self._on_event_message)
                console.on("hello", self._on_console_hello)
                try:
                    hello = await console.connect()
                    backoff = self.backoff_initial
                    await self._console_session(console, hello)
                except (*_NETWORK_ERRORS, ToolkitCallError) as exc:
                    log.debug("console %s: %s", self.name, exc)
                except BridgeRefused as exc:
                    self.refused = exc
                    log.warning("console %s: the server refused the bridge: %s", self.name, exc)
                    break
                finally:
                    self._console = None
                    self._console_ready.clear()
                    self._ready.clear()
                    # Ends the socket's reader, which fails the calls still waiting.
                    with contextlib.suppress(Exception):
                        await console.close()
                if self._stopping:
                    break
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.backoff_max)
        finally:
            for task in (worker, self._probe, self._work_check):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            self._stopped.set()

    async def stop(self) -> None:
        self._stopping = True
        self._bridge_allowed.set()
        for ws in (self._bridge, self._console):
            if ws is not None:
                with contextlib.suppress(Exception):
                    await ws.close()

    async def call(
        self, method: str, params: dict[str, Any] | None = None, timeout: float = 10.0
    ) -> Any:
        """Call one toolkit method (what the widget, or the bridge, does in the browser);
        raises ToolkitCallError (`DISCONNECTED` when the console socket is not there) or
        TimeoutError (the toolkit never answered)."""
        console = self._console
        if console is None:
            raise ToolkitCallError("DISCONNECTED", "console is not connected")
        try:
            return await console.call(method, timeout=timeout, **(params or {}))
        except TimeoutError:
            raise
        except _NETWORK_ERRORS as exc:
            raise ToolkitCallError("DISCONNECTED", str(exc)) from exc

    # Test hooks: what a flaky network does to a console. Safe to call from any thread.

    def kill_sockets(self) -> None:
        """Drop both connections abruptly (no close handshake); the client reconnects."""
        self._in_loop(self._abort_both)

    def pause_bridge(self) -> None:
        """Drop the bridge connection and keep it down (the console stays up) until
        resume_bridge(); toolkit events seen meanwhile wait, unacknowledged."""
        self._in_loop(self._bridge_allowed.clear)
        self._in_loop(self._abort, self._bridge)

    def resume_bridge(self) -> None:
        self._in_loop(self._bridge_allowed.set)

    def _in_loop(self, func: Any, *args: Any) -> None:
        loop = self._loop
        if loop is None:
            func(*args)
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            func(*args)
        else:
            loop.call_soon_threadsafe(func, *args)

    def _abort_both(self) -> None:
        self._abort(self._bridge)
        if self._console is not None:
            self._console.abort()

    @staticmethod
    def _abort(*connections: ClientConnection | None) -> None:
        for ws in connections:
            transport = getattr(ws, "transport", None)
            if transport is not None:
                transport.abort()

    # --- console (toolkit) side --------------------------------------------------------

    def _ssl(self, url: str) -> ssl.SSLContext | None:
        return self.ssl_context if url.startswith("wss:") else None

    async def _console_session(self, console: ConsoleSocket, hello: dict[str, Any]) -> None:
        self._console = console
        self.stats.console_connects += 1
        self._online = bool(hello.get("online"))
        if self.degraded == "displaced" and self._online:
            self.degraded = None  # a fresh console that holds Omni again
        self._learn_status(hello.get("status"))
        self._console_ready.set()
        assert console.closed is not None  # set by connect()
        bridge = asyncio.create_task(self._bridge_loop())
        try:
            done, _ = await asyncio.wait(
                {console.closed, bridge}, return_when=asyncio.FIRST_COMPLETED
            )
            if bridge in done:
                bridge.result()  # re-raise BridgeRefused / network errors
        finally:
            bridge.cancel()
            with contextlib.suppress(asyncio.CancelledError, *_NETWORK_ERRORS):
                await bridge

    def _on_event_message(self, message: dict[str, Any]) -> None:
        self._on_toolkit_event(str(message.get("name")), message.get("params") or {})

    def _on_console_hello(self, hello: dict[str, Any]) -> None:
        """The console's Omni link came back (after a connection error, a maintenance): say
        hello to presencesync again, since events may have been missed (rule 12)."""
        self._online = bool(hello.get("online"))
        self._learn_status(hello.get("status"))
        self.resync()

    def resync(self) -> None:
        """Re-read the toolkit and say hello again (on a new bridge connection). Safe to call
        from any thread."""
        self._in_loop(self._resync)

    def _resync(self) -> None:
        bridge = self._bridge
        if bridge is not None and self.degraded != "displaced":
            self._closing = asyncio.ensure_future(bridge.close(1000, "resync"))

    def _set_degraded(self, reason: str) -> None:
        """Tell presencesync this console cannot drive Omni for now; keep probing the toolkit
        (except when displaced) and say hello again once it answers."""
        if self.degraded == reason:
            return
        self.degraded = reason
        if self._ready.is_set():  # else the next hello's session reports it
            self._outgoing.append({"type": "degraded", "reason": reason})
            self._wake.set()
        if reason != "displaced" and (self._probe is None or self._probe.done()):
            self._probe = asyncio.ensure_future(self._probe_toolkit())

    async def _probe_toolkit(self) -> None:
        while self.degraded in ("connection_error", "toolkit_unresponsive"):
            await asyncio.sleep(self.probe_interval)
            try:
                await self.call("getServicePresenceStatusId", timeout=self.toolkit_timeout)
            except ToolkitCallError as exc:
                if exc.error_code in ("DISCONNECTED", "CONNECTION_ERROR"):
                    continue  # still cut off
            except TimeoutError:
                continue
            # The toolkit answers again (a status, or "offline"): a fresh hello reconciles.
            self.degraded = None
            self._resync()
            return

    def _learn_status(self, info: Any) -> None:
        if isinstance(info, dict):
            sid, name = info.get("statusId"), info.get("statusApiName")
            if isinstance(sid, str) and isinstance(name, str):
                self._status_ids[name] = sid
                self._status_names[sid[:15]] = name

    def _on_toolkit_event(self, name: str, params: dict[str, Any]) -> None:
        self._toolkit_events.append((name, dict(params)))
        short = name.removeprefix(EVENT_PREFIX)
        if short == "ConnectionError":
            self._set_degraded("connection_error")
            return
        if short == "WorkloadChanged":
            try:
                lower = float(params.get("newWorkload", 0)) < float(
                    params.get("previousWorkload", 0)
                )
            except (TypeError, ValueError):
                lower = False
            if lower:
                self._check_work_soon()
            return
        if short not in FORWARDED:
            return
        self._track_work(short, params)
        self.stats.events_seen += 1
        params = dict(params)
        if short == "StatusChanged":
            self._learn_status(params)
            self._online = True
        elif short == "LoginSuccess":
            self._online = True
            known = self._status_names.get(str(params.get("statusId"))[:15])
            if known and "statusApiName" not in params:
                params["statusApiName"] = known  # the real event names only the id
        elif short == "Logout":
            self._online = False
        if short == "StatusChanged" and params.get("reason") == "OmniPushTimeout":
            self._check_work_soon()  # the pushed item timed out: it may be gone silently
        self._forward(name, params, self._tag(short, params))
        if short == "Logout" and params.get("reason") in DUPLICATE_LOGIN_REASONS:
            # Another console of this user took Omni over: it is in charge now. Running our
            # commands here would take Omni back and log that one out in turn.
            self._set_degraded("displaced")

    def _forward(self, name: str, params: dict[str, Any], command_id: str | None) -> None:
        self._seq += 1
        message: dict[str, Any] = {"type": "event", "seq": self._seq, "name": name}
        message["params"] = params
        if command_id is not None:
            message["command_id"] = command_id
        self._unacked[self._seq] = message
        while len(self._unacked) > MAX_UNACKED:
            # A reconnect's snapshot covers what is dropped here.
            self._unacked.popitem(last=False)
        self._wake.set()

    # --- work that goes away without an event ------------------------------------------

    def _track_work(self, short: str, params: dict[str, Any]) -> None:
        work_id = params.get("workId")
        if short == "Logout":
            self._work = {w: accepted for w, accepted in self._work.items() if accepted}
        elif not isinstance(work_id, str):
            return
        elif short == "WorkAssigned":
            self._work.setdefault(work_id, False)
        elif short == "WorkAccepted":
            self._work[work_id] = True
        elif short in ("WorkDeclined", "WorkClosed"):
            self._work.pop(work_id, None)

    def _check_work_soon(self) -> None:
        if self._work and (self._work_check is None or self._work_check.done()):
            self._work_check = asyncio.ensure_future(self._check_work())

    async def _check_work(self) -> None:
        """Salesforce documents no console event for a pushed item that timed out (unless the
        agent's status changes), a canceled or a transferred one: when the workload drops,
        compare the work seen with getAgentWorks and report what is gone."""
        await asyncio.sleep(self.work_check_delay)  # let WorkClosed/WorkDeclined arrive first
        try:
            listed = parse_agent_works(
                await self.call("getAgentWorks", timeout=self.toolkit_timeout)
            )
        except (ToolkitCallError, TimeoutError):
            return  # the next hello reconciles
        present = {w["work_id"] for w in listed}
        for work_id, accepted in list(self._work.items()):
            if work_id not in present:
                del self._work[work_id]
                params = {"workId": work_id, "accepted": accepted}
                self._forward(WORK_GONE, params, None)

    def _tag(self, short: str, params: dict[str, Any]) -> str | None:
        """The command id this presence event echoes, if any (rule 7: reason + command id)."""
        expect = self._expect
        if expect is None or short not in ("LoginSuccess", "StatusChanged", "Logout"):
            return None
        sets_status = expect.kind in ("set_presence", "omni_login")
        if (
            short == "LoginSuccess"
            and sets_status
            and _same_id(params.get("statusId"), expect.status_id)
        ):
            return expect.command_id  # a login: the StatusChanged that follows is ours too
        if (
            short == "StatusChanged"
            and sets_status
            and params.get("reason") in TOOLKIT_REASONS
            and _same_id(params.get("statusId"), expect.status_id)
        ):
            self._expect = None
            return expect.command_id
        if short == "Logout" and expect.kind == "omni_logout":
            self._expect = None
            return expect.command_id
        self._expect = None  # somebody else changed presence: our echo is not coming
        return None

    # --- bridge (server) side ----------------------------------------------------------

    async def _bridge_loop(self) -> None:
        await self._console_ready.wait()
        backoff = self.backoff_initial
        while not self._stopping:
            await self._bridge_allowed.wait()
            try:
                async with connect(
                    self.bridge_url, ssl=self._ssl(self.bridge_url), proxy=None
                ) as bridge:
                    self._bridge = bridge
                    await self._bridge_session(bridge)
            except _NETWORK_ERRORS as exc:
                code = getattr(getattr(exc, "rcvd", None), "code", None)
                if code in FATAL_CLOSE_CODES:
                    reason = getattr(getattr(exc, "rcvd", None), "reason", "")
                    raise BridgeRefused(str(code), reason) from exc
                log.debug("bridge %s: %s", self.name, exc)
            finally:
                self._bridge = None
                if self._ready.is_set():
                    backoff = self.backoff_initial  # it worked until now: retry quickly
                self._ready.clear()
            if self._stopping:
                return
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.backoff_max)

    async def _read_toolkit(self) -> dict[str, Any]:
        """What the hello says, read with bounded toolkit calls: a rejection of
        getServicePresenceStatusId means offline; one of getAgentWorks, or a call that never
        answers, means unknown (`open_work` null, `presence_unknown`): the hello goes out
        anyway with what is known, never waiting for ever."""
        known: dict[str, Any] = {"presence_status": None, "status_id": None}
        unresponsive = False
        try:
            status = await self.call("getServicePresenceStatusId", timeout=self.toolkit_timeout)
        except ToolkitCallError as exc:
            if exc.error_code == "DISCONNECTED":
                raise ConnectionResetError("console gone") from exc
            status = None  # the promise rejects when the agent is offline
        except TimeoutError:
            status, unresponsive = None, True
            known["presence_unknown"] = True
        self._learn_status(status)
        if isinstance(status, dict):
            known["presence_status"] = status.get("statusApiName")
            known["status_id"] = status.get("statusId")
        try:
            works: list[dict[str, Any]] | None = parse_agent_works(
                await self.call("getAgentWorks", timeout=self.toolkit_timeout)
            )
        except ToolkitCallError as exc:
            if exc.error_code == "DISCONNECTED":
                raise ConnectionResetError("console gone") from exc
            works = None  # rejected (e.g. while offline): unknown, not "no work"
        except TimeoutError:
            works, unresponsive = None, True
        known["open_work"] = works
        known["unresponsive"] = unresponsive
        return known

    async def _bridge_session(self, bridge: ClientConnection) -> None:
        snapshot_seq = self._seq  # everything seen so far is in what we are about to read
        read = await self._read_toolkit()
        unresponsive = read.pop("unresponsive")
        if read["open_work"] is not None:
            self._work = {w["work_id"]: bool(w["accepted"]) for w in read["open_work"]}
        await bridge.send(
            json.dumps(
                {
                    "type": "hello",
                    "token": self.token,
                    "session": self.session,
                    "seq": snapshot_seq,
                    "salesforce_user_id": self.salesforce_user_id,
                    **read,
                    "client": "presencesync-console-client/1",
                }
            )
        )
        welcome = json.loads(await asyncio.wait_for(bridge.recv(), 15.0))
        if welcome.get("type") == "error":
            raise BridgeRefused(str(welcome.get("code")), str(welcome.get("message")))
        if welcome.get("type") != "welcome":
            raise ConnectionResetError(f"expected welcome, got {welcome.get('type')!r}")
        for entry in welcome.get("presence_statuses") or []:
            self._learn_status(
                {"statusId": entry.get("id"), "statusApiName": entry.get("developer_name")}
            )
        self.stats.bridge_connects += 1
        if self.degraded in ("connection_error", "toolkit_unresponsive") and not unresponsive:
            self.degraded = None  # this hello read the toolkit: recovered
        # What an earlier connection did not get to send is not news any more.
        self._outgoing = deque(m for m in self._outgoing if m.get("type") != "degraded")
        self._ready.set()
        if unresponsive:
            self.degraded = None
            self._set_degraded("toolkit_unresponsive")
        elif self.degraded is not None:
            self._outgoing.append({"type": "degraded", "reason": self.degraded})
        writer = asyncio.create_task(self._writer(bridge))
        try:
            async for raw in bridge:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "event_ack":
                    if self._unacked.pop(message.get("seq"), None) is not None:
                        self.stats.events_acked += 1
                    outcome = str(message.get("outcome"))
                    self.stats.ack_outcomes[outcome] = self.stats.ack_outcomes.get(outcome, 0) + 1
                elif kind == "command":
                    self._receive_command(message)
                elif kind == "error":
                    log.warning("bridge %s: server error %s", self.name, message)
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, *_NETWORK_ERRORS):
                await writer

    async def _writer(self, bridge: ClientConnection) -> None:
        """Sends unacked events in order (first the replay, then new ones), then command acks."""
        sent_upto = 0
        while True:
            self._wake.clear()
            for seq, message in list(self._unacked.items()):
                if seq > sent_upto:
                    await bridge.send(json.dumps(message))
                    self.stats.events_sent += 1
                    sent_upto = seq
            while self._outgoing:
                await bridge.send(json.dumps(self._outgoing.popleft()))
            await self._wake.wait()

    # --- commands ----------------------------------------------------------------------

    def _receive_command(self, message: dict[str, Any]) -> None:
        self.stats.commands_received += 1
        command_id = message.get("command_id")
        if not isinstance(command_id, str):
            return
        if command_id in self._executed:
            ok, error = self._executed[command_id]
            self.stats.commands_repeated += 1
            self._send_ack(command_id, ok, error)
            return
        if command_id in self._queued:
            self.stats.commands_repeated += 1
            return
        self._queued.add(command_id)
        self._commands.put_nowait(message)

    def _send_ack(self, command_id: str, ok: bool, error: str | None) -> None:
        ack: dict[str, Any] = {"type": "ack", "command_id": command_id, "ok": ok}
        if error is not None:
            ack["error"] = error
        if self._bridge is not None:
            self._outgoing.append(ack)
            self._wake.set()

    async def _command_worker(self) -> None:
        # One command at a time: the toolkit's events can then be matched to the command.
        while True:
            message = await self._commands.get()
            command_id = str(message["command_id"])
            ok, error = await self._execute(message)
            self._queued.discard(command_id)
            self._executed[command_id] = (ok, error)
            while len(self._executed) > MAX_REMEMBERED_COMMANDS:
                self._executed.popitem(last=False)
            self.stats.commands_executed += 1
            if not ok:
                self.stats.command_failures += 1
            self._send_ack(command_id, ok, error)

    async def _execute(self, message: dict[str, Any]) -> tuple[bool, str | None]:
        kind = message.get("kind")
        command_id = str(message["command_id"])
        presence = message.get("presence_status")
        status_id = message.get("status_id") or self._status_ids.get(str(presence))
        if self.degraded == "displaced":
            return False, "DISPLACED: another console of this user took Omni-Channel over"
        try:
            if kind == "omni_logout":
                if not self._online:
                    return True, None  # already offline: the command's goal holds
                self._expect = _Expectation(command_id, "omni_logout", None)
                await self.call("logout")
                return True, None
            if kind not in ("set_presence", "omni_login"):
                return False, f"UNKNOWN_COMMAND: {kind}"
            if not isinstance(status_id, str):
                return False, f"UNKNOWN_STATUS: no status id for {presence!r}"
            self._expect = _Expectation(command_id, str(kind), status_id)
            method = "setServicePresenceStatus" if kind == "set_presence" else "login"
            await self.call(method, {"statusId": status_id})
            return True, None
        except ToolkitCallError as exc:
            self._expect = None
            return False, f"{exc.error_code}: {exc.message}"
        except TimeoutError:
            self._expect = None
            return False, "TIMEOUT: the toolkit did not answer"


class HeadlessConsoles:
    """Several headless consoles on one background thread's event loop (demo, sync tests)."""

    def __init__(self, clients: Iterable[HeadlessConsole]) -> None:
        self.clients = list(clients)
        self.loop = asyncio.new_event_loop()
        self._tasks: list[asyncio.Task[None]] = []
        self._thread = threading.Thread(target=self._run, name="console-clients", daemon=True)
        self._started = threading.Event()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            # Each client's asyncio objects must be created on this loop.
            self._tasks = [asyncio.create_task(c.run()) for c in self.clients]
            self._started.set()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        self.loop.run_until_complete(main())

    def start(self) -> HeadlessConsoles:
        self._thread.start()
        self._started.wait(10)
        return self

    def run_sync(self, coro: Any, timeout: float = 15.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call_soon(self, func: Any, *args: Any) -> None:
        self.loop.call_soon_threadsafe(func, *args)

    def wait_ready(self, timeout: float = 15.0) -> None:
        async def all_ready() -> None:
            await asyncio.gather(*(c.wait_ready(timeout) for c in self.clients))

        self.run_sync(all_ready(), timeout + 1)

    def stop(self, timeout: float = 10.0) -> None:
        if not self._thread.is_alive():
            return

        async def stop_all() -> None:
            await asyncio.gather(*(c.stop() for c in self.clients))

        with contextlib.suppress(Exception):
            self.run_sync(stop_all(), timeout)
        self._thread.join(timeout)


def start_headless_consoles(clients: Iterable[HeadlessConsole]) -> HeadlessConsoles:
    return HeadlessConsoles(clients).start()


__all__ = [
    "BridgeRefused",
    "ConsoleStats",
    "HeadlessConsole",
    "HeadlessConsoles",
    "ToolkitCallError",
    "parse_agent_works",
    "start_headless_consoles",
]
