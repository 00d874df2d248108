"""A generic Pub/Sub API client made of nothing but the generated stubs, grpc and fastavro, written
the way Salesforce's own Python example (forcedotcom/pub-sub-api, python/) subscribes: a
blocking channel, a generator of FetchRequests fed on demand, and Avro decoding with the schema
from GetSchema. It proves the emulator speaks the wire protocol, not just our subscriber."""

from __future__ import annotations

import io
import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import grpc
from fastavro import parse_schema, schemaless_reader

from presencesync_emulator.pubsub.proto import pubsub_api_pb2 as pb
from presencesync_emulator.pubsub.proto import pubsub_api_pb2_grpc as pb_grpc

_END = object()


class RawSubscription:
    """One Subscribe call; `fetch(n)` sends a FetchRequest, `next()` waits for a response."""

    def __init__(
        self,
        target: str,
        metadata: tuple[tuple[str, str], ...],
        topic: str,
        preset: int = pb.LATEST,
        replay_id: bytes = b"",
        num_requested: int = 1,
    ) -> None:
        self.channel = grpc.insecure_channel(target)
        self.stub = pb_grpc.PubSubStub(self.channel)
        self.metadata = metadata
        self.topic = topic
        self._requests: queue.Queue[Any] = queue.Queue()
        self._responses: queue.Queue[Any] = queue.Queue()
        self._requests.put(
            pb.FetchRequest(
                topic_name=topic,
                replay_preset=preset,  # type: ignore[arg-type]
                replay_id=replay_id,
                num_requested=num_requested,
            )
        )
        self.call = self.stub.Subscribe(self._request_stream(), metadata=metadata)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._schemas: dict[str, Any] = {}

    def _request_stream(self) -> Iterator[pb.FetchRequest]:
        while (request := self._requests.get()) is not _END:
            yield request

    def _read(self) -> None:
        try:
            for response in self.call:
                self._responses.put(response)
            self._responses.put(_END)
        except grpc.RpcError as error:
            self._responses.put(error)

    def fetch(self, num_requested: int, topic: str | None = None) -> None:
        self._requests.put(
            pb.FetchRequest(
                topic_name=self.topic if topic is None else topic, num_requested=num_requested
            )
        )

    def next(self, timeout: float = 10.0) -> pb.FetchResponse:
        """The next FetchResponse (raises the call's grpc.RpcError, or EOFError at its end)."""
        item = self._responses.get(timeout=timeout)
        if isinstance(item, grpc.RpcError):
            raise item
        if item is _END:
            raise EOFError("the server ended the call")
        return item

    def nothing_within(self, seconds: float) -> bool:
        try:
            item = self._responses.get(timeout=seconds)
        except queue.Empty:
            return True
        self._responses.put(item)
        return False

    def decode(self, consumer_event: pb.ConsumerEvent) -> dict[str, Any]:
        schema_id = consumer_event.event.schema_id
        if schema_id not in self._schemas:
            info = self.stub.GetSchema(
                pb.SchemaRequest(schema_id=schema_id), metadata=self.metadata
            )
            self._schemas[schema_id] = parse_schema(json.loads(info.schema_json), named_schemas={})
        record: dict[str, Any] = schemaless_reader(
            io.BytesIO(consumer_event.event.payload), self._schemas[schema_id], None
        )
        return record

    def events(self, count: int, timeout: float = 10.0) -> list[tuple[bytes, dict[str, Any]]]:
        """The next `count` events (replay id, decoded record), across responses."""
        out: list[tuple[bytes, dict[str, Any]]] = []
        while len(out) < count:
            response = self.next(timeout)
            out += [(e.replay_id, self.decode(e)) for e in response.events]
        return out

    def close(self) -> None:
        self._requests.put(_END)
        self.call.cancel()
        self.channel.close()


def trailer(error: grpc.RpcError, key: str) -> str | None:
    for name, value in error.trailing_metadata() or ():  # type: ignore[attr-defined]
        if name == key:
            return str(value)
    return None
