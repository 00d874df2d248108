"""`presencesync doctor`: preflight of an account's Salesforce org and of this server."""

from __future__ import annotations

import argparse

from presencesync.commands.serve import DEFAULT_DATABASE_URL
from presencesync.doctor.command import DOCTOR_HELP as HELP
from presencesync.doctor.command import add_doctor_arguments

__all__ = ["HELP", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_doctor_arguments(parser, DEFAULT_DATABASE_URL)


def run(args: argparse.Namespace) -> int:
    from presencesync.doctor.command import run_doctor_command

    return run_doctor_command(args)
