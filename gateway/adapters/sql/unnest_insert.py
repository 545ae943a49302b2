"""Rows inserted from one array per column: one statement text for any number of rows (PostgreSQL).

``INSERT … VALUES (…), (…)`` is a new text for every number of rows, and an executemany runs one
INSERT per row; ``INSERT … SELECT * FROM unnest(CAST(:a AS T[]), …)`` takes the whole batch as a few
array parameters, so it is prepared once and can be part of a larger statement (a CTE that writes two
tables at once, a condition on the chain's head), run as ONE statement in autocommit: one round trip
where a transaction took BEGIN, the statements and COMMIT.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Insert, Integer, LargeBinary, String, Table, Text, TextClause, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import TypeEngine

from gateway.adapters.sql.direct_pg import direct
from gateway.adapters.sql.engine import is_sqlite
from gateway.adapters.sql.sqlite_hop import write_in_one_hop


def _array_type(sql_type: TypeEngine[Any]) -> str:
    for python_type, name in ((BigInteger, "BIGINT"), (Integer, "INTEGER"), (Boolean, "BOOLEAN"),
                              (LargeBinary, "BYTEA"), (Text, "TEXT"), (String, "VARCHAR")):
        if isinstance(sql_type, python_type):
            return f"{name}[]"
    if isinstance(sql_type, DateTime):
        return "TIMESTAMPTZ[]" if sql_type.timezone else "TIMESTAMP[]"
    raise TypeError(f"no array type for {sql_type!r}")


def unnest_arrays(table: Table, names: Sequence[str], *, prefix: str = "") -> str:
    """``unnest(CAST(:prefix_a AS T[]), …)``: rows of ``table``'s columns ``names``, one array each."""
    return "unnest(" + ", ".join(f"CAST(:{prefix}{n} AS {_array_type(table.c[n].type)})" for n in names) + ")"


def unnest_insert(table: Table, names: Sequence[str], *, prefix: str = "") -> str:
    """``INSERT INTO table (names) SELECT * FROM unnest(…)``, parameter ``prefix + name`` per column."""
    return f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM {unnest_arrays(table, names, prefix=prefix)}"


def column_arrays(rows: Sequence[Mapping[str, Any]], names: Sequence[str], *, prefix: str = "") -> dict[str, list[Any]]:
    """The parameters of ``unnest_insert``: one list per column, the rows in order."""
    return {f"{prefix}{n}": [row[n] for row in rows] for n in names}


_STATEMENTS: dict[tuple[str, tuple[str, ...]], TextClause] = {}
_SQLITE_INSERTS: dict[str, Insert] = {}  # built once: sqlite_hop compiles a statement once per object


async def insert_rows(engine: AsyncEngine, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """``rows`` (dicts with the same keys) into ``table`` as one statement, all or none: on PostgreSQL
    the arrays in autocommit (no BEGIN and COMMIT round trips); on SQLite the rows and the commit in
    one hop to the single writer's connection (sqlite_hop.py). A unique violation raises IntegrityError with nothing inserted."""
    if is_sqlite(str(engine.url)):
        statement = _SQLITE_INSERTS.get(table.name)
        if statement is None:
            statement = _SQLITE_INSERTS[table.name] = insert(table)
        await write_in_one_hop(engine, lambda run: run.executemany(statement, rows))
        return
    names = tuple(rows[0])
    statement = _STATEMENTS.get((table.name, names))
    if statement is None:
        statement = _STATEMENTS[(table.name, names)] = text(unnest_insert(table, names))
    async with direct(engine).connect() as conn:
        await conn.execute(statement, column_arrays(rows, names))
