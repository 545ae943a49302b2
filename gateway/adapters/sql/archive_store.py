"""The hash-chained archive on SQLAlchemy Core.

The archiver copies every stored envelope (sent and received) and every receipt, byte for byte, into
the chain in batches, off the delivery path: a row is archived once (unique source row), in the same
transaction that appends it, so a crash never leaves a message out of the chain for long — the next
pass picks it up. Appends are serialised (a PostgreSQL advisory lock; SQLite has one writer anyway),
so two gateways sharing one database keep one gap-free chain.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.adapters.sql.direct_pg import direct
from gateway.adapters.sql.engine import is_sqlite, reader, write_transaction
from gateway.adapters.sql.security_tables import archive, receipts
from gateway.adapters.sql.tables import messages
from gateway.adapters.sql.unnest_insert import column_arrays, unnest_insert
from gateway.security.archive import ArchiveRecord, NewRecord, StoredRecord, chain_append

# Any constant will do; it only has to be the same for every gateway sharing the database.
ARCHIVE_LOCK_KEY = 0x7A6B_0001

_RECORD_COLUMNS = ("seq", "direction", "item", "message_id", "sender", "recipient", "sha256", "recorded_at",
                   "prev_hash", "record_hash")


_MESSAGE_COLUMNS = (messages.c.id, messages.c.direction, messages.c.message_id, messages.c.sender,
                    messages.c.recipient, messages.c.envelope_sha256, messages.c.envelope)
_RECEIPT_COLUMNS = (receipts.c.id, receipts.c.direction, receipts.c.message_id, receipts.c.sender,
                    receipts.c.recipient, receipts.c.data)
_ARCHIVE_COLUMNS = ("seq", "source", "source_id", *_RECORD_COLUMNS[1:], "data")


def _newer_than_archived(columns: tuple[Any, ...], source: str) -> Select[Any]:
    """The rows after the last one of ``source`` archived, oldest first (an index range, no join)."""
    row_id = columns[0]
    last = select(func.coalesce(func.max(archive.c.source_id), 0)).where(archive.c.source == source).scalar_subquery()
    return select(*columns).where(row_id > last).order_by(row_id).limit(bindparam("b_limit"))


_SOURCE_COLUMNS = {"message": _MESSAGE_COLUMNS, "receipt": _RECEIPT_COLUMNS}
_NEW_ROWS = {source: _newer_than_archived(columns, source) for source, columns in _SOURCE_COLUMNS.items()}
_HEAD = select(archive).order_by(archive.c.seq.desc()).limit(1)
# A regular pass's records appended in ONE autocommit statement (PostgreSQL), only on the head the pass
# read and only while no pass holds the chain's lock (taken here for the statement's own transaction,
# so a locked pass that starts meanwhile waits for it and then reads what it appended): a pass of
# another gateway that appended meanwhile makes it insert nothing, or fail on the chain's primary key
# or on the unique source row, and the pass is done again under the lock.
_APPEND_IF_HEAD_PG = text(unnest_insert(archive, _ARCHIVE_COLUMNS)
                          + f" WHERE (SELECT pg_try_advisory_xact_lock({ARCHIVE_LOCK_KEY}))"
                          " AND (SELECT coalesce(max(seq), 0) FROM archive) = :head")


def _row(record: ArchiveRecord, data: bytes, source: str, source_id: int) -> dict[str, object]:
    return {**{c: getattr(record, c) for c in _RECORD_COLUMNS}, "source": source, "source_id": source_id, "data": data}


def _record(row: Any) -> ArchiveRecord:
    m = row._mapping
    return ArchiveRecord(**{c: m[c] for c in _RECORD_COLUMNS})


def _chained(head: ArchiveRecord | None, pending_messages: list[Any], pending_receipts: list[Any],
             now: datetime) -> list[dict[str, object]]:
    """The archive rows of the pending envelopes and receipts, chained after ``head``."""
    rows: list[dict[str, object]] = []
    for row_id, direction, message_id, sender, recipient, sha, envelope in pending_messages:
        new = NewRecord("sent" if direction == "out" else "received", "envelope", message_id, sender,
                        recipient, sha, now)
        head = chain_append(head, new)
        rows.append(_row(head, bytes(envelope), "message", row_id))
    for row_id, direction, message_id, sender, recipient, data in pending_receipts:
        new = NewRecord(direction, "receipt", message_id, sender, recipient,
                        hashlib.sha256(bytes(data)).hexdigest(), now)
        head = chain_append(head, new)
        rows.append(_row(head, bytes(data), "receipt", row_id))
    return rows


class SqlArchiveStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reader = reader(engine)  # one-shot reads: no BEGIN … ROLLBACK on PostgreSQL
        self.fast_appends = 0  # passes appended by _APPEND_IF_HEAD_PG (for tests and benchmarks)

    @contextlib.asynccontextmanager
    async def _appending(self) -> AsyncIterator[AsyncConnection]:
        async with write_transaction(self.engine) as conn:
            if not is_sqlite(str(self.engine.url)):
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ARCHIVE_LOCK_KEY})
            yield conn

    @staticmethod
    async def _head(conn: Any) -> ArchiveRecord | None:
        row = (await conn.execute(_HEAD)).first()
        return _record(row) if row else None

    @staticmethod
    async def _insert(conn: AsyncConnection, record: ArchiveRecord, data: bytes, source: str, source_id: int) -> None:
        await conn.execute(insert(archive), _row(record, data, source, source_id))

    async def append(self, new: NewRecord, data: bytes) -> ArchiveRecord:
        async with self._appending() as conn:
            head = await self._head(conn)
            record = chain_append(head, new)
            # Records appended by hand (not from a stored row) get a negative, unique source id.
            await self._insert(conn, record, data, "manual", -record.seq)
            return record

    async def archive_pending(self, now: datetime, limit: int = 500, *, sweep: bool = True) -> int:
        """Append stored messages and receipts not yet in the chain (oldest first); return how many.

        ``sweep``: look at every row. Otherwise only at the rows after the last one archived — an
        index range of the new rows, no join: a regular pass costs the same with a million messages
        stored as with a thousand, where looking at every row grew with the table (90 ms of PostgreSQL
        a pass at 100,000 messages, every second, and more while a burst kept the archiver busy). A
        transaction that took its ids before another but committed after it was archived is below that
        mark: the archiver sweeps at start-up and every few minutes, so such a row gets in then.
        A pass with nothing new looks without the chain's lock or a write transaction; on PostgreSQL a
        regular pass reads and appends without them too (``_APPEND_IF_HEAD_PG``)."""
        if not sweep and not is_sqlite(str(self.engine.url)):
            appended = await self._append_new_pg(now, limit)
            if appended is not None:
                return appended
        elif not sweep:
            async with self._reader.connect() as conn:
                if not await self._pending(conn, "message", 1, False) and \
                        not await self._pending(conn, "receipt", 1, False):
                    return 0
        async with self._appending() as conn:
            pending_messages = await self._pending(conn, "message", limit, sweep)
            pending_receipts = await self._pending(conn, "receipt", limit, sweep)
            if not pending_messages and not pending_receipts:
                return 0
            rows = _chained(await self._head(conn), pending_messages, pending_receipts, now)
            # One multi-row INSERT for the whole batch: appending is serialised, so it must be cheap.
            await conn.execute(insert(archive), rows)
            return len(rows)

    async def _append_new_pg(self, now: datetime, limit: int) -> int | None:
        """A regular pass on PostgreSQL as three reads and one conditional INSERT, each its own
        statement in autocommit: how many were appended, or None if another writer moved the head."""
        async with direct(self.engine).connect() as conn:
            pending_messages = await self._pending(conn, "message", limit, False)
            pending_receipts = await self._pending(conn, "receipt", limit, False)
            if not pending_messages and not pending_receipts:
                return 0
            head = await self._head(conn)
            rows = _chained(head, pending_messages, pending_receipts, now)
            try:
                inserted = (await conn.execute(_APPEND_IF_HEAD_PG, {
                    **column_arrays(rows, _ARCHIVE_COLUMNS), "head": head.seq if head else 0})).rowcount
            except IntegrityError:  # another writer took the same seq (or archived the same row) first
                return None
        if inserted != len(rows):
            return None
        self.fast_appends += 1
        return inserted

    @staticmethod
    async def _pending(conn: Any, source: str, limit: int, sweep: bool) -> list[Any]:
        if not sweep:
            return list((await conn.execute(_NEW_ROWS[source], {"b_limit": limit})).all())
        columns = _SOURCE_COLUMNS[source]
        row_id = columns[0]
        query = (select(*columns).outerjoin(archive, and_(archive.c.source == source, archive.c.source_id == row_id))
                 .where(archive.c.seq.is_(None)))
        return list((await conn.execute(query.order_by(row_id).limit(limit))).all())

    async def records(self) -> AsyncIterator[StoredRecord]:
        async with self.engine.connect() as conn:
            result = await conn.stream(select(archive).order_by(archive.c.seq))
            async for row in result:
                yield StoredRecord(_record(row), bytes(row._mapping["data"]))

    async def find(self, message_id: str) -> list[StoredRecord]:
        async with self._reader.connect() as conn:
            rows = (await conn.execute(select(archive).where(archive.c.message_id == message_id).order_by(archive.c.seq))).all()
        return [StoredRecord(_record(r), bytes(r._mapping["data"])) for r in rows]

    async def head(self) -> ArchiveRecord | None:
        async with self._reader.connect() as conn:
            return await self._head(conn)

    async def count(self) -> int:
        async with self._reader.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(archive))).scalar_one()
