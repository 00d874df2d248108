"""Rate limits: per token on the API, failed attempts per address, sign-ins per token. Time is
a fake clock: the tests count requests, they never wait."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from presencesync.web.limits import Limits, Rate
from presencesync.web.ratelimit import Buckets

from .conftest import Account, bearer, error_of, login_csrf, sign_in_response


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limited(app_factory: Any, clock: Clock) -> Iterator[TestClient]:
    """5 API requests at once per token (then 5 a minute); 3 failures per address."""
    app = app_factory(limits=Limits(api_rate=Rate(5, 60), login_rate=Rate(3, 60)))
    app.state.rate_limiter.set_clock(clock)
    with TestClient(app) as client:
        yield client


def test_the_request_after_the_burst_is_refused_then_the_bucket_refills(
    limited: TestClient, acme: Account, clock: Clock
) -> None:
    headers = bearer(acme.admin)
    for _ in range(5):
        assert limited.get("/api/v1/states", headers=headers).status_code == 200
    refused = limited.get("/api/v1/states", headers=headers)
    assert refused.status_code == 429
    error = error_of(refused)
    assert error["code"] == "RATE_LIMITED"
    assert refused.headers["Retry-After"] == "12"  # one request per 12 s
    assert error["details"] == {"retry_after_seconds": 12, "limit": "5/60s"}
    # Another token has its own budget.
    assert limited.get("/api/v1/states", headers=bearer(acme.supervisor)).status_code == 200
    clock.now += 11.9
    assert limited.get("/api/v1/states", headers=headers).status_code == 429
    clock.now += 0.2
    assert limited.get("/api/v1/states", headers=headers).status_code == 200
    assert limited.get("/api/v1/states", headers=headers).status_code == 429
    clock.now += 60
    for _ in range(5):  # refilled to the burst, not beyond
        assert limited.get("/api/v1/states", headers=headers).status_code == 200
    assert limited.get("/api/v1/states", headers=headers).status_code == 429


def test_a_refused_request_does_nothing(limited: TestClient, acme: Account, engine: Any) -> None:
    headers = bearer(acme.agents["alice"])
    for _ in range(5):
        limited.get("/api/v1/agents/alice", headers=headers)
    before = engine.event_count(acme.id, "alice")
    assert limited.post("/api/v1/agents/alice/login", headers=headers).status_code == 429
    assert engine.event_count(acme.id, "alice") == before


def test_guessing_tokens_is_stopped_per_address_but_known_tokens_keep_working(
    limited: TestClient, acme: Account, clock: Clock
) -> None:
    assert limited.get("/api/v1/states", headers=bearer(acme.admin)).status_code == 200
    for n in range(3):
        guess = limited.get("/api/v1/states", headers=bearer(f"ps_guess{n:040d}"))
        assert guess.status_code == 401
    refused = limited.get("/api/v1/states", headers=bearer(acme.supervisor))  # not seen yet
    assert refused.status_code == 429
    assert error_of(refused)["code"] == "TOO_MANY_FAILED_ATTEMPTS"
    assert int(refused.headers["Retry-After"]) == 20
    # A valid token not seen before is refused too: a right guess must not get through.
    assert limited.get("/api/v1/states", headers=bearer(acme.agents["bob"])).status_code == 429
    # A token that authenticated before keeps working from the same address.
    assert limited.get("/api/v1/states", headers=bearer(acme.admin)).status_code == 200
    clock.now += 20
    assert limited.get("/api/v1/states", headers=bearer(acme.supervisor)).status_code == 200


def test_sign_in_attempts_are_limited_per_address(
    limited: TestClient, acme: Account, clock: Clock
) -> None:
    for _ in range(3):
        assert sign_in_response(limited, "ps_wrong-token-0123456789").status_code == 401
    refused = sign_in_response(limited, acme.admin)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "20"
    assert "Too many sign-in attempts" in refused.text
    assert "presencesync_session" not in refused.headers.get("set-cookie", "")
    clock.now += 20
    assert sign_in_response(limited, acme.admin).status_code == 303


def test_sign_ins_with_one_token_are_limited_wherever_they_come_from(
    limited: TestClient, acme: Account, clock: Clock
) -> None:
    for _ in range(3):
        assert sign_in_response(limited, acme.admin).status_code == 303
        limited.cookies.clear()
    csrf = login_csrf(limited)
    refused = limited.post(
        "/login",
        data={"token": acme.admin, "csrf_token": csrf},
        headers={"X-Forwarded-For": "10.9.9.9"},  # not trusted: same client address
        follow_redirects=False,
    )
    assert refused.status_code == 429
    assert sign_in_response(limited, acme.supervisor).status_code == 303  # other token


def test_buckets_are_bounded_and_forget_the_oldest(clock: Clock) -> None:
    buckets = Buckets(Rate(1, 60), clock, max_keys=3)
    for key in "abcd":
        assert buckets.take(key).allowed
    assert not buckets.take("d").allowed
    assert buckets.take("a").allowed  # "a" was forgotten: a full bucket again


def test_limits_from_the_environment() -> None:
    limits = Limits.from_env(
        {
            "PRESENCESYNC_RATE_LIMIT_API": "100/10",
            "PRESENCESYNC_RATE_LIMIT_LOGIN": "off",
            "PRESENCESYNC_MAX_BODY_BYTES": "2048",
        }
    )
    assert limits.api_rate == Rate(100, 10.0) and limits.login_rate is None
    assert limits.max_body_bytes == 2048
    assert Limits.from_env({}) == Limits()
    for bad in ({"PRESENCESYNC_RATE_LIMIT_API": "fast"}, {"PRESENCESYNC_MAX_BODY_BYTES": "1"}):
        with pytest.raises(ValueError):
            Limits.from_env(bad)


def test_429_is_in_the_openapi_document(limited: TestClient) -> None:
    document = limited.get("/openapi.json").json()
    for operations in document["paths"].values():
        for operation in operations.values():
            if operation.get("security"):
                assert "429" in operation["responses"]
