"""What the exchange stores: plain records, independent of any database."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum


class Direction(str, Enum):
    OUT = "out"
    IN = "in"


class Status(str, Enum):
    QUEUED = "queued"  # committed with its outbox row, not yet confirmed by the broker
    SENT = "sent"  # the broker confirmed it
    RECEIVED = "received"  # verified, decrypted and stored by the recipient node
    ANSWERED = "answered"  # feedback sent (incoming query) or received (outgoing query)
    # The residence township withdrew the query before any reply (its withdrawal sent, or received: then
    # ``answered_by`` names the withdrawal, so no answer can claim the query any more).
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True)
class StoredMessage:
    node: str
    direction: Direction
    message_id: str
    kind: str
    sender: str
    recipient: str
    in_reply_to: str | None
    created_at: datetime
    accepted_at: datetime
    envelope_sha256: str
    envelope: bytes
    body_sealed: bytes
    subject: str | None
    status: Status
    answered_by: str | None = None
    answered_at: datetime | None = None
    result: str | None = None

    def with_status(self, status: Status) -> StoredMessage:
        return replace(self, status=status)


@dataclass(frozen=True)
class OutboxItem:
    message_id: str
    sender: str
    routing_key: str
    kind: str
    envelope: bytes
    created_at: datetime
    next_attempt_at: datetime
    attempts: int = 0
    published_at: datetime | None = None
    last_error: str | None = None
    id: int | None = None


@dataclass(frozen=True)
class QuarantineItem:
    received_at: datetime
    reason: str
    detail: str
    envelope_sha256: str
    raw: bytes
    message_id: str | None = None
    sender: str | None = None
    recipient: str | None = None
    kind: str | None = None
    id: int | None = None
    redriven_at: datetime | None = None
    resolved: bool = False
    size: int | None = None  # of the whole refused message; ``raw`` may hold only a prefix of it
    # True: refused after its signature verified; False: unauthenticated (anyone may have sent it);
    # None: kept before the gateway told them apart.
    authenticated: bool | None = None
    # Not stored: False when unauthenticated junk claims a township the directory does not know (the
    # quarantine's tally then counts it under no sender; gateway/exchange/refusals.py).
    sender_known: bool = True

    @property
    def whole_size(self) -> int:
        return len(self.raw) if self.size is None else self.size

    @property
    def truncated(self) -> bool:
        """Only a prefix of the message is kept: it cannot be re-driven."""
        return len(self.raw) < self.whole_size


class IncomingResult(str, Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"  # the identical envelope again: a broker redelivery, harmless
    CONFLICT = "conflict"  # same sender and id, different bytes: a replay or a forged reuse


@dataclass
class Counts:
    sent: int = 0
    received: int = 0
    answered: int = 0
    outbox_pending: int = 0
    quarantined: int = 0
    extra: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboxBacklog:
    """What the operator needs to see of the outbox: how much is waiting, since when, and why."""

    pending: int = 0  # committed, not yet confirmed by the broker
    due: int = 0  # of those, due for (another) attempt now
    retrying: int = 0  # of those, refused at least once
    oldest_created_at: datetime | None = None
    last_error: str | None = None
