"""Change Data Capture in the running server: per account with the `change_data_capture` setting
on, a subscription to `/data/UserServicePresenceChangeEvent` and `/data/AgentWorkChangeEvent`
over the Pub/Sub API, whose events the engine applies as Salesforce-side observations
(docs/change-data-capture.md).

`ChangeDataCaptureRunner` (a background runner: `run()` until `stop()`, built by
`presencesync.bootstrap.runners`) looks every `poll_seconds` for the accounts that want it and
runs one `AccountSubscription` each, if it gets the account's lock (`store.locks`: a PostgreSQL
advisory lock, so of several `serve` processes on one database exactly one subscribes per
account, and another takes over when it dies). It reports each subscription's state in
`cdc_subscriptions` for the admin page, and restarts a failed one after a pause.

An `AccountSubscription` logs in with the account's stored Salesforce connection (an
`AsyncSalesforceClient`, the same the REST readers use), and per topic:

    PubSubSubscriber (flow control, reconnects, replay store)
      -> a bounded queue (the subscriber asks for more only while it has room)
      -> ChangeAssembler (service/change_events.py: change events -> core events)
      -> engine.submit_many (source "cdc", source_id "cdc:<event id>:...": a redelivered event
         is applied once)
      -> subscriber.confirm(the last settled event): the replay id is saved (`pubsub_replay`)
         only once the engine has committed what came before it.

A fresh subscription (no replay id stored) starts at LATEST and reads the current state over
REST once the stream is up; a replay id Salesforce refuses (older than the 72 h retention) and
a GAP_* event do the same, and the stream goes on from LATEST.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from presencesync.domain import DomainError, OpenWork
from presencesync.salesforce import (
    AsyncSalesforceClient,
    SalesforceCredentials,
    SalesforceError,
    current_presences,
    open_work,
    record_owners,
)
from presencesync.salesforce.pubsub import (
    DEFAULT_TARGET,
    TOPIC_AGENT_WORK,
    TOPIC_USER_SERVICE_PRESENCE,
    ChangeEvent,
    PubSubSubscriber,
    StreamGap,
)
from presencesync.service.change_events import (
    HOLD_SECONDS,
    PRESENCE,
    WORK,
    ChangeAssembler,
    Directory,
    Observation,
    Resync,
)
from presencesync.service.model import CdcStatus, SalesforceView, utcnow
from presencesync.service.ports import CdcEngine
from presencesync.store.locks import HeldLock, try_lock
from presencesync.store.replay import SqlReplayStore

log = logging.getLogger(__name__)

SOURCE = "cdc"
TOPICS = {TOPIC_USER_SERVICE_PRESENCE: PRESENCE, TOPIC_AGENT_WORK: WORK}
POLL_SECONDS = 5.0
QUEUE_SIZE = 200  # change events taken from a subscriber and not applied yet, per topic
BATCH = 500  # change events applied in one go (shared transactions)
DIRECTORY_SECONDS = 30.0  # how old the account's statuses and agents may get
STATUS_SECONDS = 2.0  # how often a subscription writes its state row
RESTART_SECONDS = (5.0, 30.0, 120.0, 300.0)  # pauses after a subscription failed, growing
# A change seen over CDC for an agent whose console is connected waits this long, so that the
# bridge, the quicker channel (reason, command id), normally reports it first and CDC only
# confirms it; applied after the wait, it is a change the bridge missed (drift).
BRIDGE_LEAD_SECONDS = 1.0
# After (re)subscribing at LATEST, read over REST this long after the stream answered, so that
# a change committed around the subscription's start is in one or the other.
STREAM_SETTLE_SECONDS = 0.5

ClientFactory = Callable[[Any], Any]


def default_client_factory(connection: Any) -> AsyncSalesforceClient:
    credentials = SalesforceCredentials.from_connection(connection)
    return AsyncSalesforceClient(credentials, verify=getattr(connection, "verify", True))


@dataclass(frozen=True)
class Endpoint:
    target: str  # host:port
    secure: bool


def pubsub_endpoint(value: str | None) -> Endpoint:
    """`host:port` (TLS), `grpcs://host:port` (TLS) or `grpc://host:port` (plaintext: the
    emulator); None: Salesforce's api.pubsub.salesforce.com:7443. Raises ValueError."""
    if value is None or not value.strip():
        return Endpoint(DEFAULT_TARGET, True)
    text = value.strip()
    secure = True
    for scheme, tls in (("grpcs://", True), ("grpc://", False)):
        if text.startswith(scheme):
            text, secure = text[len(scheme) :], tls
            break
    host, _, port = text.rstrip("/").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in host:
        raise ValueError(
            f"not a Pub/Sub API endpoint: {value!r} (host:port, grpcs://host:port or "
            "grpc://host:port)"
        )
    return Endpoint(f"{host}:{port}", secure)


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# --- reading the current state over REST -------------------------------------------------------


async def reconcile_over_rest(engine: CdcEngine, account_id: str, client: Any) -> int:
    """The current presence and open work of every linked agent, read over REST and applied
    where the engine's snapshot disagrees (as `POST /omni/reconcile` does). Agents with a
    command of ours on its way are left out: their REST view may predate it. Returns how many
    agents were corrected."""
    records = await asyncio.to_thread(_linked_records, engine, account_id)
    users = [r.salesforce_user_id for r in records if not r.snapshot.pending]
    if not users:
        return 0
    presences = await current_presences(client, users)
    work = await open_work(client, users)
    status_of = {p.user_id: p.presence_status for p in presences}
    work_of: dict[str, list[OpenWork]] = defaultdict(list)
    for item in work:
        work_of[item.user_id].append(OpenWork(item.id, item.status == "Opened", item.channel))
    views = [SalesforceView(u, status_of.get(u), tuple(work_of[u])) for u in users]
    applied = await asyncio.to_thread(engine.reconcile, account_id, views)
    return len(applied)


def _linked_records(engine: CdcEngine, account_id: str) -> list[Any]:
    records: list[Any] = []
    after: str | None = None
    while True:
        page = engine.list_agents(account_id, limit=500, after=after)
        records.extend(r for r in page if r.salesforce_user_id)
        if len(page) < 500:
            return records
        after = page[-1].agent_id


# --- one account -------------------------------------------------------------------------------


class AccountSubscription:
    """Both topics of one account, until `stop()` or a fatal error (raised by `run()`)."""

    def __init__(
        self,
        engine: CdcEngine,
        account_id: str,
        *,
        client_factory: ClientFactory = default_client_factory,
        holder: str | None = None,
        hold_seconds: float = HOLD_SECONDS,
        bridge_lead: float = BRIDGE_LEAD_SECONDS,
        subscriber_options: dict[str, Any] | None = None,
    ) -> None:
        self.engine = engine
        self.account_id = account_id
        self.bridge_lead = bridge_lead
        self.client_factory = client_factory
        self.holder = holder or holder_name()
        self.hold_seconds = hold_seconds
        self.subscriber_options = dict(subscriber_options or {})
        self.subscribers: dict[str, PubSubSubscriber] = {}
        self.applied = 0  # change events applied (observations committed)
        self.last_event_at: datetime | None = None
        self.reconciles = 0
        self.started_at = utcnow()
        self._directory: Directory | None = None
        self._directory_at = 0.0
        self._client: Any = None
        self._stopping = asyncio.Event()
        self._reconcile_task: asyncio.Task[None] | None = None
        self._status_at = 0.0
        self._state = "starting"
        self._detail: str | None = None
        self._caught_up = False  # the first read over REST is done (or was not needed)

    # --- lifecycle ------------------------------------------------------------------------------

    async def run(self) -> None:
        connection = await asyncio.to_thread(self.engine.get_salesforce_connection, self.account_id)
        if connection is None:
            raise RuntimeError("no Salesforce connection is stored for this account")
        endpoint = pubsub_endpoint(getattr(connection, "pubsub_endpoint", None))
        roots = _root_certificates(getattr(connection, "verify", True)) if endpoint.secure else None
        self._client = self.client_factory(connection)
        store = SqlReplayStore(self.engine.db, self.account_id)
        fresh = False
        for topic in TOPICS:
            fresh = fresh or (await store.load(topic)) is None
            options: dict[str, Any] = {"start": "LATEST", "after_gap": "LATEST"}
            options.update(self.subscriber_options)  # (a benchmark reads a backlog: EARLIEST)
            self.subscribers[topic] = PubSubSubscriber(
                self._client,
                topic,
                target=endpoint.target,
                secure=endpoint.secure,
                root_certificates=roots,
                replay_store=store,
                on_gap=self._on_gap,
                auto_confirm=False,
                **options,
            )
        await self._report("starting", None, force=True)
        tasks = [
            asyncio.create_task(self._follow(topic, sub), name=f"cdc {self.account_id} {topic}")
            for topic, sub in self.subscribers.items()
        ]
        if fresh:
            # Nothing stored: the streams start at LATEST; what happened before is read once
            # they are up (until then the subscription reports itself "starting").
            self._schedule_reconcile("first subscription", wait_for_streams=True)
        else:
            self._caught_up = True
        stopper = asyncio.create_task(self._stopping.wait())
        try:
            done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stopper and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            stopper.cancel()
            for task in tasks:
                task.cancel()
            for task in [*tasks, stopper]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if self._reconcile_task is not None:
                self._reconcile_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._reconcile_task
            for sub in self.subscribers.values():
                with contextlib.suppress(Exception):
                    await sub.close()
            with contextlib.suppress(Exception):
                await _close(self._client)

    def stop(self) -> None:
        self._stopping.set()

    @property
    def streaming(self) -> bool:
        return bool(self.subscribers) and all(s.streaming for s in self.subscribers.values())

    # --- one topic ------------------------------------------------------------------------------

    async def _follow(self, topic: str, subscriber: PubSubSubscriber) -> None:
        queue: asyncio.Queue[ChangeEvent | BaseException] = asyncio.Queue(QUEUE_SIZE)

        async def pump() -> None:
            try:
                async for event in subscriber.events():
                    await queue.put(event)
            except asyncio.CancelledError:
                raise
            except BaseException as error:  # fatal: hand it to the consumer
                await queue.put(error)

        pumping = asyncio.create_task(pump(), name=f"cdc pump {topic}")
        assembler = ChangeAssembler(window=self.hold_seconds)
        waiting: list[tuple[float, Observation]] = []  # (apply at, observation), in order
        confirmed: ChangeEvent | None = None
        try:
            while True:
                next_due = waiting[0][0] if waiting else None
                batch = await self._next_batch(queue, assembler, next_due)
                outputs = []
                if batch:
                    await self._learn_owners(assembler, batch, TOPICS[topic])
                directory = await self._current_directory(batch, assembler)
                for event in batch:
                    outputs += assembler.add(event, time.monotonic(), directory)
                outputs += assembler.due(time.monotonic(), directory)
                await self._apply(await self._let_the_bridge_lead(outputs, waiting, assembler))
                mark = assembler.confirmable()
                if mark is not None and mark is not confirmed:
                    await subscriber.confirm(mark)
                    confirmed = mark
                await self._report_progress()
        finally:
            pumping.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pumping

    async def _let_the_bridge_lead(
        self,
        outputs: list[Observation | Resync],
        waiting: list[tuple[float, Observation]],
        assembler: ChangeAssembler,
    ) -> list[Observation | Resync]:
        """Hold back observations of agents whose console is connected for `bridge_lead`
        seconds (and anything later of the same agents, to keep their order); return what is
        to be applied now, including held-back observations whose time has come."""
        now = time.monotonic()
        fresh = [o for o in outputs if isinstance(o, Observation)]
        if fresh and self.bridge_lead > 0:
            agents = {o.agent_id for o in fresh}
            connected = await asyncio.to_thread(
                self.engine.consoles_connected, self.account_id, agents
            )
        else:
            connected = set()
        ready: list[Observation | Resync] = []
        while waiting and waiting[0][0] <= now:
            _due, observation = waiting.pop(0)
            assembler.applied(observation)
            ready.append(observation)
        behind = {o.agent_id for _, o in waiting}
        for output in outputs:
            if isinstance(output, Observation) and (
                output.agent_id in connected or output.agent_id in behind
            ):
                assembler.defer(output)
                waiting.append((now + self.bridge_lead, output))
                behind.add(output.agent_id)
            else:
                ready.append(output)
        return ready

    async def _next_batch(
        self,
        queue: asyncio.Queue[ChangeEvent | BaseException],
        assembler: ChangeAssembler,
        next_due: float | None = None,
    ) -> list[ChangeEvent]:
        """What is queued (up to BATCH); if nothing is, wait for the next event, or for a held
        logout's window, or a held-back observation's time, or the next status report."""
        batch: list[ChangeEvent] = []
        if queue.empty():
            deadlines = [d for d in (assembler.next_deadline(), next_due) if d is not None]
            timeout = STATUS_SECONDS
            if deadlines:
                timeout = max(0.0, min(timeout, min(deadlines) - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                batch.append(_checked(await asyncio.wait_for(queue.get(), timeout)))
        while len(batch) < BATCH and not queue.empty():
            batch.append(_checked(queue.get_nowait()))
        return batch

    async def _learn_owners(
        self, assembler: ChangeAssembler, batch: list[ChangeEvent], sobject: str
    ) -> None:
        """Updates carry no UserId: read the owners of rows we never saw created."""
        needed = sorted(assembler.owners_needed_in(batch))
        if not needed:
            return
        try:
            owners = await record_owners(self._client, sobject, needed)
        except (SalesforceError, OSError) as error:
            # Those changes cannot be given to anyone: read the state over REST instead.
            log.warning("cdc %s: reading %s owners failed: %s", self.account_id, sobject, error)
            self._schedule_reconcile(f"owners of {sobject} rows unknown")
            return
        for record_id, user_id in owners.items():
            assembler.learn_owner(record_id, user_id)

    async def _current_directory(
        self, batch: list[ChangeEvent], assembler: ChangeAssembler
    ) -> Directory:
        stale = time.monotonic() - self._directory_at > DIRECTORY_SECONDS
        if self._directory is not None and not stale:
            users = {
                str(e.fields.get("UserId") or "")[:15] for e in batch if e.fields.get("UserId")
            }
            unknown = users - set(self._directory.agents)
            # Someone linked an agent or fetched statuses a moment ago: look again (at most
            # once a second).
            stale = bool(unknown) and time.monotonic() - self._directory_at > 1.0
        if self._directory is None or stale:
            statuses = await asyncio.to_thread(self.engine.get_presence_statuses, self.account_id)
            agents = await asyncio.to_thread(self.engine.linked_users, self.account_id)
            self._directory = Directory.build({s.id: s.developer_name for s in statuses}, agents)
            self._directory_at = time.monotonic()
        return self._directory

    async def _apply(self, outputs: Sequence[Observation | Resync]) -> None:
        observations = [o for o in outputs if isinstance(o, Observation)]
        for output in outputs:
            if isinstance(output, Resync):
                self._schedule_reconcile(output.reason)
        if not observations:
            return
        now = utcnow()
        items = [
            (self.account_id, o.agent_id, replace(o.event, at=now), SOURCE, o.source_id)
            for o in observations
        ]
        results = await asyncio.to_thread(self.engine.submit_many, items)
        for observation, result in zip(observations, results, strict=True):
            if isinstance(result, DomainError):
                # The agent went away, or the rules refused it: nothing to retry.
                log.warning(
                    "cdc %s/%s: %s not applied: %s",
                    self.account_id,
                    observation.agent_id,
                    type(observation.event).__name__,
                    result,
                )
            elif isinstance(result, Exception):
                raise result  # the store failed: nothing is confirmed, it comes again
        self.applied += len(observations)
        self.last_event_at = now

    # --- reconciling over REST ----------------------------------------------------------------

    async def _on_gap(self, gap: StreamGap) -> None:
        log.warning("cdc %s: %s on %s: %s", self.account_id, gap.reason, gap.topic, gap.detail)
        self._schedule_reconcile(f"{gap.reason} on {gap.topic}", wait_for_streams=True)

    def _schedule_reconcile(self, reason: str, *, wait_for_streams: bool = False) -> None:
        if self._reconcile_task is not None and not self._reconcile_task.done():
            return  # one is on its way and reads after this moment anyway
        self._reconcile_task = asyncio.create_task(
            self._reconcile(reason, wait_for_streams), name=f"cdc reconcile {self.account_id}"
        )

    async def _reconcile(self, reason: str, wait_for_streams: bool) -> None:
        if wait_for_streams:
            # Read after the new stream is up, so that no change falls between the two.
            for _ in range(600):
                if self.streaming or self._stopping.is_set():
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(STREAM_SETTLE_SECONDS)
        try:
            corrected = await reconcile_over_rest(self.engine, self.account_id, self._client)
        except (SalesforceError, OSError) as error:
            log.warning("cdc %s: reconcile (%s) failed: %s", self.account_id, reason, error)
            return
        finally:
            self._caught_up = True
        self.reconciles += 1
        log.info(
            "cdc %s: reconciled over REST (%s): %d corrected", self.account_id, reason, corrected
        )

    # --- state for the admin page ---------------------------------------------------------------

    async def _report_progress(self) -> None:
        if self.streaming and self._caught_up:
            state, detail = "streaming", None
        else:
            errors = [s.stats.last_error for s in self.subscribers.values() if s.stats.last_error]
            state = "retrying" if errors else "starting"
            detail = "; ".join(e for e in errors if e) or None
        await self._report(state, detail)

    async def _report(self, state: str, detail: str | None, *, force: bool = False) -> None:
        now = time.monotonic()
        changed = (state, detail) != (self._state, self._detail)
        if not (force or changed or now - self._status_at >= STATUS_SECONDS):
            return
        self._state, self._detail, self._status_at = state, detail, now
        status = CdcStatus(
            self.account_id,
            self.holder,
            state,
            detail,
            self.applied,
            self.last_event_at,
            self.started_at,
            utcnow(),
        )
        try:
            await asyncio.to_thread(self.engine.save_cdc_status, status)
        except Exception as error:  # the state row is for people: never stop for it
            log.warning("cdc %s: saving the subscription state failed: %s", self.account_id, error)


def _checked(item: ChangeEvent | BaseException) -> ChangeEvent:
    if isinstance(item, BaseException):
        raise item
    return item


def _root_certificates(verify: Any) -> bytes | None:
    """The connection's CA file (a private CA, the emulator's self-signed certificate) also
    verifies the Pub/Sub endpoint; otherwise gRPC's own roots."""
    if isinstance(verify, str) and verify and Path(verify).is_file():
        return Path(verify).read_bytes()
    return None


async def _close(client: Any) -> None:
    closer = getattr(client, "aclose", None) or getattr(client, "close", None)
    if closer is not None:
        result = closer()
        if asyncio.iscoroutine(result):
            await result


# --- every account ---------------------------------------------------------------------------


@dataclass
class _Running:
    subscription: AccountSubscription
    lock: HeldLock
    task: asyncio.Task[None]


class ChangeDataCaptureRunner:
    """Runs one `AccountSubscription` per account that wants Change Data Capture, where this
    process holds the account's lock (see the module docstring)."""

    def __init__(
        self,
        engine: CdcEngine,
        *,
        client_factory: ClientFactory = default_client_factory,
        poll_seconds: float | None = None,
        hold_seconds: float = HOLD_SECONDS,
        bridge_lead: float = BRIDGE_LEAD_SECONDS,
        subscriber_options: dict[str, Any] | None = None,
        holder: str | None = None,
    ) -> None:
        self.engine = engine
        self.bridge_lead = bridge_lead
        self.client_factory = client_factory
        if poll_seconds is None:
            poll_seconds = float(os.environ.get("PRESENCESYNC_CDC_POLL_SECONDS", POLL_SECONDS))
        self.poll_seconds = poll_seconds
        self.hold_seconds = hold_seconds
        self.subscriber_options = subscriber_options
        self.holder = holder or holder_name()
        self.running: dict[str, _Running] = {}
        self._failures: dict[str, tuple[int, float]] = {}  # account -> (count, retry after)
        self._stopping = False
        self._wake: asyncio.Event | None = None

    async def run(self) -> None:
        self._wake = asyncio.Event()
        try:
            while not self._stopping:
                try:
                    await self.run_once()
                except Exception:
                    log.exception("change data capture: looking for accounts failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                self._wake.clear()
        finally:
            for account_id in list(self.running):
                await self._stop_account(account_id)

    async def run_once(self) -> None:
        wanted = set(await asyncio.to_thread(self.engine.change_data_capture_accounts))
        for account_id in list(self.running):
            entry = self.running[account_id]
            if entry.task.done():
                await self._finished(account_id)
            elif account_id not in wanted:
                await self._stop_account(account_id, state="stopped", detail="turned off")
            elif not await asyncio.to_thread(entry.lock.alive):
                await self._stop_account(account_id, state="stopped", detail="lost its lock")
        now = time.monotonic()
        for account_id in sorted(wanted - set(self.running)):
            _count, retry_at = self._failures.get(account_id, (0, 0.0))
            if now < retry_at:
                continue
            lock = await asyncio.to_thread(try_lock, self.engine.db, f"cdc:{account_id}")
            if lock is None:
                continue  # another process subscribes for this account
            self._start(account_id, lock)

    def wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self.wake()

    def _start(self, account_id: str, lock: HeldLock) -> None:
        subscription = AccountSubscription(
            self.engine,
            account_id,
            client_factory=self.client_factory,
            holder=self.holder,
            hold_seconds=self.hold_seconds,
            bridge_lead=self.bridge_lead,
            subscriber_options=self.subscriber_options,
        )
        task = asyncio.create_task(subscription.run(), name=f"cdc {account_id}")
        task.add_done_callback(lambda _t: self.wake())
        self.running[account_id] = _Running(subscription, lock, task)
        log.info("change data capture: subscribing for account %s", account_id)

    async def _finished(self, account_id: str) -> None:
        entry = self.running.pop(account_id)
        entry.lock.release()
        error = entry.task.exception() if not entry.task.cancelled() else None
        count, _ = self._failures.get(account_id, (0, 0.0))
        pause = RESTART_SECONDS[min(count, len(RESTART_SECONDS) - 1)]
        self._failures[account_id] = (count + 1, time.monotonic() + pause)
        detail = f"{type(error).__name__}: {error}" if error else "ended"
        log.warning(
            "change data capture for %s stopped (%s); again in %ss", account_id, detail, pause
        )
        await self._save(entry.subscription, "failed", f"{detail} (again in {pause:.0f} s)")

    async def _stop_account(
        self, account_id: str, *, state: str = "stopped", detail: str | None = None
    ) -> None:
        entry = self.running.pop(account_id, None)
        if entry is None:
            return
        entry.subscription.stop()
        try:
            await asyncio.wait_for(asyncio.shield(entry.task), 10)
        except BaseException:
            entry.task.cancel()
            with contextlib.suppress(BaseException):
                await entry.task
        entry.lock.release()
        self._failures.pop(account_id, None)
        await self._save(entry.subscription, state, detail)

    async def _save(
        self, subscription: AccountSubscription, state: str, detail: str | None
    ) -> None:
        status = CdcStatus(
            subscription.account_id,
            subscription.holder,
            state,
            detail,
            subscription.applied,
            subscription.last_event_at,
            subscription.started_at,
            utcnow(),
        )
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.engine.save_cdc_status, status)


__all__ = [
    "AccountSubscription",
    "ChangeDataCaptureRunner",
    "Endpoint",
    "default_client_factory",
    "holder_name",
    "pubsub_endpoint",
    "reconcile_over_rest",
]
