"""The sync connector against the emulator over a real socket, plain HTTP and HTTPS."""

from __future__ import annotations

import socket
from collections.abc import Iterator

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


@pytest.fixture(scope="module")
def http_org() -> Iterator[RunningEmulator]:
    with emulator() as handle:
        yield handle


@pytest.fixture(scope="module")
def https_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    with emulator(tls=True, tls_dir=str(tmp_path_factory.mktemp("tls"))) as handle:
        yield handle


def exercise(handle: RunningEmulator, sf: SalesforceClient, agent_index: int) -> None:
    """Login, configuration, presence, work and re-login, all over the wire."""
    verify = handle.ssl_context() or True
    with httpx.Client(base_url=handle.url, verify=verify) as control:
        statuses = fetch_omni_configuration(sf)
        assert {s.developer_name: s.status_option for s in statuses} == {
            k: v["status_option"] for k, v in expected_seed_statuses().items()
        }
        agent = agent_ids(check(control.get("/emulator/v1/users")))[agent_index]
        check(
            control.post(
                f"/emulator/v1/users/{agent}/omni/login", json={"presence_status": "Available"}
            )
        )
        [presence] = current_presences(sf, [agent])
        assert presence.presence_status == "Available"
        work = check(
            control.post("/emulator/v1/work", json={"channel": "Chat", "subject": "Hi"}), 201
        )
        # Omni picks the agent (another test's agent may be online in this org too)
        items = open_work(sf, [work["user_id"]])
        assert (work["id"], "Chat", "Assigned") in [(w.id, w.channel, w.status) for w in items]

        check(control.post("/emulator/v1/sessions/expire"))
        assert [p.user_id for p in current_presences(sf, [agent])] == [agent]
        assert sf.session.login_count == 2


FLOWS = {"jwt_bearer": 0, "client_credentials": 1}  # flow -> the agent its test uses


@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_over_plain_http(http_org: RunningEmulator, flow: str) -> None:
    assert http_org.url.startswith("http://127.0.0.1:")
    with SalesforceClient(credentials(http_org, flow)) as sf:
        exercise(http_org, sf, FLOWS[flow])


@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_over_https_with_the_emulator_certificate(https_org: RunningEmulator, flow: str) -> None:
    assert https_org.url.startswith("https://") and https_org.cert_path is not None
    with SalesforceClient(credentials(https_org, flow), verify=str(https_org.cert_path)) as sf:
        exercise(https_org, sf, FLOWS[flow])
        assert sf.instance_url == https_org.url


def test_untrusted_certificate_is_refused(https_org: RunningEmulator) -> None:
    sleeps: list[float] = []
    # default verify=True: the system CAs do not know the emulator's certificate
    with (
        SalesforceClient(credentials(https_org, "jwt_bearer"), sleep=sleeps.append) as sf,
        pytest.raises(SalesforceUnavailable) as info,
    ):
        sf.login()
    assert "CERTIFICATE_VERIFY_FAILED" in info.value.last_error
    assert info.value.attempts == 1 and sleeps == []  # not retried: waiting cannot fix it


def test_unreachable_org_is_unavailable_after_retries() -> None:
    with socket.socket() as probe:  # a loopback port that nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    creds = SalesforceCredentials(f"http://127.0.0.1:{port}", "client", client_secret="secret")
    sleeps: list[float] = []
    with (
        SalesforceClient(creds, retry=RetryPolicy(max_attempts=3), sleep=sleeps.append) as sf,
        pytest.raises(SalesforceUnavailable) as info,
    ):
        sf.query("SELECT Id FROM User")
    assert info.value.attempts == 3 and "ConnectError" in info.value.last_error
    assert len(sleeps) == 2
