"""A Pub/Sub API subscriber for Change Data Capture topics (grpc.aio).

    subscriber = PubSubSubscriber(sf_client, "/data/UserServicePresenceChangeEvent",
                                  replay_store=SqlReplayStore(engine, account_id))
    async with subscriber:
        async for event in subscriber.events():   # ChangeEvent, in stream order
            await apply(event)
            await subscriber.confirm(event)        # optional: asking for the next confirms too

What it does, and why:
- **Auth**: every call carries `accesstoken`, `instanceurl` and `tenantid` (the org id, read from
  the token's identity URL) from our Salesforce client. UNAUTHENTICATED (Salesforce's
  `sfdc.platform.eventbus.grpc.service.auth.error`) makes it log in again and resubscribe; after
  `max_auth_failures` rejections of fresh tokens in a row it gives up (SalesforcePubSubError).
- **Schemas**: each event names its writer schema; GetSchema is called once per schema id.
- **Flow control**: it never has more than `batch_size` (at most 100, the API's cap) events
  requested-and-undelivered plus received-and-not-handed-out, and asks for more (a FetchRequest
  for the free room) once that sum falls to half, so the server always owes it events while the
  consumer keeps up and never sends more than the consumer can hold.
- **Replay**: a fresh subscriber resumes after the replay id its `replay_store` holds for the
  topic (CUSTOM), else starts at `start` (LATEST by default). Within the process, a reconnect
  resumes after the last event handed out (events buffered but not handed out are dropped and
  come again); across restarts, after the last event confirmed. So the consumer sees each event
  once per process, and after a crash at most the unconfirmed one again (deduplicate on
  `event_id` if applying it twice matters). Keepalives (empty FetchResponses) move the resume
  point to their `latest_replay_id` when nothing is buffered or unconfirmed, as Salesforce
  recommends, so a quiet topic does not resume from a position about to leave retention.
- **Reconnects**: any transient end of the stream (UNAVAILABLE and other retryable statuses, the
  server closing the call, or `keepalive_timeout` seconds without a message: Salesforce sends a
  keepalive within 270 s) reconnects with jittered exponential backoff, reset by the first
  response of the new stream.
- **Gaps**: a replay id the server rejects (`...fetch.replayid.corrupted`, e.g. older than the
  72 h retention, or `...replayid.validation.failed`) cannot be resumed from: the subscriber
  reports a StreamGap to `on_gap` and resubscribes at EARLIEST (every event still retained), or
  LATEST with `after_gap="LATEST"`. An undecodable event is skipped and reported the same way.
  Either way the consumer should reconcile through REST. Salesforce's own GAP_* change events
  arrive as ChangeEvents with `is_gap` true.
- **Fatal**: NOT_FOUND, PERMISSION_DENIED, UNIMPLEMENTED, FAILED_PRECONDITION and other
  INVALID_ARGUMENT errors (a wrong topic, CDC not enabled...) end `events()` with
  SalesforcePubSubError.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self, cast
from urllib.parse import urlsplit

import grpc

from presencesync.salesforce.auth import AccessToken
from presencesync.salesforce.errors import (
    SalesforceAuthError,
    SalesforcePubSubError,
    SalesforceUnavailable,
)

from .events import ChangeEvent, EventSchema, to_change_event
from .proto import pubsub_api_pb2 as pb
from .proto import pubsub_api_pb2_grpc as pb_grpc
from .replay import ReplayStore

log = logging.getLogger(__name__)

DEFAULT_TARGET = "api.pubsub.salesforce.com:7443"
MAX_BATCH = 100  # the API's cap on events requested per Subscribe call
SETTLED_SECONDS = 1.0  # a Subscribe call not refused within this long is taken as accepted
AUTH_ERROR = "sfdc.platform.eventbus.grpc.service.auth.error"
AUTH_REFRESH_INVALID = "sfdc.platform.eventbus.grpc.service.auth.refresh.invalid"
REPLAY_REJECTED = (
    "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted",
    "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.validation.failed",
)
_FATAL = frozenset(
    {
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.INVALID_ARGUMENT,
    }
)
_PRESETS = {"LATEST": pb.LATEST, "EARLIEST": pb.EARLIEST}


class SalesforceSession(Protocol):
    """What the subscriber needs of a Salesforce client (AsyncSalesforceClient has it)."""

    @property
    def token(self) -> AccessToken | None: ...

    async def login(self) -> AccessToken: ...

    def invalidate_token(self) -> None: ...


@dataclass(frozen=True)
class ReconnectPolicy:
    """Jittered exponential backoff between subscription attempts."""

    base_delay: float = 0.5
    max_delay: float = 30.0
    max_auth_failures: int = 3

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before attempt `attempt` (1 = the first retry): "equal jitter", half
        fixed and half random, so waits grow and concurrent subscribers spread out."""
        factor: int = 2 ** max(0, attempt - 1)  # int ** int is Any to mypy (negative exponents)
        step = min(self.max_delay, self.base_delay * factor)
        return step / 2 + rng.uniform(0, step / 2)


@dataclass(frozen=True)
class StreamGap:
    """Events may have been missed: reconcile. `reason`: "replay_id_rejected" (the resume point
    was refused; `replay_id` is it) or "undecodable_event" (`replay_id` is the skipped event)."""

    topic: str
    reason: str
    detail: str
    replay_id: bytes | None = field(default=None, repr=False)
    error_code: str | None = None


@dataclass
class SubscriberStats:
    connects: int = 0
    logins: int = 0
    events: int = 0
    keepalives: int = 0
    fetch_requests: int = 0
    requested: int = 0  # total num_requested sent
    max_owed: int = 0  # highest requested-but-undelivered + buffered seen (<= batch_size)
    gaps: int = 0
    schema_fetches: int = 0
    last_error: str | None = None

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)


class _StreamEnded(Exception):
    """The server ended the call, or went silent past the keepalive timeout."""


def org_id_of(token: AccessToken) -> str:
    """The org id in the token's identity URL (`.../id/<org id>/<user id>`)."""
    parts = [p for p in urlsplit(token.identity_url or "").path.split("/") if p]
    if len(parts) >= 3 and parts[-3] == "id":
        return parts[-2]
    raise SalesforcePubSubError(
        "UNAUTHENTICATED",
        "",
        "the access token has no identity URL to read the org id (tenantid) from; "
        "pass tenant_id= to the subscriber",
    )


def _error_code(error: grpc.aio.AioRpcError) -> str:
    for key, value in error.trailing_metadata() or ():
        if key == "error-code":
            return value.decode() if isinstance(value, bytes) else str(value)
    return ""


class PubSubSubscriber:
    def __init__(
        self,
        salesforce: SalesforceSession,
        topic: str,
        *,
        target: str = DEFAULT_TARGET,
        secure: bool = True,
        root_certificates: bytes | str | Path | None = None,
        replay_store: ReplayStore | None = None,
        start: str = "LATEST",
        after_gap: str = "EARLIEST",
        batch_size: int = MAX_BATCH,
        keepalive_timeout: float = 300.0,
        reconnect: ReconnectPolicy | None = None,
        on_gap: Callable[[StreamGap], Awaitable[None]] | None = None,
        tenant_id: str | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        auto_confirm: bool = True,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH} (the API's cap)")
        if start not in _PRESETS or after_gap not in _PRESETS:
            raise ValueError("start and after_gap must be 'LATEST' or 'EARLIEST'")
        if keepalive_timeout <= 0:
            raise ValueError("keepalive_timeout must be > 0")
        self.salesforce = salesforce
        self.topic = topic
        self.target = target
        self.secure = secure
        self.root_certificates = (
            Path(root_certificates).read_bytes()
            if isinstance(root_certificates, str | Path)
            else root_certificates
        )
        self.replay_store = replay_store
        self.batch_size = batch_size
        self.keepalive_timeout = keepalive_timeout
        self.policy = reconnect or ReconnectPolicy()
        self.on_gap = on_gap
        self.tenant_id = tenant_id
        # True: asking for the next event confirms the one before. False: only confirm() does
        # (a consumer that applies events in batches, or holds one back, confirms what it
        # committed; keepalives then move the resume point only once all is confirmed).
        self.auto_confirm = auto_confirm
        self.stats = SubscriberStats()
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._preset = _PRESETS[start]
        self._after_gap = _PRESETS[after_gap]
        self._resume: bytes | None = None  # in-process: after the last event handed out
        self._schemas: dict[str, EventSchema] = {}
        self._buffer: deque[ChangeEvent] = deque()
        self._owed = 0  # requested on the current stream and not delivered yet
        self._requests: asyncio.Queue[pb.FetchRequest | None] | None = None
        self._unconfirmed: ChangeEvent | None = None
        self._wakeup = asyncio.Event()
        self._failure: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._channel: grpc.aio.Channel | None = None
        self._closed = False
        self._stream_healthy = False
        self._call_started: float | None = None

    # -- consumer side ------------------------------------------------------------------------

    async def events(self) -> AsyncGenerator[ChangeEvent, None]:
        """The topic's change events, in order, until close() or a fatal error (raised)."""
        self._start()
        while True:
            if self.auto_confirm and self._unconfirmed is not None:
                await self.confirm(self._unconfirmed)
            while not self._buffer:
                if self._failure is not None:
                    raise self._failure
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            event = self._buffer.popleft()
            self._resume = event.replay_id
            self._unconfirmed = event
            self._request_more()
            yield event

    async def confirm(self, event: ChangeEvent) -> None:
        """`event` (and every event before it) is applied: a restart resumes after it (saved to
        the replay store)."""
        if self._unconfirmed is event:
            self._unconfirmed = None
        if self.replay_store is not None:
            await self.replay_store.save(self.topic, event.replay_id)

    @property
    def streaming(self) -> bool:
        """Subscribed: the current Subscribe call has answered, or has run `SETTLED_SECONDS`
        without being refused (a quiet topic answers nothing until its first keepalive)."""
        if self._failure is not None or self._closed:
            return False
        started = self._call_started
        settled = started is not None and time.monotonic() - started >= SETTLED_SECONDS
        return self._stream_healthy or settled

    async def close(self) -> None:
        self._closed = True
        self._wakeup.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- connection side ----------------------------------------------------------------------

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"pubsub {self.topic}")

    def _channel_for(self) -> grpc.aio.Channel:
        if self._channel is None:
            if self.secure:
                credentials = grpc.ssl_channel_credentials(root_certificates=self.root_certificates)
                self._channel = grpc.aio.secure_channel(self.target, credentials)
            else:
                self._channel = grpc.aio.insecure_channel(self.target)
        return self._channel

    async def _metadata(self) -> tuple[tuple[str, str], ...]:
        token = self.salesforce.token
        if token is None:
            token = await self.salesforce.login()
            self.stats.logins += 1
        tenant = self.tenant_id or org_id_of(token)
        return (
            ("accesstoken", token.access_token),
            ("instanceurl", token.instance_url),
            ("tenantid", tenant),
        )

    async def _run(self) -> None:
        try:
            if self.replay_store is not None:
                stored = await self.replay_store.load(self.topic)
                if stored:
                    self._resume = stored
            attempt = 0
            auth_failures = 0
            while not self._closed:
                self._stream_healthy = False
                try:
                    await self._subscribe_once()
                    self.stats.last_error = "stream ended by the server"
                except _StreamEnded:
                    self.stats.last_error = "no message within the keepalive timeout"
                except SalesforceUnavailable as error:  # the login could not reach Salesforce
                    self.stats.last_error = str(error)
                except grpc.aio.AioRpcError as error:
                    if self._stream_healthy:
                        attempt, auth_failures = 0, 0
                    code, error_code = error.code(), _error_code(error)
                    self.stats.last_error = f"{code.name} {error_code} {error.details()}".strip()
                    log.warning("pubsub %s: %s", self.topic, self.stats.last_error)
                    if code == grpc.StatusCode.UNAUTHENTICATED or error_code in (
                        AUTH_ERROR,
                        AUTH_REFRESH_INVALID,
                    ):
                        auth_failures += 1
                        if auth_failures > self.policy.max_auth_failures:
                            raise SalesforcePubSubError(
                                code.name, error_code, error.details() or ""
                            ) from error
                        self.salesforce.invalidate_token()
                        continue  # log in again now: an expired token is not a busy server
                    if error_code in REPLAY_REJECTED:
                        await self._gap("replay_id_rejected", error.details() or "", error_code)
                        continue
                    if code in _FATAL:
                        raise SalesforcePubSubError(
                            code.name, error_code, error.details() or ""
                        ) from error
                if self._stream_healthy:
                    attempt, auth_failures = 0, 0
                attempt += 1
                await self._sleep(self.policy.delay(attempt, self._rng))
        except asyncio.CancelledError:
            raise
        except SalesforceAuthError as error:
            self._failure = error
        except SalesforcePubSubError as error:
            self._failure = error
        except Exception as error:  # surface anything unexpected to the consumer
            log.exception("pubsub %s: subscriber failed", self.topic)
            self._failure = error
        finally:
            self._wakeup.set()

    async def _gap(self, reason: str, detail: str, error_code: str | None) -> None:
        gap = StreamGap(self.topic, reason, detail, self._resume, error_code)
        self.stats.gaps += 1
        self._resume = None
        self._preset = self._after_gap
        if self.on_gap is not None:
            await self.on_gap(gap)

    async def _subscribe_once(self) -> None:
        """One Subscribe call, until it ends (`_stream_healthy` once it answered)."""
        metadata = await self._metadata()
        stub = pb_grpc.PubSubStub(self._channel_for())
        requests: asyncio.Queue[pb.FetchRequest | None] = asyncio.Queue()
        # Events not handed out yet come again on the new stream, after self._resume.
        self._buffer.clear()
        self._owed = 0
        self._requests = requests
        first = pb.FetchRequest(topic_name=self.topic, num_requested=self.batch_size)
        if self._resume:
            first.replay_preset = pb.CUSTOM
            first.replay_id = self._resume
        else:
            first.replay_preset = self._preset
        self._send(first)

        async def outgoing() -> AsyncIterator[pb.FetchRequest]:
            while (request := await requests.get()) is not None:
                yield request

        call = stub.Subscribe(outgoing(), metadata=metadata)
        self.stats.connects += 1
        self._call_started = time.monotonic()
        try:
            while True:
                try:
                    response = await asyncio.wait_for(call.read(), self.keepalive_timeout)
                except TimeoutError:
                    raise _StreamEnded() from None
                if response is grpc.aio.EOF:
                    # A clean end: read() raised AioRpcError if the call ended with an error.
                    return
                self._stream_healthy = True
                # types-grpcio spells the EOF sentinel's type `object`, so read() is `object`.
                await self._receive(cast(pb.FetchResponse, response), stub, metadata)
        finally:
            self._call_started = None
            self._requests = None
            requests.put_nowait(None)
            call.cancel()

    async def _receive(
        self,
        response: pb.FetchResponse,
        stub: pb_grpc.PubSubAsyncStub,
        metadata: tuple[tuple[str, str], ...],
    ) -> None:
        delivered = len(response.events)
        self._owed = max(0, self._owed - delivered)
        if not delivered:
            self.stats.keepalives += 1
            if response.latest_replay_id and not self._buffer and self._unconfirmed is None:
                # Nothing of ours before it: resume from there (also after a restart).
                self._resume = response.latest_replay_id
                if self.replay_store is not None:
                    await self.replay_store.save(self.topic, response.latest_replay_id)
        for consumer_event in response.events:
            event = consumer_event.event
            schema = self._schemas.get(event.schema_id)
            if schema is None:
                info = await stub.GetSchema(
                    pb.SchemaRequest(schema_id=event.schema_id), metadata=metadata
                )
                schema = EventSchema.parse(event.schema_id, info.schema_json)
                self._schemas[event.schema_id] = schema
                self.stats.schema_fetches += 1
            try:
                decoded = to_change_event(
                    self.topic,
                    schema,
                    schema.decode(event.payload),
                    replay_id=consumer_event.replay_id,
                    event_id=event.id,
                )
            except (ValueError, TypeError, EOFError, KeyError, IndexError) as error:
                log.error("pubsub %s: undecodable event %s: %s", self.topic, event.id, error)
                self.stats.gaps += 1
                if not self._buffer and self._unconfirmed is None:
                    self._resume = consumer_event.replay_id
                if self.on_gap is not None:
                    await self.on_gap(
                        StreamGap(
                            self.topic, "undecodable_event", str(error), consumer_event.replay_id
                        )
                    )
                continue
            self._buffer.append(decoded)
            self.stats.events += 1
        self.stats.max_owed = max(self.stats.max_owed, self._owed + len(self._buffer))
        self._request_more()
        self._wakeup.set()

    def _request_more(self) -> None:
        """Top up what the server owes us once it fell to half of the batch."""
        if self._requests is None:
            return
        room = self.batch_size - self._owed - len(self._buffer)
        if room > 0 and self._owed + len(self._buffer) <= self.batch_size // 2:
            self._send(pb.FetchRequest(topic_name=self.topic, num_requested=room))

    def _send(self, request: pb.FetchRequest) -> None:
        assert self._requests is not None
        self._owed += request.num_requested
        self.stats.fetch_requests += 1
        self.stats.requested += request.num_requested
        self.stats.max_owed = max(self.stats.max_owed, self._owed + len(self._buffer))
        self._requests.put_nowait(request)
