"""Decoding change events: bitmap field lists, dates, the header (pure functions)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import given
from hypothesis import strategies as st

from presencesync.salesforce.pubsub import ChangeEvent, EventSchema, decode_field_list
from presencesync.salesforce.pubsub.events import to_change_event
from presencesync_emulator.pubsub.capture import field_bitmap
from presencesync_emulator.pubsub.schemas import event_schema

ACCOUNT_FIELDS = ("ChangeEventHeader", "Name", "Type", "ParentId", "BillingAddress", "Phone")
ADDRESS_FIELDS = ("Street", "City", "State", "PostalCode", "Country")


def test_top_level_bitmap_counts_bits_from_the_least_significant() -> None:
    # 0x12 = bits 1 and 4
    assert decode_field_list(["0x12"], ACCOUNT_FIELDS, {}) == ("Name", "BillingAddress")
    assert decode_field_list(["0x1"], ACCOUNT_FIELDS, {}) == ("ChangeEventHeader",)
    assert decode_field_list([], ACCOUNT_FIELDS, {}) == ()


def test_compound_field_bitmaps_name_parent_and_child() -> None:
    # Salesforce's documented form: '0x...' then '<parent position>-0x<child bitmap>'.
    names = decode_field_list(["0x20", "4-0x06"], ACCOUNT_FIELDS, {4: ADDRESS_FIELDS})
    assert names == ("Phone", "BillingAddress.City", "BillingAddress.State")


def test_names_already_spelled_out_are_kept() -> None:
    # The Streaming API (CometD) sends names; decode either form.
    assert decode_field_list(["Name", "LastModifiedDate"], ACCOUNT_FIELDS, {}) == (
        "Name",
        "LastModifiedDate",
    )


def test_bits_beyond_the_schema_are_ignored_and_garbage_is_an_error() -> None:
    assert decode_field_list(["0xFF00"], ACCOUNT_FIELDS, {}) == ()
    with pytest.raises(ValueError, match="not a field bitmap"):
        decode_field_list(["0xZZ"], ACCOUNT_FIELDS, {})


@given(st.data())
def test_emulator_bitmaps_decode_to_the_same_fields(data: st.DataObject) -> None:
    schema = event_schema(data.draw(st.sampled_from(["UserServicePresence", "AgentWork"])))
    chosen = data.draw(st.lists(st.sampled_from(schema.record_fields), unique=True))
    positions = {name: i for i, name in enumerate(schema.field_names)}
    bitmap = field_bitmap(chosen, positions)
    decoded = decode_field_list(bitmap, schema.field_names, {})
    assert sorted(decoded) == sorted(chosen)
    if bitmap:
        assert bitmap[0].startswith("0x") and len(bitmap[0]) % 2 == 0


def _account_schema() -> dict[str, object]:
    strings = {"type": "array", "items": "string"}
    header = {
        "type": "record",
        "name": "ChangeEventHeader",
        "fields": [
            {"name": "entityName", "type": "string"},
            {"name": "recordIds", "type": strings},
            {"name": "changeType", "type": "string"},
            {"name": "changeOrigin", "type": "string"},
            {"name": "transactionKey", "type": "string"},
            {"name": "sequenceNumber", "type": "int"},
            {"name": "commitTimestamp", "type": "long"},
            {"name": "commitNumber", "type": "long"},
            {"name": "commitUser", "type": "string"},
            {"name": "nulledFields", "type": strings},
            {"name": "diffFields", "type": strings},
            {"name": "changedFields", "type": strings},
        ],
    }
    address = {
        "type": "record",
        "name": "Address",
        "fields": [
            {"name": n, "type": ["null", "string"], "default": None} for n in ADDRESS_FIELDS
        ],
    }
    return {
        "type": "record",
        "name": "AccountChangeEvent",
        "namespace": "com.sforce.eventbus",
        "fields": [
            {"name": "ChangeEventHeader", "type": header},
            {"name": "Name", "type": ["null", "string"], "default": None},
            {
                "name": "LastModifiedDate",
                "type": ["null", "long"],
                "doc": "LastModifiedDate:DateTime",
            },
            {"name": "Phone", "type": ["null", "string"], "default": None},
            {"name": "BillingAddress", "type": ["null", address], "default": None},
        ],
    }


def test_a_change_event_decodes_with_names_and_dates() -> None:
    raw = _account_schema()
    schema = EventSchema.parse("sch1", json.dumps(raw))
    assert schema.children == {4: ADDRESS_FIELDS}
    buffer = io.BytesIO()
    schemaless_writer(
        buffer,
        parse_schema(raw, named_schemas={}),
        {
            "ChangeEventHeader": {
                "entityName": "Account",
                "recordIds": ["001000000000001AAA"],
                "changeType": "UPDATE",
                "changeOrigin": "com/salesforce/api/rest/62.0",
                "transactionKey": "tx-1",
                "sequenceNumber": 1,
                "commitTimestamp": 1_767_225_600_000,
                "commitNumber": 42,
                "commitUser": "005000000000001AAA",
                "nulledFields": ["0x08"],
                "diffFields": [],
                "changedFields": ["0x06", "4-0x02"],
            },
            "Name": "Acme",
            "LastModifiedDate": 1_767_225_600_000,
            "Phone": None,
            "BillingAddress": {
                "Street": None,
                "City": "Lyon",
                "State": None,
                "PostalCode": None,
                "Country": None,
            },
        },
    )
    event = to_change_event(
        "/data/AccountChangeEvent",
        schema,
        schema.decode(buffer.getvalue()),
        replay_id=b"\x00\x01",
        event_id="e-1",
    )
    assert isinstance(event, ChangeEvent)
    assert (event.entity, event.change_type, event.record_ids) == (
        "Account",
        "UPDATE",
        ("001000000000001AAA",),
    )
    assert event.changed_fields == ("Name", "LastModifiedDate", "BillingAddress.City")
    assert event.nulled_fields == ("Phone",)
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    assert event.fields["LastModifiedDate"] == moment and event.commit_timestamp == moment
    assert event.value("Phone", "?") is None and event.value("Name") == "Acme"
    assert event.fields["BillingAddress"]["City"] == "Lyon"
    assert not event.is_gap
    assert (event.transaction_key, event.sequence_number, event.commit_number) == ("tx-1", 1, 42)


def test_a_schema_that_is_not_a_record_is_refused() -> None:
    with pytest.raises(ValueError, match="not an Avro record"):
        EventSchema.parse("x", '"string"')
