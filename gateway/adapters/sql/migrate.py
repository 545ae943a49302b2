"""Schema migrations: every database the gateway opens is brought to the newest revision.

``metadata.create_all`` alone creates missing tables but never changes an existing one, so a changed
column or a new index would never reach a database already in use. Alembic does: the revisions in
``migrations/versions`` ship inside the package, and :func:`migrate` runs them at start-up.

How a database is brought to head, in one transaction:

- empty (none of our tables): ``metadata.create_all``, then ``stamp head``: Alembic's recipe for a
  new database, and much faster than replaying every revision (tests create hundreds);
- our tables but no ``alembic_version`` (made by the create_all-only releases): adopted: the baseline
  ``0001`` creates only what such a database lacks (an older one may miss a later table, or the
  partial index ``ix_cases_overdue``, which create_all never added to an existing table), then every
  later revision runs;
- ``alembic_version`` present: ``upgrade head``, nothing to do when current.

Alembic runs on the caller's connection (``config.attributes["connection"]``, the recipe "sharing a
connection across programmatic migration commands"), so it works on the async engines, SQLite and
PostgreSQL, in-memory SQLite included. On PostgreSQL a transaction-scoped advisory lock makes two
gateways starting at once take turns: the second finds the schema at head.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.sql import access_tables, security_tables, tally_tables, workflow_tables  # noqa: F401  (register their tables)
from gateway.adapters.sql.tables import metadata

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
BASELINE = "0001"
VERSION_TABLE = "alembic_version"
# pg_advisory_xact_lock key of the schema migration: any constant, the same in every gateway process.
MIGRATION_LOCK_KEY = 0x6777_6D69_6772_6174  # "gwmigrat"

Action = Literal["created", "adopted", "upgraded", "current"]


class UnknownRevision(RuntimeError):
    """The database is at a revision this release does not ship: a newer release migrated it."""


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, built in code: no alembic.ini is needed at run time."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def configure_context(context: Any, connection: Connection) -> None:
    """The options of every migration run (called by migrations/env.py)."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        # SQLite cannot ALTER most things: batch mode rebuilds the table ("move and copy") instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision shipped with this release."""
    head = _scripts().get_current_head()
    assert head is not None, f"no revisions in {MIGRATIONS_DIR}"
    return head


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The database's revision; None when it has none (empty, or made before migrations)."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


def migrate_connection(connection: Connection) -> Action:
    """Bring the database to head inside the connection's transaction; say what was done."""
    if connection.dialect.name == "postgresql":
        # Held until this transaction ends; a second gateway waits here, then finds the schema at head.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    config = alembic_config(connection)
    tables = set(inspect(connection).get_table_names())
    if VERSION_TABLE in tables:
        before = _current(connection)
        if before is not None and before not in {script.revision for script in _scripts().walk_revisions()}:
            raise UnknownRevision(
                f"the database is at revision {before}, which this release does not know (its newest is "
                f"{head_revision()}): a newer release has migrated it; run that release or a newer one"
            )
        command.upgrade(config, "head")
        return "current" if before == head_revision() else "upgraded"
    if tables & set(metadata.tables):
        command.upgrade(config, "head")  # the baseline keeps the tables and indexes already there
        return "adopted"
    metadata.create_all(connection)
    if connection.dialect.name == "postgresql":
        # Statistics for the empty tables at once. A table never analyzed has none until autovacuum's
        # first pass (a minute or more after it filled), and meanwhile the generic plans of the hot
        # prepared statements picked the (node, direction, kind, accepted_at) index to find one message
        # by its id — reading all of a township's messages per answer, more with every message.
        connection.execute(text("ANALYZE"))
    command.stamp(config, "head")
    return "created"


async def migrate(engine: AsyncEngine) -> Action:
    """Bring the engine's database to head (see the module's doc); say what was done."""
    async with engine.begin() as conn:
        return await conn.run_sync(migrate_connection)
