"""Signed delivery receipts in the exchange: the recipient signs one for every envelope it stores,
the sender verifies it against the exact envelope bytes it sent, and the message shows "receipted".

Receipts travel over the broker like messages, through the outbox, so they are not lost either: the
receipts one township signs for another in one consumer batch go together in one bundle (one outbox
row, one publish, one delivery; each receipt still separately signed, kept and archived). A
redelivered envelope gets the receipt bytes stored the first time, sent again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from gateway.exchange.records import OutboxItem
from gateway.security.keys import NodeKeyring
from gateway.security.receipts import (
    BUNDLE_MAGIC,
    MAX_BUNDLE,
    RECEIPT_KIND,
    RECEIPT_MAGIC,
    Receipt,
    bundle_receipts,
    sign_receipt,
)


class ReceiptStore(Protocol):
    async def add_sent_many(self, signed: Sequence[tuple[Receipt, bytes]], now: datetime) -> None:
        """Keep the receipts we signed and queue them, bundled (``bundle_outbox_items``), in one
        transaction. A receipt already kept (the envelope was delivered again) is not replaced: its
        stored bytes are queued again instead, so the signed ``received_at`` never changes."""

    async def add_received(self, receipt: Receipt, data: bytes, at: datetime) -> bool: ...

    async def add_received_many(self, receipts: list[tuple[Receipt, bytes]], at: datetime) -> None: ...

    async def received_for(self, message_ids: Iterable[str]) -> dict[str, datetime]: ...


def is_receipt(body: bytes) -> bool:
    """A receipt or a bundle of receipts (never an envelope: the magic bytes differ)."""
    return body[:4] in (RECEIPT_MAGIC, BUNDLE_MAGIC)


def receipt_for(envelope: bytes, keyring: NodeKeyring, now: datetime, *, envelope_sha256: str | None = None) -> tuple[Receipt, bytes]:
    return sign_receipt(envelope, keyring, now, envelope_sha256=envelope_sha256)


def bundle_outbox_items(signed: Sequence[tuple[Receipt, bytes]], now: datetime) -> list[OutboxItem]:
    """The outbox rows for receipts to send: one bundle per (signing township, township it goes to)."""
    by_route: dict[tuple[str, str], list[bytes]] = {}
    for receipt, data in signed:
        by_route.setdefault((receipt.sender, receipt.recipient), []).append(data)
    items = []
    for (signer, to), receipts in by_route.items():
        for i in range(0, len(receipts), MAX_BUNDLE):
            items.append(OutboxItem(
                message_id="rb-" + uuid.uuid4().hex,
                sender=signer,
                routing_key=to,
                kind=RECEIPT_KIND,
                envelope=bundle_receipts(receipts[i : i + MAX_BUNDLE]),
                created_at=now,
                next_attempt_at=now,
            ))
    return items
