"""A third-party client, simple-salesforce, against the emulator over real HTTPS.

If simple-salesforce logs in with each of its flows and gets, for the very SOQL our connector
sends, the records our connector gets, the emulator speaks Salesforce's wire protocol and not a
private dialect shared with our code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from presencesync.salesforce import (
    SalesforceClient,
    SalesforceCredentials,
    current_presences,
    fetch_omni_configuration,
    open_work,
)

from .emulator_support import RunningEmulator, agent_ids, check, seed, start_emulator

API_VERSION = "62.0"


class EmulatorSession(requests.Session):
    """A requests session that trusts the emulator's certificate and sends simple-salesforce's
    login calls, which always go to ``https://<domain>.salesforce.com``, to the emulator (what
    DNS does for a real org's My Domain). Every other URL is left alone."""

    def __init__(self, handle: RunningEmulator) -> None:
        super().__init__()
        assert handle.cert_path is not None
        self.verify = str(handle.cert_path)
        # REQUESTS_CA_BUNDLE and proxy variables of the environment would override the session
        # (requests lets the environment win over Session.verify); this is loopback only.
        self.trust_env = False
        self.login_urls: list[str] = []
        self._url = handle.url

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        text = url.decode() if isinstance(url, bytes) else url
        rewritten = re.sub(r"^https://[A-Za-z0-9.-]+\.salesforce\.com", self._url, text)
        if rewritten != text:
            self.login_urls.append(text)
        return super().request(method, rewritten, *args, **kwargs)


class RecordingTransport(httpx.HTTPTransport):
    """Remembers every SOQL statement our connector sends."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.soql: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/query"):
            self.soql.append(request.url.params["q"])
        return super().handle_request(request)


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """One HTTPS emulator for the module, with agents online and work routed."""
    handle = start_emulator(":memory:", tls=True, tls_dir=str(tmp_path_factory.mktemp("tls")))
    try:
        with httpx.Client(base_url=handle.url, verify=handle.ssl_context() or True) as control:
            a, b, c, *_ = agent_ids(check(control.get("/emulator/v1/users")))
            for user, status in ((a, "Available"), (b, "Available_for_Cases"), (c, "Busy")):
                check(
                    control.post(
                        f"/emulator/v1/users/{user}/omni/login", json={"presence_status": status}
                    )
                )
            for channel in ("Case", "Chat", "Lead"):
                check(
                    control.post("/emulator/v1/work", json={"channel": channel, "subject": "x"}),
                    201,
                )
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def new_session(org: RunningEmulator) -> Iterator[Callable[[], EmulatorSession]]:
    """Sessions for simple-salesforce, closed after the test so the emulator can stop."""
    sessions: list[EmulatorSession] = []

    def make() -> EmulatorSession:
        sessions.append(EmulatorSession(org))
        return sessions[-1]

    yield make
    for session in sessions:
        session.close()


@pytest.fixture(scope="module")
def connected_app(org: RunningEmulator) -> dict[str, Any]:
    return check(httpx.get(f"{org.url}/emulator/v1/oauth-clients", verify=org.ssl_context()))[0]


@pytest.fixture(scope="module")
def recorder(org: RunningEmulator) -> RecordingTransport:
    return RecordingTransport(verify=org.ssl_context())


@pytest.fixture(scope="module")
def ours(
    org: RunningEmulator, connected_app: dict[str, Any], recorder: RecordingTransport
) -> Iterator[SalesforceClient]:
    """Our connector, its SOQL recorded."""
    credentials = SalesforceCredentials.from_connected_app(org.url, connected_app)
    with SalesforceClient(credentials, transport=recorder) as client:
        yield client


@pytest.fixture(scope="module")
def connector_soql(
    org: RunningEmulator, ours: SalesforceClient, recorder: RecordingTransport
) -> list[str]:
    """Every SOQL statement the connector's Omni readers send (with their results checked)."""
    transport = recorder
    users = agent_ids(check(httpx.get(f"{org.url}/emulator/v1/users", verify=org.ssl_context())))
    assert len(fetch_omni_configuration(ours)) > 0
    assert len(current_presences(ours, users)) == 3
    assert len(current_presences(ours)) == 3
    assert len(open_work(ours, users)) == 3
    assert len(open_work(ours)) == 3
    assert len(transport.soql) == 7
    return list(transport.soql)


def normalized(records: Any) -> Any:
    return json.loads(json.dumps(records))


def same_records_as_connector(sf: Salesforce, ours: SalesforceClient, soql: list[str]) -> None:
    for statement in soql:
        theirs = sf.query_all(statement)
        assert theirs["done"] is True
        assert theirs["totalSize"] == len(theirs["records"])
        assert normalized(theirs["records"]) == normalized(ours.query(statement)), statement


def test_session_id_from_our_jwt_login(
    org: RunningEmulator,
    ours: SalesforceClient,
    connector_soql: list[str],
    new_session: Callable[[], EmulatorSession],
) -> None:
    token = ours.login()
    sf = Salesforce(
        instance_url=token.instance_url,
        session_id=token.access_token,
        session=new_session(),
        version=API_VERSION,
    )
    assert sf.sf_instance == org.url.removeprefix("https://")
    same_records_as_connector(sf, ours, connector_soql)
    assert sf.api_usage["api-usage"].used > 0  # it parsed our Sforce-Limit-Info header

    # without a way to log in again, simple-salesforce reports the expired session
    check(httpx.post(f"{org.url}/emulator/v1/sessions/expire", verify=org.ssl_context()))
    with pytest.raises(SalesforceExpiredSession):
        sf.query_all("SELECT Id FROM User")


def _jwt(app: dict[str, Any], session: EmulatorSession) -> Salesforce:
    return Salesforce(
        username=app["username"],
        consumer_key=app["client_id"],
        privatekey=app["private_key_pem"],
        session=session,
        version=API_VERSION,
    )


def _soap(app: dict[str, Any], session: EmulatorSession) -> Salesforce:
    return Salesforce(
        username=app["username"],
        password=app["password"],
        security_token=app["security_token"],
        session=session,
        version=API_VERSION,
    )


def _client_credentials(app: dict[str, Any], session: EmulatorSession) -> Salesforce:
    return Salesforce(
        consumer_key=app["client_id"],
        consumer_secret=app["client_secret"],
        domain="presencesync-emulator.my",
        session=session,
        version=API_VERSION,
    )


def _password(app: dict[str, Any], session: EmulatorSession) -> Salesforce:
    return Salesforce(
        username=app["username"],
        password=app["password"],
        consumer_key=app["client_id"],
        consumer_secret=app["client_secret"],
        session=session,
        version=API_VERSION,
    )


LOGINS = {
    "jwt_bearer": (_jwt, "/services/oauth2/token"),
    "soap_login": (_soap, f"/services/Soap/u/{API_VERSION}"),
    "client_credentials": (_client_credentials, "/services/oauth2/token"),
    "oauth_password": (_password, "/services/oauth2/token"),
}


@pytest.mark.parametrize("flow", sorted(LOGINS))
def test_own_login_flows(
    org: RunningEmulator,
    connected_app: dict[str, Any],
    ours: SalesforceClient,
    connector_soql: list[str],
    new_session: Callable[[], EmulatorSession],
    flow: str,
) -> None:
    login, login_path = LOGINS[flow]
    session = new_session()
    sf = login(connected_app, session)
    assert [urlpath(u) for u in session.login_urls] == [login_path]
    assert sf.sf_instance == org.url.removeprefix("https://")
    same_records_as_connector(sf, ours, connector_soql)

    # simple-salesforce logs in again by itself on INVALID_SESSION_ID
    check(httpx.post(f"{org.url}/emulator/v1/sessions/expire", verify=org.ssl_context()))
    assert sf.query_all("SELECT Id FROM ServicePresenceStatus")["totalSize"] > 0
    assert len(session.login_urls) == 2


def urlpath(url: str) -> str:
    return httpx.URL(url).path


def test_errors_map_to_simple_salesforce_exceptions(
    org: RunningEmulator,
    connected_app: dict[str, Any],
    new_session: Callable[[], EmulatorSession],
) -> None:
    sf = _jwt(connected_app, new_session())
    with pytest.raises(SalesforceMalformedRequest) as malformed:
        sf.query("SELECT Id FORM User")
    assert malformed.value.content[0]["errorCode"] == "MALFORMED_QUERY"

    control = httpx.Client(base_url=org.url, verify=org.ssl_context() or True)
    with control:
        limits = check(control.get("/emulator/v1/limits"))
        check(control.put("/emulator/v1/limits", json={"daily_api_requests": limits["used"]}))
        try:
            with pytest.raises(SalesforceRefusedRequest) as refused:
                sf.query("SELECT Id FROM User")
            assert refused.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        finally:
            check(control.put("/emulator/v1/limits", json=limits | {"reset_usage": False}))


def test_paging_with_query_more(
    org: RunningEmulator,
    connected_app: dict[str, Any],
    new_session: Callable[[], EmulatorSession],
) -> None:
    with httpx.Client(base_url=org.url, verify=org.ssl_context() or True) as control:
        # Straight into the org's store: 200 control-API calls would only slow the test down.
        store = org.app.state.org.store
        for n in range(201 - len(check(control.get("/emulator/v1/users")))):
            seed.add_user(store, "Paged", f"User{n}", f"paged{n}@example.test")
        expected = {u["id"] for u in check(control.get("/emulator/v1/users"))}
    sf = _jwt(connected_app, new_session())
    first = sf.query("SELECT Id FROM User", headers={"Sforce-Query-Options": "batchSize=200"})
    assert first["done"] is False and len(first["records"]) == 200
    rest = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert rest["done"] is True
    assert {r["Id"] for r in first["records"] + rest["records"]} == expected


def test_user_service_presence_delete_and_refused_create_through_simple_salesforce(
    org: RunningEmulator,
    connected_app: dict[str, Any],
    new_session: Callable[[], EmulatorSession],
) -> None:
    """UserServicePresence supports delete() but not create() or update() (its supported
    calls); simple-salesforce sees Salesforce's own answers."""
    sf = _jwt(connected_app, new_session())
    rows = sf.query("SELECT Id, UserId FROM UserServicePresence WHERE IsCurrentState = false")
    record = rows["records"][0]
    with pytest.raises(SalesforceMalformedRequest) as created:
        sf.UserServicePresence.create({"UserId": record["UserId"]})
    assert created.value.content[0]["errorCode"] == "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"
    with pytest.raises(SalesforceMalformedRequest) as updated:
        sf.UserServicePresence.update(record["Id"], {"IsAway": True})
    assert "cannot be updated" in updated.value.content[0]["message"]
    assert sf.UserServicePresence.delete(record["Id"]) == 204
    left = sf.query(f"SELECT Id FROM UserServicePresence WHERE Id = '{record['Id']}'")
    assert left["totalSize"] == 0
