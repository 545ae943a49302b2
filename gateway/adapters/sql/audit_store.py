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

The records are keyed (HMAC-SHA256 under the audit key, ``gateway/access/audit_files.py``); after
each commit the head this trail wrote is noted for the checkpoint file, written at most once a second
off the event loop (``flush_checkpoint`` writes it at once: verify, and the end of a command or of
``serve``). The first append on a chain whose head was made before the key writes the cut-over record
first. The database refuses UPDATE, and DELETE outside ``prune`` (access_tables.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.access.audit import (HASH_HMAC, HASH_SHA256, RETENTION, Action, Anchor, AuditEntry, AuditKey, AuditRecord,
                                  Checkpoint, chain_append, cut_over_entry, naming, verify_audit)
from gateway.access.audit_files import AuditFileError, AuditFiles
from gateway.adapters.sql.access_tables import audit_anchor, audit_log, audit_pruning
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
# The checkpoint file is rewritten at most this often (and at once by flush_checkpoint).
CHECKPOINT_EVERY_S = 1.0

_Waiting = tuple[Sequence[AuditEntry], "asyncio.Future[list[AuditRecord]]"]

# The new records as arrays (the same text for any number of them), inserted only on the given head.
_APPEND_IF_HEAD_PG = text(unnest_insert(audit_log, _COLUMNS) + " WHERE (SELECT max(seq) FROM audit_log) = :head")


def _record(row: Any) -> AuditRecord:
    m = row._mapping
    return AuditRecord(**{c: m[c] for c in _COLUMNS})


# Built once (sqlite_hop.py compiles a statement once per object).
_HEAD_ROW = select(audit_log.c.seq, audit_log.c.record_hash, audit_log.c.hash_version).order_by(audit_log.c.seq.desc()).limit(1)
_ANCHOR_ROW = select(audit_anchor.c.first_seq, audit_anchor.c.prev_hash, audit_anchor.c.mac)
_INSERT_RECORDS = insert(audit_log)
_ANY_KEYED = select(audit_log.c.seq).where(audit_log.c.hash_version == HASH_HMAC).limit(1)
_PRUNE_PG = text("SELECT audit_prune(:first_kept, :anchor_hash, :mac)")


class AuditKeyMissing(AuditFileError):
    """The key file is gone while the database holds records keyed with it."""


class AuditBroken(ValueError):
    """A prune of a trail that does not verify: it would put a MAC on whatever anchor it found."""


@dataclass(frozen=True)
class Head:
    """Where to chain on: the last record's seq and hash, and the anchor to name first when the chain
    so far was made before the key (None: it is keyed already, or empty from its start)."""

    seq: int
    record_hash: str
    cut_over: Anchor | None = None


@dataclass(frozen=True)
class Verification:
    """What ``gateway audit verify`` and ``GET /audit/verify`` report."""

    records: int
    broken: BrokenLink | None
    head_seq: int  # the newest record's seq (the anchor's first_seq - 1 when there is none)
    anchor_seq: int  # the seq the chain starts at
    checkpoint_seq: int | None  # the head kept outside the database, None when there is no checkpoint


def _anchor_of(row: Any) -> Anchor:
    return Anchor(int(row[0]), str(row[1]), None if row[2] is None else str(row[2])) if row else Anchor()


def _head_of(last: Any, anchor: Anchor | None) -> Head:
    """Where to chain on: after the last record, or before the first, after the anchor."""
    if last is not None:
        legacy = int(last[2]) == HASH_SHA256
        return Head(int(last[0]), str(last[1]), (anchor or Anchor()) if legacy else None)
    assert anchor is not None
    legacy = anchor.mac is None and not anchor.is_genesis
    return Head(anchor.first_seq - 1, anchor.prev_hash, anchor if legacy else None)


class SqlAuditTrail:
    def __init__(self, engine: AsyncEngine, clock: Clock, files: AuditFiles) -> None:
        self.engine = engine
        self.clock = clock
        self.files = files
        self._key: AuditKey | None = None
        # The newest head this trail wrote and has not put in the checkpoint file yet.
        self._unsaved: Checkpoint | None = None
        self._saved_at = -math.inf  # the event loop's clock
        self._saving: asyncio.TimerHandle | None = None
        self._saving_loop: asyncio.AbstractEventLoop | None = None
        self._writing: asyncio.Task[None] | None = None
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        self.appends = 0  # committed append transactions (for tests and benchmarks)
        self.fast_appends = 0  # of which in one statement, on the head this trail wrote last
        self._postgres = not is_sqlite(str(engine.url))
        # The (seq, record_hash) this trail appended last: the head, unless someone else appended since.
        self._known_head: Head | None = None

    @contextlib.asynccontextmanager
    async def _appending(self) -> AsyncIterator[AsyncConnection]:
        async with write_transaction(self.engine) as conn:
            if not is_sqlite(str(self.engine.url)):
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})
            yield conn

    @staticmethod
    async def _head(conn: AsyncConnection) -> Head:
        row = (await conn.execute(_HEAD_ROW)).first()
        keyed = row is not None and int(row[2]) == HASH_HMAC
        return _head_of(row, None if keyed else await SqlAuditTrail._anchor(conn))

    @staticmethod
    async def _anchor(conn: AsyncConnection) -> Anchor:
        return _anchor_of((await conn.execute(_ANCHOR_ROW)).first())

    async def _ready(self) -> AuditKey:
        """The audit key: read once; made when there is none and the database holds no keyed record
        (a new gateway, or the first start after the key came in). A missing key where keyed records
        are is refused: new records under a new key would hide the old ones' fate."""
        if self._key is None:
            key = await asyncio.to_thread(self.files.key)
            if key is None:
                async with self.engine.connect() as conn:
                    if (await conn.execute(_ANY_KEYED)).first() is not None:
                        raise AuditKeyMissing(
                            f"the audit key {self.files.key_path} is missing but the audit trail holds records "
                            "keyed with it: restore the file from its backup (nothing is recorded until then)")
                key = await asyncio.to_thread(self.files.create_key)
            self._key = key
        return self._key

    async def ready(self) -> None:
        """Refuse now, not at the first record, when the key is missing or unreadable."""
        await self._ready()

    def _chained(self, head: Head, entries: list[AuditEntry]) -> list[AuditRecord]:
        """The records of ``entries`` chained after ``head``, stamped now (after the cut-over record
        when the head was made before the key)."""
        assert self._key is not None, "_ready() first"
        seq, prev_hash = head.seq, head.record_hash
        now = self.clock.now()
        out = []
        if head.cut_over is not None:
            entries = [cut_over_entry(head.cut_over), *entries]
        for entry in entries:
            rec = chain_append(seq, prev_hash, entry, now, self._key)
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
        keyed = row is not None and int(row[2]) == HASH_HMAC
        head = _head_of(row, None if keyed else _anchor_of(run.execute(_ANCHOR_ROW, {}).first()))
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
                await self._ready()
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
            start = len(records) - sum(len(entries) for entries, _ in group)  # after a cut-over record
            for entries, future in group:
                _settle(future, records[start:start + len(entries)])
                start += len(entries)

    async def _write_alone(self, group: list[_Waiting]) -> None:
        for entries, future in group:
            try:
                await self._ready()
                async with self._appending() as conn:
                    records = await self._append(conn, list(entries))
            except Exception as exc:
                _settle(future, error=exc)
            else:
                self.appends += 1
                self._remember(records)
                _settle(future, records[len(records) - len(entries):])

    def _remember(self, records: list[AuditRecord]) -> None:
        if not records:
            return
        if self._postgres:
            self._known_head = Head(records[-1].seq, records[-1].record_hash)
        if self._unsaved is None or records[-1].seq > self._unsaved.seq:
            self._unsaved = Checkpoint(records[-1].seq, records[-1].record_hash)
        loop = asyncio.get_running_loop()
        if self._saving is None or self._saving_loop is not loop:  # (a timer of a loop since closed never fires)
            self._saving_loop = loop
            # At once when the last save is a second old, else a second after it; never on the hot path.
            self._saving = loop.call_later(max(0.0, self._saved_at + CHECKPOINT_EVERY_S - loop.time()),
                                           lambda: loop.create_task(self.flush_checkpoint()))

    async def flush_checkpoint(self) -> None:
        """Put the newest head this trail wrote into the checkpoint file now."""
        if self._saving is not None:
            self._saving.cancel()
            self._saving = None
        loop = asyncio.get_running_loop()
        head, self._unsaved = self._unsaved, None
        writing = self._writing
        if head is not None:
            self._saved_at = loop.time()
            writing = self._writing = loop.create_task(asyncio.to_thread(self.files.write_checkpoint, head))
        if writing is not None and not writing.done() and writing.get_loop() is loop:
            await writing  # also the write a timer started just before: the file holds the head when this returns

    async def aclose(self) -> None:
        await self.flush_checkpoint()

    async def _append_if_head(self, head: Head, entries: list[AuditEntry]) -> list[AuditRecord] | None:
        """The records appended after ``head`` in one autocommit statement, or None if the head moved
        (nothing inserted; the caller appends the locked way)."""
        records = self._chained(head, entries)
        columns = column_arrays([r.as_json() for r in records], _COLUMNS)
        try:
            async with direct(self.engine).connect() as conn:
                inserted = (await conn.execute(_APPEND_IF_HEAD_PG, {**columns, "head": head.seq})).rowcount
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
        report = await self.verification()
        return report.records, report.broken

    async def verification(self, *, require_checkpoint: bool = True) -> Verification:
        """The chain checked from its anchor, under the key, against the checkpoint kept outside the
        database: a changed, deleted or forged record, a cut of its start or of its end."""
        await self.flush_checkpoint()
        async with self.engine.connect() as conn:
            anchor = await self._anchor(conn)
        records = [r async for r in self.records()]
        head_seq = records[-1].seq if records else anchor.first_seq - 1
        try:
            key = await asyncio.to_thread(self.files.key)
            checkpoint = await asyncio.to_thread(self.files.checkpoint)
        except AuditFileError as exc:
            return Verification(len(records), BrokenLink(head_seq, "key", str(exc)), head_seq, anchor.first_seq, None)
        broken = verify_audit(records, anchor, key=key, checkpoint=checkpoint)
        if broken is None and checkpoint is None and require_checkpoint and any(r.hash_version == HASH_HMAC for r in records):
            broken = BrokenLink(head_seq, "head", f"no checkpoint at {self.files.head_path}: a cut of the newest records "
                                                  "cannot be ruled out (restore it from its backup)")
        return Verification(len(records), broken, head_seq, anchor.first_seq, checkpoint.seq if checkpoint else None)

    async def prune(self, older_than: timedelta, *, username: str, role: str, source: str = "cli") -> int:
        """Delete the records older than ``older_than`` (never less than the retention), move the
        anchor past them (with its MAC) and record the prune, naming the anchor; the number deleted.
        The deletion is the database's sanctioned one (audit_prune() on PostgreSQL, the audit_pruning
        mark on SQLite), which also refuses records younger than the retention by its own clock."""
        if older_than < RETENTION:
            raise ValueError(f"audit records are kept at least {RETENTION.days} days")
        key = await self._ready()
        # Checked first: a prune signs the anchor it finds, so it must not find a forged one. (A host
        # without a checkpoint of its own may still prune; the checkpoint is checked when there is one.)
        if (broken := (await self.verification(require_checkpoint=False)).broken) is not None:
            raise AuditBroken(f"the audit trail does not verify ({broken}): nothing pruned")
        cutoff = utc_stamp(self.clock.now() - older_than)
        self._known_head = None
        async with self._appending() as conn:
            last = (await conn.execute(select(audit_log.c.seq, audit_log.c.record_hash)
                                       .where(audit_log.c.at < cutoff)
                                       .order_by(audit_log.c.seq.desc()).limit(1))).first()
            anchor = await self._anchor(conn)
            if last is not None:
                anchor = Anchor(int(last[0]) + 1, str(last[1]))
            anchor = Anchor(anchor.first_seq, anchor.prev_hash, key.anchor_mac(anchor.first_seq, anchor.prev_hash))
            deleted = await self._delete_before(conn, anchor)
            records = await self._append(conn, [AuditEntry(Action.AUDIT_PRUNE, username, role, source,
                                                           detail=f"deleted {deleted} records before {cutoff}; {naming(anchor)}")])
        self._remember(records)
        await self.flush_checkpoint()
        return deleted

    async def _delete_before(self, conn: AsyncConnection, anchor: Anchor) -> int:
        if self._postgres:
            return int((await conn.execute(_PRUNE_PG, {"first_kept": anchor.first_seq, "anchor_hash": anchor.prev_hash,
                                                        "mac": anchor.mac})).scalar_one())
        await conn.execute(insert(audit_pruning), {"id": 1})
        deleted = (await conn.execute(delete(audit_log).where(audit_log.c.seq < anchor.first_seq))).rowcount or 0
        await conn.execute(delete(audit_anchor))
        await conn.execute(insert(audit_anchor), {"id": 1, "first_seq": anchor.first_seq, "prev_hash": anchor.prev_hash,
                                                  "mac": anchor.mac})
        await conn.execute(delete(audit_pruning))
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
