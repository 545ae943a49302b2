"""The audit trail on SQLAlchemy Core: appended in serialised transactions (a PostgreSQL advisory lock,
as the archive does; SQLite has one writer), never updated; deleted only by ``prune``.

Appends are group-committed: the entries of the callers that arrive while an append is under way (or
waiting for the lock) are written together by the next one, with one read of the chain's head and one
multi-row INSERT. Each caller still returns only after the commit that holds its entries. Several
gateways on one PostgreSQL take turns through the advisory lock, and each transaction reads the head
after taking it, so the chain stays one gap-free sequence whoever appends.

On PostgreSQL, once this trail has appended, it knows the head it wrote, and the next append is ONE
statement in autocommit instead of five round trips (BEGIN, the lock, the head, the INSERT, COMMIT):
an INSERT of the new records that inserts only if the head is still that one, decided by the
database — ``max(seq)`` must equal it, and the primary key refuses a second writer that took the
same next seq meanwhile. If another gateway (or a prune) moved the head, nothing is inserted and the
append is done the locked way, which learns the new head.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.access.audit import RETENTION, Action, Anchor, AuditEntry, AuditRecord, chain_append, verify_audit
from gateway.adapters.sql.access_tables import audit_anchor, audit_log
from gateway.adapters.sql.direct_pg import direct
from gateway.adapters.sql.engine import is_sqlite, write_lock, write_transaction
from gateway.adapters.sql.sqlite_hop import HopStatements, committed_in_one_hop
from gateway.adapters.sql.unnest_insert import column_arrays, unnest_insert
from gateway.clock import Clock
from gateway.security.archive import GENESIS_HASH, BrokenLink
from gateway.security.encoding import utc_stamp

AUDIT_LOCK_KEY = 0x7A6B_0002  # beside the archive's 0x7A6B_0001
_COLUMNS = tuple(c.name for c in audit_log.columns)
# Entries per shared append at most (a caller's own list is never split): a bounded INSERT.
MAX_GROUP_ENTRIES = 1000

_Waiting = tuple[Sequence[AuditEntry], "asyncio.Future[list[AuditRecord]]"]

# The new records as arrays (the same text for any number of them), inserted only on the given head.
_APPEND_IF_HEAD_PG = text(unnest_insert(audit_log, _COLUMNS) + " WHERE (SELECT max(seq) FROM audit_log) = :head")


def _record(row: Any) -> AuditRecord:
    m = row._mapping
    return AuditRecord(**{c: m[c] for c in _COLUMNS})


# Built once (sqlite_hop.py compiles a statement once per object).
_HEAD_ROW = select(audit_log.c.seq, audit_log.c.record_hash).order_by(audit_log.c.seq.desc()).limit(1)
_ANCHOR_ROW = select(audit_anchor.c.first_seq, audit_anchor.c.prev_hash)
_INSERT_RECORDS = insert(audit_log)


def _anchor_of(row: Any) -> Anchor:
    return Anchor(int(row[0]), str(row[1])) if row else Anchor()


def _head_of(last: Any, anchor: Anchor | None) -> tuple[int, str]:
    """(seq, record hash) to chain after: the last record's, or before the first, the anchor's."""
    if last is not None:
        return int(last[0]), str(last[1])
    assert anchor is not None
    return anchor.first_seq - 1, anchor.prev_hash


class SqlAuditTrail:
    def __init__(self, engine: AsyncEngine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        self.appends = 0  # committed append transactions (for tests and benchmarks)
        self.fast_appends = 0  # of which in one statement, on the head this trail wrote last
        self._postgres = not is_sqlite(str(engine.url))
        # The (seq, record_hash) this trail appended last: the head, unless someone else appended since.
        self._known_head: tuple[int, str] | None = None

    @contextlib.asynccontextmanager
    async def _appending(self) -> AsyncIterator[AsyncConnection]:
        async with write_transaction(self.engine) as conn:
            if not is_sqlite(str(self.engine.url)):
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})
            yield conn

    @staticmethod
    async def _head(conn: AsyncConnection) -> tuple[int, str]:
        row = (await conn.execute(_HEAD_ROW)).first()
        return _head_of(row, None if row is not None else await SqlAuditTrail._anchor(conn))

    @staticmethod
    async def _anchor(conn: AsyncConnection) -> Anchor:
        return _anchor_of((await conn.execute(_ANCHOR_ROW)).first())

    def _chained(self, head: tuple[int, str], entries: list[AuditEntry]) -> list[AuditRecord]:
        """The records of ``entries`` chained after ``head`` (seq, record hash), stamped now."""
        seq, prev_hash = head
        now = self.clock.now()
        out = []
        for entry in entries:
            rec = chain_append(seq, prev_hash, entry, now)
            seq, prev_hash = rec.seq, rec.record_hash
            out.append(rec)
        return out

    async def _append(self, conn: AsyncConnection, entries: list[AuditEntry]) -> list[AuditRecord]:
        out = self._chained(await self._head(conn), entries)
        if out:
            await conn.execute(insert(audit_log), [r.as_json() for r in out])
        return out

    def _append_in_hop(self, run: HopStatements, entries: list[AuditEntry]) -> list[AuditRecord]:
        """``_append`` in an SQLite connection's thread."""
        row = run.execute(_HEAD_ROW, {}).first()
        head = _head_of(row, None if row is not None else _anchor_of(run.execute(_ANCHOR_ROW, {}).first()))
        out = self._chained(head, entries)
        run.executemany(_INSERT_RECORDS, [r.as_json() for r in out])
        return out

    async def record(self, entry: AuditEntry) -> AuditRecord:
        return (await self._appended([entry]))[0]

    async def record_many(self, entries: list[AuditEntry]) -> None:
        """One multi-row INSERT for a list (say, the records of one inbox page), with any other
        entries waiting at the time."""
        if entries:
            await self._appended(entries)

    async def _appended(self, entries: Sequence[AuditEntry]) -> list[AuditRecord]:
        """Queue ``entries`` for the next append and wait for its commit; their records."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[AuditRecord]] = loop.create_future()
        self._waiting.append((entries, future))
        if self._writer is None or self._writer.done() or self._writer.get_loop() is not loop:
            self._writer = loop.create_task(self._write_waiting())
        # A caller cancelled meanwhile does not take its entries back: they are written all the same,
        # as an event that may have happened is recorded rather than lost.
        return await future

    def _take(self) -> list[_Waiting]:
        taken, count = [], 0
        while self._waiting and (not taken or count + len(self._waiting[0][0]) <= MAX_GROUP_ENTRIES):
            waiting = self._waiting.pop(0)
            taken.append(waiting)
            count += len(waiting[0])
        return taken

    async def _write_waiting(self) -> None:
        """Append what is waiting, group by group, until nothing is; one writer per trail."""
        while self._waiting:
            group: list[_Waiting] = []
            try:
                records = None
                if self._known_head is not None:
                    group = self._take()
                    records = await self._append_if_head(self._known_head, [e for entries, _ in group for e in entries])
                if records is None and not self._postgres:
                    async with write_lock(self.engine):
                        # Taken once the lock is held: whoever arrived while we waited for it comes along.
                        group = group or self._take()
                        taken = [e for entries, _ in group for e in entries]
                        # The head, the rows and the commit in one hop (sqlite_hop.py).
                        records = await committed_in_one_hop(self.engine, lambda run: self._append_in_hop(run, taken))
                elif records is None:
                    async with self._appending() as conn:
                        group = group or self._take()
                        records = await self._append(conn, [e for entries, _ in group for e in entries])
                self._remember(records)
            except Exception as exc:
                self._known_head = None
                group = group or self._take()
                if len(group) == 1:
                    _settle(group[0][1], error=exc)
                else:
                    await self._write_alone(group)  # only the caller at fault sees an error
                continue
            self.appends += 1
            start = 0
            for entries, future in group:
                _settle(future, records[start:start + len(entries)])
                start += len(entries)

    async def _write_alone(self, group: list[_Waiting]) -> None:
        for entries, future in group:
            try:
                async with self._appending() as conn:
                    records = await self._append(conn, list(entries))
            except Exception as exc:
                _settle(future, error=exc)
            else:
                self.appends += 1
                self._remember(records)
                _settle(future, records)

    def _remember(self, records: list[AuditRecord]) -> None:
        if records and self._postgres:
            self._known_head = (records[-1].seq, records[-1].record_hash)

    async def _append_if_head(self, head: tuple[int, str], entries: list[AuditEntry]) -> list[AuditRecord] | None:
        """The records appended after ``head`` in one autocommit statement, or None if the head moved
        (nothing inserted; the caller appends the locked way)."""
        records = self._chained(head, entries)
        columns = column_arrays([r.as_json() for r in records], _COLUMNS)
        try:
            async with direct(self.engine).connect() as conn:
                inserted = (await conn.execute(_APPEND_IF_HEAD_PG, {**columns, "head": head[0]})).rowcount
        except IntegrityError:  # another writer took the same seq first
            inserted = 0
        if inserted != len(records):
            self._known_head = None
            return None
        self.fast_appends += 1
        return records

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
        self._known_head = None
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


def _settle(future: "asyncio.Future[list[AuditRecord]]", records: list[AuditRecord] | None = None, *,
            error: BaseException | None = None) -> None:
    if future.done():  # its caller was cancelled; the entries are written all the same
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(records or [])


__all__ = ["SqlAuditTrail", "GENESIS_HASH"]
