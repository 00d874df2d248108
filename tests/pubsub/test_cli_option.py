"""`presencesync emulator --pubsub-port`: the one option the Pub/Sub API adds to the CLI."""

from __future__ import annotations

import pytest

from presencesync.cli import build_parser


def test_pubsub_port_option(monkeypatch: pytest.MonkeyPatch) -> None:
    parse = build_parser().parse_args
    assert parse(["emulator"]).pubsub_port == 8002
    assert parse(["emulator", "--pubsub-port", "0"]).pubsub_port == 0
    assert parse(["emulator", "--pubsub-port", "off"]).pubsub_port is None
    for bad in ("x", "70000"):
        with pytest.raises(SystemExit):
            parse(["emulator", "--pubsub-port", bad])
    monkeypatch.setenv("PRESENCESYNC_EMULATOR_PUBSUB_PORT", "9443")
    assert build_parser().parse_args(["emulator"]).pubsub_port == 9443
    # The stable options keep their meaning.
    args = parse(["emulator", "--host", "0.0.0.0", "--port", "9001", "--db", ":memory:", "--tls"])
    assert (args.host, args.port, args.db, args.tls) == ("0.0.0.0", 9001, ":memory:", True)


def test_the_cli_emulator_serves_the_pubsub_api_on_its_port(tmp_path) -> None:
    import socket
    import subprocess
    import sys
    import time

    import grpc
    import httpx

    from presencesync_emulator.pubsub.proto import pubsub_api_pb2 as pb
    from presencesync_emulator.pubsub.proto import pubsub_api_pb2_grpc as pb_grpc

    def free_port() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    port, grpc_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "presencesync.cli",
            "emulator",
            "--port",
            str(port),
            "--pubsub-port",
            str(grpc_port),
            "--db",
            str(tmp_path / "org.db"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://localhost:{port}"  # any host name on the HTTP port is the instance URL
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the emulator did not start"
            time.sleep(0.1)
        app = httpx.get(url + "/emulator/v1/oauth-clients").json()[0]
        token = httpx.post(
            url + "/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": app["client_id"],
                "client_secret": app["client_secret"],
            },
        ).json()
        org = httpx.get(url + "/emulator/v1/org").json()["org_id"]
        metadata = (
            ("accesstoken", token["access_token"]),
            ("instanceurl", token["instance_url"]),
            ("tenantid", org),
        )
        assert token["instance_url"] == url
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = pb_grpc.PubSubStub(channel)
            topic = stub.GetTopic(
                pb.TopicRequest(topic_name="/data/AgentWorkChangeEvent"),
                metadata=metadata,
                timeout=10,
            )
            assert topic.can_subscribe and topic.tenant_guid == org
            wrong_port = tuple(
                (k, f"http://localhost:{port + 1}" if k == "instanceurl" else v)
                for k, v in metadata
            )
            with pytest.raises(grpc.RpcError) as caught:
                stub.GetTopic(pb.TopicRequest(topic_name="/data/ChangeEvents"), metadata=wrong_port)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        process.terminate()
        process.wait(timeout=15)
