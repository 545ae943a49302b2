"""Nobody reads or writes what is not theirs, on the broker: a user per gateway, TLS verified."""

from __future__ import annotations

import asyncio
import secrets
import ssl
from pathlib import Path

import aio_pika
import aiormq
import pytest

from gateway.adapters.topology import merge_definitions
from gateway.devtools.cluster import LocalCluster, make_certificates
from gateway.devtools.drill import operator_definitions

pytestmark = [pytest.mark.cluster, pytest.mark.broker]

A, B = "110101001", "120101001"


@pytest.fixture
def two_gateways(cluster: LocalCluster) -> dict[str, object]:
    token = secrets.token_hex(3)
    exchange = f"perm-{token}.exchange"
    users = {name: (f"perm-{name}-{token}", secrets.token_urlsafe(12)) for name in ("a", "b")}
    cluster.import_definitions(merge_definitions(
        operator_definitions(exchange, f"perm-a-{token}", [A], *users["a"]),
        operator_definitions(exchange, f"perm-b-{token}", [B], *users["b"]),
    ))
    return {"exchange": exchange, "users": users, "queues": {n: f"gateway.perm-{n}-{token}.inbox" for n in "ab"}}


async def _connect(cluster: LocalCluster, user: tuple[str, str]) -> aio_pika.abc.AbstractConnection:
    return await aio_pika.connect(cluster.urls(*user, tls=True)[0], timeout=10)


async def test_a_gateway_cannot_consume_another_gateways_queue(cluster: LocalCluster, two_gateways) -> None:
    connection = await _connect(cluster, two_gateways["users"]["a"])
    async with connection:
        channel = await connection.channel()
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            queue = await channel.get_queue(two_gateways["queues"]["b"])
            await queue.consume(lambda m: None)
        # …while its own queue is readable.
        channel = await connection.channel()
        own = await channel.get_queue(two_gateways["queues"]["a"])
        tag = await own.consume(lambda m: None)
        await own.cancel(tag)


async def test_a_gateway_may_publish_to_the_township_exchange_only(cluster: LocalCluster, two_gateways) -> None:
    connection = await _connect(cluster, two_gateways["users"]["a"])
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(two_gateways["exchange"])
        await exchange.publish(aio_pika.Message(b"envelope"), routing_key=B, timeout=10)
        channel = await connection.channel()
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await channel.default_exchange.publish(aio_pika.Message(b"x"), routing_key=two_gateways["queues"]["b"],
                                                   timeout=10)


async def test_a_gateway_cannot_bind_its_queue_to_other_townships_or_declare_anything(
        cluster: LocalCluster, two_gateways) -> None:
    connection = await _connect(cluster, two_gateways["users"]["a"])
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(two_gateways["queues"]["a"])
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await queue.bind(two_gateways["exchange"], routing_key=B)  # would copy B's traffic
        channel = await connection.channel()
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await channel.declare_queue(f"sniffer-{secrets.token_hex(3)}", durable=True)
        channel = await connection.channel()
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
            await channel.exchange_delete(two_gateways["exchange"])


async def test_the_gateway_verifies_the_brokers_certificate(cluster: LocalCluster, two_gateways, tmp_path: Path) -> None:
    make_certificates(tmp_path / "other")  # a CA that did not sign the broker's certificate
    user, password = two_gateways["users"]["a"]
    port = cluster.nodes[0].tls_port
    with pytest.raises((ssl.SSLError, ConnectionError, aiormq.exceptions.AMQPConnectionError)):
        await asyncio.wait_for(aio_pika.connect(
            f"amqps://{user}:{password}@localhost:{port}/?cafile={tmp_path / 'other' / 'ca.pem'}", timeout=10), 20)
    good = await aio_pika.connect(cluster.urls(user, password, tls=True)[0], timeout=10)
    await good.close()


async def test_the_plain_port_listens_on_loopback_only_and_refuses_unknown_users(cluster: LocalCluster) -> None:
    with pytest.raises(aiormq.exceptions.ProbableAuthenticationError):
        await aio_pika.connect(f"amqp://guest:guest@127.0.0.1:{cluster.nodes[0].amqp_port}/", timeout=10)
