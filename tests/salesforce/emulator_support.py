"""Access to the org emulator for the connector's integration tests.

The emulator is another part of the project; without CI=true these tests skip while it is
missing, with CI=true a missing emulator fails them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

try:
    from presencesync_emulator import seed
    from presencesync_emulator.app import create_app
    from presencesync_emulator.testing import RunningEmulator, start_emulator
except ImportError as exc:  # pragma: no cover - only while the emulator is being built
    if os.environ.get("CI") == "true":
        raise
    pytest.skip(f"the org emulator is not available: {exc}", allow_module_level=True)

__all__ = ["RunningEmulator", "create_app", "seed", "start_emulator"]

BASE = "http://emulator.test"


@contextmanager
def emulator(
    tls: bool = False, tls_dir: str | None = None, **options: Any
) -> Iterator[RunningEmulator]:
    handle = start_emulator(":memory:", tls=tls, tls_dir=tls_dir, **options)
    try:
        yield handle
    finally:
        handle.stop()


def expected_seed_statuses() -> dict[str, dict[str, Any]]:
    """The seed's presence statuses as ``PresenceStatus.to_api()`` would show them (no id)."""
    return {
        dev: {
            "developer_name": dev,
            "label": label,
            "status_option": "online" if channels else "busy",
            # channels come back ordered by their label
            "channels": sorted(channels),
        }
        for dev, label, channels in seed.PRESENCE_STATUSES
    }


def agent_ids(users: list[dict[str, Any]]) -> list[str]:
    return [u["id"] for u in users if not u["username"].startswith("integration@")]


def check(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()
