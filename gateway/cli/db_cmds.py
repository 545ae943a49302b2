"""`gateway db upgrade` and `gateway db current`: the schema of the configured database.

The gateway migrates its database itself at start-up (`gateway serve`, `gateway init`); these commands
are for an operator who wants to do it, or check it, beforehand.
"""

from __future__ import annotations

import asyncio

import typer

from gateway.cli.service_cmds import _settings

app = typer.Typer(no_args_is_help=True, help="The database schema: Alembic migrations shipped with the gateway.")

DONE = {
    "created": "created the schema",
    "adopted": "adopted a database made before migrations",
    "upgraded": "upgraded",
    "current": "already up to date",
}


def _describe(revision: str | None, head: str) -> str:
    if revision == head:
        return f"database at {revision} (head)"
    if revision is None:
        return f"database has no revision (head is {head}): run `gateway db upgrade`"
    return f"database at {revision} (not head: {head}): run `gateway db upgrade`"


@app.command("upgrade")
def upgrade() -> None:
    """Bring the configured database to the newest revision (creating the schema when it is empty)."""
    from gateway.adapters.sql.direct_pg import dispose
    from gateway.adapters.sql.engine import create_engine
    from gateway.adapters.sql.migrate import UnknownRevision, current_revision, head_revision, migrate

    settings = _settings()

    async def go() -> tuple[str, str | None]:
        engine = create_engine(settings.resolved_database_url)
        try:
            action = await migrate(engine)
            return action, await current_revision(engine)
        finally:
            await dispose(engine)

    try:
        action, revision = asyncio.run(go())
    except UnknownRevision as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(DONE[action])
    typer.echo(_describe(revision, head_revision()))


@app.command("current")
def current() -> None:
    """Print the configured database's revision; exit 1 when it is not the newest (head)."""
    from gateway.adapters.sql.direct_pg import dispose
    from gateway.adapters.sql.engine import create_engine
    from gateway.adapters.sql.migrate import current_revision, head_revision

    settings = _settings()

    async def go() -> str | None:
        engine = create_engine(settings.resolved_database_url)
        try:
            return await current_revision(engine)
        finally:
            await dispose(engine)

    revision, head = asyncio.run(go()), head_revision()
    typer.echo(_describe(revision, head))
    if revision != head:
        raise typer.Exit(1)
