"""Signed delivery receipts in the exchange: the recipient signs one for every envelope it stores,
the sender verifies it against the exact envelope bytes it sent, and the message shows "receipted".

A receipt travels over the broker like a message (routing key = the original sender) and through the
outbox, so it is not lost either; a redelivered envelope gets the same receipt bytes again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from gateway.exchange.records import OutboxItem
from gateway.security.receipts import RECEIPT_KIND, RECEIPT_MAGIC, Receipt, make_receipt, parse_receipt
from gateway.security.keys import NodeKeyring


class ReceiptStore(Protocol):
    async def add_sent(self, receipt: Receipt, data: bytes, item: OutboxItem) -> bool:
        """Keep a receipt we signed and queue it in the outbox, in one transaction; on a second call
        for the same message, queue the stored bytes again and return False."""

    async def add_sent_many(self, receipts: list[tuple[Receipt, bytes, OutboxItem]]) -> None:
        """``add_sent`` for a batch, in one transaction where none was sent before."""

    async def add_received(self, receipt: Receipt, data: bytes, at: datetime) -> bool: ...

    async def add_received_many(self, receipts: list[tuple[Receipt, bytes]], at: datetime) -> None: ...

    async def received_for(self, message_ids: Iterable[str]) -> dict[str, datetime]: ...


def is_receipt(body: bytes) -> bool:
    return body[:4] == RECEIPT_MAGIC


def receipt_outbox_id(sender: str, message_id: str) -> str:
    # Message ids are unique per sender only, and the outbox id column holds 64 characters.
    return "r-" + hashlib.sha256(f"{sender}/{message_id}".encode()).hexdigest()[:48]


def receipt_for(envelope: bytes, keyring: NodeKeyring, sender: str, now: datetime) -> tuple[Receipt, bytes, OutboxItem]:
    data = make_receipt(envelope, keyring, now)
    receipt, _, _ = parse_receipt(data)
    item = OutboxItem(
        message_id=receipt_outbox_id(sender, receipt.message_id),
        sender=keyring.township,
        routing_key=sender,
        kind=RECEIPT_KIND,
        envelope=data,
        created_at=now,
        next_attempt_at=now,
    )
    return receipt, data, item
