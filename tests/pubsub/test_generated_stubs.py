"""The committed gRPC stubs are exactly what grpcio-tools makes of proto/pubsub_api.proto, on both
sides, and the proto keeps Salesforce's wire names and field numbers."""

from __future__ import annotations

from .stubs import OUTPUTS, PROTO, TARGETS, generate


def test_committed_stubs_match_a_fresh_generation() -> None:
    fresh = generate()
    for target in TARGETS:
        for name in OUTPUTS:
            committed = (target / name).read_text()
            assert committed == fresh[name], (
                f"{target / name} is stale: run `.venv/bin/python -m tests.pubsub.stubs`"
            )


def test_the_two_copies_describe_the_same_wire_format() -> None:
    from presencesync.salesforce.pubsub.proto import pubsub_api_pb2 as ours
    from presencesync_emulator.pubsub.proto import pubsub_api_pb2 as theirs

    assert ours.DESCRIPTOR.serialized_pb == theirs.DESCRIPTOR.serialized_pb


def test_wire_names_and_numbers_are_salesforces() -> None:
    from presencesync.salesforce.pubsub.proto import pubsub_api_pb2 as pb

    assert pb.DESCRIPTOR.package == "eventbus.v1"
    service = pb.DESCRIPTOR.services_by_name["PubSub"]
    assert [m.name for m in service.methods] == [
        "Subscribe",
        "GetSchema",
        "GetTopic",
        "Publish",
        "PublishStream",
        "ManagedSubscribe",
    ]

    def numbers(message: str) -> dict[str, int]:
        return {f.name: f.number for f in pb.DESCRIPTOR.message_types_by_name[message].fields}

    # As in forcedotcom/pub-sub-api's pubsub_api.proto.
    assert numbers("FetchRequest") == {
        "topic_name": 1,
        "replay_preset": 2,
        "replay_id": 3,
        "num_requested": 4,
        "auth_refresh": 5,
    }
    assert numbers("FetchResponse") == {
        "events": 1,
        "latest_replay_id": 2,
        "rpc_id": 3,
        "pending_num_requested": 4,
    }
    assert numbers("ConsumerEvent") == {"event": 1, "replay_id": 2}
    assert numbers("ProducerEvent") == {"id": 1, "schema_id": 2, "payload": 3, "headers": 4}
    assert numbers("TopicInfo") == {
        "topic_name": 1,
        "tenant_guid": 2,
        "can_publish": 3,
        "can_subscribe": 4,
        "schema_id": 5,
        "rpc_id": 6,
    }
    assert numbers("SchemaInfo") == {"schema_json": 1, "schema_id": 2, "rpc_id": 3}
    assert dict(pb.ReplayPreset.items()) == {"LATEST": 0, "EARLIEST": 1, "CUSTOM": 2}
    assert "CC0" in PROTO.read_text()  # the header names the source and its license
