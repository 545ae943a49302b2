"""The `gateway` command line: one Typer app, one module per command group.

This module is also the command line's composition root: it tells the command groups that read the
database (scores, archive) where their stores come from.
"""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.cli.errors import GatewayGroup
from gateway.cli import (
    access_cmds,
    archive_cmds,
    backup_cmds,
    calendar_cmds,
    codec_cmds,
    db_cmds,
    keys_cmds,
    ops_cmds,
    reports_cmds,
    scenario_cmds,
    scores_cmds,
    service_cmds,
)

app = typer.Typer(
    cls=GatewayGroup, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="The township exchange gateway.",
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="show the Python traceback when a command fails")] = False,
) -> None:
    """The township exchange gateway."""
    import logging

    if debug:
        logging.getLogger("gateway").setLevel(logging.DEBUG)
    elif ctx.invoked_subcommand != "serve":
        # A one-off command that cannot reach the broker says so in one line (gateway/cli/errors.py);
        # the AMQP client's own connection errors would repeat it. `serve` keeps them in its log.
        for name in ("aiormq", "aio_pika"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


app.command("init")(service_cmds.init)
app.command("serve")(service_cmds.serve)
app.command("demo")(service_cmds.demo)
app.command("scores")(scores_cmds.scores)
app.command("backup")(backup_cmds.backup)
app.command("restore")(backup_cmds.restore)
app.add_typer(reports_cmds.app, name="reports")
app.add_typer(scenario_cmds.app, name="scenario")
app.add_typer(codec_cmds.app, name="codec")
app.add_typer(calendar_cmds.app, name="calendar")
app.add_typer(keys_cmds.app, name="keys")
app.add_typer(archive_cmds.app, name="archive")
app.add_typer(db_cmds.app, name="db")
app.add_typer(ops_cmds.quarantine_app, name="quarantine")
app.add_typer(ops_cmds.outbox_app, name="outbox")
app.add_typer(ops_cmds.queues_app, name="queues")
app.add_typer(ops_cmds.topology_app, name="topology")
app.add_typer(access_cmds.users_app, name="users")
app.add_typer(access_cmds.tokens_app, name="tokens")
app.add_typer(access_cmds.audit_app, name="audit")


def _configure_stores() -> None:
    from gateway.settings import Settings

    def database_url() -> str:
        import asyncio

        from gateway.bootstrap import init_database

        settings = Settings()
        # The schema is migrated to this release's here (see gateway/adapters/sql/migrate.py); data is kept.
        asyncio.run(init_database(settings))
        return settings.resolved_database_url

    def archive_store():  # type: ignore[no-untyped-def]
        from gateway.adapters.sql.archive_store import SqlArchiveStore
        from gateway.adapters.sql.engine import create_engine

        return SqlArchiveStore(create_engine(database_url()))

    def case_source():  # type: ignore[no-untyped-def]
        from gateway.adapters.sql.case_source import SqlCaseSource

        return SqlCaseSource(database_url())

    archive_cmds.STORE_FACTORY = archive_store
    scores_cmds.configure(case_source)
    reports_cmds.configure(case_source)


def main() -> None:
    _configure_stores()
    app()
