"""CSRF protection of cookie-authenticated requests and of the sign-in form; security headers
on pages, API answers and the bridge script."""

from __future__ import annotations

import re
import warnings
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from presencesync.web.auth import SESSION_COOKIE
from presencesync.web.csrf import LOGIN_COOKIE
from presencesync.web.headers import PAGE_CSP

from .conftest import Account, bearer, login_csrf, page_csrf, sign_in_response

ORIGIN = "http://testserver"


def _signed_in(client: TestClient, token: str) -> str:
    assert sign_in_response(client, token).status_code == 303
    return page_csrf(client)


def test_a_cookie_write_needs_the_sessions_token(client: TestClient, acme: Account) -> None:
    token = _signed_in(client, acme.agents["alice"])
    url = "/api/v1/agents/alice/login"
    for headers in ({}, {"X-CSRF-Token": token[:-1] + "x"}, {"X-Requested-With": "x"}):
        refused = client.post(url, headers=headers)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "CSRF_CHECK_FAILED"
    assert client.post(url, headers={"X-CSRF-Token": token, "Origin": ORIGIN}).status_code == 200


def test_the_token_is_bound_to_the_session(client: TestClient, acme: Account) -> None:
    first = _signed_in(client, acme.agents["alice"])
    client.cookies.clear()
    second = _signed_in(client, acme.agents["alice"])
    assert first != second  # a new session, a new token
    refused = client.put(
        "/api/v1/agents/alice/state", json={"state": "Away"}, headers={"X-CSRF-Token": first}
    )
    assert refused.status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Referer": "https://evil.example/page"},
    ],
)
def test_another_sites_origin_is_refused_even_with_the_token(
    client: TestClient, acme: Account, headers: dict[str, str]
) -> None:
    token = _signed_in(client, acme.agents["alice"])
    refused = client.post("/api/v1/agents/alice/login", headers={"X-CSRF-Token": token, **headers})
    assert refused.status_code == 403
    assert "another site" in refused.json()["error"]["message"]


def test_bearer_calls_need_no_csrf_token(client: TestClient, acme: Account) -> None:
    response = client.post(
        "/api/v1/agents/alice/login",
        headers={**bearer(acme.agents["alice"]), "Origin": "https://tools.example"},
    )
    assert response.status_code == 200


def test_reads_need_no_csrf_token(client: TestClient, acme: Account) -> None:
    _signed_in(client, acme.agents["alice"])
    assert client.get("/api/v1/agents/alice").status_code == 200


def test_login_csrf_a_forged_sign_in_is_refused(client: TestClient, acme: Account) -> None:
    # Another site's form: no pre-session cookie, no valid field.
    forged = client.post("/login", data={"token": acme.admin}, follow_redirects=False)
    assert forged.status_code == 403
    assert SESSION_COOKIE not in forged.headers.get("set-cookie", "")
    # The field of another browser's form does not match this browser's cookie.
    other = TestClient(client.app)
    stolen = login_csrf(other)
    login_csrf(client)
    refused = client.post(
        "/login", data={"token": acme.admin, "csrf_token": stolen}, follow_redirects=False
    )
    assert refused.status_code == 403
    assert "did not come from this site" in refused.text
    # Right field and cookie, but posted from another origin.
    cross = client.post(
        "/login",
        data={"token": acme.admin, "csrf_token": login_csrf(client)},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert cross.status_code == 403
    good = sign_in_response(client, acme.admin, Origin=ORIGIN)
    assert good.status_code == 303


def test_the_login_cookie_is_strict_and_http_only(client: TestClient) -> None:
    client.get("/login")
    cookie = next(
        c for c in client.get("/login").headers.get_list("set-cookie") if LOGIN_COOKIE in c
    )
    assert "HttpOnly" in cookie and re.search("SameSite=strict", cookie, re.I)


def test_sign_out_from_another_site_does_nothing(client: TestClient, acme: Account) -> None:
    _signed_in(client, acme.admin)
    client.get("/logout", headers={"Sec-Fetch-Site": "cross-site"}, follow_redirects=False)
    assert SESSION_COOKIE in client.cookies
    client.get("/logout", headers={"Sec-Fetch-Site": "same-origin"}, follow_redirects=False)
    assert SESSION_COOKIE not in client.cookies


def _headers(response: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items()}


@pytest.mark.parametrize("path", ["/login", "/admin/omni-channel", "/contactpad", "/agents"])
def test_pages_send_a_strict_csp_and_no_cache(client: TestClient, acme: Account, path: str) -> None:
    _signed_in(client, acme.admin)
    headers = _headers(client.get(path))
    assert headers["content-security-policy"] == PAGE_CSP
    assert "unsafe-inline" not in PAGE_CSP and "frame-ancestors 'none'" in PAGE_CSP
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in headers  # plain HTTP


def test_pages_have_no_inline_script_or_style(client: TestClient, acme: Account) -> None:
    _signed_in(client, acme.agents["alice"])
    for path in ("/login", "/contactpad"):
        html = client.get(path).text
        for script in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S):
            attributes, _body = script
            assert "src=" in attributes or 'type="application/json"' in attributes, script
        assert " style=" not in html and "<style" not in html
        assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers


def test_api_answers_are_not_cached_framed_or_sniffed(client: TestClient, acme: Account) -> None:
    for response in (
        client.get("/api/v1/states", headers=bearer(acme.admin)),
        client.get("/api/v1/states"),  # an error too
    ):
        headers = _headers(response)
        assert headers["cache-control"] == "no-store"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_the_bridge_script_may_be_loaded_by_the_salesforce_console(client: TestClient) -> None:
    headers = _headers(client.get("/static/bridge.js"))
    assert headers["access-control-allow-origin"] == "*"
    assert headers["cross-origin-resource-policy"] == "cross-origin"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-type"].startswith("text/javascript")
    other = _headers(client.get("/static/api.js"))
    assert other["cross-origin-resource-policy"] == "same-origin"


def test_hsts_over_https(app_factory: Any) -> None:
    with TestClient(app_factory(), base_url="https://testserver") as secure:
        headers = _headers(secure.get("/login"))
    assert headers["strict-transport-security"].startswith("max-age=")
