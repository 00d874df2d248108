"""`presencesync migrate`: upgrade the store's schema to the newest version."""

from __future__ import annotations

import argparse

from presencesync.cli import env
from presencesync.commands.serve import DEFAULT_DATABASE_URL

HELP = "upgrade the store's schema to the newest version"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=env("DATABASE_URL", DEFAULT_DATABASE_URL))


def run(args: argparse.Namespace) -> int:
    from presencesync.store.migrations import upgrade

    upgrade(args.database_url)
    print(f"migrated {args.database_url}")
    return 0
