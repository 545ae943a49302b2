"""The exchange's I/O ports. Each has a real adapter and a fake beside it (gateway/adapters)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.exchange.records import Counts, Direction, IncomingResult, OutboxItem, QuarantineItem, StoredMessage


class MessageStore(Protocol):
    async def add_outgoing(self, message: StoredMessage, outbox: OutboxItem, *, answers: str | None = None) -> None:
        """Store a message and its outbox row in one transaction; mark the answered incoming message."""

    async def add_incoming(self, message: StoredMessage) -> IncomingResult:
        """Store a received message in one transaction (idempotent by sender and id); link feedback."""

    async def add_quarantine(self, item: QuarantineItem) -> None: ...

    async def find(self, node: str, direction: Direction, message_id: str) -> StoredMessage | None: ...

    async def list_messages(
        self, node: str, direction: Direction, *, kind: str | None = None, limit: int = 100
    ) -> list[StoredMessage]: ...

    async def due_outbox(self, now: datetime, limit: int) -> list[OutboxItem]: ...

    async def mark_published(self, outbox_ids: list[int], at: datetime) -> None: ...

    async def mark_publish_failed(self, outbox_id: int, error: str, next_attempt_at: datetime) -> None: ...

    async def list_quarantine(self, limit: int = 100) -> list[QuarantineItem]: ...

    async def counts(self) -> Counts: ...

    async def ping(self) -> None: ...


@dataclass(frozen=True)
class Delivery:
    """One message as the broker handed it to us."""

    body: bytes
    routing_key: str
    redelivered: bool = False


DeliveryHandler = Callable[[Delivery], Awaitable[None]]


class Publisher(Protocol):
    async def publish(self, routing_key: str, body: bytes, *, message_id: str, kind: str) -> None:
        """Return only once the broker has confirmed the message; raise on refusal or timeout."""


class Broker(Publisher, Protocol):
    async def start(self, townships: list[str]) -> None: ...
    async def consume(self, handler: DeliveryHandler) -> None: ...
    async def close(self) -> None: ...
    def is_connected(self) -> bool: ...
