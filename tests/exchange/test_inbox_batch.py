"""The batching inbox cuts a batch when a slot is free, so deliveries parked behind busy slots go together."""

from __future__ import annotations

import asyncio

from gateway.exchange.inbox_batch import InboxBatcher
from gateway.exchange.ports import Delivery


async def test_deliveries_parked_while_both_slots_are_busy_form_one_batch_and_each_gets_its_outcome() -> None:
    sizes: list[int] = []
    release = asyncio.Event()

    async def receive_batch(deliveries):  # type: ignore[no-untyped-def]
        sizes.append(len(deliveries))
        await release.wait()
        return [d.body.decode() for d in deliveries]

    async def receive_one(delivery):  # type: ignore[no-untyped-def]
        raise AssertionError("no fallback expected")

    async def ping() -> None:
        return None

    batcher = InboxBatcher(receive_batch, receive_one, ping, max_batch=100, max_wait_s=0.001)
    first = [asyncio.create_task(batcher.submit(Delivery(f"a{i}".encode(), "k"))) for i in range(2)]
    await asyncio.sleep(0.01)
    second = [asyncio.create_task(batcher.submit(Delivery(f"b{i}".encode(), "k"))) for i in range(2)]
    await asyncio.sleep(0.01)
    assert sizes == [2, 2]  # both slots busy now
    parked = [asyncio.create_task(batcher.submit(Delivery(f"c{i}".encode(), "k"))) for i in range(30)]
    for _ in range(5):
        await asyncio.sleep(0.005)  # far beyond max_wait_s: still parked, not cut into small batches
    assert sizes == [2, 2]
    release.set()
    results = await asyncio.gather(*first, *second, *parked)
    assert results == [f"a{i}" for i in range(2)] + [f"b{i}" for i in range(2)] + [f"c{i}" for i in range(30)]
    assert sizes == [2, 2, 30] and batcher.batches == 3
    await batcher.drain()


async def test_a_full_batch_is_cut_at_max_batch() -> None:
    sizes: list[int] = []

    async def receive_batch(deliveries):  # type: ignore[no-untyped-def]
        sizes.append(len(deliveries))
        await asyncio.sleep(0.001)
        return ["ok"] * len(deliveries)

    async def noop(*_):  # type: ignore[no-untyped-def]
        return None

    batcher = InboxBatcher(receive_batch, noop, noop, max_batch=10, max_wait_s=1.0)
    assert await asyncio.gather(*(batcher.submit(Delivery(b"x", "k")) for _ in range(35))) == ["ok"] * 35
    assert max(sizes) == 10 and sum(sizes) == 35
