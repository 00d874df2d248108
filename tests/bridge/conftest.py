"""A real server and a real emulator on free loopback ports (threads), shared by the package; each
test gets its own agent and its own headless console (tests/bridge/kit.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from presencesync_sandbox.demo import DemoStack, start_stack
from tests.bridge.kit import AgentConsole, Env

AGENTS = 28


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    directory: Path = tmp_path_factory.mktemp("bridge")
    stack = start_stack(
        database_url=f"sqlite:///{directory}/presencesync.db",
        emulator_db=":memory:",
        agents=AGENTS,
        consoles="none",
    )
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="package")
def env(stack: DemoStack) -> Iterator[Env]:
    env = Env(stack)
    try:
        yield env
    finally:
        env.close()


@pytest.fixture
def agent(env: Env) -> Iterator[AgentConsole]:
    """A fresh agent (logged out in both systems) with its console connected."""
    console = env.take_agent()
    try:
        yield console
    finally:
        env.release(console)
