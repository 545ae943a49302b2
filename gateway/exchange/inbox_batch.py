"""The batching inbox: many deliveries, one database transaction, each delivery still settled alone.

The broker hands deliveries to the consumer one task per message. ``InboxBatcher.submit`` parks each
one for at most ``max_wait_s`` (or until ``max_batch`` are waiting; longer only while both batch
slots are busy — the next slot to free takes everything parked by then), receives the lot with
``receive_batch`` — verify, decrypt and validate each, store the accepted ones and the refusals in ONE
transaction — and then answers every parked caller with its own outcome. The caller (the broker
adapter) acks only after that, so an ack still means "committed".

When the batch transaction fails, every delivery is retried alone, so one message that cannot be
stored does not drag the others into the poison queue. A failure while the database itself is down is
not the message's fault: the delivery is held (not nacked, so its delivery count does not grow) and
retried with exponential backoff until the database answers again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from gateway.exchange.ports import Delivery

log = logging.getLogger(__name__)

BatchReceiver = Callable[[Sequence[Delivery]], Awaitable[Sequence[object]]]
SingleReceiver = Callable[[Delivery], Awaitable[object]]
HealthProbe = Callable[[], Awaitable[None]]


class StorageDown(Exception):
    """Our own database does not answer: hold the delivery and retry, do not blame the message."""


class InboxBatcher:
    def __init__(
        self,
        receive_batch: BatchReceiver,
        receive_one: SingleReceiver,
        storage_ok: HealthProbe,
        *,
        max_batch: int = 100,
        max_wait_s: float = 0.005,
        concurrency: int = 2,
        outage_pause_max_s: float = 30.0,
    ) -> None:
        self._receive_batch = receive_batch
        self._receive_one = receive_one
        self._storage_ok = storage_ok
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.outage_pause_max_s = outage_pause_max_s
        # Two batches in flight: one is verifying and decrypting (CPU) while the other waits on its commit.
        self.concurrency = concurrency
        self._running = 0
        self._pending: list[tuple[Delivery, asyncio.Future[object]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.fallbacks = 0

    async def submit(self, delivery: Delivery) -> object:
        """Receive one delivery as part of a batch; return its outcome or raise its own failure."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        self._pending.append((delivery, future))
        if len(self._pending) >= self.max_batch:
            self._flush()
        elif self._timer is None and self._running < self.concurrency:
            self._timer = loop.call_later(self.max_wait_s, self._flush)
        # (with every batch slot busy, no timer: the next slot to free takes what is parked then)
        return await future

    def _flush(self) -> None:
        """Start a batch if a slot is free; otherwise the deliveries wait, and the batch grows, until
        one is: batches are cut when they can run, not queued up small behind a busy slot."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending and self._running < self.concurrency:
            self._running += 1
            task = asyncio.get_running_loop().create_task(self._runner())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _runner(self) -> None:
        try:
            while self._pending:
                items, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                await self._run(items)
        finally:
            self._running -= 1

    async def _run(self, items: list[tuple[Delivery, asyncio.Future[object]]]) -> None:
        live = [(d, f) for d, f in items if not f.done()]  # a cancelled consumer no longer waits
        if not live:
            return
        try:
            outcomes = await self._receive_batch([d for d, _ in live])
        except Exception:
            log.warning("batch of %d failed; receiving each alone", len(live), exc_info=True)
            self.fallbacks += 1
            for delivery, future in live:
                try:
                    outcome = await self._receive_alone(delivery)
                except Exception as exc:
                    if not future.done():
                        future.set_exception(exc)
                else:
                    if not future.done():
                        future.set_result(outcome)
            return
        self.batches += 1
        for (_, future), outcome in zip(live, outcomes):
            if not future.done():
                future.set_result(outcome)

    async def _receive_alone(self, delivery: Delivery) -> object:
        def log_outage(state: RetryCallState) -> None:
            log.warning("database unavailable; holding the delivery, retrying in %.1fs", state.upcoming_sleep)

        retrying = AsyncRetrying(
            retry=retry_if_exception_type(StorageDown),
            wait=wait_exponential(multiplier=0.5, min=0.5, max=self.outage_pause_max_s),
            before_sleep=log_outage,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                try:
                    return await self._receive_one(delivery)
                except Exception:
                    if not await self._storage_answers():
                        raise StorageDown() from None
                    raise  # the database is fine: this message is the problem (→ nack → delivery limit)
        raise AssertionError("unreachable")

    async def _storage_answers(self) -> bool:
        try:
            await self._storage_ok()
            return True
        except Exception:
            return False

    async def drain(self) -> None:
        """Flush what is parked and wait for the batches in flight (used on a clean stop)."""
        self._flush()
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
