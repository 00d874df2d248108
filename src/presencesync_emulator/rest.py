"""The REST API: `/services/data/` versions, resources, SOQL query with `nextRecordsUrl`
paging, sObject list/describe/retrieve, limits.

Every authenticated response carries `Sforce-Limit-Info: api-usage=N/LIMIT`; past the org's
daily limit requests get 403 REQUEST_LIMIT_EXCEEDED. Errors are Salesforce's JSON list
`[{"message", "errorCode"}]`. The emulated objects are read-only here: Omni-Channel itself
maintains them (writes get 405).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from presencesync_emulator import ids, soql
from presencesync_emulator.httputil import org_of
from presencesync_emulator.oauth import count_api_request, invalid_session, session_from_request
from presencesync_emulator.org import API_VERSIONS, Org
from presencesync_emulator.permissions import Access, access_of, schema_for
from presencesync_emulator.schema import OBJECTS, FieldDef, ObjectDef

DEFAULT_BATCH = 2000
MIN_BATCH = 200
MAX_BATCH = 2000
CURSOR_TTL_S = 15 * 60

_LOWER_OBJECTS = {name.lower(): obj for name, obj in OBJECTS.items()}

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "datetime": "xsd:dateTime",
    "date": "xsd:date",
}

_PICKLISTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("AgentWork", "Status"): (
        "Assigned",
        "Unavailable",
        "Declined",
        "Opened",
        "Closed",
        "DeclinedOnPushTimeout",
        "Canceled",
        "Transferred",
    ),
    ("AgentWork", "RoutingType"): ("QueueBased", "SkillsBased"),
    ("ServiceChannel", "RelatedEntity"): (
        "Case",
        "LiveChatTranscript",
        "Lead",
        "MessagingSession",
        "VoiceCall",
    ),
    ("MessagingSession", "Status"): ("New", "Waiting", "Active", "Paused", "Inactive", "Ended"),
    ("VoiceCall", "CallType"): ("Inbound", "Outbound", "Transfer", "Callback", "Internal"),
    ("Case", "Status"): ("New", "Working", "Escalated", "Closed"),
    ("LiveChatTranscript", "Status"): ("Waiting", "InProgress", "Completed", "Missed"),
}


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse([{"message": message, "errorCode": code}], status_code=status)


def not_found() -> JSONResponse:
    return error(404, "NOT_FOUND", "The requested resource does not exist")


def _version_label(version: str) -> str:
    # v59 was Winter '24; three releases a year: Winter, Spring, Summer.
    n = int(float(version)) - 59
    season = ("Winter", "Spring", "Summer")[n % 3]
    return f"{season} '{24 + n // 3:02d}"


async def versions(request: Request) -> Response:
    return JSONResponse(
        [
            {"label": _version_label(v), "url": f"/services/data/v{v}", "version": v}
            for v in API_VERSIONS
        ]
    )


def _attributes(version: str) -> Any:
    def attributes(sobject: str, record_id: str) -> dict[str, str]:
        return {"type": sobject, "url": f"/services/data/v{version}/sobjects/{sobject}/{record_id}"}

    return attributes


# -- dispatcher --------------------------------------------------------------------------------


async def api(request: Request) -> Response:
    """Every `/services/data/vNN.0/...` request: authenticate, count, then route."""
    session = session_from_request(request)
    if session is None:
        return invalid_session()
    org = org_of(request)
    access = access_of(org.store, session.user_id)
    if not access.api_enabled:
        # What Salesforce answers a user whose profile and permission sets lack API Enabled.
        return error(
            403, "API_DISABLED_FOR_ORG", "The REST API is not enabled for this Organization."
        )
    allowed, usage = count_api_request(org)
    if not allowed:
        response: Response = error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    else:
        response = _route(request, org, access)
    response.headers["Sforce-Limit-Info"] = usage
    return response


def _route(request: Request, org: Org, access: Access) -> Response:
    version = request.path_params["version"]
    if version not in API_VERSIONS:
        return not_found()
    parts = [p for p in request.path_params.get("rest", "").split("/") if p]
    method = request.method
    if method not in ("GET", "HEAD"):
        written = _written_object(parts)
        if written is not None and (written.deletable or method in ("POST", "PATCH")):
            return _write(org, written, parts, method)
        if parts[:1] == ["sobjects"]:
            return error(
                405,
                "METHOD_NOT_ALLOWED",
                f"HTTP Method '{method}' not allowed. Allowed are GET,HEAD",
            )
        return not_found()
    if not parts:
        return _resources(version)
    head, rest = parts[0], parts[1:]
    if head in ("query", "queryAll"):
        if rest:
            return _query_more(request, org, version, rest[0])
        return _query(request, org, version, access)
    if head == "sobjects":
        return _sobjects(request, org, version, rest, access)
    if head == "limits" and not rest:
        return _limits(org)
    return not_found()


def _resources(version: str) -> Response:
    base = f"/services/data/v{version}"
    return JSONResponse(
        {
            "limits": f"{base}/limits",
            "query": f"{base}/query",
            "queryAll": f"{base}/queryAll",
            "sobjects": f"{base}/sobjects",
        }
    )


def _limits(org: Org) -> Response:
    from presencesync_emulator.oauth import api_usage_today

    limit = org.daily_api_limit
    return JSONResponse(
        {
            "DailyApiRequests": {
                "Max": limit,
                "Remaining": max(0, limit - api_usage_today(org.store)),
            }
        }
    )


# -- query ---------------------------------------------------------------------------------


def _batch_size(request: Request) -> int:
    options = request.headers.get("sforce-query-options", "")
    match = re.search(r"batchSize\s*=\s*(\d+)", options, re.IGNORECASE)
    if not match:
        return DEFAULT_BATCH
    return max(MIN_BATCH, min(MAX_BATCH, int(match.group(1))))


def _query(request: Request, org: Org, version: str, access: Access) -> Response:
    text = request.query_params.get("q")
    if text is None or not text.strip():
        return error(400, "MALFORMED_QUERY", "A query string has to be specified")
    try:
        parsed = soql.parse(text)
        result = soql.execute(
            parsed,
            schema_for(access),
            lambda name: org.store.find(name, order="rowid"),
            _attributes(version),
            now=org.store.now(),
        )
    except soql.SoqlError as exc:
        return error(400, exc.error_code, exc.message)
    body: dict[str, Any] = {"totalSize": result.total_size, "done": True, "records": []}
    records = result.records
    batch = _batch_size(request)
    if len(records) > batch:
        locator = ids.make_id("QueryLocator", org.store.next_serial("QueryLocator"))
        org.store.execute(
            "INSERT INTO emu_query_cursor (locator, records, total_size, batch_size, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (locator, json.dumps(records), result.total_size, batch, time.time()),
        )
        _expire_cursors(org)
        body["done"] = False
        body["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{batch}"
        records = records[:batch]
    body["records"] = records
    return JSONResponse(body)


def _query_more(request: Request, org: Org, version: str, cursor: str) -> Response:
    locator, _, offset_text = cursor.rpartition("-")
    rows = org.store.query(
        "SELECT records, total_size, batch_size FROM emu_query_cursor WHERE locator = ?",
        (locator,),
    )
    if not rows or not offset_text.isdigit():
        return error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    records = json.loads(rows[0]["records"])
    batch, offset = int(rows[0]["batch_size"]), int(offset_text)
    page = records[offset : offset + batch]
    body: dict[str, Any] = {"totalSize": rows[0]["total_size"], "done": True, "records": page}
    if offset + batch < len(records):
        body["done"] = False
        body["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{offset + batch}"
    return JSONResponse(body)


def _expire_cursors(org: Org) -> None:
    org.store.execute(
        "DELETE FROM emu_query_cursor WHERE created_at < ?", (time.time() - CURSOR_TTL_S,)
    )


# -- sobjects ------------------------------------------------------------------------------


def _object_summary(obj: ObjectDef, version: str) -> dict[str, Any]:
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    return {
        "name": obj.name,
        "label": obj.label,
        "labelPlural": obj.label_plural,
        "keyPrefix": obj.key_prefix,
        "custom": False,
        "queryable": True,
        "retrieveable": True,
        "searchable": False,
        "createable": False,
        "updateable": False,
        "deletable": obj.deletable,
        "urls": {
            "sobject": base,
            "describe": f"{base}/describe",
            "rowTemplate": f"{base}/{{ID}}",
        },
    }


def _visible_fields(obj: ObjectDef, access: Access) -> list[FieldDef]:
    return [f for f in obj.fields if access.can_see_field(obj.name, f.name)]


def _field_describe(obj: ObjectDef, f: FieldDef) -> dict[str, Any]:
    length = {"id": 18, "reference": 18, "string": 255, "picklist": 255, "textarea": 32000}
    picklist = _PICKLISTS.get((obj.name, f.name), ())
    return {
        "name": f.name,
        "label": f.label,
        "type": f.type,
        "soapType": _SOAP_TYPES.get(f.type, "xsd:string"),
        "length": length.get(f.type, 0),
        "nillable": f.nillable,
        "referenceTo": list(f.reference_to),
        "relationshipName": f.relationship_name,
        "polymorphicForeignKey": len(f.reference_to) > 1,
        "idLookup": f.name == "Id",
        "filterable": f.type != "textarea",
        "sortable": f.type != "textarea",
        "groupable": f.type not in ("textarea", "double", "datetime"),
        "createable": False,
        "updateable": False,
        "custom": False,
        "calculated": False,
        "unique": False,
        "picklistValues": [
            {"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v}
            for v in picklist
        ],
    }


def _sobjects(
    request: Request, org: Org, version: str, rest: list[str], access: Access
) -> Response:
    if not rest:
        return JSONResponse(
            {
                "encoding": "UTF-8",
                "maxBatchSize": 200,
                "sobjects": [
                    _object_summary(o, version) for o in OBJECTS.values() if access.can_read(o.name)
                ],
            }
        )
    obj = _LOWER_OBJECTS.get(rest[0].lower())
    if obj is None or not access.can_read(obj.name):
        return not_found()
    if len(rest) == 1:
        recent: list[Any] = []
        return JSONResponse(
            {"objectDescribe": _object_summary(obj, version), "recentItems": recent}
        )
    if rest[1] == "describe" and len(rest) == 2:
        return JSONResponse(
            {
                **_object_summary(obj, version),
                "fields": [_field_describe(obj, f) for f in _visible_fields(obj, access)],
            }
        )
    if len(rest) != 2:
        return not_found()
    record_id = rest[1]
    if not ids.is_valid_id(record_id) or not record_id.startswith(obj.key_prefix):
        return not_found()
    row = org.store.get(obj.name, ids.normalize(record_id))
    if row is None:
        return not_found()
    wanted = request.query_params.get("fields")
    names = [f.name for f in _visible_fields(obj, access)]
    if wanted:
        lookup = {n.lower(): n for n in names}
        chosen = []
        for raw in wanted.split(","):
            name = lookup.get(raw.strip().lower())
            if name is None:
                return error(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{raw.strip()}' on sobject of type {obj.name}",
                )
            chosen.append(name)
        names = chosen
    record: dict[str, Any] = {"attributes": _attributes(version)(obj.name, row["Id"])}
    record.update({n: row.get(n) for n in names})
    return JSONResponse(record)


def _written_object(parts: list[str]) -> ObjectDef | None:
    """The Omni-maintained object a write is aimed at (those have Salesforce's own answers)."""
    if len(parts) not in (2, 3) or parts[0] != "sobjects":
        return None
    obj = _LOWER_OBJECTS.get(parts[1].lower())
    return obj if obj is not None and obj.read_only and obj.deletable else None


def _write(org: Org, obj: ObjectDef, parts: list[str], method: str) -> Response:
    """UserServicePresence: delete() is a supported call (a record goes; deleting the current
    one logs the agent out of Omni, our reading); create and update are not: Salesforce
    answers CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY, as its API does for such entities."""
    if method == "POST" and len(parts) == 2:
        message = f"entity type cannot be inserted: {obj.label}"
        return error(400, "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", message)
    if len(parts) != 3:
        return not_found()
    record_id = parts[2]
    if not ids.is_valid_id(record_id) or not record_id.startswith(obj.key_prefix):
        return not_found()
    row = org.store.get(obj.name, ids.normalize(record_id))
    if row is None:
        return not_found()
    if method == "PATCH":
        message = f"entity type cannot be updated: {obj.label}"
        return error(400, "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", message)
    if method != "DELETE":
        return error(
            405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are GET,HEAD"
        )
    if row.get("IsCurrentState") and obj.name == "UserServicePresence":
        org.publish(org.omni.logout(row["UserId"]))
    org.store.delete(obj.name, row["Id"])
    return Response(status_code=204)


_METHODS = ["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"]

routes = [
    Route("/services/data", versions, methods=["GET"]),
    Route("/services/data/", versions, methods=["GET"]),
    Route("/services/data/v{version}", api, methods=_METHODS),
    Route("/services/data/v{version}/", api, methods=_METHODS),
    Route("/services/data/v{version}/{rest:path}", api, methods=_METHODS),
]
