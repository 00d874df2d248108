"""Omni-Channel readers against scripted SOQL answers."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest

from presencesync.salesforce import (
    OpenWork,
    PresenceStatus,
    SalesforceClient,
    SalesforceCredentials,
    UserPresence,
    current_presences,
    fetch_omni_configuration,
    open_work,
)
from presencesync.salesforce.omni import IN_CHUNK_SIZE, soql_quote

from .sf_testkit import FakeOrg, KeyPair, json_response


def rec(sobject: str, **fields: object) -> dict:
    url = f"/services/data/v62.0/sobjects/{sobject}/x"
    return {"attributes": {"type": sobject, "url": url}, **fields}


STATUSES = [
    rec("ServicePresenceStatus", Id="0N5A", DeveloperName="Available", MasterLabel="Available"),
    rec("ServicePresenceStatus", Id="0N5B", DeveloperName="Busy", MasterLabel="Busy"),
    rec("ServicePresenceStatus", Id="0N5C", DeveloperName="Cases", MasterLabel="Cases only"),
]
CHANNELS = [
    rec("ServiceChannel", Id="0N9C", DeveloperName="sfdc_case", MasterLabel="Case"),
    rec("ServiceChannel", Id="0N9H", DeveloperName="sfdc_liveagent", MasterLabel="Chat"),
]
LINKS = [
    rec("ServiceChannelStatus", Id="0N1", ServicePresenceStatusId="0N5A", ServiceChannelId="0N9H"),
    rec("ServiceChannelStatus", Id="0N2", ServicePresenceStatusId="0N5A", ServiceChannelId="0N9C"),
    rec("ServiceChannelStatus", Id="0N3", ServicePresenceStatusId="0N5C", ServiceChannelId="0N9C"),
    # a link to a channel the user cannot see is ignored rather than crashing the fetch
    rec("ServiceChannelStatus", Id="0N4", ServicePresenceStatusId="0N5C", ServiceChannelId="0N9X"),
]


class SoqlOrg:
    """Answers queries by the object after FROM; remembers every SOQL it was sent."""

    def __init__(self, tables: dict[str, list[dict]]) -> None:
        self.tables = tables
        self.queries: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        soql = request.url.params["q"]
        self.queries.append(soql)
        sobject = re.search(r"\bFROM (\w+)", soql).group(1)  # type: ignore[union-attr]
        records = self.tables[sobject]
        ids = re.search(r"UserId IN \(([^)]*)\)", soql)
        if ids:
            wanted = set(re.findall(r"'([^']*)'", ids.group(1)))
            records = [r for r in records if r["UserId"] in wanted]
        return json_response(200, {"totalSize": len(records), "done": True, "records": records})


def client_for(soql_org: SoqlOrg, key_pair: KeyPair) -> SalesforceClient:
    creds = SalesforceCredentials(
        "https://login.example.test", "cid", "u@example.test", private_key_pem=key_pair.private_pem
    )
    return SalesforceClient(creds, transport=httpx.MockTransport(FakeOrg(soql_org)))


def test_fetch_omni_configuration_derives_status_option_from_channels(key_pair: KeyPair) -> None:
    org = SoqlOrg(
        {
            "ServicePresenceStatus": STATUSES,
            "ServiceChannel": CHANNELS,
            "ServiceChannelStatus": LINKS,
        }
    )
    statuses = fetch_omni_configuration(client_for(org, key_pair))
    assert [s.to_api() for s in statuses] == [
        {
            "id": "0N5A",
            "developer_name": "Available",
            "label": "Available",
            "status_option": "online",
            "channels": ["Case", "Chat"],  # in the channel query's order, not the links'
        },
        {
            "id": "0N5B",
            "developer_name": "Busy",
            "label": "Busy",
            "status_option": "busy",
            "channels": [],
        },
        {
            "id": "0N5C",
            "developer_name": "Cases",
            "label": "Cases only",
            "status_option": "online",
            "channels": ["Case"],
        },
    ]
    assert any("FROM ServiceChannelStatus" in q for q in org.queries)


def test_presence_status_option_must_match_channels() -> None:
    with pytest.raises(ValueError):
        PresenceStatus("0N5A", "Available", "Available", "busy", ["Case"])
    with pytest.raises(ValueError):
        PresenceStatus("0N5B", "Busy", "Busy", "online", [])
    assert PresenceStatus.from_channels("0N5B", "Busy", "Busy", []).status_option == "busy"


def presence_row(user: str, status: str, dev: str, start: str) -> dict:
    return rec(
        "UserServicePresence",
        Id=f"0Hn{user}{start[-8:-5]}",
        UserId=user,
        ServicePresenceStatusId=status,
        ServicePresenceStatus={
            "attributes": {"type": "ServicePresenceStatus"},
            "DeveloperName": dev,
        },
        StatusStartDate=start,
        IsCurrentState=True,
    )


def test_current_presences_reads_current_rows(key_pair: KeyPair) -> None:
    org = SoqlOrg(
        {
            "UserServicePresence": [
                presence_row("005A", "0N5A", "Available", "2026-11-27T09:00:00.000+0000"),
                presence_row("005B", "0N5B", "Busy", "2026-11-27T09:05:00.000+0000"),
            ]
        }
    )
    client = client_for(org, key_pair)
    result = current_presences(client, ["005A", "005C"])
    assert result == [
        UserPresence(
            user_id="005A",
            presence_status_id="0N5A",
            presence_status="Available",
            since=datetime(2026, 11, 27, 9, 0, tzinfo=UTC),
            is_current=True,
        )
    ]  # 005C has no current row: offline, absent
    assert "IsCurrentState = true" in org.queries[-1]
    assert len(current_presences(client)) == 2
    assert "UserId IN" not in org.queries[-1]


def test_two_current_rows_for_one_user_keep_the_newest(key_pair: KeyPair) -> None:
    org = SoqlOrg(
        {
            "UserServicePresence": [
                presence_row("005A", "0N5B", "Busy", "2026-11-27T09:05:00.000+0000"),
                presence_row("005A", "0N5A", "Available", "2026-11-27T09:00:00.000+0000"),
            ]
        }
    )
    [only] = current_presences(client_for(org, key_pair), ["005A"])
    assert only.presence_status == "Busy"


def test_long_user_lists_are_chunked_and_quoted(key_pair: KeyPair) -> None:
    org = SoqlOrg({"UserServicePresence": []})
    client = client_for(org, key_pair)
    ids = [f"005{n:015d}" for n in range(IN_CHUNK_SIZE * 2 + 1)]
    assert current_presences(client, [*ids, ids[0]]) == []  # duplicates are queried once
    assert len(org.queries) == 3
    counts = [q.count("'005") for q in org.queries]
    assert counts == [IN_CHUNK_SIZE, IN_CHUNK_SIZE, 1]
    assert current_presences(client, []) == [] and len(org.queries) == 3  # nothing to ask
    assert soql_quote("x' OR Id != '") == r"'x\' OR Id != \''"
    assert soql_quote("a\\b") == r"'a\\b'"


def test_open_work_reads_assigned_and_opened_work(key_pair: KeyPair) -> None:
    channel = {"attributes": {"type": "ServiceChannel"}, "DeveloperName": "sfdc_case"}
    org = SoqlOrg(
        {
            "AgentWork": [
                rec(
                    "AgentWork",
                    Id="0BzA",
                    WorkItemId="500A",
                    UserId="005A",
                    ServiceChannelId="0N9C",
                    ServiceChannel=channel | {"MasterLabel": "Case"},
                    Status="Opened",
                ),
                rec(
                    "AgentWork",
                    Id="0BzB",
                    WorkItemId="00QB",
                    UserId="005B",
                    ServiceChannelId="0N9L",
                    ServiceChannel=None,
                    Status="Assigned",
                ),
            ]
        }
    )
    result = open_work(client_for(org, key_pair), ["005A", "005B"])
    assert result == [
        OpenWork(id="0BzA", work_item_id="500A", user_id="005A", channel="Case", status="Opened"),
        OpenWork(id="0BzB", work_item_id="00QB", user_id="005B", channel=None, status="Assigned"),
    ]
    assert "Status IN ('Assigned', 'Opened')" in org.queries[0]
