"""`presencesync serve`: the server (API, pages, bridge) on a migrated store."""

from __future__ import annotations

import argparse

from presencesync.cli import env

HELP = "run the presencesync server (API, pages, bridge)"
DEFAULT_DATABASE_URL = "sqlite:///./presencesync.db"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=env("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("PORT", "8000")))
    parser.add_argument(
        "--database-url",
        default=env("DATABASE_URL", DEFAULT_DATABASE_URL),
        help="SQLAlchemy URL of the store (env PRESENCESYNC_DATABASE_URL)",
    )


def run(args: argparse.Namespace) -> int:
    from presencesync.bootstrap import serve

    serve(host=args.host, port=args.port, database_url=args.database_url)
    return 0
