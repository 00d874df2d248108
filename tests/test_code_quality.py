"""The code base stays ruff-clean: a lint failure fails the suite, not just a pre-commit hook."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _ruff() -> list[str]:
    found = shutil.which("ruff", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "ruff"]


def test_ruff_check_passes() -> None:
    result = subprocess.run(
        [*_ruff(), "check", "src", "tests", "bench", "tools"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_help_works() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "presencesync", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    for command in ("serve", "emulator", "migrate", "demo"):
        assert command in result.stdout
