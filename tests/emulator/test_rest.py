"""The REST API: versions, query paging, describe, retrieve, errors and the API limit."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.testclient import TestClient

from tests.emulator.conftest import login, new_work, token

V = "/services/data/v62.0"


def _auth(client: TestClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(client)}"}


def test_versions_and_resources(client: TestClient) -> None:
    versions = client.get("/services/data/").json()
    assert {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"} in versions
    assert {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"} in versions
    resources = client.get(f"{V}/", headers=_auth(client)).json()
    assert resources["query"] == f"{V}/query" and resources["sobjects"] == f"{V}/sobjects"
    assert client.get("/services/data/v99.0/", headers=_auth(client)).status_code == 404


def test_query_paging_with_next_records_url(client: TestClient, app: Starlette) -> None:
    omni = app.state.org.omni
    for n in range(450):
        omni.create_work("Lead", f"lead {n:03d}")
    headers = {**_auth(client), "Sforce-Query-Options": "batchSize=200"}
    q = "SELECT Id, Description FROM Lead ORDER BY Description"
    first = client.get(f"{V}/query", params={"q": q}, headers=headers).json()
    assert first["totalSize"] == 450 and first["done"] is False and len(first["records"]) == 200
    assert first["nextRecordsUrl"].startswith(f"{V}/query/01g")
    records = list(first["records"])
    page = first
    while not page["done"]:
        page = client.get(page["nextRecordsUrl"], headers=headers).json()
        assert page["totalSize"] == 450
        records += page["records"]
    assert [r["Description"] for r in records] == [f"lead {n:03d}" for n in range(450)]
    assert len({r["Id"] for r in records}) == 450
    # The default batch is 2000; a batchSize below 200 is raised to 200.
    assert client.get(f"{V}/query", params={"q": q}, headers=_auth(client)).json()["done"]
    small = {**_auth(client), "Sforce-Query-Options": "batchSize=10"}
    assert len(client.get(f"{V}/query", params={"q": q}, headers=small).json()["records"]) == 200
    bad = client.get(f"{V}/query/01gnope-200", headers=_auth(client))
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_query_all_and_omni_objects(client: TestClient, agents: list[str]) -> None:
    login(client, agents[0], "Available")
    work = new_work(client, "Chat", "hi")
    headers = _auth(client)
    q = (
        "SELECT Id, Status, CapacityWeight, User.Username, ServiceChannel.DeveloperName "
        f"FROM AgentWork WHERE UserId = '{agents[0]}' AND Status IN ('Assigned', 'Opened')"
    )
    for resource in ("query", "queryAll"):
        body = client.get(f"{V}/{resource}", params={"q": q}, headers=headers).json()
        assert body["totalSize"] == 1
        record = body["records"][0]
        assert record["attributes"] == {
            "type": "AgentWork",
            "url": f"{V}/sobjects/AgentWork/{work['id']}",
        }
        assert record["Status"] == "Assigned" and record["CapacityWeight"] == 3
        assert record["ServiceChannel"]["DeveloperName"] == "sfdc_liveagent"
    links = client.get(
        f"{V}/query",
        params={
            "q": "SELECT ServicePresenceStatus.DeveloperName, ServiceChannel.DeveloperName "
            "FROM ServiceChannelStatus"
        },
        headers=headers,
    ).json()
    # Available x5, Available_for_Cases, _Chat, _Messaging, _Voice
    assert links["totalSize"] == 9


def test_soql_errors_are_400_with_salesforce_codes(client: TestClient) -> None:
    headers = _auth(client)
    cases = {
        "SELEC Id FROM User": "MALFORMED_QUERY",
        "SELECT Id FROM": "MALFORMED_QUERY",
        "SELECT Id FROM User WHERE": "MALFORMED_QUERY",
        "SELECT Id FROM User WHERE IsActive = 'true' AND": "MALFORMED_QUERY",
        "SELECT Nope FROM User": "INVALID_FIELD",
        "SELECT Id FROM Nope": "INVALID_TYPE",
        "'; DROP TABLE User; --": "MALFORMED_QUERY",
    }
    for q, code in cases.items():
        r = client.get(f"{V}/query", params={"q": q}, headers=headers)
        assert r.status_code == 400, (q, r.text)
        body = r.json()
        assert body[0]["errorCode"] == code and body[0]["message"], q
    r = client.get(f"{V}/query", headers=headers)
    assert r.status_code == 400 and r.json()[0]["errorCode"] == "MALFORMED_QUERY"


def test_sobjects_describe_and_retrieve(client: TestClient, agents: list[str]) -> None:
    headers = _auth(client)
    listing = client.get(f"{V}/sobjects/", headers=headers).json()
    names = {o["name"] for o in listing["sobjects"]}
    assert {"User", "ServicePresenceStatus", "UserServicePresence", "AgentWork"} <= names
    describe = client.get(f"{V}/sobjects/UserServicePresence/describe", headers=headers).json()
    fields = {f["name"]: f for f in describe["fields"]}
    assert describe["keyPrefix"] == "0Hn"
    assert fields["UserId"]["type"] == "reference"
    assert fields["UserId"]["referenceTo"] == ["User"]
    assert fields["UserId"]["relationshipName"] == "User"
    assert fields["IsCurrentState"]["type"] == "boolean"
    assert fields["StatusStartDate"]["label"] == "Status Start Date"
    aw = client.get(f"{V}/sobjects/agentwork/describe/", headers=headers).json()
    status = next(f for f in aw["fields"] if f["name"] == "Status")
    assert "Opened" in [p["value"] for p in status["picklistValues"]]

    user = client.get(f"{V}/sobjects/User/{agents[0]}", headers=headers).json()
    assert user["Id"] == agents[0] and user["attributes"]["type"] == "User"
    short = client.get(f"{V}/sobjects/User/{agents[0][:15]}?fields=Username", headers=headers)
    assert set(short.json()) == {"attributes", "Username"}
    not_found = [
        f"{V}/sobjects/User/0055g00000000ZZAAA",
        f"{V}/sobjects/User/garbage",
        f"{V}/sobjects/Nope/describe",
        f"{V}/nothing-here",
    ]
    for path in not_found:
        r = client.get(path, headers=headers)
        assert r.status_code == 404, path
        assert r.json() == [
            {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
        ]


def test_omni_objects_are_read_only(client: TestClient, agents: list[str]) -> None:
    """(UserServicePresence has its own answers: tests/emulator/test_user_service_presence.py)"""
    headers = _auth(client)
    for method in ("POST", "PATCH", "DELETE"):
        r = client.request(method, f"{V}/sobjects/AgentWork/", headers=headers, json={"x": 1})
        assert r.status_code == 405 and r.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"


def test_limit_info_header_and_request_limit(client: TestClient) -> None:
    client.put("/emulator/v1/limits", json={"daily_api_requests": 3, "reset_usage": True})
    headers = _auth(client)
    seen = []
    for _ in range(3):
        r = client.get(f"{V}/query", params={"q": "SELECT Id FROM User"}, headers=headers)
        assert r.status_code == 200
        seen.append(r.headers["Sforce-Limit-Info"])
    assert seen == ["api-usage=1/3", "api-usage=2/3", "api-usage=3/3"]
    r = client.get(f"{V}/query", params={"q": "SELECT Id FROM User"}, headers=headers)
    assert r.status_code == 403
    assert r.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert r.headers["Sforce-Limit-Info"] == "api-usage=3/3"
    assert client.get("/emulator/v1/limits").json() == {"daily_api_requests": 3, "used": 3}
    client.put("/emulator/v1/limits", json={"daily_api_requests": 100})
    assert client.get(f"{V}/limits", headers=headers).json()["DailyApiRequests"]["Max"] == 100
    assert client.put("/emulator/v1/limits", json={"daily_api_requests": -1}).status_code == 422


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.one_of(
        st.text(max_size=60),
        st.lists(
            st.sampled_from(
                [
                    "SELECT",
                    "Id",
                    ",",
                    "FROM",
                    "User",
                    "WHERE",
                    "=",
                    "'x'",
                    "(",
                    ")",
                    "AND",
                    "OR",
                    "LIMIT",
                    "5",
                    "ORDER",
                    "BY",
                    "IN",
                    "LIKE",
                    "TODAY",
                    "null",
                    ".",
                ]
            ),
            max_size=12,
        ).map(" ".join),
    )
)
def test_no_query_text_gets_a_500(client: TestClient, text: str) -> None:
    headers = {"Authorization": f"Bearer {_cached_token(client)}"}
    r = client.get(f"{V}/query", params={"q": text}, headers=headers)
    assert r.status_code in (200, 400), (text, r.text)
    if r.status_code == 400:
        assert r.json()[0]["errorCode"] in ("MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE")


def _cached_token(client: TestClient) -> str:
    """One token per client (the fixture outlives hypothesis' examples)."""
    cached: str | None = getattr(client, "emulator_token", None)
    if cached is None:
        cached = token(client)
        client.emulator_token = cached  # type: ignore[attr-defined]
    return cached
