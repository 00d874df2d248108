"""A real server (threads, SQLite) and a real emulator serving the Pub/Sub API, with Change Data
Capture on for the account (the demo's provisioning, `pubsub_port=0`), shared by the module's
tests; each test takes agents of its own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from presencesync_sandbox.demo import DemoStack, start_stack

AGENTS = 12


@pytest.fixture(scope="module")
def cdc_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    directory: Path = tmp_path_factory.mktemp("cdc")
    # The runner looks for accounts to subscribe for this often (default 5 s).
    previous = os.environ.get("PRESENCESYNC_CDC_POLL_SECONDS")
    os.environ["PRESENCESYNC_CDC_POLL_SECONDS"] = "0.2"
    try:
        stack = start_stack(
            database_url=f"sqlite:///{directory}/presencesync.db",
            emulator_db=":memory:",
            agents=AGENTS,
            consoles="none",
            pubsub_port=0,
        )
    finally:
        if previous is None:
            os.environ.pop("PRESENCESYNC_CDC_POLL_SECONDS", None)
        else:
            os.environ["PRESENCESYNC_CDC_POLL_SECONDS"] = previous
    try:
        yield stack
    finally:
        stack.stop()
