"""`presencesync serve` in subprocesses for the Change Data Capture tests that kill a server or
run two: the emulator (with its Pub/Sub API) stays in the test process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from presencesync.store import tables


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, name: str, database_url: str, log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / f"server-{name}.log"
        env = {
            **os.environ,
            "PRESENCESYNC_LOG_LEVEL": "WARNING",
            "PRESENCESYNC_CDC_POLL_SECONDS": "0.2",
        }
        command = [sys.executable, "-m", "presencesync", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--database-url", database_url]
        self._output = self.log.open("wb")
        self.process = subprocess.Popen(
            command, stdout=self._output, stderr=subprocess.STDOUT, env=env
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_up(self, timeout: float = 30.0) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server {self.name} exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1, trust_env=False).is_success:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server {self.name} did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, nothing confirmed on the way out."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self._output.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if not self._output.closed:
            self._output.close()


def cdc_rows(db: sa.Engine, account_id: str) -> list[Any]:
    log = tables.event_log
    with db.connect() as conn:
        return conn.execute(
            sa.select(log.c.agent_id, log.c.source_id, log.c.event, log.c.outcome)
            .where(log.c.account_id == account_id, log.c.source == "cdc")
            .order_by(log.c.id)
        ).all()
