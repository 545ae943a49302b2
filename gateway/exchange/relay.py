"""The outbox relay: publishes committed messages with publisher confirms and marks them sent.

After a crash, whatever was committed but not confirmed is still in the outbox and is published
again; the recipient's inbox is idempotent, so a message published twice takes effect once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from gateway.clock import Clock
from gateway.exchange.ports import MessageStore, Publisher
from gateway.exchange.records import OutboxItem

log = logging.getLogger(__name__)


def retry_delay(attempts: int, *, base_s: float = 1.0, cap_s: float = 300.0) -> timedelta:
    """Exponential backoff for a message the broker would not take: 1 s, 2 s, 4 s … capped at 5 min."""
    return timedelta(seconds=min(cap_s, base_s * (2 ** max(0, attempts))))


class OutboxRelay:
    def __init__(
        self,
        store: MessageStore,
        publisher: Publisher,
        clock: Clock,
        *,
        batch: int = 500,
        concurrency: int = 256,
        idle_poll_s: float = 1.0,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.clock = clock
        self.batch = batch
        self.idle_poll_s = idle_poll_s
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._stopping = False

    def nudge(self) -> None:
        self._wake.set()

    async def run_once(self) -> int:
        """Publish every due outbox row once; return how many the broker confirmed."""
        due = await self.store.due_outbox(self.clock.now(), self.batch)
        if not due:
            return 0
        results = await asyncio.gather(*(self._publish(item) for item in due))
        confirmed = [item.id for item, ok in zip(due, results) if ok and item.id is not None]
        await self.store.mark_published(confirmed, self.clock.now())
        return len(confirmed)

    async def _publish(self, item: OutboxItem) -> bool:
        async with self._slots:
            try:
                await self.publisher.publish(item.routing_key, item.envelope, message_id=item.message_id, kind=item.kind)
                return True
            except Exception as exc:  # any refusal: keep the row, try again later
                log.warning("publish of %s failed (attempt %d): %s", item.message_id, item.attempts + 1, exc)
                assert item.id is not None
                await self.store.mark_publish_failed(item.id, str(exc), self.clock.now() + retry_delay(item.attempts))
                return False

    async def run(self) -> None:
        while not self._stopping:
            try:
                published = await self.run_once()
            except Exception:
                log.exception("outbox relay pass failed; retrying")
                published = 0
            if published == 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.idle_poll_s)
                except asyncio.TimeoutError:
                    pass
                self._wake.clear()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
