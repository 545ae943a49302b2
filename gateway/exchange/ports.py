"""The exchange's I/O ports. Each has a real adapter and a fake beside it (gateway/adapters)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol, runtime_checkable

from gateway.exchange.records import (
    Counts,
    Direction,
    IncomingResult,
    OutboxBacklog,
    OutboxItem,
    QuarantineItem,
    StoredMessage,
)
from gateway.exchange.refusals import RefusalCount


class MessageStore(Protocol):
    async def add_outgoing(self, message: StoredMessage, outbox: OutboxItem, *, answers: str | None = None) -> None:
        """Store a message and its outbox row in one transaction; mark the answered incoming message."""

    async def add_incoming(self, message: StoredMessage) -> IncomingResult:
        """Store a received message in one transaction (idempotent by sender and id); link feedback."""

    async def add_incoming_batch(
        self, batch: Sequence[StoredMessage], refused: Sequence[QuarantineItem] = ()
    ) -> list[IncomingResult]:
        """``add_incoming`` for each message and ``add_quarantine`` for each refusal, in one transaction."""

    async def add_withdrawal(self, message: StoredMessage, outbox: OutboxItem) -> bool:
        """Store a withdrawal and its outbox row, marking the sent query it withdraws (``in_reply_to``)
        withdrawn, in one transaction — only while no reply is linked to it and it is not withdrawn
        already (a conditional write); False, and nothing written, otherwise."""

    async def add_quarantine(self, item: QuarantineItem) -> None: ...

    async def get_quarantine(self, item_id: int) -> QuarantineItem | None: ...

    async def claim_quarantine_redrive(self, item_id: int, at: datetime, stale_before: datetime) -> bool:
        """Claim an unresolved quarantined item for one re-drive; False when resolved or claimed since
        ``stale_before`` by another re-drive."""

    async def mark_quarantine_redriven(self, item_id: int, at: datetime, *, resolved: bool) -> None:
        """The re-drive's outcome; releases its claim."""

    async def find(self, node: str, direction: Direction, message_id: str) -> StoredMessage | None: ...

    async def find_many(
        self, direction: Direction, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], StoredMessage]:
        """``find`` for many (node, message id) pairs in one read; the ones found, by their pair."""

    async def list_messages(
        self, node: str, direction: Direction, *, kind: str | None = None, limit: int = 100
    ) -> list[StoredMessage]: ...

    async def due_outbox(self, now: datetime, limit: int) -> list[OutboxItem]: ...

    async def claim_outbox(
        self, now: datetime, limit: int, lease_until: datetime, *, senders: Sequence[str] | None = None
    ) -> list[OutboxItem]:
        """Due rows, leased to the caller until ``lease_until`` so no other relay publishes them meanwhile.

        ``senders``: only rows sent by these townships (the gateway's own); None: every row."""

    async def outbox_backlog(self, now: datetime) -> OutboxBacklog: ...

    async def mark_published(self, outbox_ids: list[int], at: datetime) -> None: ...

    async def mark_publish_failed(self, outbox_id: int, error: str, next_attempt_at: datetime) -> None: ...

    async def list_quarantine(self, limit: int = 100) -> list[QuarantineItem]: ...

    async def refusal_counts(self, since: datetime, limit: int = 200) -> list[RefusalCount]:
        """Refusals seen per hour, bucket, sender and reason since ``since``: stored or counted only."""

    async def counts(self) -> Counts: ...

    async def ping(self) -> None: ...


@dataclass(frozen=True)
class Delivery:
    """One message as the broker handed it to us."""

    body: bytes
    routing_key: str
    redelivered: bool = False


DeliveryHandler = Callable[[Delivery], Awaitable[None]]


class OutgoingMessage(Protocol):
    """What a publish needs of a message (an ``OutboxItem`` is one)."""

    @property
    def routing_key(self) -> str: ...
    @property
    def envelope(self) -> bytes: ...
    @property
    def message_id(self) -> str: ...
    @property
    def kind(self) -> str: ...


class Outgoing(NamedTuple):
    routing_key: str
    envelope: bytes
    message_id: str
    kind: str


class PublishNacked(Exception):
    """The broker did not take the message (``basic.nack``): a quorum queue between leaders after a node
    was lost, or one refusing publishes while full. Transient: the relay tries again within seconds,
    unlike a message no queue serves, which it backs off from for minutes."""


class Publisher(Protocol):
    async def publish(self, routing_key: str, body: bytes, *, message_id: str, kind: str) -> None:
        """Return only once the broker has confirmed the message; raise on refusal or timeout."""

    async def wait_until_ready(self, timeout_s: float) -> bool:
        """Wait until publishing can succeed (connected, not blocked); False when ``timeout_s`` ran out."""
        ...


@runtime_checkable
class BatchPublisher(Protocol):
    async def publish_batch(self, messages: Sequence[OutgoingMessage]) -> Sequence[Exception | None]:
        """Publish all, return once each is confirmed or refused: None for a confirmed message, else the
        error ``publish`` would have raised for it (a ``ConnectionError`` when transient)."""
        ...


class Broker(Publisher, Protocol):
    async def start(self, townships: list[str]) -> None: ...
    async def consume(self, handler: DeliveryHandler) -> None: ...
    async def close(self) -> None: ...
    def is_connected(self) -> bool: ...
    def state(self) -> str:
        """"ok", "disconnected" or "blocked" (the broker holds publishers back: memory or disk alarm)."""
        ...


class ExchangeObserver(Protocol):
    """Told about every message once it is committed (and again on a redelivery: be idempotent)."""

    async def message_stored(self, stored: StoredMessage, message: Any) -> None: ...


class NoObserver:
    async def message_stored(self, stored: StoredMessage, message: Any) -> None:
        return None
