"""`presencesync account create|token`: an account and its access tokens, from the shell."""

from __future__ import annotations

import argparse

from presencesync.commands.doctor_cli import ACCOUNT_HELP as HELP
from presencesync.commands.doctor_cli import add_account_arguments
from presencesync.commands.serve import DEFAULT_DATABASE_URL

__all__ = ["HELP", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_account_arguments(parser, DEFAULT_DATABASE_URL)


def run(args: argparse.Namespace) -> int:
    from presencesync.commands.doctor_cli import run_account_command

    return run_account_command(args)
