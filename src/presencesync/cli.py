"""Command line: `presencesync serve | emulator | migrate | rotate-secrets | demo`.

Every option has a PRESENCESYNC_* environment variable (the flag wins). Subcommands import
their modules lazily so that `presencesync --help` stays fast and never needs a database.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

DEFAULT_DATABASE_URL = "sqlite:///./presencesync.db"


def _env(name: str, default: str) -> str:
    return os.environ.get(f"PRESENCESYNC_{name}", default)


def _env_flag(name: str) -> bool:
    return os.environ.get(f"PRESENCESYNC_{name}", "").lower() in {"1", "true", "yes", "on"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="presencesync",
        description=(
            "Keep contact-center agent state and Salesforce Omni-Channel presence in sync."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the presencesync server (API, pages, bridge)")
    serve.add_argument("--host", default=_env("HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(_env("PORT", "8000")))
    serve.add_argument(
        "--database-url",
        default=_env("DATABASE_URL", DEFAULT_DATABASE_URL),
        help="SQLAlchemy URL of the store (env PRESENCESYNC_DATABASE_URL)",
    )

    emulator = sub.add_parser("emulator", help="run the Salesforce org emulator")
    emulator.add_argument("--host", default=_env("EMULATOR_HOST", "127.0.0.1"))
    emulator.add_argument("--port", type=int, default=int(_env("EMULATOR_PORT", "8001")))
    emulator.add_argument(
        "--db",
        default=_env("EMULATOR_DB", "./presencesync-emulator.db"),
        help="SQLite file of the emulated org, or :memory:",
    )
    emulator.add_argument(
        "--tls",
        action="store_true",
        default=_env_flag("EMULATOR_TLS"),
        help="serve HTTPS with a self-signed certificate",
    )
    emulator.add_argument(
        "--tls-dir",
        default=_env("EMULATOR_TLS_DIR", "./.presencesync-tls/"),
        help="where cert.pem and key.pem are kept (created unless they exist)",
    )

    migrate = sub.add_parser("migrate", help="upgrade the store's schema to the newest version")
    migrate.add_argument("--database-url", default=_env("DATABASE_URL", DEFAULT_DATABASE_URL))

    rotate = sub.add_parser(
        "rotate-secrets",
        help="encrypt the stored Salesforce credentials again with the first key of "
        "PRESENCESYNC_SECRET_KEY (then the old keys may be dropped)",
    )
    rotate.add_argument("--database-url", default=_env("DATABASE_URL", DEFAULT_DATABASE_URL))

    demo = sub.add_parser(
        "demo", help="start server + emulator with seed data and print URLs and tokens"
    )
    demo.add_argument("--info-file", default=_env("INFO_FILE", "./presencesync-demo.json"))
    demo.add_argument(
        "--consoles", choices=["headless", "none"], default=_env("CONSOLES", "headless")
    )
    demo.add_argument("--agents", type=int, default=int(_env("AGENTS", "3")))
    demo.add_argument("--host", default=_env("HOST", "127.0.0.1"))
    demo.add_argument("--port", type=int, default=int(_env("PORT", "8000")))
    demo.add_argument("--emulator-port", type=int, default=int(_env("EMULATOR_PORT", "8001")))
    demo.add_argument(
        "--database-url", default=_env("DATABASE_URL", "sqlite:///./presencesync-demo.db")
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from presencesync.web.server import serve

        serve(host=args.host, port=args.port, database_url=args.database_url)
    elif args.command == "emulator":
        from presencesync.web.logging import install_log_redaction
        from presencesync_emulator.server import serve as serve_emulator

        # Console URLs carry the bridge's token (?token=): uvicorn's access log must not.
        install_log_redaction()

        serve_emulator(
            host=args.host, port=args.port, db=args.db, tls=args.tls, tls_dir=args.tls_dir
        )
    elif args.command == "migrate":
        from presencesync.store.migrations import upgrade

        upgrade(args.database_url)
        print(f"migrated {args.database_url}")
    elif args.command == "rotate-secrets":
        from presencesync.service import open_engine
        from presencesync.store.secrets import reseal_all

        with open_engine(args.database_url) as engine:
            count = reseal_all(engine.db, engine.secrets)
        print(f"re-encrypted the secrets of {count} Salesforce connection(s)")
    elif args.command == "demo":
        from presencesync.demo import run_demo

        run_demo(
            info_file=args.info_file,
            consoles=args.consoles,
            agents=args.agents,
            host=args.host,
            port=args.port,
            emulator_port=args.emulator_port,
            database_url=args.database_url,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
