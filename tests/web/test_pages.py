"""The pages without a browser: sign-in and its cookie, who sees what, labels and roles."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from starlette.testclient import TestClient

from presencesync.service import Engine
from presencesync.web.auth import SESSION_COOKIE

from .conftest import Account, page_csrf, save_statuses, sign_in_response, valid_config


class Page(HTMLParser):
    """Collects what the accessibility checks need: labels, controls, roles, links."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.labels: dict[str, str] = {}  # for= -> visible text
        self.controls: list[dict[str, str]] = []
        self.roles: list[str] = []
        self.links: list[str] = []
        self.buttons: list[str] = []
        self._label_for: str | None = None
        self._label_text: list[str] = []
        self._hidden_depth = 0
        self._button: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "role" in a:
            self.roles.append(a["role"])
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if tag == "label":
            self._label_for, self._label_text = a.get("for"), []
        if tag == "span" and "visually-hidden" in a.get("class", ""):
            self._hidden_depth += 1
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.controls.append(a)
        if tag == "button":
            self._button = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self._label_for:
            self.labels[self._label_for] = " ".join("".join(self._label_text).split())
            self._label_for = None
        if tag == "span" and self._hidden_depth:
            self._hidden_depth -= 1
        if tag == "button" and self._button is not None:
            self.buttons.append(" ".join("".join(self._button).split()))
            self._button = None

    def handle_data(self, data: str) -> None:
        if self._label_for is not None and not self._hidden_depth:
            self._label_text.append(data)
        if self._button is not None:
            self._button.append(data)

    def label_of(self, control_id: str) -> str:
        return self.labels.get(control_id, "")


def assert_every_control_has_a_visible_label(page: Page) -> None:
    for control in page.controls:
        assert control.get("id"), control
        assert page.label_of(control["id"]), f"no visible label for {control}"


def sign_in(client: TestClient, token: str) -> str:
    response = sign_in_response(client, token)
    assert response.status_code == 303, response.text
    return response.headers["location"]


def test_login_form(client: TestClient) -> None:
    response = client.get("/login")
    assert response.status_code == 200
    page = Page(response.text)
    assert [page.label_of(c["id"]) for c in page.controls] == ["Access token"]
    assert page.controls[0]["type"] == "password"
    assert page.buttons == ["Sign in"]
    assert "alert" in page.roles
    assert_every_control_has_a_visible_label(page)


@pytest.mark.parametrize(
    ("role", "home"),
    [("admin", "/admin/omni-channel"), ("agent", "/contactpad"), ("supervisor", "/agents")],
)
def test_sign_in_redirects_by_role_with_a_strict_http_only_cookie(
    client: TestClient, acme: Account, role: str, home: str
) -> None:
    token = {"admin": acme.admin, "supervisor": acme.supervisor}.get(role, acme.agents["alice"])
    response = sign_in_response(client, token)
    assert response.status_code == 303
    assert response.headers["location"] == home
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert re.search(r"SameSite=strict", cookie, re.IGNORECASE)
    assert "Path=/" in cookie
    assert token not in cookie  # the cookie does not carry the token in the clear
    page = client.get(home)
    assert page.status_code == 200
    assert token not in page.text
    assert client.get("/", follow_redirects=False).headers["location"] == home


def test_wrong_token_shows_an_alert_and_sets_no_cookie(client: TestClient) -> None:
    response = sign_in_response(client, "ps_wrong")
    assert response.status_code == 401
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert "That access token is not valid" in response.text
    assert 'role="alert"' in response.text


def test_secure_cookie_over_https(app_factory, acme: Account) -> None:
    with TestClient(app_factory(), base_url="https://testserver") as client:
        response = sign_in_response(client, acme.admin)
    assert "Secure" in response.headers["set-cookie"]


def test_pages_need_a_session(client: TestClient) -> None:
    for path in ("/admin/omni-channel", "/contactpad", "/agents", "/"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/login"


def test_a_tampered_cookie_is_no_session(client: TestClient) -> None:
    client.cookies.set(SESSION_COOKIE, "gAAAAABforged")
    response = client.get("/admin/omni-channel", follow_redirects=False)
    assert response.status_code == 303


def test_sign_out_clears_the_cookie(client: TestClient, acme: Account) -> None:
    sign_in(client, acme.admin)
    response = client.get("/logout", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/admin/omni-channel", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("role", ["supervisor", "agent"])
def test_only_admins_see_the_configuration_page_or_its_link(
    client: TestClient, acme: Account, role: str
) -> None:
    token = acme.supervisor if role == "supervisor" else acme.agents["alice"]
    home = sign_in(client, token)
    landing = client.get(home)
    assert "/admin/omni-channel" not in Page(landing.text).links
    response = client.get("/admin/omni-channel")
    assert response.status_code == 403
    assert "Presence Status Configuration" not in response.text
    assert "/admin/omni-channel" not in Page(response.text).links


def test_admin_page_has_the_seeds_labels(engine: Engine, client: TestClient, acme: Account) -> None:
    save_statuses(engine, acme.id)
    sign_in(client, acme.admin)
    response = client.get("/admin/omni-channel")
    assert response.status_code == 200
    html = response.text
    page = Page(html)
    for text in (
        "Salesforce Administration",
        "Omni-channel Configuration",
        "Presence Status Configuration",
        "ContactWorld to Salesforce State Mapping",
    ):
        assert text in html
    assert {"Fetch Omni-channel configuration", "Save Configuration", "Save Settings"} <= set(
        page.buttons
    )
    labels = set(page.labels.values())
    assert {"Enable", "Busy", "Maps to"} <= labels
    assert "/admin/omni-channel" in page.links
    assert page.roles.count("alert") >= 1 and "switch" in page.roles
    assert_every_control_has_a_visible_label(page)
    # One Busy and one Maps to per fetched status; a state row per state but LoggedOut.
    busy = [c for c in page.controls if c.get("name") == "busy"]
    assert len(busy) == 4
    maps_to = re.search(r'<select id="pm-maps-0".*?</select>', html, re.DOTALL)
    assert maps_to is not None
    options = re.findall(r'<option value="([^"]*)"', maps_to.group(0))
    assert options[0] == "" and "(none: use Busy)" in maps_to.group(0)
    assert "ExtendedAway/Lunch" in options and "Busy/Inbound" not in options
    assert "LoggedOut" not in options
    assert 'data-key="LoggedOut"' not in html
    assert "(use ExtendedAway mapping)" in html  # ExtendedAway/Lunch falls back
    assert 'data-key="ExtendedAway/Lunch"' in html and 'data-key="Busy/Inbound"' in html
    # Busy follows the status option until a mapping is saved.
    assert re.search(r'id="pm-busy-1" name="busy" checked', html)  # Busy: a busy status
    assert not re.search(r'id="pm-busy-0" name="busy" checked', html)  # Available: online


def test_admin_page_shows_the_saved_config_and_round_trip_warnings(
    engine: Engine, client: TestClient, acme: Account
) -> None:
    save_statuses(engine, acme.id)
    engine.save_omni_config(acme.id, valid_config(), "test")
    sign_in(client, acme.admin)
    html = client.get("/admin/omni-channel").text
    assert re.search(r'id="omni-enabled" name="enabled" checked', html)
    assert "Lunch -&gt; ExtendedAway/Lunch -&gt; On_Break" in html
    assert re.search(r'<option value="ExtendedAway/Lunch" selected>', html)


def test_admin_page_without_the_feature(engine: Engine, client: TestClient, acme: Account) -> None:
    engine.set_omni_feature(acme.id, False)
    sign_in(client, acme.admin)
    html = client.get("/admin/omni-channel").text
    assert "not enabled for your account" in html
    assert "Save Configuration" not in html


def test_contactpad(engine: Engine, client: TestClient, acme: Account) -> None:
    sign_in(client, acme.agents["alice"])
    response = client.get("/contactpad")
    assert response.status_code == 200
    html = response.text
    page = Page(html)
    assert re.search(r'role="status"[^>]*id="current-state"[^>]*>LoggedOut<', html)
    assert {"Log in", "Log out", "Change state", "Answer", "Decline", "Hang up"} <= set(
        page.buttons
    )
    assert page.label_of("state-picker") == "State"
    picker = re.search(r'<select id="state-picker".*?</select>', html, re.DOTALL)
    assert picker is not None
    options = re.findall(r'<option value="([^"]*)"', picker.group(0))
    assert "Away/Break" in options and "Ready" in options
    assert "Busy/Inbound" not in options and "LoggedOut" not in options
    assert_every_control_has_a_visible_label(page)
    assert acme.agents["alice"] not in html
    assert "/static/contactpad.js" in html


def test_contactpad_is_for_agents(client: TestClient, acme: Account) -> None:
    sign_in(client, acme.admin)
    assert client.get("/contactpad").status_code == 403


def test_agents_overview(client: TestClient, acme: Account) -> None:
    sign_in(client, acme.supervisor)
    html = client.get("/agents").text
    assert 'data-agent="alice"' in html and 'data-agent="bob"' in html
    page = Page(html)
    assert page.label_of("queue") == "Queue" and "Offer a call" in page.buttons
    assert_every_control_has_a_visible_label(page)
    sign_in(client, acme.agents["alice"])
    assert client.get("/agents").status_code == 403


def test_pages_call_the_api_with_the_cookie_and_the_sessions_csrf_token(
    client: TestClient, acme: Account
) -> None:
    sign_in(client, acme.agents["alice"])
    # GETs work with the cookie alone.
    assert client.get("/api/v1/agents/alice").status_code == 200
    # Writes need the session's CSRF token, which only the pages carry.
    for headers in ({}, {"X-Requested-With": "presencesync"}, {"X-CSRF-Token": "forged"}):
        refused = client.post("/api/v1/agents/alice/login", headers=headers)
        assert refused.status_code == 403, headers
        assert refused.json()["error"]["code"] == "CSRF_CHECK_FAILED"
    token = page_csrf(client, "/contactpad")
    accepted = client.post("/api/v1/agents/alice/login", headers={"X-CSRF-Token": token})
    assert accepted.status_code == 200


def test_static_assets_are_served(client: TestClient) -> None:
    for name in ("app.css", "api.js", "admin.js", "contactpad.js", "agents.js"):
        assert client.get(f"/static/{name}").status_code == 200, name


def test_admin_page_keeps_saved_choices_that_went_stale(
    engine: Engine, client: TestClient, acme: Account
) -> None:
    """A status gone from the org, a minor state removed: shown as they are, so that saving
    reports them next to their rows instead of silently dropping them."""
    save_statuses(engine, acme.id)
    engine.save_omni_config(acme.id, valid_config(), "test")
    engine.set_minor_states(acme.id, {"ExtendedAway": ["Meeting", "Training"]}, "test")
    from presencesync.domain import PresenceStatus, StatusOption

    engine.save_presence_statuses(
        acme.id,
        [
            PresenceStatus("0N5000000000001AAA", "Available", "Available", StatusOption.ONLINE),
            PresenceStatus("0N5000000000002AAA", "Busy", "Busy", StatusOption.BUSY),
            PresenceStatus("0N5000000000004AAA", "Lunch", "Lunch", StatusOption.BUSY),
        ],
        "test",
    )
    sign_in(client, acme.admin)
    html = client.get("/admin/omni-channel").text
    assert '<option value="On_Break" selected>On_Break (not in the last fetch)</option>' in html
    assert (
        '<option value="ExtendedAway/Lunch" selected>ExtendedAway/Lunch '
        "(no longer an agent-selectable state)</option>"
    ) in html
