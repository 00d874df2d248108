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
    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
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

    def subscribe(self, user_id: str) -> Subscription:
        """Call from the WebSocket's own event loop."""
        sub = Subscription(user_id)
        self._subscribers.setdefault(user_id, set()).add(sub)
        return sub

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
                sub.put(message)
