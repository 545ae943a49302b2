"""The throw-away database a scenario plays on, so a replay never touches a gateway's own data.

SQLite by default: a file in the scenario's temporary folder, gone with it. With a PostgreSQL server
URL, a scratch database is created on that server (`CREATE DATABASE gateway_scenario_<random>`, so the
URL's user needs CREATEDB) and dropped at the end, also when the run fails; the database the URL names
is only connected to, to create and drop the scratch one, and nothing is written in it.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import create_async_engine

SCRATCH_PREFIX = "gateway_scenario_"


class ScratchDatabaseError(ValueError):
    """The server URL cannot be used for a scratch database (and why)."""


def server_url(url: str) -> URL:
    """The PostgreSQL server URL, with the asyncpg driver the gateway uses."""
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise ScratchDatabaseError(f"not a database URL: {e}") from e
    if parsed.get_backend_name() != "postgresql":
        raise ScratchDatabaseError("--database-url is for PostgreSQL (postgresql+asyncpg://user@host:5432/postgres); "
                                   "without it the scenario plays on a temporary SQLite database")
    return parsed.set(drivername="postgresql+asyncpg")


async def _admin(url: URL, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@contextmanager
def created_database(server: URL | str, name: str) -> Iterator[str]:
    """Create the database ``name`` on a PostgreSQL server, yield its URL, and drop it afterwards, also
    when the body fails. Synchronous (each statement on a short-lived loop of its own), so that sync and
    async callers alike, the tests' fixtures among them, can use it."""
    server = make_url(server)
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def scratch_database(folder: Path, postgres_server: str | None) -> Iterator[str]:
    """Yield the URL of a fresh, empty database; remove it afterwards."""
    if postgres_server is None:
        yield f"sqlite+aiosqlite:///{(folder / 'scenario.db').resolve()}"
        return
    server = server_url(postgres_server)
    name = SCRATCH_PREFIX + secrets.token_hex(6)
    with ExitStack() as stack:
        try:
            url = stack.enter_context(created_database(server, name))
        except Exception as e:  # no server, no right to create: say so in one line
            raise ScratchDatabaseError(f"cannot create the scratch database {name} on {server.render_as_string()}: "
                                       f"{type(e).__name__}: {str(e)[:300]}") from e
        yield url
