"""The audit trail: who did what to which object, when, from where, with what result.

One record per event, chained like the message archive (``gateway.security.archive``: the same
``record_hash`` over the same canonical JSON), so a changed, removed or reordered record breaks the
chain at the first place touched. The only deletion is the prune of records older than the
retention, and the prune is itself a record; after it the chain starts at an anchor (the seq of the
oldest kept record and the hash it points at) that the prune wrote.

Pure logic and the port; the SQL adapter is gateway/adapters/sql/audit_store.py.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import AsyncIterator, Iterable, Protocol

from gateway.security.archive import GENESIS_HASH, BrokenLink, broken_link, record_hash
from gateway.security.encoding import utc_stamp

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
    USER_REMOVE = "user_remove"
    TOKEN_ISSUE = "token_issue"
    TOKEN_REVOKE = "token_revoke"
    AUDIT_READ = "audit_read"
    AUDIT_PRUNE = "audit_prune"
    DENIED = "denied"  # a 403: who, which route (object_id), which township; detail says why


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

    def hashed_fields(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in _HASHED_FIELDS}

    def as_json(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in _ALL_FIELDS}


_ALL_FIELDS = tuple(f.name for f in fields(AuditRecord))
_HASHED_FIELDS = tuple(n for n in _ALL_FIELDS if n not in ("prev_hash", "record_hash"))


@dataclass(frozen=True)
class Anchor:
    first_seq: int = 1
    prev_hash: str = GENESIS_HASH


def chain_append(prev_seq: int, prev_hash: str, entry: AuditEntry, at: datetime) -> AuditRecord:
    hashed: dict[str, object] = {
        "seq": prev_seq + 1, "at": utc_stamp(at), "username": entry.username[:64], "role": entry.role,
        "source": entry.source[:64], "action": entry.action, "object_id": entry.object_id[:64],
        "township": entry.township[:9], "result": entry.result[:32], "detail": entry.detail[:DETAIL_MAX],
    }
    return AuditRecord(**hashed, prev_hash=prev_hash, record_hash=record_hash(prev_hash, hashed))  # type: ignore[arg-type]


def verify_audit(records: Iterable[AuditRecord], anchor: Anchor = Anchor()) -> BrokenLink | None:
    """The first broken link, or None. Records in seq order, from the anchor on."""
    expected_seq, prev_hash = anchor.first_seq, anchor.prev_hash
    for rec in records:
        if (broken := broken_link(rec, expected_seq, prev_hash)) is not None:
            return broken
        expected_seq, prev_hash = rec.seq + 1, rec.record_hash
    return None


class AuditTrail(Protocol):
    async def record(self, entry: AuditEntry) -> AuditRecord: ...

    async def record_many(self, entries: list[AuditEntry]) -> None: ...

    def records(self, *, username: str | None = None, since: datetime | None = None) -> AsyncIterator[AuditRecord]: ...
