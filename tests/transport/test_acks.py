"""A consumer's acks written together (gateway/adapters/amqp_acks.py), on the real broker: every delivery
acknowledged in one turn leaves in one write, and only the deliveries asked for are acknowledged."""

from __future__ import annotations

import asyncio
import secrets

import aio_pika
import pytest

from gateway.adapters.amqp_acks import AckWriter

pytestmark = pytest.mark.broker


async def _deliveries(queue: aio_pika.abc.AbstractQueue, n: int) -> list[aio_pika.abc.AbstractIncomingMessage]:
    got: list[aio_pika.abc.AbstractIncomingMessage] = []
    done = asyncio.Event()

    async def keep(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        got.append(message)
        if len(got) == n:
            done.set()

    tag = await queue.consume(keep, no_ack=False)
    await asyncio.wait_for(done.wait(), 30)
    await queue.cancel(tag)
    return got


async def test_acks_of_one_turn_leave_in_one_write_and_a_delivery_still_in_hand_is_not_acknowledged(amqp_url: str) -> None:
    name = f"test-acks-{secrets.token_hex(4)}"
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=100)
        queue = await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
        for i in range(50):
            await channel.default_exchange.publish(aio_pika.Message(str(i).encode()), routing_key=name)
        delivered = await _deliveries(queue, 50)
        in_hand = next(m for m in delivered if m.body == b"7")

        raw = delivered[0].channel
        writes: list[object] = []
        original_put = raw.write_queue.put_nowait
        raw.write_queue.put_nowait = lambda frame: (writes.append(frame), original_put(frame))[1]  # type: ignore[method-assign]
        acks = AckWriter()
        for message in delivered:
            if message is not in_hand:
                acks.ack(message)
        await asyncio.sleep(0.2)  # the turn ends, the writer sends
        raw.write_queue.put_nowait = original_put  # type: ignore[method-assign]
        assert len(writes) == 1
    finally:
        await connection.close()  # delivery 7 was never acknowledged: the broker requeues it

    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        again = await queue.get(timeout=10)
        assert again.body == b"7" and again.redelivered
        await again.ack()
        assert await queue.get(fail=False, timeout=1) is None  # the 49 others were acknowledged
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()


async def test_acks_for_a_channel_closed_meanwhile_are_dropped_and_the_broker_redelivers(amqp_url: str) -> None:
    name = f"test-acks-{secrets.token_hex(4)}"
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
        for i in range(3):
            await channel.default_exchange.publish(aio_pika.Message(str(i).encode()), routing_key=name)
        delivered = await _deliveries(queue, 3)
        await channel.close()  # while the deliveries were in hand: the broker requeues them
        acks = AckWriter()
        for message in delivered:  # their handlers return now: nothing may be written to the closed channel
            acks.ack(message)
        await asyncio.sleep(0.1)
        other = await connection.channel()
        queue = await other.declare_queue(name, passive=True)
        bodies = sorted([(await queue.get(timeout=10)).body for _ in range(3)])
        assert bodies == [b"0", b"1", b"2"]
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()
