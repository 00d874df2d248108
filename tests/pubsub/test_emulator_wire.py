"""The emulator's Pub/Sub API on the wire, through a generic client (generated stubs only):
authentication, topics and schemas, the documented change events, flow control, replay,
keepalives, errors, and the fault control API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from presencesync_emulator.pubsub.proto import pubsub_api_pb2 as pb
from presencesync_emulator.pubsub.proto import pubsub_api_pb2_grpc as pb_grpc

from .kit import ALL_TOPIC, AW_TOPIC, USP_TOPIC, Emulator, emulator
from .raw import RawSubscription, trailer

AUTH_ERROR = "sfdc.platform.eventbus.grpc.service.auth.error"


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with emulator() as running:
        yield running


def _stub(emu: Emulator) -> tuple[grpc.Channel, pb_grpc.PubSubStub]:
    channel = grpc.insecure_channel(emu.target)
    return channel, pb_grpc.PubSubStub(channel)


def _header(record: dict) -> dict:
    return record["ChangeEventHeader"]


# -- authentication --------------------------------------------------------------------------


def test_calls_without_valid_session_headers_are_unauthenticated(emu: Emulator) -> None:
    channel, stub = _stub(emu)
    good = dict(emu.metadata())
    variants = {
        "no headers": (),
        "unknown token": (
            ("accesstoken", "00Dx!nope"),
            *[(k, v) for k, v in good.items() if k != "accesstoken"],
        ),
        "other org": tuple(
            (k, "00D000000000000AAA" if k == "tenantid" else v) for k, v in good.items()
        ),
        "other instance": tuple(
            (k, "https://elsewhere.example" if k == "instanceurl" else v) for k, v in good.items()
        ),
    }
    for name, metadata in variants.items():
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetTopic(pb.TopicRequest(topic_name=USP_TOPIC), metadata=metadata)
        error = caught.value
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, name
        assert trailer(error, "error-code") == AUTH_ERROR, name
        assert "Provide valid authentication via metadata headers" in error.details()
        assert f"rpcId: {trailer(error, 'rpc-id')}" in error.details()
    # The 15-character org id is accepted as tenantid too.
    short = tuple((k, v[:15] if k == "tenantid" else v) for k, v in good.items())
    assert stub.GetTopic(pb.TopicRequest(topic_name=USP_TOPIC), metadata=short).can_subscribe
    channel.close()


def test_a_session_revoked_mid_stream_ends_the_stream_unauthenticated(emu: Emulator) -> None:
    sub = RawSubscription(emu.target, emu.metadata(), USP_TOPIC, num_requested=1)
    try:
        emu.streams_open(1)
        emu.login(emu.agents[0])
        assert len(sub.events(1)) == 1
        emu.expire_sessions()
        sub.fetch(1)
        with pytest.raises(grpc.RpcError) as caught:
            sub.next()
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert trailer(caught.value, "error-code") == AUTH_ERROR
    finally:
        sub.close()


# -- topics and schemas ------------------------------------------------------------------------


def test_topics_and_their_avro_schemas(emu: Emulator) -> None:
    channel, stub = _stub(emu)
    md = emu.metadata()
    topic = stub.GetTopic(pb.TopicRequest(topic_name=USP_TOPIC), metadata=md)
    assert (topic.topic_name, topic.tenant_guid) == (USP_TOPIC, emu.org_id)
    assert topic.can_subscribe and not topic.can_publish and topic.rpc_id
    info = stub.GetSchema(pb.SchemaRequest(schema_id=topic.schema_id), metadata=md)
    assert info.schema_id == topic.schema_id and len(info.schema_id) == 22
    schema = json.loads(info.schema_json)
    assert (schema["type"], schema["name"], schema["namespace"]) == (
        "record",
        "UserServicePresenceChangeEvent",
        "com.sforce.eventbus",
    )
    names = [f["name"] for f in schema["fields"]]
    assert names[0] == "ChangeEventHeader" and "IsCurrentState" in names
    assert "Id" not in names and "SystemModstamp" not in names and "IsDeleted" not in names
    header = [f["name"] for f in schema["fields"][0]["type"]["fields"]]
    assert header == [
        "entityName",
        "recordIds",
        "changeType",
        "changeOrigin",
        "transactionKey",
        "sequenceNumber",
        "commitTimestamp",
        "commitNumber",
        "commitUser",
        "nulledFields",
        "diffFields",
        "changedFields",
    ]
    work = stub.GetTopic(pb.TopicRequest(topic_name=AW_TOPIC), metadata=md)
    assert work.schema_id and work.schema_id != topic.schema_id
    assert stub.GetTopic(pb.TopicRequest(topic_name=ALL_TOPIC), metadata=md).can_subscribe
    for bad in ("/data/AccountChangeEvent", "UserServicePresenceChangeEvent"):
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetTopic(pb.TopicRequest(topic_name=bad), metadata=md)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetSchema(pb.SchemaRequest(schema_id="nope"), metadata=md)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        stub.Publish(pb.PublishRequest(topic_name=USP_TOPIC), metadata=md)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    channel.close()


# -- the documented change events, read the way Salesforce's Python example reads them ---------


def test_presence_change_and_logout_in_the_salesforce_example_style(emu: Emulator) -> None:
    user = emu.agents[0]
    sub = RawSubscription(emu.target, emu.metadata(), USP_TOPIC, num_requested=1)
    records: list[dict] = []
    try:
        emu.streams_open(1)
        emu.login(user, "Available")
        emu.set_status(user, "Lunch")
        emu.logout(user)
        while len(records) < 4:
            response = sub.next()
            records += [sub.decode(e) for e in response.events]
            if response.pending_num_requested == 0:  # the example's semaphore release
                sub.fetch(1)
    finally:
        sub.close()
    login, close_row, open_row, logout = records
    assert _header(login)["changeType"] == "CREATE" and login["IsCurrentState"] is True
    # Status change: the current row is updated (IsCurrentState false), then a new row created,
    # in one transaction.
    assert _header(close_row)["changeType"] == "UPDATE"
    assert close_row["IsCurrentState"] is False and close_row["StatusEndDate"] is not None
    assert _header(close_row)["recordIds"] == _header(login)["recordIds"]
    assert _header(open_row)["changeType"] == "CREATE" and open_row["IsCurrentState"] is True
    assert _header(open_row)["transactionKey"] == _header(close_row)["transactionKey"]
    assert (_header(close_row)["sequenceNumber"], _header(open_row)["sequenceNumber"]) == (1, 2)
    assert _header(open_row)["commitNumber"] == _header(close_row)["commitNumber"]
    # Logout: the update alone, in a transaction of its own.
    assert _header(logout)["changeType"] == "UPDATE" and logout["IsCurrentState"] is False
    assert _header(logout)["recordIds"] == _header(open_row)["recordIds"]
    assert _header(logout)["transactionKey"] != _header(open_row)["transactionKey"]
    # An UPDATE carries only what changed; the bitmap says which.
    assert close_row["UserId"] is None and close_row["ServicePresenceStatusId"] is None
    assert all(h["changedFields"][0].startswith("0x") for h in map(_header, (close_row, logout)))
    assert _header(login)["changedFields"] == [] and _header(login)["commitUser"] == user


# -- flow control ------------------------------------------------------------------------------


def test_never_more_events_than_requested(emu: Emulator) -> None:
    user = emu.agents[1]
    sub = RawSubscription(emu.target, emu.metadata(), USP_TOPIC, num_requested=1)
    try:
        emu.streams_open(1)
        emu.login(user)
        emu.set_status(user, "Busy")
        emu.set_status(user, "Available")  # 5 events on the bus now
        first = sub.next()
        assert len(first.events) == 1 and first.pending_num_requested == 0
        assert sub.nothing_within(0.5)
        (stream,) = emu.pubsub()["streams"]
        assert (stream["requested"], stream["delivered"], stream["pending"]) == (1, 1, 0)
        sub.fetch(3)
        got = sub.events(3)
        assert len(got) == 3 and sub.nothing_within(0.3)
        sub.fetch(150)  # the server counts at most 100 outstanding
        remaining = sub.events(1)
        assert len(remaining) == 1
        (stream,) = emu.pubsub()["streams"]
        assert stream["delivered"] == 5 and stream["pending"] == 100 - 1
    finally:
        sub.close()


# -- replay --------------------------------------------------------------------------------------


def test_replay_presets_latest_earliest_custom(emu: Emulator) -> None:
    user = emu.agents[2]
    emu.login(user)
    emu.set_status(user, "Busy")  # 3 events: CREATE, UPDATE, CREATE
    md = emu.metadata()
    earliest = RawSubscription(emu.target, md, USP_TOPIC, pb.EARLIEST, num_requested=10)
    latest = RawSubscription(emu.target, md, USP_TOPIC, pb.LATEST, num_requested=10)
    emu.streams_open(2)
    try:
        history = earliest.events(3)
        assert [_header(r)["changeType"] for _, r in history] == ["CREATE", "UPDATE", "CREATE"]
        second_replay = history[1][0]
        custom = RawSubscription(emu.target, md, USP_TOPIC, pb.CUSTOM, second_replay, 10)
        emu.streams_open(3)
        try:
            (after_second,) = custom.events(1)
            assert after_second[0] == history[2][0]
            assert latest.nothing_within(0.3)  # LATEST skips what was there
            emu.logout(user)
            for sub in (latest, earliest, custom):
                ((_, record),) = sub.events(1)
                assert _header(record)["changeType"] == "UPDATE"
        finally:
            custom.close()
    finally:
        earliest.close()
        latest.close()


def _rejected(emu: Emulator, replay_id: bytes) -> grpc.RpcError:
    sub = RawSubscription(emu.target, emu.metadata(), USP_TOPIC, pb.CUSTOM, replay_id, 1)
    try:
        with pytest.raises(grpc.RpcError) as caught:
            sub.next()
        return caught.value
    finally:
        sub.close()


def test_invalid_replay_ids_are_refused_with_salesforces_codes(emu: Emulator) -> None:
    emu.login(emu.agents[0])
    missing = _rejected(emu, b"")
    assert missing.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert trailer(missing, "error-code").endswith("subscription.fetch.replayid.validation.failed")
    for bad in (b"\x01\x02", (10**6).to_bytes(8, "big")):  # malformed; never issued
        error = _rejected(emu, bad)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert trailer(error, "error-code").endswith("subscription.fetch.replayid.corrupted")


def test_events_past_retention_are_gone_and_their_replay_ids_refused() -> None:
    now = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC)]
    with emulator(clock=lambda: now[0]) as emu:
        user = emu.agents[0]
        emu.login(user)
        old = RawSubscription(emu.target, emu.metadata(), USP_TOPIC, pb.EARLIEST, num_requested=5)
        ((old_replay, _),) = old.events(1)
        old.close()
        now[0] += timedelta(hours=73)  # Salesforce keeps change events 72 hours
        emu.logout(user)
        error = _rejected(emu, old_replay)
        assert trailer(error, "error-code").endswith("replayid.corrupted")
        earliest = RawSubscription(
            emu.target, emu.metadata(), USP_TOPIC, pb.EARLIEST, num_requested=5
        )
        try:
            ((_, record),) = earliest.events(1)
            assert _header(record)["changeType"] == "UPDATE"  # the login's CREATE was purged
            assert earliest.nothing_within(0.3)
        finally:
            earliest.close()


# -- keepalives, idle streams, protocol errors --------------------------------------------------


def test_keepalive_carries_the_latest_replay_id_and_an_idle_stream_ends() -> None:
    with emulator(pubsub_keepalive_s=0.2, pubsub_idle_timeout_s=0.5) as emu:
        user = emu.agents[0]
        sub = RawSubscription(emu.target, emu.metadata(), AW_TOPIC, num_requested=2)
        try:
            emu.streams_open(1)
            emu.login(user)  # an event on another topic moves the bus forward
            keepalive = sub.next(timeout=5)
            assert list(keepalive.events) == [] and keepalive.pending_num_requested == 2
            assert int.from_bytes(keepalive.latest_replay_id, "big") >= 1
        finally:
            sub.close()
        quiet = RawSubscription(emu.target, emu.metadata(), USP_TOPIC, num_requested=1)
        emu.streams_open(1)
        emu.logout(user)
        assert len(quiet.events(1)) == 1  # nothing pending now: the server ends the call
        with pytest.raises(EOFError):
            quiet.next(timeout=5)
        quiet.close()


def test_changing_topic_mid_stream_is_invalid_argument(emu: Emulator) -> None:
    sub = RawSubscription(emu.target, emu.metadata(), USP_TOPIC, num_requested=1)
    try:
        sub.fetch(1, topic=AW_TOPIC)
        with pytest.raises(grpc.RpcError) as caught:
            sub.next()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        sub.close()


# -- faults for reconnect tests -------------------------------------------------------------------


def test_fault_api_breaks_open_streams_and_refuses_the_next_ones(emu: Emulator) -> None:
    sub = RawSubscription(emu.target, emu.metadata(), USP_TOPIC, num_requested=1)
    try:
        emu.streams_open(1)
        emu.login(emu.agents[0])
        assert len(sub.events(1)) == 1
        assert emu.faults(abort_streams=True, refuse_next=2) == {
            "aborted": 1,
            "refusals_pending": 2,
        }
        with pytest.raises(grpc.RpcError) as caught:
            sub.next()
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert (
            trailer(caught.value, "error-code") == "sfdc.platform.eventbus.grpc.service.unavailable"
        )
    finally:
        sub.close()
    for _ in range(2):
        refused = RawSubscription(
            emu.target, emu.metadata(), USP_TOPIC, pb.EARLIEST, num_requested=1
        )
        with pytest.raises(grpc.RpcError) as caught:
            refused.next()
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        refused.close()
    fine = RawSubscription(emu.target, emu.metadata(), USP_TOPIC, pb.EARLIEST, num_requested=1)
    assert len(fine.events(1)) == 1
    fine.close()
    state = emu.pubsub()
    assert state["subscriptions_refused"] == 2 and state["refusals_pending"] == 0


def test_fault_api_validates_its_body(emu: Emulator) -> None:
    for body, expected in (
        ({}, "nothing to do"),
        ({"abort_streams": "yes"}, "abort_streams"),
        ({"refuse_next": -1}, "refuse_next"),
        ({"abort_streams": True, "status": "OK"}, "status"),
        ({"abort_streams": True, "status": "BROKEN"}, "status"),
    ):
        response = emu.http.post("/emulator/v1/pubsub/faults", json=body)
        assert response.status_code == 422, body
        assert expected in response.json()["error"]["message"]
    bad = emu.http.put("/emulator/v1/pubsub/settings", json={"keepalive_seconds": 0})
    assert bad.status_code == 422
    assert emu.settings(keepalive_seconds=5)["keepalive_seconds"] == 5.0
