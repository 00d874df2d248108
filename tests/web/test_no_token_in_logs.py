"""No log line ever contains a token: real `serve` and `emulator` processes at DEBUG, tokens
in WebSocket URLs, query strings, headers, forms and cookies, every byte they print read back.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import structlog
from websockets.sync.client import connect

from presencesync.service import open_engine
from presencesync.web.logging import configure_logging, redact


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _process(args: list[str], env: dict[str, str], port: int) -> Iterator[list[str]]:
    """Run a presencesync command until the block ends; yields, then fills, its output."""
    output: list[str] = []
    process = subprocess.Popen(
        [sys.executable, "-m", "presencesync", *args],
        env={**os.environ, **env, "PRESENCESYNC_LOG_LEVEL": "DEBUG"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1, trust_env=False)
                break
            except httpx.TransportError:
                assert process.poll() is None, "the process exited"
                assert time.monotonic() < deadline, "the process did not answer in 30 s"
                time.sleep(0.1)
        yield output
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=20)
        output.append(out)


def _assert_absent(output: str, *secrets: str) -> None:
    assert output.strip(), "the process printed nothing: nothing was checked"
    for secret in secrets:
        # The whole token, and its random part alone.
        assert secret not in output
        assert secret.removeprefix("ps_") not in output


def test_serve_never_logs_a_token(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'logs.db'}"
    with open_engine(url) as engine:
        account = engine.create_account("Acme")
        engine.create_agent(account, "alice", "Alice", "005000000000001AAA")
        agent = engine.create_token(account, "agent", "alice")
        admin = engine.create_token(account, "admin")
    invalid = "ps_" + "X" * 43
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"PRESENCESYNC_DATABASE_URL": url, "PRESENCESYNC_PORT": str(port)}
    with _process(["serve", "--host", "127.0.0.1"], env, port) as output:
        http = httpx.Client(base_url=base, trust_env=False, timeout=10)
        # The bridge's token in the WebSocket URL: accepted, then a bad one refused.
        with connect(f"ws://127.0.0.1:{port}/api/v1/bridge?token={agent}") as bridge:
            bridge.send(json.dumps({"type": "hello", "session": "s1", "seq": 0}))
            assert json.loads(bridge.recv(timeout=10))["type"] == "welcome"
        with connect(f"ws://127.0.0.1:{port}/api/v1/bridge?token={invalid}") as bridge:
            bridge.send(json.dumps({"type": "hello", "session": "s2", "seq": 0}))
            assert json.loads(bridge.recv(timeout=10))["code"] == "UNAUTHORIZED"
        # Tokens in query strings, headers, a request id, a form, a cookie.
        http.get(f"/api/v1/states?token={admin}&access_token={agent}")
        http.get("/api/v1/states", headers={"Authorization": f"Bearer {admin}"})
        http.get("/api/v1/states", headers={"Authorization": f"Bearer {invalid}"})
        http.get("/healthz", headers={"X-Request-ID": agent})
        form = http.get("/login")
        csrf = form.text.split('name="csrf_token" value="')[1].split('"')[0]
        signed_in = http.post("/login", data={"token": admin, "csrf_token": csrf})
        assert signed_in.status_code in (200, 303)
        http.get(f"/contactpad?token={agent}")
        http.post("/login", data={"token": invalid, "csrf_token": csrf})
        http.get(f"/nowhere/{agent}")
        http.close()
    text = "".join(output)
    assert "/api/v1/bridge" in text, "uvicorn's WebSocket lines were not logged at all"
    assert "[REDACTED]" in text
    _assert_absent(text, agent, admin, invalid)


def test_the_emulator_never_logs_the_consoles_token(tmp_path: Path) -> None:
    port = _free_port()
    token = "ps_" + "e" * 43
    with _process(
        ["emulator", "--host", "127.0.0.1", "--port", str(port), "--db", ":memory:"], {}, port
    ) as output:
        users = httpx.get(f"http://127.0.0.1:{port}/emulator/v1/users", trust_env=False).json()
        console = httpx.get(
            f"http://127.0.0.1:{port}/console/{users[0]['id']}",
            params={"bridge": "http://127.0.0.1:1/static/bridge.js", "token": token},
            trust_env=False,
        )
        assert console.status_code == 200
    text = "".join(output)
    assert "/console/" in text, "the emulator's access log was not written"
    _assert_absent(text, token)


def test_a_traceback_is_redacted_too(capsys: pytest.CaptureFixture[str]) -> None:
    token = "ps_" + "t" * 43
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogRecordFactory())
    configure_logging("DEBUG")
    try:
        try:
            raise RuntimeError(f"GET /api/v1/bridge?token={token} failed")
        except RuntimeError:
            logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
            structlog.get_logger("presencesync.web").exception("unhandled", url=f"?t={token}")
        logging.getLogger("x").info("Authorization: Bearer %s", token)
    finally:
        structlog.reset_defaults()
        root.handlers[:], root.level = saved[0], saved[1]
        logging.setLogRecordFactory(saved[2])
        logging.getLogger("uvicorn.access").disabled = False
    err = capsys.readouterr().err
    assert "RuntimeError" in err and "Traceback" in err
    _assert_absent(err, token)


def test_redact_keeps_what_is_not_a_secret() -> None:
    line = "GET /api/v1/agents/alice/history?limit=5 200 request_id=abc"
    assert redact(line) == line
    assert redact("?bridge=x&token=abc&server=y") == "?bridge=x&token=[REDACTED]&server=y"
