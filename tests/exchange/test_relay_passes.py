"""The relay's overlapping passes: a pass waiting for its confirms does not hold up the next claim."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

from gateway.adapters.fakes import FakeMessageStore
from gateway.clock import FakeClock
from gateway.exchange.records import OutboxItem
from gateway.exchange.relay import OutboxRelay
from tests.gateways import T0


class SlowBroker:
    """Confirms after a short random delay; ``hold`` keeps one message unconfirmed until released."""

    def __init__(self) -> None:
        self.published: list[str] = []
        self.hold: dict[str, asyncio.Event] = {}

    async def publish(self, routing_key: str, body: bytes, *, message_id: str, kind: str) -> None:
        if message_id in self.hold:
            await self.hold[message_id].wait()
        else:
            await asyncio.sleep(random.random() * 0.002)
        self.published.append(message_id)

    async def wait_until_ready(self, timeout_s: float) -> bool:
        return True


def add_row(store: FakeMessageStore, message_id: str) -> None:
    new_id = max(store.outbox, default=0) + 1
    store.outbox[new_id] = OutboxItem(message_id=message_id, sender="110101001", routing_key="120101001",
                                      kind="query", envelope=b"e", created_at=T0, next_attempt_at=T0, id=new_id)


async def wait_for(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.001)


async def test_passes_overlap_and_every_row_is_published_once_and_marked() -> None:
    store, broker = FakeMessageStore(), SlowBroker()
    relay = OutboxRelay(store, broker, FakeClock(T0), batch=25, max_passes=3, idle_poll_s=0.01)
    in_flight = peak = 0
    publish_and_mark = relay._publish_and_mark

    async def counted(claimed):  # type: ignore[no-untyped-def]
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            return await publish_and_mark(claimed)
        finally:
            in_flight -= 1

    relay._publish_and_mark = counted  # type: ignore[method-assign]
    for i in range(400):
        add_row(store, f"m{i}")
    task = asyncio.create_task(relay.run())
    await wait_for(lambda: all(o.published_at is not None for o in store.outbox.values()))
    relay.stop()
    await task
    assert sorted(broker.published) == sorted(f"m{i}" for i in range(400))  # each once
    assert 1 < peak <= 3


async def test_a_row_committed_while_a_pass_waits_for_its_confirm_goes_out_at_once() -> None:
    store, broker = FakeMessageStore(), SlowBroker()
    relay = OutboxRelay(store, broker, FakeClock(T0), idle_poll_s=30)
    broker.hold["slow"] = asyncio.Event()
    add_row(store, "slow")
    task = asyncio.create_task(relay.run())
    await wait_for(lambda: store.outbox[1].next_attempt_at > T0)  # claimed, its confirm is held back
    add_row(store, "next")
    relay.nudge()  # what the service does after a commit
    await wait_for(lambda: store.outbox[2].published_at is not None)  # published and marked
    assert store.outbox[1].published_at is None
    broker.hold["slow"].set()
    await wait_for(lambda: store.outbox[1].published_at is not None)
    relay.stop()
    await task
    assert store.outbox[1].next_attempt_at == T0 + timedelta(seconds=60)  # leased, never claimed twice
    assert broker.published == ["next", "slow"]


class RefusingBroker:
    """Refuses every publish with the error given."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def publish(self, routing_key: str, body: bytes, *, message_id: str, kind: str) -> None:
        raise self.error

    async def wait_until_ready(self, timeout_s: float) -> bool:
        return True


async def test_a_nacked_message_is_tried_again_within_seconds_however_often_it_was_nacked() -> None:
    """A nack is the broker's passing state (a quorum queue between leaders): retried within 5 s at
    most, where a message no queue serves backs off for minutes."""
    from gateway.exchange.ports import PublishNacked

    for error, tenth_delay in ((PublishNacked("basic.nack"), timedelta(seconds=5)),
                               (RuntimeError("no queue serves township 120101001"), timedelta(seconds=300))):
        store = FakeMessageStore()
        add_row(store, "m-1")
        store.outbox[1] = OutboxItem(**{**store.outbox[1].__dict__, "attempts": 9})
        relay = OutboxRelay(store, RefusingBroker(error), FakeClock(T0))
        await relay.run_once()
        assert store.outbox[1].next_attempt_at == T0 + tenth_delay
