"""Schema migrations: every database the gateway opens ends at the newest revision, data kept.

The tests run on the embedded default (SQLite) and on PostgreSQL; the PostgreSQL runs are marked
`database`. The schema a database ends with is compared with the metadata by Alembic's own comparison
(what autogenerate would write: nothing), and, after the migrations, also by the database's own account
of its tables, keys and indexes against one made by plain ``metadata.create_all``, which sees the
partial index's condition too.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from gateway.adapters.sql.engine import create_engine, create_schema
from gateway.adapters.sql.migrate import (
    BASELINE,
    VERSION_TABLE,
    UnknownRevision,
    alembic_config,
    current_revision,
    head_revision,
    migrate,
)
from gateway.adapters.sql.tables import metadata
from gateway.adapters.sql.access_tables import AUDIT_TRIGGERS
from gateway.adapters.sql.tally_tables import TRIGGERS
from gateway.adapters.sql.workflow_tables import OPEN_STATE_VALUES
from gateway.cli import app

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
POSTGRESQL = pytest.param("postgresql", marks=pytest.mark.database)


@pytest.fixture(params=["sqlite", POSTGRESQL])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def engine(url: str):  # type: ignore[no-untyped-def]
    engine = create_engine(url)
    yield engine
    await engine.dispose()


async def run(engine: AsyncEngine, fn):  # type: ignore[no-untyped-def]
    async with engine.begin() as conn:
        return await conn.run_sync(fn)


def differences(conn: Connection) -> list:
    """What `alembic revision --autogenerate` would write: nothing, when the schema is the metadata's."""
    context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
    return compare_metadata(context, metadata)


def schema(conn: Connection) -> dict:
    """The database's own account of our tables: columns, keys, unique constraints, indexes, and which
    states the partial index covers (read from its condition, which each database spells its own way,
    and PostgreSQL respells after an ALTER of the column)."""
    inspector = inspect(conn)
    tables = {
        table: {
            "columns": sorted(
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default"))) for c in inspector.get_columns(table)
            ),
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "unique": sorted((str(u["name"]), *u["column_names"]) for u in inspector.get_unique_constraints(table)),
            "indexes": sorted(
                (i["name"], bool(i["unique"]), *i["column_names"]) for i in inspector.get_indexes(table)
            ),
        }
        for table in inspector.get_table_names()
        if table != VERSION_TABLE
    }
    if conn.dialect.name == "sqlite":
        definition = "SELECT sql FROM sqlite_master WHERE name = 'ix_cases_overdue'"
        triggers = "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'cases'"
    else:
        definition = "SELECT pg_get_indexdef('ix_cases_overdue'::regclass)"
        # The trigger and the function it runs, as the database states them.
        triggers = ("SELECT t.tgname, pg_get_triggerdef(t.oid) || pg_get_functiondef(t.tgfoid) FROM pg_trigger t"
                    " WHERE t.tgrelid = 'cases'::regclass AND NOT t.tgisinternal")
    index = conn.execute(text(definition)).scalar_one()
    if conn.dialect.name == "sqlite":
        guard = "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ('audit_log', 'audit_anchor')"
    else:
        guard = ("SELECT t.tgname, pg_get_triggerdef(t.oid) || pg_get_functiondef(t.tgfoid) FROM pg_trigger t"
                 " WHERE t.tgrelid IN ('audit_log'::regclass, 'audit_anchor'::regclass) AND NOT t.tgisinternal"
                 " UNION ALL SELECT 'audit_prune', pg_get_functiondef('audit_prune(integer, text, text)'::regprocedure)")
    return {"tables": tables, "ix_cases_overdue covers": sorted(re.findall(r"'(\w+)'", index.partition("WHERE")[2])),
            "triggers on cases": sorted(tuple(row) for row in conn.execute(text(triggers))),
            # The audit trail's guard (access_tables.py; migration 0015 holds its own copy).
            "audit guard": sorted(tuple(row) for row in conn.execute(text(guard)))}


def as_made_before_migrations(conn: Connection) -> None:
    """A database as the create_all-only releases left it: by definition, the baseline without alembic_version."""
    command.upgrade(alembic_config(conn), BASELINE)
    conn.execute(text(f"DROP TABLE {VERSION_TABLE}"))


def upgrade_one_revision_at_a_time(conn: Connection) -> list[str]:
    config = alembic_config(conn)
    steps = [script.revision for script in reversed(list(ScriptDirectory.from_config(config).walk_revisions()))]
    for revision in steps:
        command.upgrade(config, revision)
    return steps


def table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def case_indexes(conn: Connection) -> set[str]:
    return {index["name"] for index in inspect(conn).get_indexes("cases")}


async def add_rows(engine: AsyncEngine) -> None:
    # Plain SQL, not the tables of today's metadata: the rows go into a database of an older schema.
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO period_closures VALUES ('2026-03', :at, :digest, '{}')"), {"at": NOW, "digest": "d" * 64}
        )
        await conn.execute(
            text(
                "INSERT INTO messages (node, direction, message_id, kind, sender, recipient, created_at, accepted_at,"
                " envelope_sha256, envelope, body_sealed, status) VALUES ('110101001', 'in', 'm-1', 'query',"
                " '120101001', '110101001', :at, :at, :sha, :envelope, :sealed, 'received')"
            ),
            {"at": NOW, "sha": "e" * 64, "envelope": b"envelope", "sealed": b"sealed"},
        )


async def rows_kept(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        closures = (await conn.execute(text("SELECT period FROM period_closures"))).scalars().all()
        ids = (await conn.execute(text("SELECT message_id, envelope FROM messages"))).all()
    return closures == ["2026-03"] and [tuple(row) for row in ids] == [("m-1", b"envelope")]


@pytest.fixture(params=["sqlite-file", "sqlite-memory", POSTGRESQL])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite-file":
        return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    if request.param == "sqlite-memory":
        return "sqlite+aiosqlite:///:memory:"
    return request.getfixturevalue("postgres_url")


async def test_a_fresh_database_from_create_schema_is_at_head(fresh_url) -> None:
    engine = create_engine(fresh_url)
    try:
        await create_schema(engine)
        assert await current_revision(engine) == head_revision()
        assert await run(engine, differences) == []
    finally:
        await engine.dispose()


async def test_upgrading_from_empty_through_every_revision_gives_the_schema_of_the_metadata(engine) -> None:
    await run(engine, metadata.create_all)
    made_by_create_all = await run(engine, schema)
    await run(engine, metadata.drop_all)

    steps = await run(engine, upgrade_one_revision_at_a_time)

    assert steps[0] == BASELINE and steps[-1] == head_revision()
    assert await current_revision(engine) == head_revision()
    assert await run(engine, differences) == []
    assert await run(engine, schema) == made_by_create_all
    assert made_by_create_all["ix_cases_overdue covers"] == OPEN_STATE_VALUES  # partial, on the open cases
    # The dashboard's log of case changes (tally_tables.py), the same from the revision as from create_all.
    assert [name for name, _ in made_by_create_all["triggers on cases"]] == sorted(TRIGGERS)
    guard = {name for name, _ in made_by_create_all["audit guard"]}
    assert guard >= set(AUDIT_TRIGGERS[engine.dialect.name])


async def test_a_database_made_before_migrations_is_adopted_and_keeps_its_rows(engine) -> None:
    # While the baseline is head, this is plain metadata.create_all; later revisions change the metadata,
    # not what the create_all-only releases left behind.
    await run(engine, as_made_before_migrations)
    await add_rows(engine)
    assert await current_revision(engine) is None

    assert await migrate(engine) == "adopted"

    assert await current_revision(engine) == head_revision()
    assert await rows_kept(engine)
    assert await run(engine, differences) == []


async def test_an_older_database_made_before_migrations_gets_the_tables_and_the_partial_index_it_lacked(
    engine,
) -> None:
    # As a release before the archive and the overdue list left it. New tables came with the next
    # release's create_all, but an index never reached an existing table: such a database lacks ix_cases_overdue.
    await run(engine, as_made_before_migrations)
    for statement in ("DROP TABLE archive", "DROP TABLE receipts", "DROP INDEX ix_cases_overdue"):
        await run(engine, lambda conn, statement=statement: conn.execute(text(statement)))
    await add_rows(engine)

    await create_schema(engine)

    assert await current_revision(engine) == head_revision()
    assert await rows_kept(engine)
    assert {"archive", "receipts"} <= await run(engine, table_names)
    assert "ix_cases_overdue" in await run(engine, case_indexes)
    assert await run(engine, differences) == []


async def test_create_schema_twice_is_a_no_op_the_second_time(engine) -> None:
    assert await migrate(engine) == "created"
    await add_rows(engine)
    before = await run(engine, schema)

    assert await migrate(engine) == "current"
    await create_schema(engine)

    assert await run(engine, schema) == before
    assert await current_revision(engine) == head_revision()
    assert await rows_kept(engine)


async def test_a_database_migrated_by_a_newer_release_is_refused_and_left_as_it_is(engine) -> None:
    await create_schema(engine)
    async with engine.begin() as conn:
        await conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))

    with pytest.raises(UnknownRevision, match="9999"):
        await create_schema(engine)
    assert await current_revision(engine) == "9999"


@pytest.mark.database
async def test_two_gateways_starting_at_once_on_one_postgresql_database_take_turns(postgres_url) -> None:
    engines = [create_engine(postgres_url) for _ in range(3)]
    try:
        actions = await asyncio.gather(*(migrate(engine) for engine in engines))
        assert sorted(actions) == ["created", "current", "current"]
        assert await current_revision(engines[0]) == head_revision()
    finally:
        for engine in engines:
            await engine.dispose()


def test_gateway_db_current_and_upgrade_on_a_sqlite_file(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no gateway.env of the developer's
    env = {"GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"}
    head = head_revision()

    before = CliRunner().invoke(app, ["db", "current"], env=env)
    assert before.exit_code == 1 and "no revision" in before.output

    upgraded = CliRunner().invoke(app, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    assert upgraded.output.splitlines() == ["created the schema", f"database at {head} (head)"]

    again = CliRunner().invoke(app, ["db", "upgrade"], env=env)
    assert again.exit_code == 0 and again.output.splitlines()[-1] == f"database at {head} (head)"

    after = CliRunner().invoke(app, ["db", "current"], env=env)
    assert after.exit_code == 0 and after.output == f"database at {head} (head)\n"
