"""Fan-out of Omni-Channel events to the consoles connected for each user.

publish() is called by request handlers after their transaction committed and puts each event
on every subscribed console's queue. A queue belongs to the event loop of its WebSocket; when
publish() runs on another thread (e.g. an in-process test client with its own loop) the put is
handed to that loop, so order is kept either way. `seq` grows per user and survives restarts
(it is kept in the store), so a console can order what it sees.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from presencesync_emulator.omni import OmniEvent
from presencesync_emulator.store import Store

Message = dict[str, Any]


class Subscription:
    """One console socket of a user. A `widget` console runs an Omni-Channel session (the
    console page, a headless console); another console of the same user that opens one while
    the user is online takes Omni over and this one is `displaced` (logged out with a
    DuplicateLogin reason): it then gets no Omni events. `browser` tells two tabs of one browser
    from two browsers. Observers (widget=False) see every event and own nothing."""

    def __init__(self, user_id: str, *, widget: bool = False, browser: str | None = None) -> None:
        self.user_id = user_id
        self.widget = widget
        self.browser = browser
        self.displaced = False
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Message] = asyncio.Queue()

    def put(self, message: Message) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self.queue.put_nowait(message)
        elif not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.queue.put_nowait, message)

    async def get(self) -> Message:
        return await self.queue.get()


class EventHub:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._subscribers: dict[str, set[Subscription]] = {}

    def subscribe(
        self, user_id: str, *, widget: bool = False, browser: str | None = None
    ) -> Subscription:
        """Call from the WebSocket's own event loop."""
        sub = Subscription(user_id, widget=widget, browser=browser)
        self._subscribers.setdefault(user_id, set()).add(sub)
        return sub

    def subscribers(self, user_id: str) -> list[Subscription]:
        return list(self._subscribers.get(user_id, ()))

    def users(self) -> list[str]:
        return list(self._subscribers)

    def send_to(self, sub: Subscription, name: str, params: dict[str, Any]) -> None:
        """An event for one console only (numbered in its user's sequence)."""
        seq = self.store.next_serial(f"console_seq:{sub.user_id}")
        sub.put({"type": "event", "name": name, "params": params, "seq": seq})

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subscribers.get(sub.user_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                self._subscribers.pop(sub.user_id, None)

    def connected(self, user_id: str) -> int:
        return len(self._subscribers.get(user_id, ()))

    def publish(self, events: Iterable[OmniEvent]) -> None:
        for event in events:
            seq = self.store.next_serial(f"console_seq:{event.user_id}")
            message = {"type": "event", "name": event.name, "params": event.params, "seq": seq}
            for sub in list(self._subscribers.get(event.user_id, ())):
                if not sub.displaced:
                    sub.put(message)
