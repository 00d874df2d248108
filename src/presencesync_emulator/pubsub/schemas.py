"""Avro schemas of the change events the emulated org publishes, and their schema ids.

Shape (Salesforce's Pub/Sub API, "Change Event Message Structure"): a record named after the
event (`UserServicePresenceChangeEvent`, namespace `com.sforce.eventbus`) whose first field is
`ChangeEventHeader` (entityName, recordIds, changeType, changeOrigin, transactionKey,
sequenceNumber, commitTimestamp, commitNumber, commitUser, nulledFields, diffFields,
changedFields), followed by the object's fields, each optional (`["null", T]`, default null):
an event carries only the values that changed (all of them for a create). The record id is not a
field: it is in `recordIds`. `IsDeleted` and `SystemModstamp` are left out, as Salesforce does.
Dates travel as epoch milliseconds (`long`); the `doc` of each field says its Salesforce type
(`"CreatedDate:DateTime"`), as Salesforce's own schemas do.

The schema id is the Avro fingerprint of the schema: MD5 of its Parsing Canonical Form,
base64url without padding (22 characters, the length of Salesforce's ids). Which fingerprint
Salesforce uses is not documented; clients must treat the id as opaque either way.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

from presencesync_emulator.schema import OBJECTS, FieldDef

NAMESPACE = "com.sforce.eventbus"
# Objects whose changes the emulated org publishes (Change Data Capture selected for them).
CAPTURED_OBJECTS = ("UserServicePresence", "AgentWork")
CHANGE_TYPES = (
    "CREATE",
    "UPDATE",
    "DELETE",
    "UNDELETE",
    "GAP_CREATE",
    "GAP_UPDATE",
    "GAP_DELETE",
    "GAP_UNDELETE",
    "GAP_OVERFLOW",
    "SNAPSHOT",
)
# Change events never carry these (Salesforce's StandardObjectNameChangeEvent reference).
_LEFT_OUT = frozenset({"Id", "IsDeleted", "SystemModstamp"})
_AVRO_TYPES = {
    "boolean": "boolean",
    "int": "int",
    "double": "double",
    "datetime": "long",
    "date": "int",
}
_DOC_TYPES = {
    "id": "EntityId",
    "reference": "EntityId",
    "datetime": "DateTime",
    "date": "Date",
    "boolean": "Boolean",
    "int": "Int",
    "double": "Double",
    "picklist": "Picklist",
    "textarea": "Text",
    "string": "Text",
}


def change_event_name(sobject: str) -> str:
    return f"{sobject}ChangeEvent"


def _header_schema() -> dict[str, Any]:
    strings = {"type": "array", "items": "string"}
    return {
        "type": "record",
        "name": "ChangeEventHeader",
        "namespace": NAMESPACE,
        "fields": [
            {"name": "entityName", "type": "string"},
            {"name": "recordIds", "type": strings},
            {
                "name": "changeType",
                "type": {
                    "type": "enum",
                    "name": "ChangeType",
                    "namespace": NAMESPACE,
                    "symbols": list(CHANGE_TYPES),
                },
            },
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


def _field_schema(field: FieldDef) -> dict[str, Any]:
    avro = _AVRO_TYPES.get(field.type, "string")
    return {
        "name": field.name,
        "type": ["null", avro],
        "doc": f"{field.name}:{_DOC_TYPES.get(field.type, 'Text')}",
        "default": None,
    }


@dataclass(frozen=True)
class EventSchema:
    sobject: str
    event_name: str
    schema_json: str
    schema_id: str
    parsed: Any  # fastavro's parsed schema, for writing payloads
    field_names: tuple[str, ...]  # top-level Avro fields, in order (bitmap positions)
    field_types: dict[str, str]  # Salesforce field type of each record field

    @property
    def record_fields(self) -> tuple[str, ...]:
        return self.field_names[1:]


def schema_fingerprint(schema: dict[str, Any]) -> str:
    canonical = to_parsing_canonical_form(schema)
    digest = bytes.fromhex(fingerprint(canonical, "md5"))
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@cache
def event_schema(sobject: str) -> EventSchema:
    obj = OBJECTS[sobject]
    fields = [f for f in obj.fields if f.name not in _LEFT_OUT]
    schema = {
        "type": "record",
        "name": change_event_name(sobject),
        "namespace": NAMESPACE,
        "fields": [
            {"name": "ChangeEventHeader", "type": _header_schema(), "doc": "Data:EventHeader"},
            *(_field_schema(f) for f in fields),
        ],
    }
    return EventSchema(
        sobject=sobject,
        event_name=change_event_name(sobject),
        schema_json=json.dumps(schema, separators=(",", ":")),
        schema_id=schema_fingerprint(schema),
        parsed=parse_schema(schema, named_schemas={}),
        field_names=("ChangeEventHeader", *(f.name for f in fields)),
        field_types={f.name: f.type for f in fields},
    )


def all_schemas() -> dict[str, EventSchema]:
    """schema id -> schema, for GetSchema."""
    return {s.schema_id: s for s in (event_schema(o) for o in CAPTURED_OBJECTS)}
