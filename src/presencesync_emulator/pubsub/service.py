"""The Pub/Sub API gRPC service of the emulated org (`eventbus.v1.PubSub`).

Implemented: GetTopic, GetSchema, Subscribe. Publish, PublishStream and ManagedSubscribe answer
UNIMPLEMENTED (change event topics cannot be published to; managed subscriptions are a beta we do
not emulate).

Authentication (every call): metadata `accesstoken` must be a live session of the org (the OAuth
token endpoint's access token), `instanceurl` the org's instance URL and `tenantid` its org id.
A failure is UNAUTHENTICATED with trailer `error-code: sfdc.platform.eventbus.grpc.service.auth.
error` and the message Salesforce sends. A Subscribe stream re-checks the session on every
FetchRequest, so a session revoked mid-stream ends the stream the same way.

Every answer carries an `rpc_id`; errors append " rpcId: <id>" to the message and send the
`error-code` and `rpc-id` trailers (the trailer name `rpc-id` is ours: Salesforce documents that
the id is in the trailers, not under which key).

Subscribe honours flow control exactly: it never sends more events than requested (at most 100
outstanding per call, as Salesforce caps it), answers every FetchResponse with
`pending_num_requested`, sends an empty FetchResponse with the newest replay id as a keepalive
when events are owed but none arrive for `keepalive_s`, and ends the call when nothing is owed
and no FetchRequest came for `idle_timeout_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn

import grpc

from presencesync_emulator.oauth import Session, session_for_token
from presencesync_emulator.pubsub.bus import (
    MAX_REQUESTED,
    BusEvent,
    EventBus,
    StreamState,
    decode_replay,
    encode_replay,
)
from presencesync_emulator.pubsub.capture import TOPICS
from presencesync_emulator.pubsub.proto import pubsub_api_pb2 as pb
from presencesync_emulator.pubsub.proto import pubsub_api_pb2_grpc as pb_grpc
from presencesync_emulator.pubsub.schemas import all_schemas, event_schema
from presencesync_emulator.store import Store

log = logging.getLogger(__name__)

_E = "sfdc.platform.eventbus.grpc."
AUTH_ERROR = _E + "service.auth.error"
REPLAY_CORRUPTED = _E + "subscription.fetch.replayid.corrupted"
REPLAY_VALIDATION_FAILED = _E + "subscription.fetch.replayid.validation.failed"
# Not in Salesforce's documentation (ours): unknown topic, topic change, unknown schema, bad args.
TOPIC_NOT_FOUND = _E + "topic.not.found"
TOPIC_CHANGED = _E + "subscription.fetch.topic.changed"
SCHEMA_NOT_FOUND = _E + "schema.not.found"
INVALID_REQUEST = _E + "subscription.fetch.request.invalid"

AUTH_MESSAGE = (
    "An authentication exception occurred. Provide valid authentication via metadata headers."
)
BATCH_LIMIT = MAX_REQUESTED  # events per FetchResponse


class PubSubError(Exception):
    def __init__(self, code: grpc.StatusCode, error_code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.error_code = error_code
        self.message = message


class PubSubService(pb_grpc.PubSubServicer):
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        org_id: Callable[[], str],
        instance_url_ok: Callable[[str], bool],
    ) -> None:
        self.store = store
        self.bus = bus
        self._org_id = org_id
        self._instance_url_ok = instance_url_ok

    # -- helpers ------------------------------------------------------------------------------

    async def _fail(
        self, context: grpc.aio.ServicerContext[Any, Any], error: PubSubError, rpc_id: str
    ) -> NoReturn:
        await context.abort(
            error.code,
            f"{error.message} rpcId: {rpc_id}",
            trailing_metadata=(("error-code", error.error_code), ("rpc-id", rpc_id)),
        )
        raise AssertionError("unreachable")  # context.abort raises

    def _authenticate(self, context: grpc.aio.ServicerContext[Any, Any]) -> Session:
        headers = {k.lower(): v for k, v in (context.invocation_metadata() or ())}
        token = str(headers.get("accesstoken", "")).strip()
        instance_url = str(headers.get("instanceurl", "")).strip()
        tenant = str(headers.get("tenantid", "")).strip()
        session = session_for_token(self.store, token) if token else None
        org_id = self._org_id()
        if (
            session is None
            or not self._instance_url_ok(instance_url)
            or tenant not in (org_id, org_id[:15])
        ):
            raise PubSubError(grpc.StatusCode.UNAUTHENTICATED, AUTH_ERROR, AUTH_MESSAGE)
        return session

    def _still_valid(self, session: Session) -> bool:
        return session_for_token(self.store, session.token) is not None

    @staticmethod
    def _channels(topic: str) -> tuple[str, ...]:
        channels = TOPICS.get(topic)
        if channels is None:
            raise PubSubError(
                grpc.StatusCode.NOT_FOUND,
                TOPIC_NOT_FOUND,
                f"The topic {topic!r} does not exist or you cannot subscribe to it.",
            )
        return channels

    # -- unary calls --------------------------------------------------------------------------

    async def GetTopic(
        self,
        request: pb.TopicRequest,
        context: grpc.aio.ServicerContext[pb.TopicRequest, pb.TopicInfo],
    ) -> pb.TopicInfo:
        rpc_id = str(uuid.uuid4())
        try:
            self._authenticate(context)
            channels = self._channels(request.topic_name)
        except PubSubError as exc:
            await self._fail(context, exc, rpc_id)
        # A channel of one object has that object's schema; /data/ChangeEvents mixes several,
        # so it has no single schema id (not documented; each event names its own schema).
        schema_id = ""
        if len(channels) == 1:
            sobject = channels[0].removeprefix("/data/").removesuffix("ChangeEvent")
            schema_id = event_schema(sobject).schema_id
        return pb.TopicInfo(
            topic_name=request.topic_name,
            tenant_guid=self._org_id(),
            can_publish=False,
            can_subscribe=True,
            schema_id=schema_id,
            rpc_id=rpc_id,
        )

    async def GetSchema(
        self,
        request: pb.SchemaRequest,
        context: grpc.aio.ServicerContext[pb.SchemaRequest, pb.SchemaInfo],
    ) -> pb.SchemaInfo:
        rpc_id = str(uuid.uuid4())
        try:
            self._authenticate(context)
            schema = all_schemas().get(request.schema_id)
            if schema is None:
                raise PubSubError(
                    grpc.StatusCode.NOT_FOUND,
                    SCHEMA_NOT_FOUND,
                    f"No schema with id {request.schema_id!r}.",
                )
        except PubSubError as exc:
            await self._fail(context, exc, rpc_id)
        return pb.SchemaInfo(
            schema_json=schema.schema_json, schema_id=schema.schema_id, rpc_id=rpc_id
        )

    # -- Subscribe ----------------------------------------------------------------------------

    def _start_position(self, first: pb.FetchRequest) -> int:
        """The position after which the subscription starts (replay preset of the first request)."""
        self.bus.purge()
        preset = first.replay_preset
        if preset == pb.LATEST:
            return self.bus.tip()
        if preset == pb.EARLIEST:
            return self.bus.purged_through()
        if preset != pb.CUSTOM:
            raise PubSubError(
                grpc.StatusCode.INVALID_ARGUMENT,
                INVALID_REQUEST,
                f"Unknown replay preset {preset}.",
            )
        if not first.replay_id:
            raise PubSubError(
                grpc.StatusCode.INVALID_ARGUMENT,
                REPLAY_VALIDATION_FAILED,
                "A replay ID is required with the CUSTOM replay preset.",
            )
        position = decode_replay(first.replay_id)
        # An id whose event retention already purged cannot be located any more (Salesforce:
        # "an old Replay ID outside the 72-hour retention period"), nor can one never issued.
        if position is None or not self.bus.purged_through() < position <= self.bus.tip():
            raise PubSubError(
                grpc.StatusCode.INVALID_ARGUMENT,
                REPLAY_CORRUPTED,
                "The Replay ID validation failed. Ensure that the Replay ID is valid and within "
                "the retention window.",
            )
        return position

    # grpc.aio serves a streaming call from a coroutine that writes with context.write, as here,
    # or from an async iterator; mypy-protobuf's servicer stub knows only the iterator.
    async def Subscribe(  # type: ignore[override]
        self,
        request_iterator: AsyncIterator[pb.FetchRequest],
        context: grpc.aio.ServicerContext[pb.FetchRequest, pb.FetchResponse],
    ) -> None:
        rpc_id = str(uuid.uuid4())
        try:
            session = self._authenticate(context)
            try:
                first = await anext(aiter(request_iterator))
            except StopAsyncIteration:
                return
            # A test's refusal comes once the call is under way: aborting before the first
            # request is read can surface to the client as INTERNAL ("Internal error from
            # Core") instead of the status asked for.
            refusal = self.bus.take_refusal()
            if refusal is not None:
                raise PubSubError(
                    grpc.StatusCode[refusal.status], refusal.error_code, refusal.message
                )
            topic = first.topic_name
            channels = self._channels(topic)
            if first.num_requested < 0:
                raise PubSubError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    INVALID_REQUEST,
                    "num_requested must not be negative.",
                )
            position = self._start_position(first)
        except PubSubError as exc:
            await self._fail(context, exc, rpc_id)
        stream = self.bus.open_stream(rpc_id, topic, session.user_id)
        stream.request(first.num_requested)
        problems: list[PubSubError] = []
        reader = asyncio.create_task(
            self._read_requests(request_iterator, stream, topic, session, problems)
        )
        try:
            await self._deliver(context, stream, channels, position, problems, rpc_id)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            self.bus.close_stream(stream)

    async def _read_requests(
        self,
        requests: AsyncIterator[pb.FetchRequest],
        stream: StreamState,
        topic: str,
        session: Session,
        problems: list[PubSubError],
    ) -> None:
        try:
            async for request in requests:
                if request.topic_name and request.topic_name != topic:
                    problems.append(
                        PubSubError(
                            grpc.StatusCode.INVALID_ARGUMENT,
                            TOPIC_CHANGED,
                            f"The topic of a subscription cannot change ({topic!r} -> "
                            f"{request.topic_name!r}); start a new Subscribe call.",
                        )
                    )
                elif request.num_requested < 0:
                    problems.append(
                        PubSubError(
                            grpc.StatusCode.INVALID_ARGUMENT,
                            INVALID_REQUEST,
                            "num_requested must not be negative.",
                        )
                    )
                elif not self._still_valid(session):
                    problems.append(
                        PubSubError(grpc.StatusCode.UNAUTHENTICATED, AUTH_ERROR, AUTH_MESSAGE)
                    )
                else:
                    stream.request(request.num_requested)
                stream.waiter.wake()
                if problems:
                    return
        except (asyncio.CancelledError, grpc.aio.AioRpcError):
            pass

    async def _deliver(
        self,
        context: grpc.aio.ServicerContext[pb.FetchRequest, pb.FetchResponse],
        stream: StreamState,
        channels: tuple[str, ...],
        position: int,
        problems: list[PubSubError],
        rpc_id: str,
    ) -> None:
        loop = asyncio.get_running_loop()
        last_sent = last_activity = loop.time()
        fetches_seen = stream.fetch_requests
        while True:
            stream.waiter.event.clear()
            if stream.fault is not None:
                fault = stream.fault
                await self._fail(
                    context,
                    PubSubError(grpc.StatusCode[fault.status], fault.error_code, fault.message),
                    rpc_id,
                )
            if problems:
                await self._fail(context, problems[0], rpc_id)
            now = loop.time()
            if stream.fetch_requests != fetches_seen:
                fetches_seen = stream.fetch_requests
                last_activity = now
            if stream.pending > 0:
                events, tip = self.bus.read(channels, position, min(stream.pending, BATCH_LIMIT))
                if events:
                    position = events[-1].position
                    stream.delivered += len(events)
                    await context.write(self._response(events, position, stream, rpc_id))
                    last_sent = last_activity = loop.time()
                    continue
                if now - last_sent >= self.bus.keepalive_s:
                    # Nothing of ours up to the tip: the subscription may move there.
                    position = max(position, tip)
                    stream.keepalives += 1
                    await context.write(self._response([], position, stream, rpc_id))
                    last_sent = loop.time()
                    continue
                timeout = self.bus.keepalive_s - (now - last_sent)
            else:
                if now - last_activity >= self.bus.idle_timeout_s:
                    log.info("pubsub stream %s idle: closing", rpc_id)
                    return
                timeout = self.bus.idle_timeout_s - (now - last_activity)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stream.waiter.event.wait(), timeout=max(timeout, 0.001))

    @staticmethod
    def _response(
        events: list[BusEvent], position: int, stream: StreamState, rpc_id: str
    ) -> pb.FetchResponse:
        return pb.FetchResponse(
            events=[
                pb.ConsumerEvent(
                    event=pb.ProducerEvent(id=e.event_id, schema_id=e.schema_id, payload=e.payload),
                    replay_id=e.replay_id,
                )
                for e in events
            ],
            latest_replay_id=encode_replay(position),
            rpc_id=rpc_id,
            pending_num_requested=stream.pending,
        )


def add_to_server(server: grpc.aio.Server, service: PubSubService) -> None:
    pb_grpc.add_PubSubServicer_to_server(service, server)
