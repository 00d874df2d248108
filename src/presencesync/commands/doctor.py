"""`presencesync doctor`: preflight of an account's Salesforce org and of this server."""

from __future__ import annotations

import argparse

from presencesync.commands.doctor_cli import DOCTOR_HELP as HELP
from presencesync.commands.doctor_cli import add_doctor_arguments
from presencesync.commands.serve import DEFAULT_DATABASE_URL

__all__ = ["HELP", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_doctor_arguments(parser, DEFAULT_DATABASE_URL)


def run(args: argparse.Namespace) -> int:
    from presencesync.commands.doctor_cli import run_doctor_command

    return run_doctor_command(args)
