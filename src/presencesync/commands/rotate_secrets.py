"""`presencesync rotate-secrets`: encrypt the stored Salesforce credentials again with the first
key of PRESENCESYNC_SECRET_KEY, after which the older keys may be dropped."""

from __future__ import annotations

import argparse

from presencesync.cli import env
from presencesync.commands.serve import DEFAULT_DATABASE_URL

HELP = (
    "encrypt the stored Salesforce credentials again with the first key of "
    "PRESENCESYNC_SECRET_KEY (then the old keys may be dropped)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=env("DATABASE_URL", DEFAULT_DATABASE_URL))


def run(args: argparse.Namespace) -> int:
    from presencesync.bootstrap import open_engine
    from presencesync.store.secrets import reseal_all

    with open_engine(args.database_url) as engine:
        count = reseal_all(engine.db, engine.secrets)
    print(f"re-encrypted the secrets of {count} Salesforce connection(s)")
    return 0
