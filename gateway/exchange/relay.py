"""The outbox relay: publishes committed messages with publisher confirms and marks them sent.

After a crash, whatever was committed but not confirmed is still in the outbox and is published
again; the recipient's inbox is idempotent, so a message published twice takes effect once.

Several relays may run against one PostgreSQL database: each pass *claims* its rows with a lease
(``claim_outbox``: ``FOR UPDATE SKIP LOCKED``, lease kept in ``next_attempt_at``), so two relays never
publish the same row at the same time, and a relay that dies mid-pass leaves rows that fall due again
when the lease runs out.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from gateway.clock import Clock
from gateway.exchange.ports import MessageStore, Publisher
from gateway.exchange.records import OutboxItem

log = logging.getLogger(__name__)

# A broker that is down or blocking publishers is retried soon and without growing delays: the relay
# waits for it to come back before the next pass anyway, so the short delay cannot busy-loop.
UNAVAILABLE_RETRY = timedelta(seconds=1)


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
        lease_s: float = 60.0,
        max_pass_pause_s: float = 30.0,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.clock = clock
        self.batch = batch
        self.idle_poll_s = idle_poll_s
        self.lease = timedelta(seconds=lease_s)
        self.max_pass_pause_s = max_pass_pause_s
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._stopping = False
        # aio-pika issue #689: two in-flight publishes of one message id on a channel can hang it.
        self._in_flight: set[str] = set()
        self.published_total = 0

    def nudge(self) -> None:
        self._wake.set()

    async def run_once(self) -> int:
        """Claim the due outbox rows, publish each once; return how many the broker confirmed."""
        now = self.clock.now()
        claimed = await self.store.claim_outbox(now, self.batch, now + self.lease)
        due = [item for item in claimed if item.message_id not in self._in_flight]
        if not due:
            return 0
        self._in_flight.update(item.message_id for item in due)
        try:
            results = await asyncio.gather(*(self._publish(item) for item in due))
        finally:
            self._in_flight.difference_update(item.message_id for item in due)
        confirmed = [item.id for item, ok in zip(due, results) if ok and item.id is not None]
        await self.store.mark_published(confirmed, self.clock.now())
        self.published_total += len(confirmed)
        return len(confirmed)

    async def _publish(self, item: OutboxItem) -> bool:
        async with self._slots:
            try:
                await self.publisher.publish(item.routing_key, item.envelope, message_id=item.message_id, kind=item.kind)
                return True
            except Exception as exc:  # any refusal: keep the row, try again later
                transient = isinstance(exc, (ConnectionError, asyncio.TimeoutError))
                delay = UNAVAILABLE_RETRY if transient else retry_delay(item.attempts)
                log.warning("publish of %s failed (attempt %d, retry in %s): %s",
                            item.message_id, item.attempts + 1, delay, exc)
                assert item.id is not None
                await self.store.mark_publish_failed(item.id, str(exc), self.clock.now() + delay)
                return False

    async def _pause(self, seconds: float) -> None:
        """Sleep between failed passes, but wake at once when stopped."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass
        self._wake.clear()

    async def _pass(self) -> int:
        """One pass; a failing database is retried with exponential backoff (1 s … max_pass_pause_s)."""

        def log_retry(state: RetryCallState) -> None:
            log.warning("outbox relay pass failed (%s); retrying in %.1fs",
                        state.outcome.exception() if state.outcome else "?", state.upcoming_sleep)

        retrying = AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_exponential(multiplier=1, min=1, max=self.max_pass_pause_s),
            sleep=self._pause,
            before_sleep=log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if self._stopping:
                    return 0
                return await self.run_once()
        return 0

    async def run(self) -> None:
        while not self._stopping:
            # Broker down or blocking publishers: wait for it instead of burning attempts or the CPU.
            if not await self.publisher.wait_until_ready(self.idle_poll_s):
                continue
            published = await self._pass()
            if published == 0:
                await self._pause(self.idle_poll_s)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
