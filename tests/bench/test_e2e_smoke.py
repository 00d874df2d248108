"""bench/e2e_sync.py at a tiny size, so that it cannot rot: it brings up the server, the
emulator and a load generator in their own processes, drives the mix and a burst, and must
find what the sync promises (one command per contact-center change, no loop, no double
routing, nothing lost)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_the_end_to_end_bench_runs_and_finds_the_invariants(tmp_path: Path) -> None:
    out = tmp_path / "e2e.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "e2e_sync.py"),
            "--agents",
            "5",
            "--shards",
            "1",
            "--rate",
            "6",
            "--duration",
            "2",
            "--burst",
            "3",
            "--quiet",
            "--json",
            str(out),
        ],
        check=True,
        timeout=110,
        capture_output=True,
    )
    result = json.loads(out.read_text())
    steady, burst_cc, burst_sf = result["phases"]
    assert steady["cc_changes"] > 0 and steady["sf_changes"] > 0
    for row in (steady, burst_cc):
        assert row["commands_per_cc_change"] == 1.0, row
    for row in (steady, burst_cc, burst_sf):
        assert row["unexpected_commands"] == 0 and row["double_routings"] == 0, row
        assert row["lost"] == 0, row
    assert burst_cc["cc_to_sf"]["n"] == 3 and burst_sf["sf_to_cc"]["n"] == 3
    assert steady["cc_to_sf"]["n"] > 0 and steady["cc_to_sf"]["p50"] > 0
    assert steady["rss"]["server"] > 10 * 2**20  # a live server process was measured
