"""`presencesync serve` for real: a process on a free loopback port, JSON logs on stderr."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_migrates_the_store_and_answers(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "PRESENCESYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}",
        "PRESENCESYNC_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "presencesync", "serve", "--host", "127.0.0.1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"{base}/healthz", timeout=1, trust_env=False)
                break
            except httpx.TransportError:
                assert process.poll() is None, "the server exited"
                assert time.monotonic() < deadline, "the server did not answer in 30 s"
                time.sleep(0.1)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        unauthenticated = httpx.get(f"{base}/api/v1/states", trust_env=False)
        assert unauthenticated.status_code == 401
        assert unauthenticated.json()["error"]["code"] == "UNAUTHENTICATED"
        assert httpx.get(f"{base}/login", trust_env=False).status_code == 200
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)
    assert (tmp_path / "served.db").exists()
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("event") == "request"]
    assert {line["path"] for line in requests} >= {"/healthz", "/api/v1/states", "/login"}
    assert all(line["request_id"] for line in requests)
