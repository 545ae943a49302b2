"""Publishing against the real broker: confirms, mandatory returns, one id in flight, timeouts, alarms.

The relay publishes a whole pass with ``AmqpBroker.publish_batch`` (one write, one deadline for the
pass's confirms). Each guarantee the per-message path had is checked here message by message; the
broker's answers are held back or an alarm is announced by a proxy on this test's own connection
(``amqp_proxy.HoldingProxy``), never by reconfiguring the shared broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from yarl import URL

from gateway.adapters.amqp import AmqpBroker, BrokerError, BrokerUnavailable
from gateway.adapters.topology import Topology
from gateway.exchange.ports import Delivery, Outgoing
from tests.transport.amqp_proxy import HoldingProxy, connection_blocked, connection_unblocked
from tests.transport.harness import eventually

pytestmark = pytest.mark.broker

SERVED, UNSERVED = "120101001", "120101002"


class Setup:
    def __init__(self, broker: AmqpBroker, proxy: HoldingProxy, received: list[Delivery]) -> None:
        self.broker, self.proxy, self.received = broker, proxy, received

    def bodies(self) -> list[bytes]:
        return [d.body for d in self.received]


@pytest.fixture
async def setup(amqp_url: str, run_token: str) -> AsyncIterator[Setup]:
    target = URL(amqp_url)
    proxy = await HoldingProxy(target.host or "127.0.0.1", target.port or 5672).start()
    broker = AmqpBroker(proxy.url(amqp_url), Topology(f"pub-{run_token}.exchange", f"pub-{run_token}.inbox"),
                        publish_timeout_s=0.5)
    received: list[Delivery] = []

    async def keep(delivery: Delivery) -> None:
        received.append(delivery)

    await broker.start([SERVED])
    await broker.consume(keep)
    try:
        yield Setup(broker, proxy, received)
    finally:
        proxy.release()
        await broker.close()
        await proxy.close()
        await AmqpBroker(amqp_url, broker.topology).delete_topology()


def message(i: int, township: str = SERVED, message_id: str | None = None) -> Outgoing:
    return Outgoing(township, f"envelope {i}".encode(), message_id or f"m{i:04d}", "query")


async def test_every_message_of_a_batch_is_confirmed_and_an_unserved_township_comes_back_as_an_error(setup):
    batch = [message(i, UNSERVED if i == 7 else SERVED) for i in range(50)]

    errors = await setup.broker.publish_batch(batch)

    assert isinstance(errors[7], BrokerError) and not isinstance(errors[7], BrokerUnavailable)
    assert f"no queue serves township {UNSERVED}" in str(errors[7])
    assert [i for i, e in enumerate(errors) if e is not None] == [7]
    expected = sorted(m.envelope for m in batch if m.routing_key == SERVED)
    assert await eventually(lambda: _true(len(setup.received) == 49), 10)
    assert sorted(setup.bodies()) == expected  # each confirmed message arrived, once
    with pytest.raises(BrokerError, match="no queue serves township"):  # the single publish, too
        await setup.broker.publish(UNSERVED, b"x", message_id="single", kind="query")


async def test_two_publishes_of_one_message_id_are_never_in_flight_at_once(setup):
    setup.proxy.hold()  # confirms held back: the first publish stays in flight
    first = asyncio.create_task(setup.broker.publish_batch([message(1)]))
    await asyncio.sleep(0.1)
    assert not first.done()

    [again] = await setup.broker.publish_batch([message(2, message_id="m0001")])  # refused at once, not sent
    setup.proxy.release()

    assert isinstance(again, BrokerUnavailable) and "m0001 is still in flight" in str(again)
    assert await first == [None]
    [one, twin] = await setup.broker.publish_batch([message(4), message(5, message_id="m0004")])
    assert one is None and isinstance(twin, BrokerUnavailable) and "in flight" in str(twin)
    assert await setup.broker.publish_batch([message(2, message_id="m0001")]) == [None]  # settled: free again
    assert await eventually(lambda: _true(len(setup.received) == 3), 10)
    assert sorted(setup.bodies()) == [b"envelope 1", b"envelope 2", b"envelope 4"]


async def test_no_confirm_in_time_is_an_error_and_the_late_confirm_harms_nothing(setup):
    setup.proxy.hold()
    loop = asyncio.get_running_loop()
    started = loop.time()

    [error] = await setup.broker.publish_batch([message(1)])

    assert isinstance(error, BrokerUnavailable) and "no publisher confirm within 0.5s" in str(error)
    assert 0.45 <= loop.time() - started < 3
    setup.proxy.release()  # the late confirm (and the delivery) arrive now
    await asyncio.sleep(0.2)
    assert setup.broker.state() == "ok"
    assert await setup.broker.publish_batch([message(1), message(2)]) == [None, None]  # same id again: fine
    assert await eventually(lambda: _true(len(setup.received) == 3), 10)  # at least once: the first copy too


async def test_while_the_broker_blocks_publishers_a_publish_waits_instead_of_failing(setup):
    setup.proxy.hold()
    setup.proxy.inject(connection_blocked())
    assert await eventually(lambda: _true(setup.broker.state() == "blocked"), 5, poll_s=0.02)

    publishing = asyncio.create_task(setup.broker.publish_batch([message(1), message(2)]))
    await asyncio.sleep(1.5)  # three times the publish timeout
    assert not publishing.done()

    setup.proxy.inject(connection_unblocked())
    setup.proxy.release()
    assert await asyncio.wait_for(publishing, 5) == [None, None]
    assert setup.broker.state() == "ok"


async def _true(value: bool) -> bool:
    return value


async def test_a_nacked_publish_is_refused_and_the_next_goes_out_on_a_fresh_channel(setup, amqp_url: str,
                                                                                    run_token: str):
    # A queue that takes nothing (max length 0, reject-publish): the broker nacks what is routed to it.
    import aio_pika

    from gateway.adapters.amqp import BrokerNacked

    full_code, full_queue = "120101003", f"pub-{run_token}.full"
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(full_queue, auto_delete=True,
                                            arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
        await queue.bind(setup.broker.topology.exchange, routing_key=full_code)
        nacked_channel = setup.broker._publish_channel

        errors = await setup.broker.publish_batch([message(1), message(2, full_code), message(3)])

        assert errors[0] is None and errors[2] is None
        assert isinstance(errors[1], BrokerNacked) and "basic.nack" in str(errors[1])
        assert setup.broker._publish_channel is not nacked_channel and nacked_channel.is_closed
        assert await setup.broker.publish_batch([message(4), message(5)]) == [None, None]
        assert setup.broker.is_connected()
        assert await eventually(lambda: _true(len(setup.received) == 4), 10)
        assert sorted(setup.bodies()) == [b"envelope 1", b"envelope 3", b"envelope 4", b"envelope 5"]
    finally:
        await connection.close()
