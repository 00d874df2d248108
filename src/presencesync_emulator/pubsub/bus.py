"""The emulated org's event bus: durable, ordered, retained for a while, read by subscriptions.

Events live in the org's SQLite store (`emu_event_bus`), written in the same transaction as the
record change they describe, so an event exists if and only if its change committed. The row's
AUTOINCREMENT key is the event's position; its replay id is that number as 8 big-endian bytes
(what Salesforce's ids look like on the wire; clients must treat them as opaque). Positions only
grow and are never reused, also after retention purged old events.

Retention (Salesforce: 72 hours) is applied on every read and publish: older events are deleted
and `purged_through` remembers the newest purged position, so a replay id from before it is
refused (`replayid.corrupted`, the documented error for an id outside the retention window).

Subscriptions wait on `Waiter`s, woken after every commit that published events, from any thread.
Faults for tests (abort every open stream, refuse the next N subscriptions) are kept here too,
so that the control API (HTTP) and the gRPC service share them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from presencesync_emulator.store import Store

DEFAULT_RETENTION_S = 72 * 3600.0
DEFAULT_KEEPALIVE_S = 270.0  # Salesforce: an empty FetchResponse "within 270 seconds"
# Salesforce: with nothing pending, a new FetchRequest is due "within 60 seconds".
DEFAULT_IDLE_TIMEOUT_S = 60.0
MAX_REQUESTED = 100  # Salesforce: at most 100 events requested per Subscribe call

_TABLES = """
CREATE TABLE IF NOT EXISTS emu_event_bus (
    replay INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, event_id TEXT NOT NULL,
    schema_id TEXT NOT NULL, payload BLOB NOT NULL, published_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS ix_event_bus_channel ON emu_event_bus (channel, replay);
CREATE INDEX IF NOT EXISTS ix_event_bus_published ON emu_event_bus (published_at);
"""


def encode_replay(position: int) -> bytes:
    return position.to_bytes(8, "big")


def decode_replay(replay_id: bytes) -> int | None:
    """The position of a replay id of ours, or None when it cannot be one."""
    if len(replay_id) != 8:
        return None
    return int.from_bytes(replay_id, "big")


@dataclass(frozen=True)
class BusEvent:
    position: int
    channel: str
    event_id: str
    schema_id: str
    payload: bytes

    @property
    def replay_id(self) -> bytes:
        return encode_replay(self.position)


class Waiter:
    """An asyncio.Event bound to its loop that any thread may set."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()

    def wake(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self.event.set()
        elif not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self.loop.call_soon_threadsafe(self.event.set)


@dataclass
class Fault:
    """Why a stream is broken by a test: gRPC status name, message, Salesforce error code."""

    status: str = "UNAVAILABLE"
    message: str = "RST_STREAM closed stream. HTTP/2 error code: NO_ERROR"
    error_code: str = "sfdc.platform.eventbus.grpc.service.unavailable"


@dataclass
class StreamState:
    """One open Subscribe stream, as the control API reports it."""

    id: int
    rpc_id: str
    topic: str
    user_id: str
    waiter: Waiter
    requested: int = 0  # total num_requested received (after the cap)
    delivered: int = 0
    keepalives: int = 0
    fetch_requests: int = 0
    opened_at: float = field(default_factory=time.time)
    fault: Fault | None = None

    @property
    def pending(self) -> int:
        return self.requested - self.delivered

    def request(self, num: int) -> None:
        # The server counts at most MAX_REQUESTED outstanding events per call.
        self.requested = self.delivered + min(MAX_REQUESTED, self.pending + max(0, num))
        self.fetch_requests += 1

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rpc_id": self.rpc_id,
            "topic": self.topic,
            "user_id": self.user_id,
            "requested": self.requested,
            "delivered": self.delivered,
            "pending": self.pending,
            "keepalives": self.keepalives,
            "fetch_requests": self.fetch_requests,
        }


class EventBus:
    def __init__(
        self,
        store: Store,
        *,
        retention_s: float = DEFAULT_RETENTION_S,
        keepalive_s: float = DEFAULT_KEEPALIVE_S,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
    ) -> None:
        self.store = store
        self.retention_s = retention_s
        self.keepalive_s = keepalive_s
        self.idle_timeout_s = idle_timeout_s
        with store.lock:
            store.conn.executescript(_TABLES)
        self._lock = threading.Lock()
        self._waiters: set[Waiter] = set()
        self._streams: dict[int, StreamState] = {}
        self._stream_ids = itertools.count(1)
        self._refusals: list[Fault] = []
        self.subscriptions_opened = 0
        self.subscriptions_refused = 0

    # -- writing ----------------------------------------------------------------------------

    def append(self, channel: str, event_id: str, schema_id: str, payload: bytes) -> int:
        """Add an event inside the caller's transaction; subscribers wake after the commit."""
        with self.store.tx() as conn:
            position = conn.execute(
                "INSERT INTO emu_event_bus (channel, event_id, schema_id, payload, published_at) "
                "VALUES (?, ?, ?, ?, ?) RETURNING replay",
                (channel, event_id, schema_id, payload, self._now()),
            ).fetchone()[0]
        self.store.after_commit(self.notify)
        return int(position)

    def notify(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for waiter in waiters:
            waiter.wake()

    # -- reading ----------------------------------------------------------------------------

    def _now(self) -> float:
        moment: datetime = self.store.now()
        return moment.timestamp()

    def purge(self) -> None:
        """Drop events older than the retention period."""
        cutoff = self._now() - self.retention_s
        with self.store.tx() as conn:
            row = conn.execute(
                "SELECT MAX(replay) FROM emu_event_bus WHERE published_at < ?", (cutoff,)
            ).fetchone()
            if row[0] is None:
                return
            conn.execute("DELETE FROM emu_event_bus WHERE replay <= ?", (row[0],))
            conn.execute(
                "INSERT INTO emu_setting (key, value) VALUES ('pubsub_purged_through', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(row[0]),),
            )

    def purged_through(self) -> int:
        return int(self.store.setting("pubsub_purged_through", "0") or 0)

    def tip(self) -> int:
        """The newest position ever assigned (0 when none)."""
        rows = self.store.query("SELECT seq FROM sqlite_sequence WHERE name = 'emu_event_bus'")
        return int(rows[0][0]) if rows else 0

    def read(self, channels: Iterable[str], after: int, limit: int) -> tuple[list[BusEvent], int]:
        """Up to `limit` events of `channels` after position `after`, and the tip seen in the
        same snapshot (so that "nothing for me up to the tip" is exact)."""
        names = tuple(channels)
        marks = ", ".join("?" for _ in names)
        with self.store.lock:
            tip = self.tip()
            rows = self.store.query(
                "SELECT replay, channel, event_id, schema_id, payload FROM emu_event_bus "
                f"WHERE channel IN ({marks}) AND replay > ? AND replay <= ? "
                "ORDER BY replay LIMIT ?",
                (*names, after, tip, limit),
            )
        events = [BusEvent(int(r[0]), r[1], r[2], r[3], bytes(r[4])) for r in rows]
        return events, tip

    def count(self, channels: Iterable[str] | None = None) -> int:
        if channels is None:
            return int(self.store.query("SELECT COUNT(*) FROM emu_event_bus")[0][0])
        names = tuple(channels)
        marks = ", ".join("?" for _ in names)
        return int(
            self.store.query(
                f"SELECT COUNT(*) FROM emu_event_bus WHERE channel IN ({marks})", names
            )[0][0]
        )

    # -- waiting ----------------------------------------------------------------------------

    def add_waiter(self, waiter: Waiter) -> None:
        with self._lock:
            self._waiters.add(waiter)

    def remove_waiter(self, waiter: Waiter) -> None:
        with self._lock:
            self._waiters.discard(waiter)

    # -- streams and faults -------------------------------------------------------------------

    def open_stream(self, rpc_id: str, topic: str, user_id: str) -> StreamState:
        stream = StreamState(next(self._stream_ids), rpc_id, topic, user_id, Waiter())
        with self._lock:
            self._streams[stream.id] = stream
            self.subscriptions_opened += 1
        self.add_waiter(stream.waiter)
        return stream

    def close_stream(self, stream: StreamState) -> None:
        self.remove_waiter(stream.waiter)
        with self._lock:
            self._streams.pop(stream.id, None)

    def streams(self) -> list[StreamState]:
        with self._lock:
            return list(self._streams.values())

    def abort_streams(self, fault: Fault) -> int:
        """Break every open Subscribe stream with `fault`; returns how many."""
        streams = self.streams()
        for stream in streams:
            stream.fault = fault
            stream.waiter.wake()
        return len(streams)

    def refuse_next(self, count: int, fault: Fault) -> None:
        with self._lock:
            self._refusals = [fault] * count

    def take_refusal(self) -> Fault | None:
        with self._lock:
            if not self._refusals:
                return None
            self.subscriptions_refused += 1
            return self._refusals.pop()

    def pending_refusals(self) -> int:
        with self._lock:
            return len(self._refusals)
