"""The sync connector against the emulator over a real socket, plain HTTP and HTTPS."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from presencesync.salesforce import (
    RetryPolicy,
    SalesforceClient,
    SalesforceCredentials,
    SalesforceUnavailable,
    current_presences,
    fetch_omni_configuration,
    open_work,
)

from .emulator_support import RunningEmulator, agent_ids, check, emulator, expected_seed_statuses


def credentials(handle: RunningEmulator, flow: str) -> SalesforceCredentials:
    verify = handle.ssl_context() or True
    connected_app = check(httpx.get(f"{handle.url}/emulator/v1/oauth-clients", verify=verify))[0]
    return SalesforceCredentials.from_connected_app(handle.url, connected_app, flow)


def exercise(handle: RunningEmulator, sf: SalesforceClient) -> None:
    """Login, configuration, presence, work and re-login, all over the wire."""
    verify = handle.ssl_context() or True
    with httpx.Client(base_url=handle.url, verify=verify) as control:
        statuses = fetch_omni_configuration(sf)
        assert {s.developer_name: s.status_option for s in statuses} == {
            k: v["status_option"] for k, v in expected_seed_statuses().items()
        }
        agent = agent_ids(check(control.get("/emulator/v1/users")))[0]
        check(
            control.post(
                f"/emulator/v1/users/{agent}/omni/login", json={"presence_status": "Available"}
            )
        )
        work = check(
            control.post("/emulator/v1/work", json={"channel": "Chat", "subject": "Hi"}), 201
        )
        [presence] = current_presences(sf, [agent])
        assert presence.presence_status == "Available"
        [item] = open_work(sf, [agent])
        assert (item.id, item.channel, item.status) == (work["id"], "Chat", "Assigned")

        check(control.post("/emulator/v1/sessions/expire"))
        assert [p.user_id for p in current_presences(sf, [agent])] == [agent]
        assert sf.session.login_count == 2


@pytest.mark.parametrize("flow", ["jwt_bearer", "client_credentials"])
def test_over_plain_http(flow: str) -> None:
    with emulator() as handle:
        assert handle.url.startswith("http://127.0.0.1:")
        with SalesforceClient(credentials(handle, flow)) as sf:
            exercise(handle, sf)


@pytest.mark.parametrize("flow", ["jwt_bearer", "client_credentials"])
def test_over_https_with_the_emulator_certificate(tmp_path: Path, flow: str) -> None:
    with emulator(tls=True, tls_dir=str(tmp_path)) as handle:
        assert handle.url.startswith("https://") and handle.cert_path is not None
        with SalesforceClient(credentials(handle, flow), verify=str(handle.cert_path)) as sf:
            exercise(handle, sf)
            assert sf.instance_url == handle.url


def test_untrusted_certificate_is_refused(tmp_path: Path) -> None:
    with emulator(tls=True, tls_dir=str(tmp_path)) as handle:
        sleeps: list[float] = []
        # default verify=True: the system CAs do not know the emulator's certificate
        with (
            SalesforceClient(credentials(handle, "jwt_bearer"), sleep=sleeps.append) as sf,
            pytest.raises(SalesforceUnavailable) as info,
        ):
            sf.login()
        assert "CERTIFICATE_VERIFY_FAILED" in info.value.last_error
        assert info.value.attempts == 1 and sleeps == []  # not retried: waiting cannot fix it


def test_stopped_emulator_is_unavailable_after_retries() -> None:
    with emulator() as handle:
        creds = credentials(handle, "jwt_bearer")
    sleeps: list[float] = []
    with (
        SalesforceClient(creds, retry=RetryPolicy(max_attempts=3), sleep=sleeps.append) as sf,
        pytest.raises(SalesforceUnavailable) as info,
    ):
        sf.query("SELECT Id FROM User")
    assert info.value.attempts == 3 and "ConnectError" in info.value.last_error
    assert len(sleeps) == 2
