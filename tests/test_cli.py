"""The command line is assembled from the `presencesync.commands` entry points: the product's own
commands and those the emulator and the sandbox contribute, with the same options everywhere
(DESIGN.md 5c)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib.metadata import entry_points
from typing import Any

import pytest

from presencesync import cli

OPTIONS = {
    "serve": ["--host", "--port", "--database-url"],
    "migrate": ["--database-url"],
    "emulator": [
        "--host",
        "--port",
        "--db",
        "--tls",
        "--tls-dir",
        "--jwt-audience",
        "--pubsub-port",
    ],
    "demo": [
        "--info-file",
        "--consoles",
        "--agents",
        "--host",
        "--port",
        "--emulator-port",
        "--database-url",
        "--pubsub-port",
    ],
}


def _help(*command: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", *command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_commands_come_from_the_entry_point_group() -> None:
    declared = {e.name: e.value for e in entry_points(group=cli.ENTRY_POINT_GROUP)}
    assert declared == {
        "serve": "presencesync.commands.serve",
        "migrate": "presencesync.commands.migrate",
        "doctor": "presencesync.commands.doctor",
        "account": "presencesync.commands.account",
        "rotate-secrets": "presencesync.commands.rotate_secrets",
        "emulator": "presencesync_emulator.cli",
        "demo": "presencesync_sandbox.cli",
    }, "pyproject.toml's entry points are not installed: pip install -e '.[dev]'"
    commands = cli.load_commands()
    assert list(commands) == [
        "serve",
        "migrate",
        "doctor",
        "account",
        "rotate-secrets",
        "demo",
        "emulator",
    ]
    for name, module in declared.items():
        assert commands[name].__name__ == module  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_every_command_keeps_its_options(command: str) -> None:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    options = [o for a in sub.choices[command]._actions for o in a.option_strings]
    assert [o for o in options if o not in ("-h", "--help")] == OPTIONS[command]


def test_the_emulator_has_its_own_command_with_the_same_options() -> None:
    own = _help("presencesync_emulator")
    assert own.startswith("usage: presencesync-emulator")
    for option in OPTIONS["emulator"]:
        assert option in own
    assert own.split("options:")[1] == _help("presencesync", "emulator").split("options:")[1]


def test_options_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRESENCESYNC_PORT", "9100")
    monkeypatch.setenv("PRESENCESYNC_EMULATOR_DB", ":memory:")
    monkeypatch.setenv("PRESENCESYNC_EMULATOR_TLS", "yes")
    parser = cli.build_parser()
    assert parser.parse_args(["serve"]).port == 9100
    assert parser.parse_args(["serve", "--port", "9200"]).port == 9200  # the flag wins
    emulator = parser.parse_args(["emulator"])
    assert (emulator.db, emulator.tls, emulator.port) == (":memory:", True, 8001)
    assert parser.parse_args(["demo"]).port == 9100


def test_the_demos_pubsub_port_is_a_port_or_off() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["demo"]).pubsub_port == 8002
    assert parser.parse_args(["demo", "--pubsub-port", "0"]).pubsub_port == 0
    assert parser.parse_args(["demo", "--pubsub-port", "off"]).pubsub_port is None
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--pubsub-port", "70000"])


def test_a_command_that_fails_to_load_leaves_the_others(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Broken:
        name = "broken"
        value = "nowhere.to.be.found"

        def load(self) -> Any:
            raise ImportError("No module named 'nowhere'")

    real = cli.entry_points

    def with_a_broken_one(**kwargs: Any) -> list[Any]:
        return [*real(**kwargs), Broken()]

    monkeypatch.setattr(cli, "entry_points", with_a_broken_one)
    assert "broken" not in cli.load_commands()
    assert "command 'broken' not available" in capsys.readouterr().err
    assert cli.build_parser().parse_args(["migrate"]).command == "migrate"
