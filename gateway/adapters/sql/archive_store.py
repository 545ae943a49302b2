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

from sqlalchemy import Select, and_, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.adapters.sql.engine import is_sqlite, reader, write_transaction
from gateway.adapters.sql.security_tables import archive, receipts
from gateway.adapters.sql.tables import messages
from gateway.security.archive import ArchiveRecord, NewRecord, StoredRecord, chain_append

# Any constant will do; it only has to be the same for every gateway sharing the database.
ARCHIVE_LOCK_KEY = 0x7A6B_0001

_RECORD_COLUMNS = ("seq", "direction", "item", "message_id", "sender", "recipient", "sha256", "recorded_at",
                   "prev_hash", "record_hash")


def _row(record: ArchiveRecord, data: bytes, source: str, source_id: int) -> dict[str, object]:
    return {**{c: getattr(record, c) for c in _RECORD_COLUMNS}, "source": source, "source_id": source_id, "data": data}


def _record(row: Any) -> ArchiveRecord:
    m = row._mapping
    return ArchiveRecord(**{c: m[c] for c in _RECORD_COLUMNS})


class SqlArchiveStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reader = reader(engine)  # one-shot reads: no BEGIN … ROLLBACK on PostgreSQL

    @contextlib.asynccontextmanager
    async def _appending(self) -> AsyncIterator[AsyncConnection]:
        async with write_transaction(self.engine) as conn:
            if not is_sqlite(str(self.engine.url)):
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ARCHIVE_LOCK_KEY})
            yield conn

    @staticmethod
    async def _head(conn: AsyncConnection) -> ArchiveRecord | None:
        row = (await conn.execute(select(archive).order_by(archive.c.seq.desc()).limit(1))).first()
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
        A pass with nothing new looks without the chain's lock or a write transaction."""
        if not sweep:
            async with self._reader.connect() as conn:
                if not await self._pending(conn, select(messages.c.id), messages.c.id, "message", 1, False) and \
                        not await self._pending(conn, select(receipts.c.id), receipts.c.id, "receipt", 1, False):
                    return 0
        async with self._appending() as conn:
            pending_messages = await self._pending(
                conn,
                select(messages.c.id, messages.c.direction, messages.c.message_id, messages.c.sender,
                       messages.c.recipient, messages.c.envelope_sha256, messages.c.envelope),
                messages.c.id, "message", limit, sweep)
            pending_receipts = await self._pending(
                conn,
                select(receipts.c.id, receipts.c.direction, receipts.c.message_id, receipts.c.sender,
                       receipts.c.recipient, receipts.c.data),
                receipts.c.id, "receipt", limit, sweep)
            if not pending_messages and not pending_receipts:
                return 0
            head = await self._head(conn)
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
            # One multi-row INSERT for the whole batch: appending is serialised, so it must be cheap.
            await conn.execute(insert(archive), rows)
            return len(rows)

    @staticmethod
    async def _pending(conn: AsyncConnection, columns: Select[Any], row_id: Any, source: str, limit: int,
                       sweep: bool) -> list[Any]:
        if sweep:
            query = (columns.outerjoin(archive, and_(archive.c.source == source, archive.c.source_id == row_id))
                     .where(archive.c.seq.is_(None)))
        else:
            last = (await conn.execute(select(func.max(archive.c.source_id)).where(archive.c.source == source))).scalar()
            query = columns.where(row_id > (last or 0))
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
