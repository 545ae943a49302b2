"""The RabbitMQ adapter (aio-pika): robust connection, topology, confirmed publishing, manual acks.

Acks happen here, at the consumer's edge, only after the handler returned — that is, after the
database commit. A handler that raises gets the message back on the queue after a pause; the quorum
queue's delivery limit moves a message that keeps failing to the poison queue.
"""

from __future__ import annotations

import asyncio
import logging

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from gateway.adapters.topology import Topology
from gateway.exchange.ports import Delivery, DeliveryHandler

log = logging.getLogger(__name__)

ENVELOPE_CONTENT_TYPE = "application/vnd.township-gateway.envelope"


class BrokerError(Exception):
    pass


class AmqpBroker:
    def __init__(
        self,
        url: str,
        topology: Topology,
        *,
        prefetch: int = 200,
        publish_timeout_s: float = 10.0,
        failure_pause_s: float = 1.0,
    ) -> None:
        self.url = url
        self.topology = topology
        self.prefetch = prefetch
        self.publish_timeout_s = publish_timeout_s
        self.failure_pause_s = failure_pause_s
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None

    async def start(self, townships: list[str]) -> None:
        self._connection = await aio_pika.connect_robust(self.url, client_properties={"connection_name": self.topology.queue})
        publish_channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        self._exchange = await self._declare(publish_channel, townships)
        consume_channel = await self._connection.channel()
        await consume_channel.set_qos(prefetch_count=self.prefetch)
        self._queue = await consume_channel.get_queue(self.topology.queue)

    async def _declare(self, channel: aio_pika.abc.AbstractChannel, townships: list[str]) -> AbstractExchange:
        t = self.topology
        exchange = await channel.declare_exchange(t.exchange, aio_pika.ExchangeType.DIRECT, durable=True)
        dlx = await channel.declare_exchange(t.dead_letter_exchange, aio_pika.ExchangeType.FANOUT, durable=True)
        poison = await channel.declare_queue(t.poison_queue, durable=True, arguments=t.poison_arguments())
        await poison.bind(dlx, routing_key="")
        inbox = await channel.declare_queue(t.queue, durable=True, arguments=t.inbox_arguments())
        for code in townships:
            await inbox.bind(exchange, routing_key=code)
        return exchange

    def is_connected(self) -> bool:
        return self._connection is not None and not self._connection.is_closed and self._connection.connected.is_set()

    async def publish(self, routing_key: str, body: bytes, *, message_id: str, kind: str) -> None:
        if self._exchange is None:
            raise BrokerError("broker not started")
        message = aio_pika.Message(
            body,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
            type=kind,
            content_type=ENVELOPE_CONTENT_TYPE,
        )
        try:
            # mandatory: a township that no gateway serves comes back as an error, not into the void.
            await self._exchange.publish(message, routing_key=routing_key, mandatory=True, timeout=self.publish_timeout_s)
        except aio_pika.exceptions.DeliveryError as exc:
            raise BrokerError(f"broker returned the message: no queue serves township {routing_key} ({exc})") from exc
        except asyncio.TimeoutError as exc:
            raise BrokerError(f"no publisher confirm within {self.publish_timeout_s}s") from exc
        except aio_pika.exceptions.AMQPError as exc:
            raise BrokerError(f"publish failed: {exc!r}") from exc

    async def consume(self, handler: DeliveryHandler) -> None:
        if self._queue is None:
            raise BrokerError("broker not started")

        async def on_message(message: AbstractIncomingMessage) -> None:
            delivery = Delivery(message.body, message.routing_key or "", bool(message.redelivered))
            try:
                await handler(delivery)
            except Exception:
                log.exception("handler failed for delivery %s; returning it to the queue", message.message_id)
                # The pause keeps a persistent failure (say, the database down) from busy-looping.
                await asyncio.sleep(self.failure_pause_s)
                await message.nack(requeue=True)
            else:
                await message.ack()

        self._consumer_tag = await self._queue.consume(on_message, no_ack=False)

    async def close(self) -> None:
        if self._queue is not None and self._consumer_tag is not None:
            try:
                await self._queue.cancel(self._consumer_tag)
            except Exception:  # closing anyway; the broker requeues unacked messages
                log.debug("cancel failed during close", exc_info=True)
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._exchange = self._queue = None

    async def delete_topology(self) -> None:
        """Remove this gateway's queues and exchanges (demo and test runs clean up after themselves)."""
        connection = await aio_pika.connect(self.url)
        async with connection:
            channel = await connection.channel()
            t = self.topology
            for queue in (t.queue, t.poison_queue):
                await channel.queue_delete(queue)
            for exchange in (t.exchange, t.dead_letter_exchange):
                await channel.exchange_delete(exchange)
