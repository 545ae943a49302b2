"""Consuming against the real broker: ack only after the commit; nack and redelivery; restoration.

The batching inbox is the handler, as in the gateway. The gateway's connection goes through a proxy
(``amqp_proxy.HoldingProxy``) that can cut it, so a network failure is made for this test's connection
only, never by restarting the shared broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
from yarl import URL

from gateway.adapters.amqp import AmqpBroker
from gateway.adapters.topology import Topology
from gateway.exchange.inbox_batch import InboxBatcher
from gateway.exchange.ports import Delivery, Outgoing
from tests.transport.amqp_proxy import HoldingProxy
from tests.transport.harness import eventually

pytestmark = pytest.mark.broker

SERVED = "120101001"


class Inbox:
    """The batching inbox over a recording "database": a batch can be held back or made to fail."""

    def __init__(self) -> None:
        self.stored: list[Delivery] = []
        self.batches: list[int] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_once: set[bytes] = set()
        self.batcher = InboxBatcher(self.receive_batch, self.receive_one, self.ping, max_batch=100)

    async def receive_batch(self, deliveries: Sequence[Delivery]) -> list[str]:
        await self.gate.wait()
        if any(d.body in self.fail_once for d in deliveries):
            raise RuntimeError("a row the database refuses")
        self.batches.append(len(deliveries))
        self.stored.extend(deliveries)
        return ["stored"] * len(deliveries)

    async def receive_one(self, delivery: Delivery) -> str:
        if delivery.body in self.fail_once:
            self.fail_once.discard(delivery.body)
            raise RuntimeError("a row the database refuses")
        self.stored.append(delivery)
        return "stored"

    async def ping(self) -> None:
        return None

    def bodies(self) -> list[bytes]:
        return [d.body for d in self.stored]


class Setup:
    def __init__(self, consumer: AmqpBroker, sender: AmqpBroker, proxy: HoldingProxy, inbox: Inbox) -> None:
        self.consumer, self.sender, self.proxy, self.inbox = consumer, sender, proxy, inbox

    async def send(self, first: int, count: int) -> None:
        batch = [Outgoing(SERVED, f"envelope {i}".encode(), f"m{i:04d}", "query") for i in range(first, first + count)]
        assert await self.sender.publish_batch(batch) == [None] * count

    async def ready_in_queue(self) -> int:
        depths = {d.queue: d.messages for d in await self.sender.queue_depths()}
        return depths[self.sender.topology.queue]


def envelopes(first: int, count: int) -> list[bytes]:
    return [f"envelope {i}".encode() for i in range(first, first + count)]


@pytest.fixture
async def setup(amqp_url: str, run_token: str) -> AsyncIterator[Setup]:
    target = URL(amqp_url)
    proxy = await HoldingProxy(target.host or "127.0.0.1", target.port or 5672).start()
    topology = Topology(f"con-{run_token}.exchange", f"con-{run_token}.inbox")
    consumer = AmqpBroker(proxy.url(amqp_url), topology, failure_pause_s=0.3, reconnect_interval_s=0.2)
    sender = AmqpBroker(amqp_url, topology)
    inbox = Inbox()
    await consumer.start([SERVED])
    await sender.start([SERVED])
    await consumer.consume(inbox.batcher.submit)
    try:
        yield Setup(consumer, sender, proxy, inbox)
    finally:
        inbox.gate.set()
        await consumer.close()
        await sender.close()
        await proxy.close()
        await AmqpBroker(amqp_url, topology).delete_topology()


async def test_every_committed_delivery_is_acked_and_nothing_comes_back(setup):
    await setup.send(0, 300)
    assert await eventually(lambda: _true(len(setup.inbox.stored) == 300), 15, poll_s=0.05)
    await asyncio.sleep(0.2)  # the last acks are written

    assert sum(setup.inbox.batches) == 300 and len(setup.inbox.batches) < 300  # batched commits
    await setup.consumer.close()  # anything not acked would now be ready again
    assert await setup.ready_in_queue() == 0
    assert sorted(setup.inbox.bodies()) == sorted(envelopes(0, 300))


async def test_nothing_is_acked_before_its_batch_is_committed(setup):
    setup.inbox.gate.clear()  # the "commit" does not come
    await setup.send(0, 40)
    await asyncio.sleep(1.0)
    assert setup.inbox.stored == []

    await setup.consumer.close()  # the connection goes: every unacked delivery returns to the queue
    assert await eventually(lambda: _ready_is(setup, 40), 10)


async def test_a_delivery_whose_handler_fails_is_returned_after_the_pause_and_redelivered(setup):
    setup.inbox.fail_once.add(b"envelope 3")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await setup.send(0, 10)

    assert await eventually(lambda: _true(sorted(setup.inbox.bodies()) == sorted(envelopes(0, 10))), 15, poll_s=0.05)
    [again] = [d for d in setup.inbox.stored if d.body == b"envelope 3"]
    assert again.redelivered  # it came back from the broker, not from a retry in the process
    assert loop.time() - started >= 0.3
    assert all(not d.redelivered for d in setup.inbox.stored if d.body != b"envelope 3")
    await asyncio.sleep(0.2)
    await setup.consumer.close()
    assert await setup.ready_in_queue() == 0


async def test_the_consumer_is_restored_after_its_connection_is_cut(setup):
    await setup.send(0, 20)
    assert await eventually(lambda: _true(len(setup.inbox.stored) == 20), 10, poll_s=0.05)

    setup.proxy.drop()
    assert await eventually(lambda: _true(setup.consumer.state() == "disconnected"), 5, poll_s=0.02)
    assert await eventually(lambda: _true(setup.consumer.state() == "ok" and setup.proxy.connections == 2), 20)
    await setup.send(20, 20)

    assert await eventually(lambda: _true(set(setup.inbox.bodies()) == set(envelopes(0, 40))), 15, poll_s=0.05)


async def test_the_consumer_comes_back_after_the_broker_cancelled_it(setup, amqp_url):
    await setup.send(0, 5)
    assert await eventually(lambda: _true(len(setup.inbox.stored) == 5), 10, poll_s=0.05)

    connection = await setup.sender._connect_once()  # an operator deletes the inbox queue …
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(setup.sender.topology.queue)
    await asyncio.sleep(0.5)
    assert setup.consumer.state() == "ok"  # the broker cancelled the consumer; the channel stays open
    redeclared = AmqpBroker(amqp_url, setup.sender.topology)  # … and declares it again
    await redeclared.start([SERVED])
    await redeclared.close()
    await setup.send(5, 5)

    assert await eventually(lambda: _true(set(setup.inbox.bodies()) == set(envelopes(0, 10))), 15, poll_s=0.05)


async def _ready_is(setup: Setup, count: int) -> bool:
    return await setup.ready_in_queue() == count


async def _true(value: bool) -> bool:
    return value
