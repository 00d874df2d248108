"""The async connector against the org emulator in-process (httpx.ASGITransport)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from presencesync.salesforce import (
    AsyncSalesforceClient,
    SalesforceAuthError,
    SalesforceCredentials,
    SalesforceLimitError,
    SalesforceQueryError,
    current_presences,
    fetch_omni_configuration,
    open_work,
)
from presencesync.salesforce.omni import soql_in, soql_quote

from .emulator_support import (
    BASE,
    agent_ids,
    check,
    create_app,
    expected_seed_statuses,
    seed,
)


@pytest.fixture
def app() -> Iterator[Starlette]:
    """A fresh org, for tests that change its state."""
    application = create_app(":memory:")
    yield application
    application.state.org.store.close()


@pytest.fixture(scope="module")
def shared_app() -> Iterator[Starlette]:
    """One org for the tests that only read (seeding an org takes a few hundred ms)."""
    application = create_app(":memory:")
    yield application
    application.state.org.store.close()


@asynccontextmanager
async def connected(
    app: Starlette, flow: str = "jwt_bearer"
) -> AsyncIterator[tuple[AsyncSalesforceClient, httpx.AsyncClient]]:
    """A connector logged in with ``flow`` and a client of the emulator's control API."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as control:
        connected_app = check(await control.get("/emulator/v1/oauth-clients"))[0]
        credentials = SalesforceCredentials.from_connected_app(BASE, connected_app, flow)
        async with AsyncSalesforceClient(credentials, transport=transport) as sf:
            yield sf, control


Scenario = Callable[[AsyncSalesforceClient, httpx.AsyncClient], Awaitable[None]]


def run(app: Starlette, scenario: Scenario, flow: str = "jwt_bearer") -> None:
    async def main() -> None:
        async with connected(app, flow) as (sf, control):
            await scenario(sf, control)

    asyncio.run(main())


@pytest.mark.parametrize("flow", ["jwt_bearer", "client_credentials"])
def test_login_flows(shared_app: Starlette, flow: str) -> None:
    async def scenario(sf: AsyncSalesforceClient, control: httpx.AsyncClient) -> None:
        token = await sf.login()
        assert token.instance_url == BASE
        assert token.access_token
        versions = await sf.versions()
        assert "62.0" in [v["version"] for v in versions]
        integration = check(await control.get("/emulator/v1/oauth-clients"))[0]["username"]
        users = await sf.query(f"SELECT Id, Username FROM User WHERE Username = '{integration}'")
        assert [u["Username"] for u in users] == [integration]

    run(shared_app, scenario, flow)


def test_wrong_key_is_an_auth_error(shared_app: Starlette) -> None:
    from .sf_testkit import generate_key_pair

    async def scenario(sf: AsyncSalesforceClient, control: httpx.AsyncClient) -> None:
        connected_app = check(await control.get("/emulator/v1/oauth-clients"))[0]
        forged = SalesforceCredentials(
            BASE,
            connected_app["client_id"],
            connected_app["username"],
            private_key_pem=generate_key_pair().private_pem,
        )
        async with AsyncSalesforceClient(
            forged, transport=httpx.ASGITransport(app=shared_app)
        ) as intruder:
            with pytest.raises(SalesforceAuthError) as info:
                await intruder.login()
        assert info.value.error == "invalid_grant"
        assert info.value.status_code == 400

    run(shared_app, scenario)


def test_fetch_omni_configuration_returns_the_seed_statuses(shared_app: Starlette) -> None:
    async def scenario(sf: AsyncSalesforceClient, control: httpx.AsyncClient) -> None:
        statuses = await fetch_omni_configuration(sf)
        by_name = {s.developer_name: s.to_api() for s in statuses}
        expected = expected_seed_statuses()
        assert {k: {f: v[f] for f in expected[k]} for k, v in by_name.items()} == expected
        assert by_name["Available"]["channels"] == ["Case", "Chat", "Lead", "Messaging", "Voice"]
        assert by_name["Busy"]["status_option"] == "busy"
        assert all(s.id.startswith("0N5") for s in statuses)
        # the emulator's own view of the same statuses agrees on ids and options
        own = check(await control.get("/emulator/v1/presence-statuses"))
        assert {s["id"]: s["status_option"] for s in own} == {
            s.id: s.status_option for s in statuses
        }

    run(shared_app, scenario)


def test_current_presences_follow_omni_logins_and_status_changes(app: Starlette) -> None:
    async def scenario(sf: AsyncSalesforceClient, control: httpx.AsyncClient) -> None:
        a, b, c, *_ = agent_ids(check(await control.get("/emulator/v1/users")))
        assert await current_presences(sf, [a, b, c]) == []  # nobody online yet
        before = datetime.now(UTC) - timedelta(seconds=5)
        for user, status in ((a, "Available"), (b, "Busy"), (c, "Available")):
            check(
                await control.post(
                    f"/emulator/v1/users/{user}/omni/login", json={"presence_status": status}
                )
            )
        check(
            await control.put(
                f"/emulator/v1/users/{b}/omni/status", json={"presence_status": "On_Break"}
            )
        )
        check(await control.post(f"/emulator/v1/users/{c}/omni/logout"))

        presences = {p.user_id: p for p in await current_presences(sf, [a, b, c])}
        assert {u: p.presence_status for u, p in presences.items()} == {
            a: "Available",
            b: "On_Break",
        }  # c logged out: offline, so absent
        assert all(p.is_current and p.since and p.since >= before for p in presences.values())
        statuses = {s.developer_name: s.id for s in await fetch_omni_configuration(sf)}
        assert presences[b].presence_status_id == statuses["On_Break"]
        everyone = await current_presences(sf)
        assert {p.user_id for p in everyone} == {a, b}

    run(app, scenario)


def test_open_work_follows_routing_accept_and_close(app: Starlette) -> None:
    async def scenario(sf: AsyncSalesforceClient, control: httpx.AsyncClient) -> None:
        a, b, *_ = agent_ids(check(await control.get("/emulator/v1/users")))
        check(
            await control.post(
                f"/emulator/v1/users/{a}/omni/login",
                json={"presence_status": "Available_for_Cases"},
            )
        )
        work = check(
            await control.post("/emulator/v1/work", json={"channel": "Case", "subject": "Help"}),
            201,
        )
        assert work["status"] == "Assigned" and work["user_id"] == a

        [item] = await open_work(sf, [a, b])
        assert (item.id, item.work_item_id, item.user_id) == (work["id"], work["work_item_id"], a)
        assert (item.channel, item.status) == ("Case", "Assigned")

        check(await control.post(f"/emulator/v1/work/{work['id']}/accept"))
        assert [w.status for w in await open_work(sf, [a])] == ["Opened"]
        assert [w.id for w in await open_work(sf)] == [work["id"]]

        check(await control.post(f"/emulator/v1/work/{work['id']}/close"))
        assert await open_work(sf, [a]) == []

    run(app, scenario)


def test_expired_session_is_renewed_transparently(app: Starlette) -> None:
    async def scenario(sf: AsyncSalesforceClient, control: httpx.AsyncClient) -> None:
        await sf.query("SELECT Id FROM ServicePresenceStatus")
        first = sf.token
        expired = check(await control.post("/emulator/v1/sessions/expire"))
        assert expired["expired"] >= 1
        records = await sf.query("SELECT Id FROM ServicePresenceStatus")
        assert len(records) == len(expected_seed_statuses())
        assert sf.session.login_count == 2
        assert sf.token is not None and first is not None
        assert sf.token.access_token != first.access_token

    run(app, scenario)


def test_malformed_and_invalid_queries_are_query_errors(shared_app: Starlette) -> None:
    async def scenario(sf: AsyncSalesforceClient, control: httpx.AsyncClient) -> None:
        with pytest.raises(SalesforceQueryError) as info:
            await sf.query("SELECT Id FORM User")
        assert info.value.error_code == "MALFORMED_QUERY"
        assert info.value.status_code == 400
        with pytest.raises(SalesforceQueryError) as info:
            await sf.query("SELECT NoSuchField__c FROM User")
        assert info.value.error_code in {"INVALID_FIELD", "MALFORMED_QUERY"}

    run(shared_app, scenario)


def test_daily_limit_gives_a_limit_error(app: Starlette) -> None:
    async def scenario(sf: AsyncSalesforceClient, control: httpx.AsyncClient) -> None:
        check(
            await control.put(
                "/emulator/v1/limits", json={"daily_api_requests": 2, "reset_usage": True}
            )
        )
        await sf.query("SELECT Id FROM User")
        assert sf.api_usage == (1, 2)
        await sf.query("SELECT Id FROM User")
        assert sf.api_usage == (2, 2)
        with pytest.raises(SalesforceLimitError) as info:
            await sf.query("SELECT Id FROM User")
        assert info.value.error_code == "REQUEST_LIMIT_EXCEEDED"
        assert info.value.status_code == 403

    run(app, scenario)


def test_large_results_are_paged(app: Starlette) -> None:
    async def scenario(sf: AsyncSalesforceClient, control: httpx.AsyncClient) -> None:
        # Straight into the org's store: 205 control-API calls would only slow the test down.
        for n in range(205):
            seed.add_user(app.state.org.store, "Paged", f"User{n}", f"paged{n}@example.test")
        users = check(await control.get("/emulator/v1/users"))
        assert len(users) > 200
        await sf.login()
        records = await sf.query("SELECT Id, Username FROM User ORDER BY Username", batch_size=200)
        assert sf.api_usage is not None and sf.api_usage.used == 2  # two pages
        assert sorted(r["Id"] for r in records) == sorted(u["id"] for u in users)
        lazily = [r["Id"] async for r in sf.query_iter("SELECT Id FROM User", batch_size=200)]
        assert len(lazily) == len(users)

    run(app, scenario)


def test_describe_and_retrieve(shared_app: Starlette) -> None:
    async def scenario(sf: AsyncSalesforceClient, control: httpx.AsyncClient) -> None:
        describe = await sf.describe("UserServicePresence")
        fields = {f["name"] for f in describe["fields"]}
        assert {"UserId", "ServicePresenceStatusId", "IsCurrentState", "StatusStartDate"} <= fields
        user: dict[str, Any] = check(await control.get("/emulator/v1/users"))[0]
        record = await sf.get_record("User", user["id"])
        assert record["Username"] == user["username"]

    run(shared_app, scenario)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(names=st.lists(st.text(max_size=20), min_size=1, max_size=4))
def test_quoted_literals_reach_the_parser_intact(shared_app: Starlette, names: list[str]) -> None:
    """Whatever text we quote, the org reads back exactly that text: no MALFORMED_QUERY, no
    injection. One nasty username is in the org; it is found iff it is among ``names``."""
    store = shared_app.state.org.store
    if not store.find("User", '"Username" = ?', (NASTY_USERNAME,)):
        seed.add_user(store, "Nasty", "Name", NASTY_USERNAME)

    async def scenario(sf: AsyncSalesforceClient, control: httpx.AsyncClient) -> None:
        everyone = [*names, NASTY_USERNAME]
        rows = await sf.query(
            f"SELECT Id, Username FROM User WHERE Username IN ({soql_in(everyone)})"
        )
        assert NASTY_USERNAME in [r["Username"] for r in rows]
        for name in names:
            rows = await sf.query(f"SELECT Username FROM User WHERE Username = {soql_quote(name)}")
            # text comparison is case-insensitive in SOQL
            assert all(r["Username"].casefold() == name.casefold() for r in rows)

    run(shared_app, scenario)


NASTY_USERNAME = "o'brien\\x\n\t%_\"@example.test"
