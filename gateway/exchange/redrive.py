"""Re-driving a quarantined message: run its stored raw bytes through the receive pipeline again.

For refusals that a fix on our side can cure — the sender's key was missing from the directory, the
referenced query had not arrived yet, our storage refused the row. The quarantine row is kept (it is
the record of what happened) and marked re-driven; it is *resolved* only when the message was
accepted this time. A re-drive that is refused again adds no second row; it reports the new reason.

A re-drive first claims the row (a conditional write): two operators re-driving one item at once
store it, and queue its receipt, once; the second is told that a re-drive is under way. A resolved
item is not re-driven again, and an item kept only as a prefix (an oversized message) cannot be.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta

from gateway.clock import Clock
from gateway.exchange.ports import Delivery, MessageStore
from gateway.exchange.records import QuarantineItem
from gateway.exchange.service import Accepted, ExchangeService

# A claim older than this belongs to a re-drive that died (a re-drive takes milliseconds).
REDRIVE_CLAIM_LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class RedriveResult:
    item_id: int
    result: str  # "stored", "duplicate", or "refused"
    reason: str | None = None
    detail: str | None = None


class NotQuarantined(LookupError):
    pass


class RedriveRefused(Exception):
    """This item cannot be re-driven now; the message says why and what to do, ``code`` which case it is
    (``truncated``, ``resolved`` or ``in_progress``: the operator page's status keys)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


async def redrive_quarantined(service: ExchangeService, store: MessageStore, clock: Clock, item_id: int) -> RedriveResult:
    item = await store.get_quarantine(item_id)
    if item is None:
        raise NotQuarantined(f"no quarantined message {item_id}")
    if item.truncated:
        raise RedriveRefused(
            f"quarantined message {item_id} cannot be re-driven: only its first {len(item.raw)} of {item.whole_size} "
            "bytes were kept (GATEWAY_QUARANTINE_PREFIX_BYTES); ask the sender to send it again", "truncated"
        )
    if item.resolved:
        raise RedriveRefused(f"quarantined message {item_id} was already re-driven and accepted; nothing to do", "resolved")
    now = clock.now()
    if not await store.claim_quarantine_redrive(item_id, now, now - REDRIVE_CLAIM_LEASE):
        raise RedriveRefused(f"quarantined message {item_id} is being re-driven right now (or was just accepted)",
                             "in_progress")
    try:
        prepared = await service.prepare(Delivery(item.raw, item.recipient or ""))
        if isinstance(prepared, QuarantineItem):
            await store.mark_quarantine_redriven(item_id, clock.now(), resolved=False)
            return RedriveResult(item_id, "refused", prepared.reason, prepared.detail)
        assert isinstance(prepared, Accepted)
        outcome = await service._settle(prepared, await store.add_incoming(prepared.stored))
    except Exception:
        with contextlib.suppress(Exception):  # release the claim; the first error is the one to report
            await store.mark_quarantine_redriven(item_id, clock.now(), resolved=False)
        raise
    accepted = outcome.result in ("stored", "duplicate")
    await store.mark_quarantine_redriven(item_id, clock.now(), resolved=accepted)
    return RedriveResult(item_id, outcome.result if accepted else "refused", outcome.reason)
