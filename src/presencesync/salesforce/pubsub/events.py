"""Change events as presencesync sees them, and how they are decoded (no I/O).

A Change Data Capture event arrives over the Pub/Sub API as Avro bytes written with the schema
`schema_id` (fetched once with GetSchema). Its record has a `ChangeEventHeader` and the object's
fields; an UPDATE carries only the changed values (the others are null). Three header fields,
`changedFields`, `nulledFields` and `diffFields`, are *bitmaps* in the Pub/Sub API (Salesforce,
"Event Deserialization Considerations"): a list of strings whose first element `0x<hex>` has bit
i (counting from the least significant) set when the i-th field of the Avro schema is in the
list, and whose further elements `<n>-0x<hex>` do the same for the fields of the compound field
at position n (e.g. an address), named `Parent.Child`. Elements that are already field names (as
the Streaming API sends them) are kept as they are, so either form decodes.

Dates: Pub/Sub API events carry datetimes as epoch milliseconds. A field whose schema `doc` ends
in `:DateTime` (Salesforce's schemas annotate each field so) becomes an aware UTC datetime;
without that annotation the number is kept as it is.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from fastavro import parse_schema, schemaless_reader
from fastavro.types import Schema

HEADER = "ChangeEventHeader"
GAP_PREFIX = "GAP_"


@dataclass(frozen=True)
class ChangeEvent:
    """One decoded change event (Salesforce ChangeEventHeader field names in snake case)."""

    topic: str
    entity: str  # entityName, e.g. "UserServicePresence"
    change_type: str  # CREATE | UPDATE | DELETE | UNDELETE | GAP_* | GAP_OVERFLOW
    record_ids: tuple[str, ...]
    fields: Mapping[str, Any]  # the non-null field values the event carries
    changed_fields: tuple[str, ...]
    nulled_fields: tuple[str, ...]
    diff_fields: tuple[str, ...]
    commit_timestamp: datetime
    commit_number: int
    commit_user: str
    transaction_key: str
    sequence_number: int
    change_origin: str
    replay_id: bytes = field(repr=False)
    event_id: str  # ProducerEvent.id: unique per event (use it to deduplicate)
    schema_id: str

    @property
    def is_gap(self) -> bool:
        """Salesforce lost the details (GAP_* and GAP_OVERFLOW events carry ids only): the
        records must be read again."""
        return self.change_type.startswith(GAP_PREFIX)

    def value(self, name: str, default: Any = None) -> Any:
        """A field's new value: None for a nulled field, `default` when the event is silent."""
        if name in self.nulled_fields:
            return None
        return self.fields.get(name, default)


@dataclass(frozen=True)
class EventSchema:
    """A parsed writer schema: what decoding one schema id's payloads needs."""

    schema_id: str
    parsed: Schema
    field_names: tuple[str, ...]
    children: Mapping[int, tuple[str, ...]]  # compound field position -> its field names
    datetime_fields: frozenset[str]

    @classmethod
    def parse(cls, schema_id: str, schema_json: str) -> EventSchema:
        schema = json.loads(schema_json)
        if not isinstance(schema, dict) or schema.get("type") != "record":
            raise ValueError(f"schema {schema_id} is not an Avro record schema")
        fields = schema.get("fields") or []
        names = tuple(str(f["name"]) for f in fields)
        children: dict[int, tuple[str, ...]] = {}
        for position, spec in enumerate(fields):
            record = _record_of(spec.get("type"))
            if record is not None and spec["name"] != HEADER:
                children[position] = tuple(str(f["name"]) for f in record.get("fields") or [])
        datetimes = frozenset(
            str(f["name"]) for f in fields if str(f.get("doc", "")).endswith(":DateTime")
        )
        # Each schema gets its own name registry: every change event schema defines
        # com.sforce.eventbus.ChangeEventHeader, and they may differ between objects.
        parsed = parse_schema(schema, named_schemas={})
        return cls(schema_id, parsed, names, children, datetimes)

    def decode(self, payload: bytes) -> dict[str, Any]:
        # The writer schema is a record (parse() refuses anything else): it decodes to a dict.
        return cast("dict[str, Any]", schemaless_reader(io.BytesIO(payload), self.parsed, None))


def _record_of(avro_type: Any) -> dict[str, Any] | None:
    """The record schema inside a field type (itself, or the record branch of a union)."""
    if isinstance(avro_type, dict) and avro_type.get("type") == "record":
        return avro_type
    if isinstance(avro_type, list):
        for branch in avro_type:
            found = _record_of(branch)
            if found is not None:
                return found
    return None


def _bits(hex_text: str) -> list[int]:
    try:
        value = int(hex_text, 16)
    except ValueError:
        raise ValueError(f"not a field bitmap: {hex_text!r}") from None
    return [i for i in range(value.bit_length()) if value >> i & 1]


def decode_field_list(
    items: Sequence[str], field_names: Sequence[str], children: Mapping[int, Sequence[str]]
) -> tuple[str, ...]:
    """Field names from a Pub/Sub API bitmap field (see the module docstring)."""
    names: list[str] = []
    for item in items:
        text = item.strip()
        head, dash, tail = text.partition("-")
        if text[:2].lower() == "0x" and not dash:
            names += [field_names[i] for i in _bits(text) if i < len(field_names)]
        elif dash and head.isdigit() and tail[:2].lower() == "0x":
            parent = int(head)
            if parent >= len(field_names):
                continue
            nested = children.get(parent, ())
            names += [f"{field_names[parent]}.{nested[i]}" for i in _bits(tail) if i < len(nested)]
        elif text:
            names.append(text)  # already a name
    return tuple(dict.fromkeys(names))


def _datetime(millis: Any) -> datetime:
    return datetime.fromtimestamp(int(millis) / 1000, tz=UTC)


def to_change_event(
    topic: str,
    schema: EventSchema,
    record: Mapping[str, Any],
    *,
    replay_id: bytes,
    event_id: str,
) -> ChangeEvent:
    header = record.get(HEADER)
    if not isinstance(header, Mapping):
        raise ValueError(f"event {event_id} has no ChangeEventHeader: not a change event")
    values: dict[str, Any] = {}
    for name, value in record.items():
        if name == HEADER or value is None:
            continue
        values[name] = _datetime(value) if name in schema.datetime_fields else value

    def names(key: str) -> tuple[str, ...]:
        return decode_field_list(header.get(key) or (), schema.field_names, schema.children)

    return ChangeEvent(
        topic=topic,
        entity=str(header.get("entityName", "")),
        change_type=str(header.get("changeType", "")),
        record_ids=tuple(str(r) for r in header.get("recordIds") or ()),
        fields=values,
        changed_fields=names("changedFields"),
        nulled_fields=names("nulledFields"),
        diff_fields=names("diffFields"),
        commit_timestamp=_datetime(header.get("commitTimestamp") or 0),
        commit_number=int(header.get("commitNumber") or 0),
        commit_user=str(header.get("commitUser") or ""),
        transaction_key=str(header.get("transactionKey") or ""),
        sequence_number=int(header.get("sequenceNumber") or 0),
        change_origin=str(header.get("changeOrigin") or ""),
        replay_id=replay_id,
        event_id=event_id,
        schema_id=schema.schema_id,
    )
