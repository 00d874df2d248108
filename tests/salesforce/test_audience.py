"""The JWT bearer `aud`: separate from the login URL, derived from it when not configured,
and what the emulator accepts or refuses as a real org does."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from starlette.applications import Starlette

from presencesync.salesforce import (
    AsyncSalesforceClient,
    SalesforceAuthError,
    SalesforceClient,
    SalesforceCredentials,
    default_audience,
)
from presencesync.salesforce.auth import jwt_assertion
from presencesync.service import SalesforceConnection
from presencesync_emulator.app import create_app

from .sf_testkit import KeyPair, generate_key_pair

PRODUCTION = "https://login.salesforce.com"
SANDBOX = "https://test.salesforce.com"


@pytest.mark.parametrize(
    ("login_url", "audience"),
    [
        ("https://login.salesforce.com", PRODUCTION),
        ("https://acme.my.salesforce.com", PRODUCTION),  # production My Domain
        ("https://acme.develop.my.salesforce.com/", PRODUCTION),  # Developer Edition
        ("https://test.salesforce.com", SANDBOX),
        ("https://acme--uat.sandbox.my.salesforce.com", SANDBOX),  # enhanced domains
        ("https://ACME--UAT.SANDBOX.MY.SALESFORCE.COM", SANDBOX),
        ("https://acme--uat.my.salesforce.com", SANDBOX),  # legacy sandbox My Domain
        ("https://velocity-ruby-1234-dev-ed.scratch.my.salesforce.com", SANDBOX),
        ("https://cs42.salesforce.com", SANDBOX),
        ("http://127.0.0.1:8001", PRODUCTION),  # the emulator plays a production org
    ],
)
def test_default_audience_follows_the_login_url(login_url: str, audience: str) -> None:
    assert default_audience(login_url) == audience


@pytest.fixture(scope="module")
def key_pair() -> KeyPair:
    return generate_key_pair()


def _claims(credentials: SalesforceCredentials, key_pair: KeyPair) -> dict[str, object]:
    return jwt.decode(
        jwt_assertion(credentials),
        key_pair.public_pem,
        algorithms=["RS256"],
        options={"verify_aud": False},
    )


def test_configured_audience_wins_and_my_domain_is_only_the_token_url(key_pair: KeyPair) -> None:
    my_domain = "https://acme--uat.sandbox.my.salesforce.com"
    derived = SalesforceCredentials(my_domain, "cid", "u@x", private_key_pem=key_pair.private_pem)
    assert derived.token_url == my_domain + "/services/oauth2/token"
    assert _claims(derived, key_pair)["aud"] == SANDBOX
    site = "https://acme.my.site.com/customers/"
    configured = SalesforceCredentials(
        my_domain, "cid", "u@x", private_key_pem=key_pair.private_pem, audience=site
    )
    assert _claims(configured, key_pair)["aud"] == site.rstrip("/")
    assert configured.token_url == my_domain + "/services/oauth2/token"


def test_credentials_from_a_stored_connection_carry_its_audience(key_pair: KeyPair) -> None:
    connection = SalesforceConnection(
        "https://acme.my.salesforce.com",
        "cid",
        "u@x",
        private_key_pem=key_pair.private_pem,
        audience=SANDBOX,
    )
    credentials = SalesforceCredentials.from_connection(connection)
    assert credentials.jwt_audience == SANDBOX
    assert _claims(credentials, key_pair)["aud"] == SANDBOX
    # a connection stored before the column existed reads back with audience None
    legacy = SalesforceConnection("https://acme.my.salesforce.com", "cid", "u@x", "s")
    assert SalesforceCredentials.from_connection(legacy).jwt_audience == PRODUCTION


MY_DOMAIN = "https://acme.my.salesforce.com"


@pytest.fixture
def emulator() -> Iterator[Starlette]:
    app = create_app(":memory:", base_url=MY_DOMAIN)
    yield app
    app.state.org.store.close()


async def _login(emulator: Starlette, audience: str | None) -> None:
    transport = httpx.ASGITransport(app=emulator)
    async with httpx.AsyncClient(transport=transport, base_url=MY_DOMAIN) as control:
        app = (await control.get("/emulator/v1/oauth-clients")).json()[0]
    credentials = SalesforceCredentials.from_connected_app(MY_DOMAIN, app, audience=audience)
    async with AsyncSalesforceClient(credentials, transport=transport) as client:
        await client.login()
        await client.query("SELECT Id FROM User")


def test_emulator_accepts_the_derived_audience_and_refuses_its_my_domain(
    emulator: Starlette,
) -> None:
    # Token request to the My Domain URL, aud derived: login.salesforce.com.
    asyncio.run(_login(emulator, None))
    # aud = the org's own My Domain URL: refused with Salesforce's error body.
    with pytest.raises(SalesforceAuthError) as refused:
        asyncio.run(_login(emulator, MY_DOMAIN))
    assert refused.value.error == "invalid_grant"
    assert refused.value.description == "audience is invalid"
    assert refused.value.status_code == 400
    # A production org is not reached through the sandbox audience either.
    with pytest.raises(SalesforceAuthError):
        asyncio.run(_login(emulator, SANDBOX))


def test_the_assertion_posted_carries_the_audience(key_pair: KeyPair) -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(400, json={"error": "invalid_grant", "error_description": "x"})

    credentials = SalesforceCredentials(
        "https://acme.my.salesforce.com",
        "cid",
        "u@x",
        private_key_pem=key_pair.private_pem,
        audience=SANDBOX,
    )
    with pytest.raises(SalesforceAuthError):
        SalesforceClient(credentials, transport=httpx.MockTransport(record)).login()
    form = parse_qs(seen[0].content.decode())
    claims = jwt.decode(
        form["assertion"][0], key_pair.public_pem, algorithms=["RS256"], audience=SANDBOX
    )
    assert claims["sub"] == "u@x"
