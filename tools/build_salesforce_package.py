"""Generate what `salesforce/package/` ships from its single source, so that nobody edits a copy.

- `salesforce/package/staticresources/PresenceSyncBridge.resource` is
  `src/presencesync/web/static/bridge.js`, byte for byte (the static resource the Lightning
  component loads; the same script the emulator's console page loads).

    python tools/build_salesforce_package.py           # (re)write the generated files
    python tools/build_salesforce_package.py --check   # exit 1 and name the stale ones

tests/test_single_sources.py runs the check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMAND = "python tools/build_salesforce_package.py"

# generated file -> its source, relative to the repository's root
GENERATED = {
    Path("salesforce/package/staticresources/PresenceSyncBridge.resource"): Path(
        "src/presencesync/web/static/bridge.js"
    ),
}


def stale(root: Path = ROOT) -> list[Path]:
    """The generated files that differ from (or lack) what their source makes."""
    return [
        target
        for target, source in GENERATED.items()
        if not (root / target).is_file()
        or (root / target).read_bytes() != (root / source).read_bytes()
    ]


def build(root: Path = ROOT) -> list[Path]:
    """Rewrite the stale generated files; returns them."""
    written = stale(root)
    for target in written:
        (root / target).parent.mkdir(parents=True, exist_ok=True)
        (root / target).write_bytes((root / GENERATED[target]).read_bytes())
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    if args.check:
        found = stale()
        for target in found:
            print(f"stale: {target} (from {GENERATED[target]}); run: {COMMAND}")
        return 1 if found else 0
    for target in build():
        print(f"wrote {target} (from {GENERATED[target]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
