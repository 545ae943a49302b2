"""The audit trail on SQLAlchemy Core: appended in one serialised transaction per batch (a PostgreSQL
advisory lock, as the archive does; SQLite has one writer), never updated; deleted only by ``prune``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.access.audit import RETENTION, Action, Anchor, AuditEntry, AuditRecord, chain_append, verify_audit
from gateway.adapters.sql.access_tables import audit_anchor, audit_log
from gateway.adapters.sql.engine import is_sqlite, write_transaction
from gateway.clock import Clock
from gateway.security.archive import GENESIS_HASH, BrokenLink
from gateway.security.encoding import utc_stamp

AUDIT_LOCK_KEY = 0x7A6B_0002  # beside the archive's 0x7A6B_0001
_COLUMNS = tuple(c.name for c in audit_log.columns)


def _record(row: Any) -> AuditRecord:
    m = row._mapping
    return AuditRecord(**{c: m[c] for c in _COLUMNS})


class SqlAuditTrail:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    @contextlib.asynccontextmanager
    async def _appending(self) -> AsyncIterator[AsyncConnection]:
        async with write_transaction(self.engine) as conn:
            if not is_sqlite(str(self.engine.url)):
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})
            yield conn

    @staticmethod
    async def _head(conn: AsyncConnection) -> tuple[int, str]:
        row = (await conn.execute(select(audit_log.c.seq, audit_log.c.record_hash)
                                  .order_by(audit_log.c.seq.desc()).limit(1))).first()
        if row is not None:
            return int(row[0]), str(row[1])
        anchor = await SqlAuditTrail._anchor(conn)
        return anchor.first_seq - 1, anchor.prev_hash

    @staticmethod
    async def _anchor(conn: AsyncConnection) -> Anchor:
        row = (await conn.execute(select(audit_anchor.c.first_seq, audit_anchor.c.prev_hash))).first()
        return Anchor(int(row[0]), str(row[1])) if row else Anchor()

    async def _append(self, conn: AsyncConnection, entries: list[AuditEntry]) -> list[AuditRecord]:
        seq, prev_hash = await self._head(conn)
        now = self.clock.now()
        out = []
        for entry in entries:
            rec = chain_append(seq, prev_hash, entry, now)
            seq, prev_hash = rec.seq, rec.record_hash
            out.append(rec)
        if out:
            await conn.execute(insert(audit_log), [r.as_json() for r in out])
        return out

    async def record(self, entry: AuditEntry) -> AuditRecord:
        async with self._appending() as conn:
            return (await self._append(conn, [entry]))[0]

    async def record_many(self, entries: list[AuditEntry]) -> None:
        """One transaction and one multi-row INSERT for a list (say, the records of one inbox page)."""
        if entries:
            async with self._appending() as conn:
                await self._append(conn, entries)

    async def records(self, *, username: str | None = None, since: datetime | None = None) -> AsyncIterator[AuditRecord]:
        query = select(audit_log).order_by(audit_log.c.seq)
        if username is not None:
            query = query.where(audit_log.c.username == username)
        if since is not None:
            query = query.where(audit_log.c.at >= utc_stamp(since))  # fixed-width UTC stamps sort as text
        async with self.engine.connect() as conn:
            result = await conn.stream(query)
            async for row in result:
                yield _record(row)

    async def count(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(audit_log))).scalar_one())

    async def verify(self) -> tuple[int, BrokenLink | None]:
        """How many records, and the first broken link (None: the chain checks from its anchor)."""
        async with self.engine.connect() as conn:
            anchor = await self._anchor(conn)
        count = 0

        async def counted() -> AsyncIterator[AuditRecord]:
            nonlocal count
            async for rec in self.records():
                count += 1
                yield rec

        records = [r async for r in counted()]
        return count, verify_audit(records, anchor)

    async def prune(self, older_than: timedelta, *, username: str, role: str, source: str = "cli") -> int:
        """Delete the records older than ``older_than`` (never less than the retention), move the
        anchor past them and record the prune; the number deleted."""
        if older_than < RETENTION:
            raise ValueError(f"audit records are kept at least {RETENTION.days} days")
        cutoff = utc_stamp(self.clock.now() - older_than)
        async with self._appending() as conn:
            last = (await conn.execute(select(audit_log.c.seq, audit_log.c.record_hash)
                                       .where(audit_log.c.at < cutoff)
                                       .order_by(audit_log.c.seq.desc()).limit(1))).first()
            deleted = 0
            if last is not None:
                first_kept, anchor_hash = int(last[0]) + 1, str(last[1])
                result = await conn.execute(delete(audit_log).where(audit_log.c.seq < first_kept))
                deleted = result.rowcount or 0
                await conn.execute(delete(audit_anchor))
                await conn.execute(insert(audit_anchor), {"id": 1, "first_seq": first_kept, "prev_hash": anchor_hash})
            await self._append(conn, [AuditEntry(Action.AUDIT_PRUNE, username, role, source,
                                                 detail=f"deleted {deleted} records before {cutoff}")])
            return deleted


__all__ = ["SqlAuditTrail", "GENESIS_HASH"]
