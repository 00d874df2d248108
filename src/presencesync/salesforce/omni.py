"""Omni-Channel readers: presence statuses with their channels, current presences, open work.

Each reader takes either client. With a ``SalesforceClient`` it returns the result; with an
``AsyncSalesforceClient`` it returns an awaitable::

    statuses = fetch_omni_configuration(sync_client)
    statuses = await fetch_omni_configuration(async_client)

The SOQL is the same for both (built here, run by ``SalesforceSession`` flows).
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, overload

from .client import AsyncSalesforceClient, SalesforceClient
from .models import OPEN_WORK_STATUSES, OpenWork, PresenceStatus, UserPresence
from .protocol import Flow, SalesforceSession

# Ids per IN (...) list: keeps every query far below SOQL's 100,000-character limit and the
# URL length proxies accept (200 ids * 21 chars ~ 4 KB).
IN_CHUNK_SIZE = 200

PRESENCE_STATUS_SOQL = (
    "SELECT Id, DeveloperName, MasterLabel FROM ServicePresenceStatus ORDER BY MasterLabel"
)
SERVICE_CHANNEL_SOQL = (
    "SELECT Id, DeveloperName, MasterLabel FROM ServiceChannel ORDER BY MasterLabel"
)
# ServiceChannelStatus is the documented junction between a presence status and the service
# channels it makes the agent available for; a status without rows is a "busy" status.
CHANNEL_STATUS_SOQL = (
    "SELECT Id, ServicePresenceStatusId, ServiceChannelId FROM ServiceChannelStatus"
)
CURRENT_PRESENCE_SOQL = (
    "SELECT Id, UserId, ServicePresenceStatusId, ServicePresenceStatus.DeveloperName,"
    " StatusStartDate, IsCurrentState FROM UserServicePresence WHERE IsCurrentState = true"
)
OPEN_WORK_SOQL = (
    "SELECT Id, WorkItemId, UserId, ServiceChannelId, ServiceChannel.DeveloperName,"
    " ServiceChannel.MasterLabel, Status"
    " FROM AgentWork WHERE Status IN ({statuses})"
)


# The escape sequences the SOQL reference ("Quoted String Escape Sequences") defines.
_SOQL_ESCAPES = str.maketrans(
    {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
)


def soql_quote(value: str) -> str:
    """A SOQL string literal holding exactly ``value``."""
    return "'" + value.translate(_SOQL_ESCAPES) + "'"


def soql_in(values: Iterable[str]) -> str:
    return ", ".join(soql_quote(v) for v in values)


def chunked(values: Sequence[str], size: int = IN_CHUNK_SIZE) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def parse_datetime(value: Any) -> datetime | None:
    """Salesforce datetimes look like ``2024-05-01T09:30:00.000+0000``."""
    if not isinstance(value, str) or not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _related(record: dict[str, Any], relationship: str, field: str) -> Any:
    related = record.get(relationship)
    return related.get(field) if isinstance(related, dict) else None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def channel_label(channel: dict[str, Any]) -> str:
    """How a service channel is named to people (and in the emulator's control API): its
    label, e.g. ``Case`` for the standard ``sfdc_case`` channel."""
    return str(channel.get("MasterLabel") or channel["DeveloperName"])


def _dedup(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


# -- flows ---------------------------------------------------------------------------------


def omni_configuration_flow(session: SalesforceSession) -> Flow[list[PresenceStatus]]:
    statuses = yield from session.query_all_flow(PRESENCE_STATUS_SOQL)
    channels = yield from session.query_all_flow(SERVICE_CHANNEL_SOQL)
    links = yield from session.query_all_flow(CHANNEL_STATUS_SOQL)
    channel_order: dict[str, int] = {c["Id"]: i for i, c in enumerate(channels)}
    channel_name: dict[str, str] = {c["Id"]: channel_label(c) for c in channels}
    by_status: dict[str, set[str]] = {}
    for link in links:
        status_id, channel_id = link.get("ServicePresenceStatusId"), link.get("ServiceChannelId")
        if status_id and channel_id in channel_name:
            by_status.setdefault(status_id, set()).add(channel_id)
    return [
        PresenceStatus.from_channels(
            id=s["Id"],
            developer_name=s["DeveloperName"],
            label=s.get("MasterLabel") or s["DeveloperName"],
            channels=[
                # (every channel in by_status is in channel_name, hence in channel_order)
                channel_name[c]
                for c in sorted(by_status.get(s["Id"], ()), key=channel_order.__getitem__)
            ],
        )
        for s in statuses
    ]


def _filtered_query_flow(
    session: SalesforceSession, soql: str, field: str, ids: Sequence[str] | None
) -> Flow[list[dict[str, Any]]]:
    """``soql`` (which already has a WHERE) for all rows, or for ``field IN ids`` in chunks."""
    if ids is None:
        return (yield from session.query_all_flow(soql))
    records: list[dict[str, Any]] = []
    for chunk in chunked(_dedup(ids)):
        records += yield from session.query_all_flow(f"{soql} AND {field} IN ({soql_in(chunk)})")
    return records


def current_presences_flow(
    session: SalesforceSession, user_ids: Sequence[str] | None
) -> Flow[list[UserPresence]]:
    records = yield from _filtered_query_flow(session, CURRENT_PRESENCE_SOQL, "UserId", user_ids)
    latest: dict[str, UserPresence] = {}
    for r in records:
        presence = UserPresence(
            user_id=r["UserId"],
            presence_status_id=r["ServicePresenceStatusId"],
            presence_status=_related(r, "ServicePresenceStatus", "DeveloperName"),
            since=parse_datetime(r.get("StatusStartDate")),
            is_current=bool(r.get("IsCurrentState", True)),
        )
        # One current row per user is Salesforce's rule; if a race shows two, the newer wins.
        known = latest.get(presence.user_id)
        if known is None or (presence.since or _EPOCH) >= (known.since or _EPOCH):
            latest[presence.user_id] = presence
    return list(latest.values())


def open_work_flow(
    session: SalesforceSession, user_ids: Sequence[str] | None
) -> Flow[list[OpenWork]]:
    soql = OPEN_WORK_SOQL.format(statuses=soql_in(OPEN_WORK_STATUSES))
    records = yield from _filtered_query_flow(session, soql, "UserId", user_ids)
    return [
        OpenWork(
            id=r["Id"],
            work_item_id=r["WorkItemId"],
            user_id=r["UserId"],
            channel=_related(r, "ServiceChannel", "MasterLabel")
            or _related(r, "ServiceChannel", "DeveloperName"),
            status=r["Status"],
        )
        for r in records
    ]


def record_owners_flow(
    session: SalesforceSession, sobject: str, record_ids: Sequence[str]
) -> Flow[dict[str, str]]:
    soql = f"SELECT Id, UserId FROM {sobject} WHERE Id IN ({{ids}})"
    owners: dict[str, str] = {}
    for chunk in chunked(_dedup(record_ids)):
        records = yield from session.query_all_flow(soql.format(ids=soql_in(chunk)))
        owners.update({r["Id"]: r["UserId"] for r in records if r.get("UserId")})
    return owners


# -- public readers ------------------------------------------------------------------------


@overload
def fetch_omni_configuration(client: SalesforceClient) -> list[PresenceStatus]: ...
@overload
def fetch_omni_configuration(
    client: AsyncSalesforceClient,
) -> Awaitable[list[PresenceStatus]]: ...
def fetch_omni_configuration(
    client: SalesforceClient | AsyncSalesforceClient,
) -> list[PresenceStatus] | Awaitable[list[PresenceStatus]]:
    """The org's presence statuses, each with its channels and online/busy option."""
    return client.run(omni_configuration_flow(client.session))


@overload
def current_presences(
    client: SalesforceClient, user_ids: Sequence[str] | None = None
) -> list[UserPresence]: ...
@overload
def current_presences(
    client: AsyncSalesforceClient, user_ids: Sequence[str] | None = None
) -> Awaitable[list[UserPresence]]: ...
def current_presences(
    client: SalesforceClient | AsyncSalesforceClient, user_ids: Sequence[str] | None = None
) -> list[UserPresence] | Awaitable[list[UserPresence]]:
    """Current presence of the given users (all users if None).

    A user without a current ``UserServicePresence`` row is offline in Omni-Channel and is
    simply absent from the result.
    """
    return client.run(current_presences_flow(client.session, user_ids))


@overload
def open_work(
    client: SalesforceClient, user_ids: Sequence[str] | None = None
) -> list[OpenWork]: ...
@overload
def open_work(
    client: AsyncSalesforceClient, user_ids: Sequence[str] | None = None
) -> Awaitable[list[OpenWork]]: ...
def open_work(
    client: SalesforceClient | AsyncSalesforceClient, user_ids: Sequence[str] | None = None
) -> list[OpenWork] | Awaitable[list[OpenWork]]:
    """Open ``AgentWork`` (Assigned or Opened) of the given users (all users if None)."""
    return client.run(open_work_flow(client.session, user_ids))


OWNED_OBJECTS = ("UserServicePresence", "AgentWork")


@overload
def record_owners(
    client: SalesforceClient, sobject: str, record_ids: Sequence[str]
) -> dict[str, str]: ...
@overload
def record_owners(
    client: AsyncSalesforceClient, sobject: str, record_ids: Sequence[str]
) -> Awaitable[dict[str, str]]: ...
def record_owners(
    client: SalesforceClient | AsyncSalesforceClient, sobject: str, record_ids: Sequence[str]
) -> dict[str, str] | Awaitable[dict[str, str]]:
    """Record id -> `UserId` of `UserServicePresence` or `AgentWork` rows (a change event of an
    update carries only the changed fields, not whose row it is). Ids as Salesforce returns
    them (18 characters); rows not found are absent."""
    if sobject not in OWNED_OBJECTS:
        raise ValueError(f"record_owners reads {' or '.join(OWNED_OBJECTS)}, not {sobject}")
    return client.run(record_owners_flow(client.session, sobject, record_ids))
