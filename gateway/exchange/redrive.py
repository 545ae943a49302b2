"""Re-driving a quarantined message: run its stored raw bytes through the receive pipeline again.

For refusals that a fix on our side can cure — the sender's key was missing from the directory, the
referenced query had not arrived yet, our storage refused the row. The quarantine row is kept (it is
the record of what happened) and marked re-driven; it is *resolved* only when the message was
accepted this time. A re-drive that is refused again adds no second row; it reports the new reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.clock import Clock
from gateway.exchange.ports import Delivery, MessageStore
from gateway.exchange.records import QuarantineItem
from gateway.exchange.service import Accepted, ExchangeService


@dataclass(frozen=True)
class RedriveResult:
    item_id: int
    result: str  # "stored", "duplicate", or "refused"
    reason: str | None = None
    detail: str | None = None


class NotQuarantined(LookupError):
    pass


async def redrive_quarantined(service: ExchangeService, store: MessageStore, clock: Clock, item_id: int) -> RedriveResult:
    item = await store.get_quarantine(item_id)
    if item is None:
        raise NotQuarantined(f"no quarantined message {item_id}")
    prepared = await service.prepare(Delivery(item.raw, item.recipient or ""))
    if isinstance(prepared, QuarantineItem):
        await store.mark_quarantine_redriven(item_id, clock.now(), resolved=False)
        return RedriveResult(item_id, "refused", prepared.reason, prepared.detail)
    assert isinstance(prepared, Accepted)
    outcome = await service._settle(prepared, await store.add_incoming(prepared.stored))
    accepted = outcome.result in ("stored", "duplicate")
    await store.mark_quarantine_redriven(item_id, clock.now(), resolved=accepted)
    return RedriveResult(item_id, outcome.result if accepted else "refused", outcome.reason)
