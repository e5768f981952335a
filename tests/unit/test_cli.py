"""The `hookline` command as users run it: the console script's `main`, `python -m hookline.cli`,
the same commands as before the split into modules, and readable errors for bad settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hookline.cli import cli, main
from tests.conftest import ROOT

COMMANDS = {"apply", "explain", "gateway", "init", "replay", "run", "stack", "triggers", "worker"}


def test_every_command_is_registered() -> None:
    assert set(cli.commands) == COMMANDS


def test_python_dash_m_runs_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hookline.cli", "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: hookline" in done.stdout
    assert all(command in done.stdout for command in COMMANDS)


def test_main_is_the_console_script_and_exits_with_the_command_status() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0


@pytest.mark.parametrize("command", ["gateway", "triggers", "worker", "apply", "init", "stack", "run", "replay"])
def test_a_missing_config_file_is_a_readable_error(command: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    args = [command, "--config", str(missing)] + ([str(tmp_path)] if command == "apply" else [])
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert f"config file {missing} does not exist" in result.output


def test_a_bad_agents_file_names_the_file(tmp_path: Path) -> None:
    agents = tmp_path / "agents.yaml"
    agents.write_text("agents: [not, a, mapping]\n")
    result = CliRunner().invoke(cli, ["triggers"], env={"HOOKLINE_AGENTS_FILE": str(agents)})
    assert result.exit_code == 1
    assert str(agents) in result.output
