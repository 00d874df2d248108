"""Change Data Capture in the API and the pages: the setting, `GET /omni/change-data-capture`,
the agent's `salesforce_observed_via`, the admin page's section."""

from __future__ import annotations

from starlette.testclient import TestClient

from presencesync.domain import SalesforceSnapshot
from presencesync.domain.events import PresenceCommitted
from presencesync.service import CdcStatus, Engine, SalesforceConnection
from presencesync.service.model import utcnow

from .conftest import Account, bearer, error_of
from .test_pages import Page, assert_every_control_has_a_visible_label, sign_in


def test_the_setting_is_off_by_default_validated_and_saved(
    client: TestClient, acme: Account
) -> None:
    admin = bearer(acme.admin)
    assert client.get("/api/v1/settings", headers=admin).json()["change_data_capture"] is False
    bad = client.put("/api/v1/settings", headers=admin, json={"change_data_capture": "yes"})
    assert bad.status_code == 422
    error = error_of(bad)
    assert error["code"] == "INVALID_SETTINGS"
    assert error["details"] == [
        {"field": "change_data_capture", "message": "must be true or false"}
    ]
    ok = client.put("/api/v1/settings", headers=admin, json={"change_data_capture": True})
    assert ok.status_code == 200 and ok.json()["change_data_capture"] is True
    assert ok.json()["wrap_seconds"] == 30  # the rest kept


def test_the_overview_for_admins(engine: Engine, client: TestClient, acme: Account) -> None:
    url = "/api/v1/omni/change-data-capture"
    assert client.get(url, headers=bearer(acme.supervisor)).status_code == 403
    assert client.get(url).status_code == 401
    body = client.get(url, headers=bearer(acme.admin)).json()
    assert body == {
        "enabled": False,
        "pubsub_endpoint": "api.pubsub.salesforce.com:7443",
        "topics": ["/data/UserServicePresenceChangeEvent", "/data/AgentWorkChangeEvent"],
        "subscription": None,
        "agents": {
            "linked": 2,
            "console_connected": 0,
            "observed_over_change_data_capture": 0,
            "not_observed": 2,
        },
    }
    engine.set_salesforce_connection(
        acme.id,
        SalesforceConnection(
            "https://x", "c", "u", client_secret="s", pubsub_endpoint="grpc://h:9"
        ),
    )
    engine.save_settings(acme.id, {"change_data_capture": True}, "test")
    now = utcnow()
    engine.save_cdc_status(CdcStatus(acme.id, "host:42", "streaming", None, 7, now, now, now))
    hello = SalesforceSnapshot(at=now, seq=0, presence_status="Available", console_connected=True)
    engine.submit(acme.id, "alice", hello, source="bridge")
    change = PresenceCommitted(at=now, commit_ms=1, transaction_key="t", presence_status="Busy")
    engine.submit(acme.id, "bob", change, source="cdc", source_id="cdc:1")
    body = client.get(url, headers=bearer(acme.admin)).json()
    assert body["enabled"] is True and body["pubsub_endpoint"] == "grpc://h:9"
    assert body["subscription"]["holder"] == "host:42"
    assert body["subscription"]["events"] == 7
    assert body["agents"] == {
        "linked": 2,
        "console_connected": 1,
        "observed_over_change_data_capture": 1,
        "not_observed": 0,
    }
    agents = {
        a["agent_id"]: a for a in client.get("/api/v1/agents", headers=bearer(acme.admin)).json()
    }
    assert agents["alice"]["salesforce_observed_via"] == "console"
    assert agents["bob"]["salesforce_observed_via"] == "change_data_capture"
    history = client.get("/api/v1/agents/bob/history", headers=bearer(acme.admin)).json()
    assert history[0]["channel"] == "change_data_capture" and history[0]["drift"] is None


def test_the_admin_page_has_the_setting_and_the_section(
    engine: Engine, client: TestClient, acme: Account
) -> None:
    sign_in(client, acme.admin)
    html = client.get("/admin/omni-channel").text
    page = Page(html)
    assert page.label_of("change_data_capture") == (
        "Observe Omni-Channel from the server (Change Data Capture)"
    )
    assert 'id="change-data-capture"' in html and "Change Data Capture</h2>" in html
    assert "Off: Omni-Channel is observed only through each agent" in html
    assert_every_control_has_a_visible_label(page)
    engine.save_settings(acme.id, {"change_data_capture": True}, "test")
    now = utcnow()
    engine.save_cdc_status(
        CdcStatus(acme.id, "host:42", "failed", "PERMISSION_DENIED", 0, None, now, now)
    )
    html = client.get("/admin/omni-channel").text
    assert "the subscription failed: PERMISSION_DENIED" in html
    assert "0 of 2 linked agents have their console connected." in html
