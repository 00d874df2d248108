"""Command line: `presencesync COMMAND [options]` (`serve`, `migrate`, `emulator`, `demo`, ...).

A command is a module (or any object) with `HELP` (one line for `--help`), `add_arguments(parser)`
and `run(args) -> int | None`. Commands come from the entry-point group `presencesync.commands`
(pyproject.toml): the product's own (`presencesync.commands.*`) and those that other packages
contribute (`emulator` from `presencesync_emulator`, `demo` from `presencesync_sandbox`), so
that the product imports neither. The product's own commands are also known here by name, so
that they work from a source tree whose package metadata is not installed (or is stale).

Every option has a PRESENCESYNC_* environment variable (the flag wins: `env`, `env_flag`).
Command modules import their heavy parts inside `run`, so that `presencesync --help` stays fast
and never needs a database.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Protocol, cast

ENTRY_POINT_GROUP = "presencesync.commands"
# The product's own commands (also declared in pyproject.toml, like every other command).
BUILTIN = {
    "serve": "presencesync.commands.serve",
    "migrate": "presencesync.commands.migrate",
    "doctor": "presencesync.commands.doctor",
    "account": "presencesync.commands.account",
    "rotate-secrets": "presencesync.commands.rotate_secrets",
}


class Command(Protocol):
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int | None: ...


def env(name: str, default: str) -> str:
    return os.environ.get(f"PRESENCESYNC_{name}", default)


def env_flag(name: str) -> bool:
    return os.environ.get(f"PRESENCESYNC_{name}", "").lower() in {"1", "true", "yes", "on"}


def load_commands() -> dict[str, Command]:
    """The product's own commands first, then the contributed ones by name. A contributed
    command that fails to load is reported on stderr and left out: the others still work."""
    commands = {name: cast(Command, importlib.import_module(m)) for name, m in BUILTIN.items()}
    contributed: dict[str, Command] = {}
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if entry.name in commands:
            continue
        try:
            contributed[entry.name] = entry.load()
        except Exception as error:
            print(f"presencesync: command {entry.name!r} not available: {error}", file=sys.stderr)
    return {**commands, **contributed}


def build_parser(commands: dict[str, Command] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="presencesync",
        description=(
            "Keep contact-center agent state and Salesforce Omni-Channel presence in sync."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in (commands if commands is not None else load_commands()).items():
        command.add_arguments(sub.add_parser(name, help=command.HELP))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    commands = load_commands()
    args = build_parser(commands).parse_args(argv)
    return commands[args.command].run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
