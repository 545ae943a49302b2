"""Running operator commands in tests: the Typer app in this process, and what it said."""

from __future__ import annotations

import os
from pathlib import Path

from typer.testing import CliRunner

from gateway.cli import app


class Ran:
    """What a command did: its exit code and output, from either way of running it."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run(cwd: Path, *args: str, **env: str) -> Ran:
    """The Typer app in this process (CliRunner), in ``cwd``, with only the given GATEWAY_* variables."""
    cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith("GATEWAY_")}
    here = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, list(args), env={**cleared, **env})
    finally:
        os.chdir(here)
    return Ran(result.exit_code, result.stdout, result.stderr)


def one_line(result: Ran) -> str:
    """A refusal's one line on stderr, and never a traceback."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]
