"""A Python client of the emulator's console WebSocket: what the toolkit JS of the console page
does, for headless consoles (demo, load tests) that run without a browser.

    async with ConsoleClient("http://127.0.0.1:8001", user_id) as console:
        console.on("lightning:omniChannelStatusChanged", lambda params: print(params))
        await console.call("setServicePresenceStatus", statusId="0N5...")
        event = await console.next_event()

Events are delivered to `on(name, ...)` handlers (sync or async) with their params (a "*"
handler gets each whole event message) and queued for `next_event()` (unless
`queue_events=False`: a long-running console that only uses handlers). `widget=True` makes the
client an Omni-Channel console (it owns the user's Omni session; a later one of the same user
takes it over with a DuplicateLogin logout, `browser` telling tabs of one browser apart); a
fresh `hello` from the org mid-session (its Omni link came back) goes to `on("hello", ...)`.
Calls return the toolkit result or raise ToolkitCallError. The client does not reconnect on its
own: `closed` resolves when the socket ends (`close()`, or `abort()` to drop it as a failing
network would); reconnect with a new client. This is the one Python implementation of the
console WebSocket: the sandbox's headless console (`presencesync_sandbox.headless_console`)
is built on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import ssl
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

Handler = Callable[[dict[str, Any]], Awaitable[None] | None]


class ToolkitCallError(Exception):
    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message


def console_url(
    base_url: str, user_id: str, widget: bool = False, browser: str | None = None
) -> str:
    scheme, rest = base_url.rstrip("/").split("://", 1)
    ws_scheme = "wss" if scheme == "https" else "ws"
    url = f"{ws_scheme}://{rest}/emulator/v1/users/{user_id}/console"
    query = {"widget": "1"} if widget else {}
    if browser:
        query["browser"] = browser
    return f"{url}?{urlencode(query)}" if query else url


class ConsoleClient:
    def __init__(
        self,
        base_url: str,
        user_id: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        queue_events: bool = True,
        widget: bool = False,
        browser: str | None = None,
    ) -> None:
        self.url = console_url(base_url, user_id, widget, browser)
        self.user_id = user_id
        self.ssl_context = ssl_context
        self.queue_events = queue_events
        self.hello: dict[str, Any] | None = None
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._handlers: dict[str, list[Handler]] = {}
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._ids = itertools.count(1)
        self.closed: asyncio.Future[None] | None = None

    async def __aenter__(self) -> ConsoleClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self, timeout: float = 10) -> dict[str, Any]:
        """Open the socket and wait for the server's hello (returned, also kept as .hello)."""
        # No proxy from the environment: the console is a direct connection to the org.
        options: dict[str, Any] = {"open_timeout": timeout, "proxy": None}
        if self.url.startswith("wss://"):
            options["ssl"] = self.ssl_context or ssl.create_default_context()
        self._ws = await connect(self.url, **options)
        # JSON from the server: its first message is an object (hello, or an error)
        first: dict[str, Any] = json.loads(await asyncio.wait_for(self._ws.recv(), timeout))
        if first.get("type") != "hello":
            await self._ws.close()
            error = first.get("error") or {}
            raise ToolkitCallError(error.get("errorCode", "NO_HELLO"), error.get("message", ""))
        self.hello = first
        self.closed = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read())
        return first

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def abort(self) -> None:
        """Drop the connection abruptly, without a close handshake (what a failing network
        does; tests use it). Safe only on the client's own event loop."""
        transport = getattr(self._ws, "transport", None)
        if transport is not None:
            transport.abort()

    def on(self, name: str, handler: Handler) -> None:
        plain = name in ("*", "hello") or name.startswith("lightning:")
        key = name if plain else f"lightning:{name}"
        self._handlers.setdefault(key, []).append(handler)

    async def next_event(self, timeout: float = 5) -> dict[str, Any]:
        """The next event message `{"type": "event", "name", "params", "seq"}`."""
        return await asyncio.wait_for(self._events.get(), timeout)

    async def call(self, method: str, timeout: float = 10, **params: Any) -> Any:
        if self._ws is None:
            raise ToolkitCallError("DISCONNECTED", "not connected")
        call_id = f"py{next(self._ids)}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        message = {"type": "call", "id": call_id, "method": method, "params": params}
        try:
            await self._ws.send(json.dumps(message))
            return await asyncio.wait_for(future, timeout)
        finally:
            self._pending.pop(call_id, None)

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "event":
                    await self._dispatch(message)
                elif kind == "hello":
                    self.hello = message
                    for handler in self._handlers.get("hello", ()):
                        outcome = handler(message)
                        if inspect.isawaitable(outcome):
                            await outcome
                elif kind in ("result", "error"):
                    future = self._pending.get(message.get("id"))
                    if future is None or future.done():
                        continue
                    if kind == "result":
                        future.set_result(message.get("result"))
                    else:
                        error = message.get("error") or {}
                        future.set_exception(
                            ToolkitCallError(
                                error.get("errorCode", "UNKNOWN"), error.get("message", "")
                            )
                        )
        except ConnectionClosed:
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ToolkitCallError("DISCONNECTED", "console closed"))
            if self.closed is not None and not self.closed.done():
                self.closed.set_result(None)

    async def _dispatch(self, message: dict[str, Any]) -> None:
        if self.queue_events:
            self._events.put_nowait(message)
        for key in (message["name"], "*"):
            for handler in self._handlers.get(key, ()):
                outcome = handler(message["params"] if key != "*" else message)
                if inspect.isawaitable(outcome):
                    await outcome
