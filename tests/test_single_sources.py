"""One source for each artefact: the files generated from another one are up to date."""

from __future__ import annotations

import shutil
from pathlib import Path

from tools.build_salesforce_package import COMMAND, GENERATED, build, stale


def test_the_generated_salesforce_package_files_match_their_sources() -> None:
    found = stale()
    assert not found, (
        f"{', '.join(map(str, found))} differ from their sources "
        f"({', '.join(str(GENERATED[f]) for f in found)}): edit the source, then run: {COMMAND}"
    )


def test_a_drifted_copy_is_found_and_rebuilt(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    for target, source in GENERATED.items():
        (tmp_path / source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / source, tmp_path / source)
        (tmp_path / target).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / target).write_bytes((root / source).read_bytes() + b"// edited by hand\n")
    assert stale(tmp_path) == list(GENERATED)
    assert build(tmp_path) == list(GENERATED)
    assert stale(tmp_path) == []
    for target, source in GENERATED.items():
        assert (tmp_path / target).read_bytes() == (root / source).read_bytes()
