"""Group commit for concurrent callers: what arrives while a batch is under way goes in the next.

Nothing waits for a timer: a lone call is processed at once, exactly as without batching. Under load,
the calls that came in while one batch was being read or written are processed together in the next
one (one read, one transaction for all of them instead of one each), and each caller gets back its own
result or its own error, after the write that holds it. Used for the tracker's replies and the message
store's lookups; the message store's outgoing messages have a batcher of their own (retrying a failed
group one by one, in store.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Process = Callable[[Sequence[T]], Awaitable[Sequence["R | BaseException"]]]


class GroupRunner(Generic[T, R]):
    """``await runner(item)`` → what ``process`` gave for that item (raised, if it is an exception).

    ``process(batch)`` returns one result per item, in order; an exception in that list fails its
    caller alone. If ``process`` itself raises, every caller of that batch gets the error.
    """

    def __init__(self, process: Process[T, R], *, max_batch: int = 100) -> None:
        self.process = process
        self.max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._running = False
        self._task: asyncio.Task[None] | None = None
        self.batches = 0

    async def __call__(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if not self._running:
            self._running = True
            self._task = loop.create_task(self._drain())
        # A caller cancelled meanwhile does not cancel the batch: its item is written with the others.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                try:
                    results = await self.process([item for item, _ in batch])
                except BaseException as exc:  # the whole batch failed: each caller learns why
                    for _, future in batch:
                        _settle(future, exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                self.batches += 1
                if len(results) != len(batch):
                    results = [RuntimeError(f"{len(results)} results for a batch of {len(batch)}")] * len(batch)
                for (_, future), result in zip(batch, results):
                    _settle(future, result)
        finally:
            self._running = False


def _settle(future: asyncio.Future[R], result: R | BaseException) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
        future.exception()  # retrieved: a caller cancelled meanwhile must not leave it "never retrieved"
    else:
        future.set_result(result)
