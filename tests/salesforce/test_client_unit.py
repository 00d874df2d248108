"""The client's protocol logic against scripted responses (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import random
import time
from urllib.parse import parse_qs

import httpx
import jwt
import pytest

from presencesync.salesforce import (
    ApiUsage,
    AsyncSalesforceClient,
    RetryPolicy,
    SalesforceApiError,
    SalesforceAuthError,
    SalesforceClient,
    SalesforceCredentials,
    SalesforceLimitError,
    SalesforceQueryError,
    SalesforceUnavailable,
)
from presencesync.salesforce.auth import JWT_BEARER_GRANT
from presencesync.salesforce.protocol import parse_limit_info

from .sf_testkit import (
    INSTANCE_URL,
    LOGIN_URL,
    FakeOrg,
    KeyPair,
    bearer,
    invalid_session,
    json_response,
)

USERNAME = "integration@example.test"


def jwt_credentials(key_pair: KeyPair) -> SalesforceCredentials:
    return SalesforceCredentials(
        LOGIN_URL, "3MVG-client", USERNAME, private_key_pem=key_pair.private_pem
    )


def make_client(
    org: FakeOrg, key_pair: KeyPair, sleeps: list[float], **kwargs: object
) -> SalesforceClient:
    return SalesforceClient(
        jwt_credentials(key_pair),
        transport=httpx.MockTransport(org),
        sleep=sleeps.append,
        rng=random.Random(7),
        **kwargs,  # type: ignore[arg-type]
    )


def query_result(records: list[dict], next_url: str | None = None, total: int | None = None):
    body = {"totalSize": total or len(records), "done": next_url is None, "records": records}
    if next_url:
        body["nextRecordsUrl"] = next_url
    return json_response(200, body, {"Sforce-Limit-Info": "api-usage=18/5000"})


def ok_query(request: httpx.Request) -> httpx.Response:
    return query_result([{"attributes": {"type": "User"}, "Id": "005A"}])


# -- login ---------------------------------------------------------------------------------


def test_jwt_bearer_login_sends_signed_assertion(key_pair: KeyPair) -> None:
    org = FakeOrg(ok_query)
    client = make_client(org, key_pair, [])
    token = client.login()
    assert token.instance_url == INSTANCE_URL
    assert client.instance_url == INSTANCE_URL
    form = parse_qs(org.requests[0].content.decode())
    assert form["grant_type"] == [JWT_BEARER_GRANT]
    # The token request goes to the login URL, but `aud` names Salesforce's authorization
    # server (derived here: login.salesforce.com), never the login URL's own host.
    assert str(org.requests[0].url) == LOGIN_URL + "/services/oauth2/token"
    claims = jwt.decode(
        form["assertion"][0],
        key_pair.public_pem,
        algorithms=["RS256"],
        audience="https://login.salesforce.com",
    )
    assert claims["iss"] == "3MVG-client"
    assert claims["sub"] == USERNAME
    # exp is "now + 3 minutes": a short-lived assertion, as Salesforce requires
    assert 170 <= claims["exp"] - time.time() <= 180


def test_client_credentials_login_posts_id_and_secret() -> None:
    org = FakeOrg(ok_query)
    creds = SalesforceCredentials(LOGIN_URL, "3MVG-client", client_secret="s3cret")
    client = SalesforceClient(creds, transport=httpx.MockTransport(org))
    client.query("SELECT Id FROM User")
    form = parse_qs(org.requests[0].content.decode())
    assert form == {
        "grant_type": ["client_credentials"],
        "client_id": ["3MVG-client"],
        "client_secret": ["s3cret"],
    }
    assert bearer(org.requests[1]) == "token-1"


def test_credentials_need_a_key_or_a_secret() -> None:
    with pytest.raises(ValueError):
        SalesforceCredentials(LOGIN_URL, "client")
    with pytest.raises(ValueError):
        SalesforceCredentials(LOGIN_URL, "client", private_key_pem="x")  # no username


def test_jwt_bearer_needs_an_rsa_key() -> None:
    # Salesforce signs nothing but RS256 in the JWT bearer flow: another kind of key is refused
    # with a message that says so (PyJWT's own was "Expecting a PEM-formatted key.").
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from presencesync.salesforce.auth import jwt_assertion

    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    creds = SalesforceCredentials(LOGIN_URL, "client", USERNAME, private_key_pem=ec_pem)
    with pytest.raises(ValueError, match="RSA private key"):
        jwt_assertion(creds)


def test_token_endpoint_error_is_an_auth_error_with_oauth_fields(key_pair: KeyPair) -> None:
    org = FakeOrg(ok_query)
    org.token_failures.append(
        json_response(400, {"error": "invalid_grant", "error_description": "invalid assertion"})
    )
    client = make_client(org, key_pair, [])
    with pytest.raises(SalesforceAuthError) as info:
        client.query("SELECT Id FROM User")
    assert info.value.error == "invalid_grant"
    assert info.value.description == "invalid assertion"
    assert info.value.status_code == 400
    assert len(org.requests) == 1  # an auth refusal is final, not retried


def test_token_is_cached_between_calls(key_pair: KeyPair) -> None:
    org = FakeOrg(ok_query)
    client = make_client(org, key_pair, [])
    client.query("SELECT Id FROM User")
    client.query("SELECT Id FROM User")
    assert org.logins == 1
    assert [bearer(r) for r in org.rest_requests] == ["token-1", "token-1"]


# -- re-login on INVALID_SESSION_ID ---------------------------------------------------------


def test_expired_session_relogs_in_once_and_retries(key_pair: KeyPair) -> None:
    def rest(request: httpx.Request) -> httpx.Response:
        return invalid_session() if bearer(request) == "token-1" else ok_query(request)

    org = FakeOrg(rest)
    client = make_client(org, key_pair, [])
    records = client.query("SELECT Id FROM User")
    assert [r["Id"] for r in records] == ["005A"]
    assert org.logins == 2
    assert [bearer(r) for r in org.rest_requests] == ["token-1", "token-2"]


def test_session_rejected_after_relogin_raises_auth_error(key_pair: KeyPair) -> None:
    org = FakeOrg(lambda request: invalid_session())
    client = make_client(org, key_pair, [])
    with pytest.raises(SalesforceAuthError) as info:
        client.query("SELECT Id FROM User")
    assert info.value.error == "INVALID_SESSION_ID"
    assert org.logins == 2  # the first login and exactly one re-login
    assert len(org.rest_requests) == 2


def test_each_call_gets_its_own_single_relogin(key_pair: KeyPair) -> None:
    expired = {"token-1"}

    def rest(request: httpx.Request) -> httpx.Response:
        return invalid_session() if bearer(request) in expired else ok_query(request)

    org = FakeOrg(rest)
    client = make_client(org, key_pair, [])
    client.query("SELECT Id FROM User")
    expired.add("token-2")  # the session expires again later
    client.query("SELECT Id FROM User")
    assert org.logins == 3
    assert [bearer(r) for r in org.rest_requests] == ["token-1", "token-2", "token-2", "token-3"]


def test_other_401_is_an_auth_error_without_relogin(key_pair: KeyPair) -> None:
    org = FakeOrg(
        lambda r: json_response(401, [{"message": "Bad OAuth", "errorCode": "INVALID_AUTH"}])
    )
    client = make_client(org, key_pair, [])
    with pytest.raises(SalesforceAuthError) as info:
        client.query("SELECT Id FROM User")
    assert info.value.error == "INVALID_AUTH"
    assert org.logins == 1


# -- retries and backoff -------------------------------------------------------------------


def test_5xx_is_retried_with_growing_jittered_backoff(key_pair: KeyPair) -> None:
    failures = [503, 500, 502]

    def rest(request: httpx.Request) -> httpx.Response:
        if failures:
            return json_response(
                failures.pop(0), [{"message": "down", "errorCode": "SERVER_UNAVAILABLE"}]
            )
        return ok_query(request)

    org = FakeOrg(rest)
    sleeps: list[float] = []
    client = make_client(org, key_pair, sleeps, retry=RetryPolicy(max_attempts=4, base_delay=1))
    assert len(client.query("SELECT Id FROM User")) == 1
    assert len(org.rest_requests) == 4
    assert len(sleeps) == 3
    # step n is base * 2**(n-1); the wait is half the step plus up to another half at random
    for n, wait in enumerate(sleeps, start=1):
        step = 2 ** (n - 1)
        assert step / 2 <= wait <= step


def test_jitter_differs_between_clients() -> None:
    policy = RetryPolicy(base_delay=1)
    waits = {policy.delay(3, random.Random(seed), None) for seed in range(20)}
    assert len(waits) > 10
    assert all(2 <= w <= 4 for w in waits)


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=3)
    assert all(policy.delay(10, random.Random(s), None) <= 3 for s in range(20))


def test_network_errors_exhaust_into_unavailable(key_pair: KeyPair) -> None:
    def rest(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    org = FakeOrg(rest)
    sleeps: list[float] = []
    client = make_client(org, key_pair, sleeps, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(SalesforceUnavailable) as info:
        client.query("SELECT Id FROM User")
    assert info.value.attempts == 3
    assert "ConnectError" in info.value.last_error
    assert len(org.rest_requests) == 3
    assert len(sleeps) == 2  # no pointless wait after the last attempt


def test_token_endpoint_outage_is_retried(key_pair: KeyPair) -> None:
    org = FakeOrg(ok_query)
    org.token_failures.append(httpx.Response(503, text="maintenance"))
    sleeps: list[float] = []
    client = make_client(org, key_pair, sleeps)
    assert len(client.query("SELECT Id FROM User")) == 1
    assert org.logins == 1 and len(sleeps) == 1


def test_429_honours_retry_after(key_pair: KeyPair) -> None:
    answers = [httpx.Response(429, headers={"Retry-After": "2"})]

    def rest(request: httpx.Request) -> httpx.Response:
        return answers.pop(0) if answers else ok_query(request)

    sleeps: list[float] = []
    client = make_client(FakeOrg(rest), key_pair, sleeps)
    client.query("SELECT Id FROM User")
    assert sleeps and sleeps[0] >= 2


# -- API errors and limits -----------------------------------------------------------------


def test_request_limit_exceeded_is_a_limit_error_and_not_retried(key_pair: KeyPair) -> None:
    org = FakeOrg(
        lambda r: json_response(
            403,
            [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
            {"Sforce-Limit-Info": "api-usage=5001/5000"},
        )
    )
    sleeps: list[float] = []
    client = make_client(org, key_pair, sleeps)
    with pytest.raises(SalesforceLimitError) as info:
        client.query("SELECT Id FROM User")
    assert info.value.error_code == "REQUEST_LIMIT_EXCEEDED"
    assert info.value.status_code == 403
    assert len(org.rest_requests) == 1 and sleeps == []
    assert client.api_usage == ApiUsage(5001, 5000)


def test_malformed_query_is_a_query_error(key_pair: KeyPair) -> None:
    message = "unexpected token: FORM"
    org = FakeOrg(
        lambda r: json_response(400, [{"message": message, "errorCode": "MALFORMED_QUERY"}])
    )
    client = make_client(org, key_pair, [])
    with pytest.raises(SalesforceQueryError) as info:
        client.query("SELECT Id FORM User")
    assert info.value.error_code == "MALFORMED_QUERY"
    assert info.value.message == message
    assert isinstance(info.value, SalesforceApiError)


def test_not_found_is_a_plain_api_error(key_pair: KeyPair) -> None:
    org = FakeOrg(
        lambda r: json_response(
            404, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
        )
    )
    client = make_client(org, key_pair, [])
    with pytest.raises(SalesforceApiError) as info:
        client.get_record("User", "005000000000000AAA")
    assert not isinstance(info.value, SalesforceQueryError)
    assert info.value.error_code == "NOT_FOUND"


def test_limit_info_header_is_parsed(key_pair: KeyPair) -> None:
    client = make_client(FakeOrg(ok_query), key_pair, [])
    assert client.api_usage is None
    client.query("SELECT Id FROM User")
    assert client.api_usage == ApiUsage(used=18, limit=5000)
    assert parse_limit_info("per-app-api-usage=2/250(appName=x), api-usage=7/15000") == (7, 15000)
    assert parse_limit_info("garbage") is None
    assert parse_limit_info(None) is None


# -- paging --------------------------------------------------------------------------------

NEXT_1 = "/services/data/v62.0/query/01gXX-2"
NEXT_2 = "/services/data/v62.0/query/01gXX-4"


def paged(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/query"):
        return query_result([{"Id": "1"}, {"Id": "2"}], NEXT_1, total=5)
    if request.url.path == NEXT_1:
        return query_result([{"Id": "3"}, {"Id": "4"}], NEXT_2, total=5)
    if request.url.path == NEXT_2:
        return query_result([{"Id": "5"}], total=5)
    return json_response(404, [{"message": "no", "errorCode": "NOT_FOUND"}])


def test_query_follows_next_records_url(key_pair: KeyPair) -> None:
    org = FakeOrg(paged)
    client = make_client(org, key_pair, [])
    assert [r["Id"] for r in client.query("SELECT Id FROM User")] == ["1", "2", "3", "4", "5"]
    paths = [r.url.path for r in org.rest_requests]
    assert paths == ["/services/data/v62.0/query", NEXT_1, NEXT_2]
    assert org.rest_requests[0].url.params["q"] == "SELECT Id FROM User"
    assert all(str(r.url).startswith(INSTANCE_URL) for r in org.rest_requests)


def test_batch_size_is_sent_as_query_option(key_pair: KeyPair) -> None:
    org = FakeOrg(paged)
    client = make_client(org, key_pair, [])
    client.query("SELECT Id FROM User", batch_size=200)
    assert org.rest_requests[0].headers["Sforce-Query-Options"] == "batchSize=200"
    client.query("SELECT Id FROM User")
    assert "Sforce-Query-Options" not in org.rest_requests[-3].headers


def test_query_iter_fetches_pages_lazily(key_pair: KeyPair) -> None:
    org = FakeOrg(paged)
    client = make_client(org, key_pair, [])
    records = client.query_iter("SELECT Id FROM User")
    assert [next(records)["Id"], next(records)["Id"]] == ["1", "2"]
    assert len(org.rest_requests) == 1
    assert [r["Id"] for r in records] == ["3", "4", "5"]
    assert len(org.rest_requests) == 3


def test_session_expiring_between_pages_relogs_in(key_pair: KeyPair) -> None:
    def rest(request: httpx.Request) -> httpx.Response:
        if request.url.path == NEXT_1 and bearer(request) == "token-1":
            return invalid_session()
        return paged(request)

    org = FakeOrg(rest)
    client = make_client(org, key_pair, [])
    assert len(client.query("SELECT Id FROM User")) == 5
    assert org.logins == 2


def test_api_version_is_configurable(key_pair: KeyPair) -> None:
    org = FakeOrg(ok_query)
    client = make_client(org, key_pair, [], api_version="v58.0")
    client.query("SELECT Id FROM User")
    assert org.rest_requests[0].url.path == "/services/data/v58.0/query"
    with pytest.raises(ValueError):
        make_client(org, key_pair, [], api_version="62")


# -- the async client shares all of it ------------------------------------------------------


def test_async_client_relogs_in_and_retries(key_pair: KeyPair) -> None:
    failures = [503]

    def rest(request: httpx.Request) -> httpx.Response:
        if bearer(request) == "token-1":
            return invalid_session()
        if failures:
            return httpx.Response(failures.pop())
        return paged(request)

    org = FakeOrg(rest)
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def scenario() -> list[str]:
        async with AsyncSalesforceClient(
            jwt_credentials(key_pair),
            transport=httpx.MockTransport(org),
            sleep=fake_sleep,
        ) as client:
            first = [r["Id"] async for r in client.query_iter("SELECT Id FROM User")]
            assert first == ["1", "2", "3", "4", "5"]
            return [r["Id"] for r in await client.query("SELECT Id FROM User")]

    assert asyncio.run(scenario()) == ["1", "2", "3", "4", "5"]
    assert org.logins == 2
    assert len(sleeps) == 1


def test_async_client_runs_concurrent_queries(key_pair: KeyPair) -> None:
    org = FakeOrg(ok_query)

    async def scenario() -> None:
        async with AsyncSalesforceClient(
            jwt_credentials(key_pair), transport=httpx.MockTransport(org)
        ) as client:
            await client.login()
            results = await asyncio.gather(
                *(client.query("SELECT Id FROM User") for _ in range(10))
            )
            assert all(r == [{"attributes": {"type": "User"}, "Id": "005A"}] for r in results)

    asyncio.run(scenario())
    assert org.logins == 1


def test_non_json_success_is_an_api_error(key_pair: KeyPair) -> None:
    org = FakeOrg(lambda r: httpx.Response(200, text="<html>Down for maintenance</html>"))
    client = make_client(org, key_pair, [])
    with pytest.raises(SalesforceApiError) as info:
        client.query("SELECT Id FROM User")
    assert info.value.error_code == "INVALID_RESPONSE"
