"""The README shows the worked example exactly as the core's test checks it."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_carries_the_checked_worked_example() -> None:
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / "tests" / "domain" / "WORKED_EXAMPLE.md").read_text()
    table = [line for line in example.splitlines() if line.startswith("| ")]
    assert len(table) > 20
    missing = [line for line in table if line not in readme]
    assert not missing, (
        "README.md is out of date with tests/domain/WORKED_EXAMPLE.md:\n" + "\n".join(missing)
    )


def test_readme_figures_are_filled_in() -> None:
    assert "PLACEHOLDER" not in (ROOT / "README.md").read_text()
