"""The archive: every envelope and receipt sent or received, as the exact bytes, in a hash chain.

Each record names its bytes by SHA-256 and is chained to the one before::

    record_hash = SHA-256(prev_hash_bytes || canonical JSON of the record's other fields)

so changing a record, its bytes, or removing or reordering records breaks the chain at the first
place touched. Cutting records off the end leaves a shorter chain that is still consistent: to catch
that, keep the head hash somewhere else too (a signed daily report, the supervisor's copy) and pass
it to ``verify_chain(expected_head=...)``.

Pure logic here, plus the ``ArchiveStore`` port and an in-memory fake; the SQL adapter lives with
the service.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, AsyncIterator, Iterable, Protocol

from gateway.security.encoding import canonical_json, utc_stamp

GENESIS_HASH = "0" * 64
DIRECTIONS = ("sent", "received")
ITEMS = ("envelope", "receipt")


@dataclass(frozen=True)
class NewRecord:
    direction: str  # "sent" or "received"
    item: str  # "envelope" or "receipt"
    message_id: str  # for a receipt: the id of the message it acknowledges
    sender: str  # township codes of the envelope (for a receipt: of the receipt)
    recipient: str
    sha256: str  # hex SHA-256 of the stored bytes
    recorded_at: datetime

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS or self.item not in ITEMS:
            raise ValueError(f"bad archive record: direction {self.direction!r}, item {self.item!r}")


@dataclass(frozen=True)
class ArchiveRecord:
    seq: int
    direction: str
    item: str
    message_id: str
    sender: str
    recipient: str
    sha256: str
    recorded_at: str  # UTC stamp, as hashed
    prev_hash: str
    record_hash: str

    def hashed_fields(self) -> dict[str, object]:
        # Every field is a str or an int: a shallow dict hashes the same canonical JSON as
        # dataclasses.asdict did, without its recursive deep copy (twice per appended record).
        return {name: getattr(self, name) for name in _HASHED_FIELDS}


_HASHED_FIELDS = tuple(f.name for f in fields(ArchiveRecord) if f.name not in ("prev_hash", "record_hash"))


@dataclass(frozen=True)
class StoredRecord:
    record: ArchiveRecord
    data: bytes


@dataclass(frozen=True)
class BrokenLink:
    seq: int  # the first record that does not check (or, for "head", the last one)
    reason: str  # "seq", "prev_hash", "record_hash", "data_hash", "head"
    detail: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.reason}: {self.detail}"


def record_hash(prev_hash: str, fields: dict[str, object]) -> str:
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical_json(fields)).hexdigest()


def chain_append(prev: ArchiveRecord | None, new: NewRecord) -> ArchiveRecord:
    seq = 1 if prev is None else prev.seq + 1
    prev_hash = GENESIS_HASH if prev is None else prev.record_hash
    hashed: dict[str, object] = {
        "seq": seq,
        "direction": new.direction,
        "item": new.item,
        "message_id": new.message_id,
        "sender": new.sender,
        "recipient": new.recipient,
        "sha256": new.sha256,
        "recorded_at": utc_stamp(new.recorded_at),
    }
    return ArchiveRecord(**hashed, prev_hash=prev_hash, record_hash=record_hash(prev_hash, hashed))  # type: ignore[arg-type]


def broken_link(rec: Any, expected_seq: int, prev_hash: str) -> BrokenLink | None:
    """How ``rec`` fails to follow the record before it in a hash chain (this archive's, or the audit
    trail's), or None: its place, its link to the one before, its own hash."""
    if rec.seq != expected_seq:
        return BrokenLink(expected_seq, "seq", f"expected record {expected_seq}, found {rec.seq} (deleted or reordered)")
    if rec.prev_hash != prev_hash:
        return BrokenLink(rec.seq, "prev_hash", "does not point at the record before it")
    if rec.record_hash != record_hash(prev_hash, rec.hashed_fields()):
        return BrokenLink(rec.seq, "record_hash", "record fields were changed")
    return None


def verify_chain(records: Iterable[ArchiveRecord | StoredRecord], *, expected_head: str | None = None) -> BrokenLink | None:
    """The first broken link, or None when the whole chain checks. Records must come in seq order."""
    expected_seq, prev_hash = 1, GENESIS_HASH
    last: ArchiveRecord | None = None
    for item in records:
        rec = item.record if isinstance(item, StoredRecord) else item
        if (broken := broken_link(rec, expected_seq, prev_hash)) is not None:
            return broken
        if isinstance(item, StoredRecord) and hashlib.sha256(item.data).hexdigest() != rec.sha256:
            return BrokenLink(rec.seq, "data_hash", "stored bytes were changed")
        expected_seq, prev_hash, last = rec.seq + 1, rec.record_hash, rec
    if expected_head is not None and prev_hash != expected_head:
        return BrokenLink(last.seq if last else 0, "head", "the chain does not end at the anchored head (records cut off?)")
    return None


class ArchiveStore(Protocol):
    async def append(self, new: NewRecord, data: bytes) -> ArchiveRecord:
        """Chain and store one record. The adapter must serialise appends (one transaction that reads
        the head with a lock, calls ``chain_append`` and inserts), or two records get the same seq."""
        ...

    def records(self) -> AsyncIterator[StoredRecord]:
        """Every record with its bytes, in seq order."""
        ...

    async def find(self, message_id: str) -> list[StoredRecord]:
        """The records (envelopes and receipts) for one message id, in seq order."""
        ...

    async def head(self) -> ArchiveRecord | None: ...


class InMemoryArchiveStore:
    def __init__(self) -> None:
        self.stored: list[StoredRecord] = []

    async def append(self, new: NewRecord, data: bytes) -> ArchiveRecord:
        if hashlib.sha256(data).hexdigest() != new.sha256:
            raise ValueError("record sha256 does not match its bytes")
        record = chain_append(self.stored[-1].record if self.stored else None, new)
        self.stored.append(StoredRecord(record, data))
        return record

    async def records(self) -> AsyncIterator[StoredRecord]:
        for stored in list(self.stored):
            yield stored

    async def find(self, message_id: str) -> list[StoredRecord]:
        return [s for s in self.stored if s.record.message_id == message_id]

    async def head(self) -> ArchiveRecord | None:
        return self.stored[-1].record if self.stored else None


async def archive_bytes(
    store: ArchiveStore, data: bytes, *, direction: str, item: str, message_id: str, sender: str, recipient: str, at: datetime
) -> ArchiveRecord:
    """Archive one envelope or receipt as its exact bytes."""
    return await store.append(NewRecord(direction, item, message_id, sender, recipient, hashlib.sha256(data).hexdigest(), at), data)
