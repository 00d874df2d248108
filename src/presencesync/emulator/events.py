"""Fan-out of Omni-Channel events to the consoles connected for each user.

Runs on the app's event loop: publish() is called from request handlers after their
transaction committed, and puts each event on every subscribed console's queue. `seq` grows
per user and survives restarts (it is kept in the store), so a console can order what it sees.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from presencesync.emulator.omni import OmniEvent
from presencesync.emulator.store import Store


class EventHub:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}

    def subscribe(self, user_id: str) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._subscribers.setdefault(user_id, set()).add(queue)
        return queue

    def unsubscribe(self, user_id: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        queues = self._subscribers.get(user_id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._subscribers[user_id]

    def connected(self, user_id: str) -> int:
        return len(self._subscribers.get(user_id, ()))

    def publish(self, events: Iterable[OmniEvent]) -> None:
        for event in events:
            seq = self.store.next_serial(f"console_seq:{event.user_id}")
            message = {"type": "event", "name": event.name, "params": event.params, "seq": seq}
            for queue in list(self._subscribers.get(event.user_id, ())):
                queue.put_nowait(message)
