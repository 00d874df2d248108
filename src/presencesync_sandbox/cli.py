"""`presencesync demo`, contributed to the product's command line through the
`presencesync.commands` entry point (see `presencesync.cli`)."""

from __future__ import annotations

import argparse

from presencesync.cli import env

HELP = "start server + emulator with seed data and print URLs and tokens"


def port_or_off(text: str) -> int | None:
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
    parser.add_argument("--info-file", default=env("INFO_FILE", "./presencesync-demo.json"))
    parser.add_argument(
        "--consoles", choices=["headless", "none"], default=env("CONSOLES", "headless")
    )
    parser.add_argument("--agents", type=int, default=int(env("AGENTS", "3")))
    parser.add_argument("--host", default=env("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("PORT", "8000")))
    parser.add_argument("--emulator-port", type=int, default=int(env("EMULATOR_PORT", "8001")))
    parser.add_argument(
        "--database-url", default=env("DATABASE_URL", "sqlite:///./presencesync-demo.db")
    )
    parser.add_argument(
        "--pubsub-port",
        type=port_or_off,
        default=env("EMULATOR_PUBSUB_PORT", "8002"),
        help="the emulator's Pub/Sub API port (Change Data Capture, turned on for the demo "
        "account); 0 = any free port, 'off' = none (and Change Data Capture off)",
    )


def run(args: argparse.Namespace) -> int:
    from presencesync_sandbox.demo import run_demo

    run_demo(
        info_file=args.info_file,
        consoles=args.consoles,
        agents=args.agents,
        host=args.host,
        port=args.port,
        emulator_port=args.emulator_port,
        database_url=args.database_url,
        pubsub_port=args.pubsub_port,
    )
    return 0
