"""Change events as the Pub/Sub subscriber hands them out, built by hand for unit tests of the
translation (service/change_events.py), shaped as Salesforce and the emulator send them."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from presencesync.salesforce.pubsub import ChangeEvent

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_ids = itertools.count(1)

STATUS_IDS = {
    "Available": "0N5000000000001AAA",
    "Lunch": "0N5000000000002AAA",
    "Busy": "0N5000000000003AAA",
}
STATUS_NAMES = {v: k for k, v in STATUS_IDS.items()}


def change(
    entity: str,
    change_type: str,
    record_ids: tuple[str, ...],
    fields: dict[str, Any] | None = None,
    *,
    changed: tuple[str, ...] = (),
    tx: str = "tx",
    seq: int = 1,
    ms: int = 0,
) -> ChangeEvent:
    n = next(_ids)
    return ChangeEvent(
        topic=f"/data/{entity}ChangeEvent",
        entity=entity,
        change_type=change_type,
        record_ids=record_ids,
        fields=dict(fields or {}),
        changed_fields=changed,
        nulled_fields=(),
        diff_fields=(),
        commit_timestamp=T0 + timedelta(milliseconds=ms),
        commit_number=n,
        commit_user="",
        transaction_key=tx,
        sequence_number=seq,
        change_origin="",
        replay_id=n.to_bytes(8, "big"),
        event_id=f"ev-{n}",
        schema_id="schema",
    )


def row_created(
    row: str, user: str, status: str, *, tx: str, seq: int = 1, ms: int = 0
) -> ChangeEvent:
    fields = {
        "UserId": user,
        "OwnerId": user,
        "ServicePresenceStatusId": STATUS_IDS.get(status, status),
        "IsCurrentState": True,
        "IsAway": False,
        "StatusStartDate": T0,
    }
    return change("UserServicePresence", "CREATE", (row,), fields, tx=tx, seq=seq, ms=ms)


def row_ended(
    row: str, *, tx: str, seq: int = 1, ms: int = 0, user: str | None = None
) -> ChangeEvent:
    """The current row closed: only the changed fields travel (plus UserId when enriched)."""
    fields: dict[str, Any] = {"IsCurrentState": False, "StatusEndDate": T0, "StatusDuration": 60}
    if user is not None:
        fields["UserId"] = user
    changed = ("IsCurrentState", "StatusEndDate", "StatusDuration", "LastModifiedDate")
    return change(
        "UserServicePresence", "UPDATE", (row,), fields, changed=changed, tx=tx, seq=seq, ms=ms
    )


def work_created(
    work: str, user: str, *, tx: str, item: str = "500000000000001AAA", ms: int = 0
) -> ChangeEvent:
    fields = {"UserId": user, "Status": "Assigned", "WorkItemId": item}
    return change("AgentWork", "CREATE", (work,), fields, tx=tx, ms=ms)


def work_status(work: str, status: str, *, tx: str, ms: int = 0) -> ChangeEvent:
    return change(
        "AgentWork",
        "UPDATE",
        (work,),
        {"Status": status},
        changed=("Status", "LastModifiedDate"),
        tx=tx,
        ms=ms,
    )
