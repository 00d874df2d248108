"""The agent views show a degraded console and an Omni maintenance (rules 3.12a, 3.5b), and the
admin page's settings form has one choice per Omni logout reason."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from starlette.testclient import TestClient

from presencesync.domain import (
    ConsoleDegraded,
    DegradedReason,
    SalesforceSnapshot,
)
from presencesync.service import Engine
from presencesync.web.pages import console_text
from tests.web.conftest import Account, bearer
from tests.web.test_pages import sign_in


def now() -> datetime:
    return datetime.now(UTC)


def test_agent_views_say_the_console_is_degraded(
    engine: Engine, client: TestClient, acme: Account
) -> None:
    hello = SalesforceSnapshot(at=now(), seq=0, presence_status=None, console_connected=True)
    engine.submit(acme.id, "alice", hello, source="bridge")
    degraded = ConsoleDegraded(at=now(), reason=DegradedReason.CONNECTION_ERROR)
    engine.submit(acme.id, "alice", degraded, source="bridge")
    view = client.get("/api/v1/agents/alice", headers=bearer(acme.agents["alice"])).json()
    assert (view["console_connected"], view["console_degraded"]) == (True, "connection_error")
    assert view["omni_unavailable"] is None
    expected = "connected (degraded: Omni-Channel connection error)"
    sign_in(client, acme.agents["alice"])
    pad = client.get("/contactpad").text
    assert re.search(r'id="console-status">' + re.escape(expected) + "<", pad)
    sign_in(client, acme.supervisor)
    overview = client.get("/agents").text
    assert f"<td>{expected}</td>" in overview
    # the next hello clears it
    engine.submit(acme.id, "alice", hello, source="bridge")
    view = client.get("/api/v1/agents/alice", headers=bearer(acme.agents["alice"])).json()
    assert view["console_degraded"] is None


def test_console_words() -> None:
    assert console_text({"console_connected": False}) == "not connected"
    assert (
        console_text(
            {"console_connected": True, "console_degraded": "displaced", "omni_unavailable": None}
        )
        == "connected (degraded: another console took over Omni-Channel)"
    )
    assert console_text({"console_connected": True, "omni_unavailable": "maintenance"}) == (
        "connected; Omni-Channel down for maintenance"
    )


def test_admin_settings_form_has_a_choice_per_logout_reason(
    client: TestClient, acme: Account
) -> None:
    sign_in(client, acme.admin)
    html = client.get("/admin/omni-channel").text
    assert "When Omni-Channel logs the agent out" in html
    for name, default in (
        ("omni_logout_duplicate_login", "ignore"),
        ("omni_logout_duplicate_login_same_browser", "ignore"),
        ("omni_logout_maintenance", "keep"),
        ("omni_logout_supervisor", "logout"),
    ):
        select = re.search(rf'<select id="{name}".*?</select>', html, re.DOTALL)
        assert select is not None, name
        assert re.search(rf'<option value="{default}" selected>', select.group(0)), name
        assert f'<label for="{name}">' in html


def test_logout_settings_are_validated_by_the_api(client: TestClient, acme: Account) -> None:
    admin = bearer(acme.admin)
    response = client.put(
        "/api/v1/settings",
        json={"omni_logout_maintenance": "ignore", "omni_logout_supervisor": "away"},
        headers=admin,
    )
    assert response.status_code == 422
    fields = {d["field"] for d in response.json()["error"]["details"]}
    assert fields == {"omni_logout_maintenance", "omni_logout_supervisor"}
    assert client.get("/api/v1/settings", headers=admin).json()["omni_logout_maintenance"] == (
        "keep"
    )
