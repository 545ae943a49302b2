"""The outbox relay: publishes committed messages with publisher confirms and marks them sent.

After a crash, whatever was committed but not confirmed is still in the outbox and is published
again; the recipient's inbox is idempotent, so a message published twice takes effect once.

Several relays may run against one PostgreSQL database: each relay claims only the rows of the
townships its gateway hosts (``senders``), and each pass *claims* its rows with a lease
(``claim_outbox``: ``FOR UPDATE SKIP LOCKED``, lease kept in ``next_attempt_at``), so two relays never
publish the same row at the same time — not even two gateways that host one township — and a relay
that dies mid-pass leaves rows that fall due again when the lease runs out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from gateway.clock import Clock
from gateway.exchange.ports import BatchPublisher, MessageStore, PublishNacked, Publisher
from gateway.exchange.records import OutboxItem

log = logging.getLogger(__name__)

# A broker that is down or blocking publishers is retried soon and without growing delays: the relay
# waits for it to come back before the next pass anyway, so the short delay cannot busy-loop.
UNAVAILABLE_RETRY = timedelta(seconds=1)
NACKED_RETRY_CAP = timedelta(seconds=5)


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
        max_passes: int = 4,
        senders: Sequence[str] | None = None,
    ) -> None:
        self.store = store
        # The townships whose rows this relay publishes; None: every row (one gateway per database).
        self.senders = sorted(set(senders)) if senders is not None else None
        self.publisher = publisher
        self.clock = clock
        self.batch = batch
        self.idle_poll_s = idle_poll_s
        self.lease = timedelta(seconds=lease_s)
        self.max_pass_pause_s = max_pass_pause_s
        self.max_passes = max_passes
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._stopping = False
        # aio-pika issue #689: two in-flight publishes of one message id on a channel can hang it.
        self._in_flight: set[str] = set()
        self.published_total = 0

    def nudge(self) -> None:
        self._wake.set()

    async def run_once(self) -> int:
        """Claim the due outbox rows, publish each once, mark the confirmed ones; return how many."""
        now = self.clock.now()
        return await self._publish_and_mark(await self._claim_due(now))

    async def _claim_due(self, now: datetime) -> list[OutboxItem]:
        if self.senders is None:
            return await self.store.claim_outbox(now, self.batch, now + self.lease)
        return await self.store.claim_outbox(now, self.batch, now + self.lease, senders=self.senders)

    async def _publish_and_mark(self, claimed: list[OutboxItem]) -> int:
        due: list[OutboxItem] = []
        for item in claimed:
            if item.message_id not in self._in_flight:  # also a second row of one id within this claim
                self._in_flight.add(item.message_id)
                due.append(item)
        if not due:
            return 0
        try:
            errors = await self._publish_all(due)
        finally:
            self._in_flight.difference_update(item.message_id for item in due)
        confirmed = [item.id for item, error in zip(due, errors) if error is None and item.id is not None]
        await self.store.mark_published(confirmed, self.clock.now())
        self.published_total += len(confirmed)
        failed = [(item, error) for item, error in zip(due, errors) if error is not None]
        if failed:
            await asyncio.gather(*(self._failed(item, error) for item, error in failed))
        return len(confirmed)

    async def _publish_all(self, due: list[OutboxItem]) -> Sequence[BaseException | None]:
        """Each row's outcome: None when confirmed. A broker that can take a whole pass at once does, with
        one write and one deadline for the pass's confirms; otherwise one publish per row, 256 at a time."""
        if isinstance(self.publisher, BatchPublisher):
            try:
                return await self.publisher.publish_batch(due)
            except Exception as exc:  # refused as a whole (e.g. not started): every row keeps its place
                return [exc] * len(due)
        return await asyncio.gather(*(self._publish_one(item) for item in due))

    async def _publish_one(self, item: OutboxItem) -> BaseException | None:
        async with self._slots:
            try:
                await self.publisher.publish(item.routing_key, item.envelope, message_id=item.message_id, kind=item.kind)
                return None
            except Exception as exc:  # any refusal: keep the row, try again later
                return exc

    async def _failed(self, item: OutboxItem, exc: BaseException) -> None:
        transient = isinstance(exc, (ConnectionError, asyncio.TimeoutError))
        if transient:
            delay = UNAVAILABLE_RETRY
        elif isinstance(exc, PublishNacked):
            # A nack is the broker's passing state (a queue between leaders): seconds, not minutes. With
            # the growing delay of a real refusal, the rows nacked while a cluster node was lost waited
            # up to five minutes after the queue had its new leader.
            delay = min(NACKED_RETRY_CAP, retry_delay(item.attempts))
        else:
            delay = retry_delay(item.attempts)
        log.warning("publish of %s failed (attempt %d, retry in %s): %s",
                    item.message_id, item.attempts + 1, delay, exc)
        assert item.id is not None
        await self.store.mark_publish_failed(item.id, str(exc), self.clock.now() + delay)

    async def _pause(self, seconds: float) -> None:
        """Sleep between failed passes, but wake at once when stopped."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass
        self._wake.clear()

    async def _claim(self) -> list[OutboxItem]:
        """Claim due rows; a failing database is retried with exponential backoff (1 s … max_pass_pause_s)."""

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
                    return []
                return await self._claim_due(self.clock.now())
        return []

    async def run(self) -> None:
        """Claim and publish continuously: up to ``max_passes`` passes in flight at once.

        A pass (claim → publish → confirm → mark) no longer holds up the next claim: rows committed
        while one pass waits for its confirms or its mark are claimed and published at once by the
        next. Claimed rows are leased, so passes never share a row. After a claim that did not fill a
        batch, the next waits for a nudge (a commit of this process), for the idle poll (rows of other
        processes, retries falling due) or for a pass to end when all are in flight.
        """
        passes: set[asyncio.Task[int]] = set()
        try:
            while not self._stopping:
                # Broker down or blocking publishers: wait for it instead of burning attempts or the CPU.
                if not await self.publisher.wait_until_ready(self.idle_poll_s):
                    continue
                if len(passes) >= self.max_passes:
                    done, _ = await asyncio.wait(passes, return_when=asyncio.FIRST_COMPLETED)
                    self._reap(passes, done)
                    continue
                self._wake.clear()
                claimed = await self._claim()
                if claimed:
                    task = asyncio.create_task(self._publish_and_mark(claimed))
                    passes.add(task)
                    task.add_done_callback(lambda t: self._reap(passes, {t}))
                if len(claimed) < self.batch:
                    await self._pause(self.idle_poll_s)
        finally:
            if passes:  # what was confirmed is marked before the relay stops
                await asyncio.gather(*passes, return_exceptions=True)

    @staticmethod
    def _reap(passes: set[asyncio.Task[int]], done: set[asyncio.Task[int]]) -> None:
        for task in done:
            passes.discard(task)
            if not task.cancelled() and task.exception() is not None:
                # Publishing refusals are kept per row; this is the mark failing (database trouble):
                # the rows fall due again when their lease runs out, and the inbox absorbs the copy.
                log.warning("outbox relay pass failed: %r", task.exception())

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
