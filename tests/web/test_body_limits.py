"""Oversized bodies and WebSocket messages are refused before they are read, on a real socket
to a real `serve` process (limits set small through the environment)."""

from __future__ import annotations

import json
import socket
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from presencesync.service import Engine, open_engine
from presencesync.web.limits import Limits

from .conftest import Account, bearer, error_of
from .test_no_token_in_logs import _free_port, _process

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

MAX_BODY = 64 * 1024
MAX_MESSAGE = 16 * 1024


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str, str]]:
    """(port, admin token, agent token) of a `serve` process with small limits."""
    url = f"sqlite:///{tmp_path_factory.mktemp('limits') / 'limits.db'}"
    with open_engine(url) as engine:
        account = engine.create_account("Acme")
        engine.create_agent(account, "alice", "Alice", "005000000000001AAA")
        agent = engine.create_token(account, "agent", "alice")
        admin = engine.create_token(account, "admin")
    port = _free_port()
    env = {
        "PRESENCESYNC_DATABASE_URL": url,
        "PRESENCESYNC_PORT": str(port),
        "PRESENCESYNC_MAX_BODY_BYTES": str(MAX_BODY),
        "PRESENCESYNC_MAX_WS_MESSAGE_BYTES": str(MAX_MESSAGE),
    }
    with _process(["serve", "--host", "127.0.0.1"], env, port):
        yield port, admin, agent


def _open(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.settimeout(10)
    return sock


def _response(sock: socket.socket) -> tuple[int, bytes]:
    """Status and the whole answer (headers, then Content-Length bytes of body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.lower().split(b"\r\n")
            if line.startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split(b" ", 2)[1]), head + b"\r\n\r\n" + body


def _closed_by_server(sock: socket.socket, keep_sending: bytes) -> bool:
    """True when the server closes the connection while we still have body to send."""
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            sock.sendall(keep_sending)
            sock.settimeout(0.05)
            try:
                if sock.recv(65536) == b"":
                    return True
            except TimeoutError:
                pass
    except (BrokenPipeError, ConnectionResetError):
        return True
    return False


def test_a_declared_length_over_the_limit_is_refused_before_any_byte_is_sent(
    served: tuple[int, str, str],
) -> None:
    port, admin, _ = served
    with _open(port) as sock:
        sock.sendall(
            b"PUT /api/v1/settings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {admin}\r\nContent-Length: 50000000\r\n\r\n".encode()
        )
        status, data = _response(sock)  # no body byte sent: the answer cannot wait for it
    assert status == 413
    assert b"PAYLOAD_TOO_LARGE" in data


def test_a_chunked_body_is_stopped_as_it_passes_the_limit(served: tuple[int, str, str]) -> None:
    port, admin, _ = served
    chunk = b"x" * 8192
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    with _open(port) as sock:
        sock.sendall(
            b"PUT /api/v1/settings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {admin}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        # Just past the limit, and no last chunk: the body never ends.
        for _ in range(MAX_BODY // len(chunk) + 1):
            sock.sendall(framed)
        status, data = _response(sock)
        assert status == 413
        assert b"PAYLOAD_TOO_LARGE" in data
        # The rest is not read: the server hangs up on a client that keeps sending.
        assert _closed_by_server(sock, framed)


def test_a_body_under_the_limit_still_works(served: tuple[int, str, str]) -> None:
    port, admin, _ = served
    body = json.dumps({"wrap_seconds": 12}).encode()
    with _open(port) as sock:
        sock.sendall(
            b"PUT /api/v1/settings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {admin}\r\nContent-Length: {len(body)}\r\n".encode()
            + b"Connection: close\r\n\r\n"
            + body
        )
        status, _ = _response(sock)
    assert status == 200


def test_a_bridge_message_over_the_limit_closes_the_socket(served: tuple[int, str, str]) -> None:
    port, _, agent = served
    with connect(f"ws://127.0.0.1:{port}/api/v1/bridge?token={agent}") as bridge:
        bridge.send(json.dumps({"type": "hello", "session": "big", "seq": 0}))
        assert json.loads(bridge.recv(timeout=10))["type"] == "welcome"
        bridge.send(json.dumps({"type": "ping", "padding": "x" * MAX_MESSAGE}))
        # Closed by the server's frame limit itself: the app never got to answer it.
        with pytest.raises(ConnectionClosed) as closed:
            bridge.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def test_a_contactpad_message_over_the_limit_closes_the_socket(
    served: tuple[int, str, str],
) -> None:
    port, _, agent = served
    url = f"ws://127.0.0.1:{port}/api/v1/agents/alice/stream"
    with connect(url, additional_headers={"Authorization": f"Bearer {agent}"}) as stream:
        assert json.loads(stream.recv(timeout=10))["type"] == "agent"
        stream.send(json.dumps({"type": "ping"}))
        # (an agent update may come first: the bridge test changed the agent)
        while json.loads(stream.recv(timeout=10))["type"] != "pong":
            pass
        stream.send("x" * (MAX_MESSAGE + 1))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                stream.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def test_the_app_refuses_big_messages_behind_any_server(
    engine: Engine, acme: Account, tmp_path: Path
) -> None:
    """The same limits without uvicorn's help (TestClient: no server-side frame limit)."""
    from presencesync.web.app import create_app

    app = create_app(engine, limits=Limits(max_ws_message_bytes=2048))
    with TestClient(app) as client:
        token = acme.agents["alice"]
        with client.websocket_connect(f"/api/v1/bridge?token={token}") as bridge:
            bridge.send_text(json.dumps({"type": "hello", "session": "s", "seq": 0}))
            assert bridge.receive_json()["type"] == "welcome"
            bridge.send_text(json.dumps({"type": "ping", "padding": "é" * 1500}))
            assert bridge.receive_json()["code"] == "MESSAGE_TOO_BIG"
            with pytest.raises(WebSocketDisconnect) as closed:
                bridge.receive_json()
            assert closed.value.code == 1009
        with client.websocket_connect(
            "/api/v1/agents/alice/stream", headers=bearer(token)
        ) as stream:
            assert stream.receive_json()["type"] == "agent"
            stream.send_text("y" * 3000)
            with pytest.raises(WebSocketDisconnect) as closed:
                stream.receive_json()
            assert closed.value.code == 1009
        big = client.put(
            "/api/v1/settings",
            content=b"{" + b" " * 1_000_001 + b"}",
            headers={**bearer(acme.admin), "Content-Type": "application/json"},
        )
        assert big.status_code == 413 and error_of(big)["code"] == "PAYLOAD_TOO_LARGE"
