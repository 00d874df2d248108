"""`presencesync-emulator` (and `presencesync emulator`, the same command contributed to the
product's command line through the `presencesync.commands` entry point): serve one emulated
Salesforce org.

Every option has a PRESENCESYNC_EMULATOR_* environment variable (the flag wins). The server's
modules are imported in `run`, so that `--help` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

HELP = "run the Salesforce org emulator"


def _env(name: str, default: str) -> str:
    return os.environ.get(f"PRESENCESYNC_EMULATOR_{name}", default)


def _env_flag(name: str) -> bool:
    return _env(name, "").lower() in {"1", "true", "yes", "on"}


def _port_or_off(text: str) -> int | None:
    """A TCP port (0 = any free one), or "off" for none."""
    if text.strip().lower() in ("off", "none"):
        return None
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number or 'off'") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range 0-65535")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=_env("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(_env("PORT", "8001")))
    parser.add_argument(
        "--db",
        default=_env("DB", "./presencesync-emulator.db"),
        help="SQLite file of the emulated org, or :memory:",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        default=_env_flag("TLS"),
        help="serve HTTPS with a self-signed certificate",
    )
    parser.add_argument(
        "--tls-dir",
        default=_env("TLS_DIR", "./.presencesync-tls/"),
        help="where cert.pem and key.pem are kept (created unless they exist)",
    )
    parser.add_argument(
        "--jwt-audience",
        action="append",
        default=[a for a in _env("JWT_AUDIENCES", "").split(",") if a.strip()],
        metavar="URL",
        help="a JWT bearer 'aud' the org accepts (repeatable; default "
        "https://login.salesforce.com; https://test.salesforce.com plays a sandbox; "
        "env PRESENCESYNC_EMULATOR_JWT_AUDIENCES, comma-separated)",
    )
    parser.add_argument(
        "--pubsub-port",
        type=_port_or_off,
        default=_env("PUBSUB_PORT", "8002"),
        help="port of the Pub/Sub API (gRPC; TLS with --tls); 0 = any free port, 'off' = none",
    )


def run(args: argparse.Namespace) -> int:
    from presencesync_emulator.server import serve

    serve(
        host=args.host,
        port=args.port,
        db=args.db,
        tls=args.tls,
        tls_dir=args.tls_dir,
        pubsub_port=args.pubsub_port,
        jwt_audiences=[a.strip() for a in args.jwt_audience],
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="presencesync-emulator",
        description="A Salesforce org emulator: OAuth, REST and SOQL, Omni-Channel, a console "
        "page with the Omni-Channel toolkit, and a control API.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
