"""Change Data Capture: every committed change of a captured object becomes a change event.

Listens to the store (store.py's change listeners) and, inside the writing transaction, encodes
the change with the object's Avro schema and appends it to the bus. What Salesforce documents
and this reproduces:
- one event per changed record; CREATE carries every non-null field, UPDATE carries the changed
  fields only (others null) and lists them in `changedFields` (LastModifiedDate included; the
  excluded `SystemModstamp` is not), fields set to null are listed in `nulledFields`;
- `changedFields`/`nulledFields`/`diffFields` travel as bitmaps in the Pub/Sub API: hex strings
  ("0x...") whose bit i (from the least significant) is the i-th field of the Avro schema;
- the changes of one transaction share `transactionKey` and are numbered by `sequenceNumber`
  (1, 2, ...) in the order they were made, with one `commitNumber` and `commitTimestamp`.
So an Omni status change (current UserServicePresence row updated with IsCurrentState false, a
new row created) is an UPDATE then a CREATE in one transaction, and a logout the UPDATE alone.

Our choices where Salesforce says nothing precise: `commitUser` is the record's user (the agent
whose presence or work it is), `changeOrigin` is empty (Salesforce fills it only for API and
Lightning Experience changes), `commitNumber` counts the emulated org's transactions.
"""

from __future__ import annotations

import io
import uuid
from typing import Any

from fastavro import schemaless_writer

from presencesync_emulator.pubsub.bus import EventBus
from presencesync_emulator.pubsub.schemas import CAPTURED_OBJECTS, EventSchema, event_schema
from presencesync_emulator.store import RecordChange, Store, parse_sf_datetime

# Topics (channels) and the change events each carries.
CHANGE_EVENTS_TOPIC = "/data/ChangeEvents"


def topic_of(sobject: str) -> str:
    return f"/data/{sobject}ChangeEvent"


TOPICS: dict[str, tuple[str, ...]] = {
    CHANGE_EVENTS_TOPIC: tuple(topic_of(o) for o in CAPTURED_OBJECTS),
    **{topic_of(o): (topic_of(o),) for o in CAPTURED_OBJECTS},
}


def field_bitmap(names: list[str], positions: dict[str, int]) -> list[str]:
    """Salesforce's bitmap form of a field list: [] or ["0x<hex>"] (top-level fields only; the
    emulated objects have no compound fields)."""
    if not names:
        return []
    bits = 0
    for name in names:
        bits |= 1 << positions[name]
    width = max(2, -(-bits.bit_length() // 8) * 2)
    return [f"0x{bits:0{width}X}"]


def _avro_value(sf_type: str, value: Any) -> Any:
    if value is None:
        return None
    if sf_type == "datetime":
        return int(parse_sf_datetime(value).timestamp() * 1000)
    if sf_type == "boolean":
        return bool(value)
    if sf_type == "int":
        return int(value)
    if sf_type == "double":
        return float(value)
    return str(value)


class ChangeCapture:
    def __init__(self, store: Store, bus: EventBus) -> None:
        self.store = store
        self.bus = bus
        self._tx_serial = -1
        self._tx_key = ""
        self._sequence = 0
        self._commit_number = 0
        self._commit_timestamp = 0
        store.add_change_listener(CAPTURED_OBJECTS, self.on_change)

    def _transaction(self) -> None:
        if self.store.tx_serial != self._tx_serial:
            self._tx_serial = self.store.tx_serial
            self._tx_key = str(uuid.uuid4())
            self._sequence = 0
            self._commit_number = self.store.next_serial("cdc_commit_number")
            self._commit_timestamp = int(self.store.now().timestamp() * 1000)
        self._sequence += 1

    def on_change(self, change: RecordChange) -> None:
        schema = event_schema(change.sobject)
        self._transaction()
        record = change.after if change.after is not None else change.before
        assert record is not None
        if change.op == "UPDATE":
            assert change.before is not None and change.after is not None
            changed = [
                name
                for name in schema.record_fields
                if change.before.get(name) != change.after.get(name)
            ]
            values = {name: change.after.get(name) for name in changed}
            nulled = [name for name in changed if change.after.get(name) is None]
        elif change.op == "CREATE":
            changed, nulled = [], []
            values = {n: record.get(n) for n in schema.record_fields if record.get(n) is not None}
        else:  # DELETE: the header only
            changed, nulled, values = [], [], {}
        payload = self._encode(schema, change, record, values, changed, nulled)
        self.bus.append(topic_of(change.sobject), str(uuid.uuid4()), schema.schema_id, payload)

    def _encode(
        self,
        schema: EventSchema,
        change: RecordChange,
        record: dict[str, Any],
        values: dict[str, Any],
        changed: list[str],
        nulled: list[str],
    ) -> bytes:
        positions = {name: i for i, name in enumerate(schema.field_names)}
        datum: dict[str, Any] = {
            "ChangeEventHeader": {
                "entityName": change.sobject,
                "recordIds": [change.record_id],
                "changeType": change.op,
                "changeOrigin": "",
                "transactionKey": self._tx_key,
                "sequenceNumber": self._sequence,
                "commitTimestamp": self._commit_timestamp,
                "commitNumber": self._commit_number,
                "commitUser": str(record.get("UserId") or record.get("OwnerId") or ""),
                "nulledFields": field_bitmap(nulled, positions),
                "diffFields": [],
                "changedFields": field_bitmap(changed, positions),
            }
        }
        for name in schema.record_fields:
            datum[name] = _avro_value(schema.field_types[name], values.get(name))
        buffer = io.BytesIO()
        schemaless_writer(buffer, schema.parsed, datum)
        return buffer.getvalue()
