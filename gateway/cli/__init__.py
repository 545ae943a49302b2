"""The `gateway` command line: one Typer app, one module per command group."""

from __future__ import annotations

import typer

from gateway.cli import calendar_cmds, codec_cmds, service_cmds

app = typer.Typer(no_args_is_help=True, add_completion=False, help="The township exchange gateway.")
app.command("init")(service_cmds.init)
app.command("serve")(service_cmds.serve)
app.command("demo")(service_cmds.demo)
app.add_typer(codec_cmds.app, name="codec")
app.add_typer(calendar_cmds.app, name="calendar")


def main() -> None:
    app()
