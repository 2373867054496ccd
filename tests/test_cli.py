from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from dvtr_bench import __version__
from dvtr_bench.cli import COMMANDS, cli


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    # The group's own text names the commands too: look only at click's Commands section.
    listed = {line.split()[0] for line in result.output.split("Commands:", 1)[1].splitlines() if line.strip()}
    assert listed == set(COMMANDS)


def test_each_command_has_help() -> None:
    runner = CliRunner()
    for name in COMMANDS:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage:" in result.output


def test_module_entry_point() -> None:
    out = subprocess.run([sys.executable, "-m", "dvtr_bench", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and __version__ in out.stdout
