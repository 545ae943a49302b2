"""Alembic's environment for the gateway's schema.

At run time the gateway hands Alembic an open connection (``config.attributes["connection"]``, see
gateway/adapters/sql/migrate.py): the migration then runs inside the caller's transaction, on the
caller's async engine (SQLite or PostgreSQL, in-memory SQLite included).

A developer's ``alembic`` command (alembic.ini at the repository root) has no connection: this file
then opens one itself, to ``-x url=...``, else ``sqlalchemy.url`` in the ini file, else the database
of the gateway's settings (GATEWAY_DATABASE_URL / gateway.env).
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from gateway.adapters.sql.engine import create_engine, is_sqlite
from gateway.adapters.sql.migrate import configure_context

config = context.config
if config.config_file_name is not None:  # a developer's alembic command: its ini file says what to log
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def run_with(connection: Connection) -> None:
    configure_context(context, connection)
    with context.begin_transaction():
        context.run_migrations()


def database_url() -> str:
    if url := context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url"):
        return url
    from gateway.settings import Settings

    return Settings().resolved_database_url


async def run_own_connection() -> None:
    engine = create_engine(database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_with)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    url = database_url()  # `alembic upgrade --sql`: print the SQL instead of running it
    context.configure(url=url, literal_binds=True, render_as_batch=is_sqlite(url))
    with context.begin_transaction():
        context.run_migrations()
elif (shared := config.attributes.get("connection")) is not None:
    run_with(shared)
else:
    asyncio.run(run_own_connection())
