"""Command line: `presencesync serve | emulator | migrate | demo | doctor | account create`.

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
    emulator.add_argument(
        "--jwt-audience",
        action="append",
        default=[a for a in _env("EMULATOR_JWT_AUDIENCES", "").split(",") if a.strip()],
        metavar="URL",
        help="a JWT bearer 'aud' the org accepts (repeatable; default "
        "https://login.salesforce.com; https://test.salesforce.com plays a sandbox; "
        "env PRESENCESYNC_EMULATOR_JWT_AUDIENCES, comma-separated)",
    )

    migrate = sub.add_parser("migrate", help="upgrade the store's schema to the newest version")
    migrate.add_argument("--database-url", default=_env("DATABASE_URL", DEFAULT_DATABASE_URL))

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

    from presencesync.doctor.command import add_parsers as add_doctor_parsers

    add_doctor_parsers(sub, DEFAULT_DATABASE_URL)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from presencesync.web.server import serve

        serve(host=args.host, port=args.port, database_url=args.database_url)
    elif args.command == "emulator":
        from presencesync_emulator.server import serve as serve_emulator

        serve_emulator(
            host=args.host,
            port=args.port,
            db=args.db,
            tls=args.tls,
            tls_dir=args.tls_dir,
            jwt_audiences=[a.strip() for a in args.jwt_audience],
        )
    elif args.command == "migrate":
        from presencesync.store.migrations import upgrade

        upgrade(args.database_url)
        print(f"migrated {args.database_url}")
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
    elif args.command == "doctor":
        from presencesync.doctor.command import run_doctor_command

        return run_doctor_command(args)
    elif args.command == "account":
        from presencesync.doctor.command import run_account_command

        return run_account_command(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
