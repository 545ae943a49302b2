"""The audit trail: who did what to which object, when, from where, with what result.

One record per event, chained like the message archive, so a changed, removed or reordered record
breaks the chain at the first place touched. Each record's hash is an HMAC-SHA256 under the audit
key, a secret kept outside the database (``AuditKey``; ``gateway/access/audit_files.py`` keeps it in
a file): whoever can write the database but does not hold the key cannot recompute a chain that
checks. Records made before the key (``hash_version`` 0) keep the archive's plain SHA-256
(``gateway.security.archive.record_hash``); the first keyed record after them is the cut-over
(``audit_keyed``), which points at the last of them, so they cannot be rewritten either.

The only deletion is the prune of records older than the retention. It leaves an anchor (the seq of
the oldest kept record and the hash it points at, with an HMAC of its own) and records itself, naming
that anchor: an anchor counts only when the last keyed prune record names it. A cut of the newest
records leaves a shorter chain that checks; the head checkpoint kept outside the database
(``Checkpoint``) catches it.

Pure logic and the port; the SQL adapter is gateway/adapters/sql/audit_store.py.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import AsyncIterator, Iterable, Protocol

from gateway.security.archive import GENESIS_HASH, BrokenLink, record_hash
from gateway.security.encoding import canonical_json, utc_stamp

RETENTION = timedelta(days=180)  # the least the issue allows; pruning never goes below it
DETAIL_MAX = 500  # a detail is a reason, never a record's content


class Action:
    SIGN_IN = "sign_in"
    SIGN_OUT = "sign_out"
    ACCOUNT_LOCKED = "account_locked"
    READ_RECORD = "read_record"  # one decrypted message body shown
    SUBMIT = "submit"
    ANSWER = "answer"
    IMPORT = "import"
    WITHDRAW = "withdraw"
    REDRIVE = "redrive"
    KEY_CHANGE = "key_change"
    USER_ADD = "user_add"
    USER_DISABLE = "user_disable"
    USER_ENABLE = "user_enable"
    USER_RESET_PASSWORD = "user_reset_password"
    USER_UNLOCK = "user_unlock"
    USER_REMOVE = "user_remove"
    TOKEN_ISSUE = "token_issue"
    TOKEN_REVOKE = "token_revoke"
    AUDIT_READ = "audit_read"
    AUDIT_PRUNE = "audit_prune"
    AUDIT_KEYED = "audit_keyed"  # the first keyed record after records made before the audit key
    DENIED = "denied"  # a 403: who, which route (object_id), which township; detail says why


HASH_SHA256 = 0  # made before the audit key: SHA-256(prev hash || canonical JSON), as the archive
HASH_HMAC = 1  # HMAC-SHA256(audit key, prev hash || canonical JSON)
KEY_BYTES = 32


@dataclass(frozen=True)
class AuditEntry:
    """An event to record. ``username``/``role`` are "" for an unknown caller (a failed sign-in by a
    name that does not exist is recorded under the name tried, role "")."""

    action: str
    username: str
    role: str = ""
    source: str = ""
    object_id: str = ""
    township: str = ""
    result: str = "ok"
    detail: str = ""


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    at: str  # UTC stamp, as hashed
    username: str
    role: str
    source: str
    action: str
    object_id: str
    township: str
    result: str
    detail: str
    prev_hash: str
    record_hash: str
    hash_version: int = HASH_HMAC

    def hashed_fields(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in _HASHED_FIELDS}

    def as_json(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in _ALL_FIELDS}


_ALL_FIELDS = tuple(f.name for f in fields(AuditRecord))
# The hash version is not hashed: records made before it had none. Lowering it is caught instead (a
# record without the key after a keyed one, or a chain that no longer ends at the checkpoint's hash).
_HASHED_FIELDS = tuple(n for n in _ALL_FIELDS if n not in ("prev_hash", "record_hash", "hash_version"))


class AuditKey:
    """The secret the chain is keyed with. Never stored in the database, never printed."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < KEY_BYTES:
            raise ValueError(f"the audit key must be at least {KEY_BYTES} bytes")
        self._records = hmac.new(secret, digestmod=hashlib.sha256)
        # Anchors under a key of their own, so an anchor's MAC can never pass for a record's.
        self._anchors = hmac.new(hmac.new(secret, b"gateway audit anchor", hashlib.sha256).digest(), digestmod=hashlib.sha256)

    def record_mac(self, prev_hash: str, hashed: dict[str, object]) -> str:
        mac = self._records.copy()
        mac.update(bytes.fromhex(prev_hash))
        mac.update(canonical_json(hashed))
        return mac.hexdigest()

    def anchor_mac(self, first_seq: int, prev_hash: str) -> str:
        mac = self._anchors.copy()
        mac.update(canonical_json({"first_seq": first_seq, "prev_hash": prev_hash}))
        return mac.hexdigest()

    def __repr__(self) -> str:
        return "AuditKey(…)"


@dataclass(frozen=True)
class Anchor:
    first_seq: int = 1
    prev_hash: str = GENESIS_HASH
    mac: str | None = None  # None: the start of the chain, or an anchor made before the audit key

    @property
    def is_genesis(self) -> bool:
        return self.first_seq == 1 and self.prev_hash == GENESIS_HASH


@dataclass(frozen=True)
class Checkpoint:
    """A head of the chain kept outside the database: the chain must still hold it."""

    seq: int
    record_hash: str


def chain_append(prev_seq: int, prev_hash: str, entry: AuditEntry, at: datetime, key: AuditKey) -> AuditRecord:
    hashed: dict[str, object] = {
        "seq": prev_seq + 1, "at": utc_stamp(at), "username": entry.username[:64], "role": entry.role,
        "source": entry.source[:64], "action": entry.action, "object_id": entry.object_id[:64],
        "township": entry.township[:9], "result": entry.result[:32], "detail": entry.detail[:DETAIL_MAX],
    }
    return AuditRecord(**hashed, prev_hash=prev_hash, record_hash=key.record_mac(prev_hash, hashed),  # type: ignore[arg-type]
                       hash_version=HASH_HMAC)


def naming(anchor: Anchor) -> str:
    """How a prune or cut-over record names the anchor it leaves (parsed back by ``named_anchor``)."""
    return f"anchor {anchor.first_seq} {anchor.prev_hash}"


_NAMED = re.compile(r"anchor (\d+) ([0-9a-f]{64})\Z")


def named_anchor(detail: str) -> tuple[int, str] | None:
    found = _NAMED.search(detail)
    return (int(found[1]), found[2]) if found else None


def cut_over_entry(anchor: Anchor) -> AuditEntry:
    """The first keyed record after records made before the key: it points at the last of them and
    names the anchor they start from, so neither can be rewritten afterwards."""
    return AuditEntry(Action.AUDIT_KEYED, "", detail=f"the chain is keyed from here; {naming(anchor)}")


def _link(rec: AuditRecord, expected_seq: int, prev_hash: str, key: AuditKey | None, keyed_seen: bool) -> BrokenLink | None:
    if rec.seq != expected_seq:
        return BrokenLink(expected_seq, "seq", f"expected record {expected_seq}, found {rec.seq} (deleted or reordered)")
    if rec.prev_hash != prev_hash:
        return BrokenLink(rec.seq, "prev_hash", "does not point at the record before it")
    if rec.hash_version == HASH_SHA256:
        if keyed_seen:
            return BrokenLink(rec.seq, "record_hash", "a record without the audit key after keyed ones (rewritten)")
        expected = record_hash(prev_hash, rec.hashed_fields())
    elif rec.hash_version == HASH_HMAC:
        if key is None:
            return BrokenLink(rec.seq, "key", "no audit key to check the keyed records with (restore it from its backup)")
        expected = key.record_mac(prev_hash, rec.hashed_fields())
    else:
        return BrokenLink(rec.seq, "record_hash", f"unknown hash version {rec.hash_version}")
    if not hmac.compare_digest(rec.record_hash, expected):
        return BrokenLink(rec.seq, "record_hash", "record fields were changed, or the hash made without the audit key")
    return None


def verify_audit(records: Iterable[AuditRecord], anchor: Anchor = Anchor(), *, key: AuditKey | None = None,
                 checkpoint: Checkpoint | None = None) -> BrokenLink | None:
    """The first broken link, or None. Records in seq order, from the anchor on.

    Beyond each link: a keyed anchor must carry its MAC and be the one the last keyed prune record
    names (an anchor before the key, the one the cut-over names); and the chain must still hold the
    checkpoint's record, with its hash."""
    if anchor.mac is not None and (key is None or not hmac.compare_digest(anchor.mac, key.anchor_mac(anchor.first_seq, anchor.prev_hash))):
        return BrokenLink(anchor.first_seq, "anchor", "the anchor was not made with the audit key (forged)")
    expected_seq, prev_hash = anchor.first_seq, anchor.prev_hash
    keyed_seen = False
    pruned_to: tuple[int, str] | None = None  # what the last keyed prune record names
    cut_over: tuple[int, str] | None = None
    at_checkpoint: str | None = None
    last_seq = anchor.first_seq - 1
    for rec in records:
        if (broken := _link(rec, expected_seq, prev_hash, key, keyed_seen)) is not None:
            return broken
        if rec.hash_version == HASH_HMAC:
            keyed_seen = True
            if rec.action == Action.AUDIT_PRUNE:
                pruned_to = named_anchor(rec.detail)
            elif rec.action == Action.AUDIT_KEYED and cut_over is None:
                cut_over = named_anchor(rec.detail)
        if checkpoint is not None and rec.seq == checkpoint.seq:
            at_checkpoint = rec.record_hash
        expected_seq, prev_hash, last_seq = rec.seq + 1, rec.record_hash, rec.seq
    here = (anchor.first_seq, anchor.prev_hash)
    if pruned_to is not None:
        if here != pruned_to or anchor.mac is None:
            return BrokenLink(anchor.first_seq, "anchor", f"the last prune left the anchor at seq {pruned_to[0]}, "
                                                          f"the chain starts at {anchor.first_seq} (records cut off the start)")
    elif keyed_seen and not anchor.is_genesis and not (anchor.mac is None and here == cut_over):
        # (A chain with no keyed record at all is checked as it was before the key: its anchor as found.)
        return BrokenLink(anchor.first_seq, "anchor", "no prune record names this anchor (records cut off the start)")
    if checkpoint is not None:
        if checkpoint.seq == anchor.first_seq - 1:
            at_checkpoint = anchor.prev_hash
        if checkpoint.seq > last_seq:
            return BrokenLink(last_seq, "head", f"the chain ends at seq {last_seq}, the checkpoint kept outside the "
                                                f"database is at seq {checkpoint.seq} (records cut off the end)")
        if checkpoint.seq >= anchor.first_seq - 1 and at_checkpoint != checkpoint.record_hash:
            return BrokenLink(checkpoint.seq, "head", "this record's hash is not the one the checkpoint kept (rewritten)")
    return None


class AuditTrail(Protocol):
    async def record(self, entry: AuditEntry) -> AuditRecord: ...

    async def record_many(self, entries: list[AuditEntry]) -> None: ...

    def records(self, *, username: str | None = None, since: datetime | None = None) -> AsyncIterator[AuditRecord]: ...
