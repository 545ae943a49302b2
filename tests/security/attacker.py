"""The red team's database access: raw SQL on the audit tables past the database's guard, as the
owner or a superuser can (PostgreSQL: triggers off for the session; SQLite: the triggers dropped and
made again). What it cannot have is the audit key, which is not in the database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.adapters.sql.access_tables import AUDIT_GUARD_SQLITE, AUDIT_TRIGGERS


@contextlib.asynccontextmanager
async def past_the_guard(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One transaction in which UPDATE and DELETE on audit_log and audit_anchor go through."""
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            yield conn
            return
        for trigger in AUDIT_TRIGGERS["sqlite"]:
            await conn.execute(text(f"DROP TRIGGER {trigger}"))
        yield conn
        for statement in AUDIT_GUARD_SQLITE:
            await conn.execute(text(statement))


async def tamper(engine: AsyncEngine, *statements: str, **params: object) -> None:
    async with past_the_guard(engine) as conn:
        for statement in statements:
            await conn.execute(text(statement), params)
