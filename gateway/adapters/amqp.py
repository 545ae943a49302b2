"""The RabbitMQ adapter (aio-pika, aiormq underneath): robust connection, topology, confirmed publishing, manual acks.

Acks happen here, at the consumer's edge, only after the handler returned — that is, after the
database commit. A delivery whose handler raised goes back on the queue after a pause; the quorum
queue's delivery limit moves a message that keeps failing to the poison queue.

Publishing: the relay hands over a whole pass (``publish_batch``): one write of frames packed by
``amqp_frames``, one deadline for the confirms; every message keeps its own outcome (confirmed,
returned by ``mandatory``, nacked, or not confirmed in time), and a message id is never in flight twice.

Resilience: the connection is robust (aio-pika reconnects and re-declares the topology) and fails over
across a list of broker addresses (the nodes of a cluster): every new connection attempt goes to the
next address (``FailoverConnection``); start-up tries each address in turn, with backoff while none
answers; aio-pika re-registers the consumer; while the broker blocks publishers (``connection.blocked``:
memory or disk alarm) a publish waits for the unblock instead of timing out, and ``state()`` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aiormq.abc import ChannelFrame
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential
from yarl import URL

from gateway.adapters.amqp_acks import AckWriter
from gateway.adapters.amqp_frames import PublishFrames
from gateway.adapters.topology import Topology
from gateway.exchange.ports import Delivery, DeliveryHandler, Outgoing, OutgoingMessage, PublishNacked

log = logging.getLogger(__name__)

ENVELOPE_CONTENT_TYPE = "application/vnd.township-gateway.envelope"
BIND_WINDOW = 64  # bindings declared in flight at once at start-up (a province gateway has thousands)


class BrokerError(Exception):
    pass


class BrokerUnavailable(BrokerError, ConnectionError):
    """Not connected, or no confirm in time: transient, the relay retries soon without growing delays."""


class BrokerRightsMissing(BrokerError, PermissionError):
    """The gateway's broker user may not do this operator action (a least-rights user reads only its own
    queue and publishes only to the township exchange): the message says which right and what to do."""


def operator_refusal(action: str, exc: BaseException) -> BrokerError | None:
    """What an operator action's broker error means for the operator: missing rights (403), or a
    broker, queue or confirm that is not there (503); None for anything else (a bug: let it raise)."""
    if isinstance(exc, aiormq.exceptions.ChannelAccessRefused):
        return BrokerRightsMissing(
            f"{action}: the gateway's broker user lacks the right ({_reply_text(exc)}); a least-rights user reads "
            "only its own queue (docs/transport.md): do it with an operator's broker account, or grant the right")
    if isinstance(exc, aiormq.exceptions.ChannelNotFoundEntity):
        return BrokerUnavailable(f"{action}: the broker has no such queue or exchange ({_reply_text(exc)})")
    if isinstance(exc, (aiormq.exceptions.AMQPError, ConnectionError, asyncio.TimeoutError)):
        return BrokerUnavailable(f"{action}: the broker did not complete it ({type(exc).__name__})")
    return None


def _reply_text(exc: BaseException) -> str:
    # aiormq's channel errors carry the broker's Channel.Close frame: "ACCESS_REFUSED - access to queue …".
    frame = exc.args[0] if exc.args else None
    text = getattr(frame, "reply_text", None) or str(exc)
    return str(text)[:300]


class BrokerNacked(BrokerError, PublishNacked):
    """The broker nacked the publish (see PublishNacked): the relay retries within seconds."""


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    messages: int  # ready (not yet delivered) messages: the consumer lag
    consumers: int


def censor(url: str | URL) -> str:
    """A broker address for logs and operators: the password never leaves the process."""
    parsed = URL(str(url))
    return str(parsed.with_password("******") if parsed.password else parsed).split("?")[0]


def broker_name(url: str | URL) -> str:
    """The broker a connection reached, for the log: host:port and vhost, never the user or password."""
    parsed = URL(str(url))
    port = parsed.port or (5671 if parsed.scheme == "amqps" else 5672)
    vhost = parsed.path[1:].replace("%2F", "/") or "/"  # as aiormq reads it
    return f"{parsed.host}:{port}, vhost {vhost}"


class FailoverConnection(aio_pika.RobustConnection):
    """aio-pika's robust connection, reconnecting to the *next* of several broker addresses each time.

    ``connect_robust`` takes one URL and reconnects to that one only (aio-pika issue #141): when the
    node behind it is gone for good, the gateway would wait for it forever. aio-pika starts every
    connection attempt by clearing ``transport`` and then reading ``url``; this class moves on to the
    next address at each attempt after the first, so a lost node is left at the first reconnect, and a
    node that does not answer either is left at the next attempt. Channels, the topology and the
    consumer are then restored by aio-pika on whichever node answered, as on a plain reconnect.
    """

    def __init__(self, url: Any, loop: asyncio.AbstractEventLoop | None = None, *,
                 failover_urls: Sequence[str] = (), **kwargs: Any) -> None:
        self._addresses = [URL(u) for u in failover_urls] or [URL(str(url))]
        self._current = 0
        self._clears = 0
        super().__init__(url=self._addresses[0], loop=loop, **kwargs)

    @property  # type: ignore[override]
    def url(self) -> URL:
        return self._addresses[self._current]

    @url.setter
    def url(self, value: Any) -> None:  # aio-pika sets it in __init__ and when a secret is updated
        self._addresses[self._current] = URL(str(value))

    @property  # type: ignore[override]
    def transport(self) -> Any:
        return self.__dict__.get("_failover_transport")

    @transport.setter
    def transport(self, value: Any) -> None:
        if value is None:
            # Cleared once in __init__ and once before the first attempt; every later clear starts a
            # new attempt (or a close, where the address no longer matters).
            self._clears += 1
            if self._clears > 2 and len(self._addresses) > 1:
                self._current = (self._current + 1) % len(self._addresses)
                log.warning("broker connection: trying %s next", censor(self.url))
        self.__dict__["_failover_transport"] = value

    @property
    def address(self) -> str:
        return censor(self.url)


def split_urls(url: str | Sequence[str]) -> list[str]:
    """``"amqp://a,amqp://b"`` or a list → the list of addresses (commas in a password: write %2C)."""
    items = url.split(",") if isinstance(url, str) else list(url)
    urls = [u.strip() for u in items if u.strip()]
    if not urls:
        raise ValueError("no broker address given")
    return urls


class AmqpBroker:
    def __init__(
        self,
        url: str | Sequence[str],
        topology: Topology,
        *,
        prefetch: int = 200,
        publish_timeout_s: float = 10.0,
        failure_pause_s: float = 1.0,
        reconnect_interval_s: float = 1.0,
        start_timeout_s: float = 120.0,
        declare_topology: bool = True,
    ) -> None:
        self.urls = split_urls(url)
        self.url = self.urls[0]
        self.topology = topology
        self.prefetch = prefetch
        self.publish_timeout_s = publish_timeout_s
        self.failure_pause_s = failure_pause_s
        self.reconnect_interval_s = reconnect_interval_s
        self.start_timeout_s = start_timeout_s
        self.declare_topology = declare_topology
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._renew_lock = asyncio.Lock()
        self._consume_channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._unblocked = asyncio.Event()
        self._unblocked.set()
        self._in_flight: set[str] = set()  # message ids published and not yet settled (aio-pika #689)
        self._frames: tuple[tuple[int, int], PublishFrames] | None = None

    # --- connecting -------------------------------------------------------------------------------

    async def start(self, townships: list[str]) -> None:
        """Connect and declare the topology; while the broker is down, retry with backoff (start_timeout_s)."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type((ConnectionError, OSError, asyncio.TimeoutError,
                                           aio_pika.exceptions.AMQPConnectionError)),
            wait=wait_exponential(multiplier=0.5, min=0.5, max=10),
            stop=stop_after_delay(self.start_timeout_s),
            before_sleep=lambda s: log.warning("broker not reachable (%s); retrying in %.1fs",
                                               s.outcome.exception() if s.outcome else "?", s.upcoming_sleep),
            reraise=True,
        )
        first = 0
        async for attempt in retrying:
            with attempt:
                # Our own loop over the addresses: each attempt starts at the next one.
                order = self.urls[first:] + self.urls[:first]
                first = (first + 1) % len(self.urls)
                connection = FailoverConnection(
                    order[0], failover_urls=order, reconnect_interval=self.reconnect_interval_s,
                    client_properties={"connection_name": self.topology.queue},
                )
                try:
                    await connection.connect()  # what connect_robust does after making the connection
                except BaseException:
                    await asyncio.shield(connection.close())
                    raise
                self._connection = connection
        assert self._connection is not None
        log.info("connected to the broker at %s", broker_name(self._connection.url))
        self._watch_blocking(self._connection)
        self._connection.reconnect_callbacks.add(self._on_reconnect)
        self._publish_channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        self._exchange = await self._declare(self._publish_channel, townships)
        self._consume_channel = await self._connection.channel()
        await self._consume_channel.set_qos(prefetch_count=self.prefetch)
        self._queue = await self._consume_channel.get_queue(self.topology.queue)

    def _on_reconnect(self, connection: Any) -> None:
        log.info("reconnected to the broker at %s; topology and consumer restored", broker_name(connection.url))
        self._unblocked.set()  # a fresh connection starts unblocked
        self._watch_blocking(connection)

    def _watch_blocking(self, connection: Any) -> None:
        """Follow connection.blocked / unblocked frames of the underlying aiormq connection."""
        transport = getattr(connection, "transport", None)
        underlying = getattr(transport, "connection", None)
        if underlying is None:
            return
        # aiormq keeps the state in a private event; reading it is the only way it is exposed.
        event = getattr(underlying, "_Connection__connection_unblocked", None)
        if isinstance(event, asyncio.Event):
            self._unblocked = event

    async def _declare(self, channel: AbstractChannel, townships: list[str]) -> AbstractExchange:
        t = self.topology
        if not self.declare_topology:
            # The operator declared everything from definitions; this gateway's user may configure
            # nothing. Passive declarations only check that the exchange and the queue exist.
            exchange = await channel.get_exchange(t.exchange, ensure=True)
            await channel.get_queue(t.queue, ensure=True)
            return exchange
        exchange = await channel.declare_exchange(t.exchange, aio_pika.ExchangeType.DIRECT, durable=True)
        dlx = await channel.declare_exchange(t.dead_letter_exchange, aio_pika.ExchangeType.FANOUT, durable=True)
        poison = await channel.declare_queue(t.poison_queue, durable=True, arguments=t.poison_arguments())
        await poison.bind(dlx, routing_key="")
        inbox = await channel.declare_queue(t.queue, durable=True, arguments=t.inbox_arguments())
        codes = sorted(townships)
        for i in range(0, len(codes), BIND_WINDOW):
            await asyncio.gather(*(inbox.bind(exchange, routing_key=code) for code in codes[i:i + BIND_WINDOW]))
        return exchange

    # --- state ------------------------------------------------------------------------------------

    def is_connected(self) -> bool:
        c = self._connection
        if c is None or c.is_closed or not c.connected.is_set():
            return False
        return all(ch is not None and not ch.is_closed for ch in (self._publish_channel, self._consume_channel))

    def address(self) -> str | None:
        """The broker node this gateway is connected to now (password hidden), or None."""
        connection = self._connection
        if isinstance(connection, FailoverConnection) and self.is_connected():
            return connection.address
        return None

    async def _connect_once(self) -> aio_pika.abc.AbstractConnection:
        """A short-lived connection to the first address that answers (operator commands)."""
        errors = []
        for url in self.urls:
            try:
                return await aio_pika.connect(url, timeout=10)
            except (ConnectionError, OSError, asyncio.TimeoutError, aio_pika.exceptions.AMQPConnectionError) as exc:
                errors.append(f"{censor(url)}: {exc!r}")
        raise BrokerUnavailable("no broker address answered: " + "; ".join(errors))

    def is_blocked(self) -> bool:
        return not self._unblocked.is_set()

    def state(self) -> str:
        if not self.is_connected():
            return "disconnected"
        return "blocked" if self.is_blocked() else "ok"

    async def wait_until_ready(self, timeout_s: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.state() != "ok":
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if self.is_connected() and self.is_blocked():
                try:
                    await asyncio.wait_for(self._unblocked.wait(), timeout=remaining)
                except asyncio.TimeoutError:
                    return False
            else:
                await asyncio.sleep(min(0.2, remaining))  # reconnecting: poll, not spin
        return True

    # --- publishing -------------------------------------------------------------------------------

    async def publish(self, routing_key: str, body: bytes, *, message_id: str, kind: str) -> None:
        [error] = await self.publish_batch([Outgoing(routing_key, body, message_id, kind)])
        if error is not None:
            raise error

    async def publish_batch(self, messages: Sequence[OutgoingMessage]) -> list[BrokerError | None]:
        """Publish every message (mandatory, persistent) and wait for the broker's confirms, together.

        Returns, in order, None for each message the broker confirmed, else why not: ``BrokerError`` when
        the broker returned it (no queue serves the township) or refused it (nack); ``BrokerUnavailable``
        when not connected, the channel closed, another publish of the same message id is in flight
        (aio-pika #689: two in flight on one channel can hang it), or no confirm came within
        ``publish_timeout_s`` — counted from the start of the batch, and prolonged while the broker blocks
        publishers (memory or disk alarm): then the batch waits for it, neither dropping nor retrying.

        One batch is one write and one wait: its frames go to aiormq's writer as one payload, and the
        confirms are collected by one callback and one deadline instead of a task, an ``aio_pika.Message``,
        a lock round and an ``asyncio.wait`` per message (docs/transport.md, Performance).
        """
        if self._exchange is None or self._publish_channel is None:
            raise BrokerError("broker not started")
        if not messages:
            return []
        if not self.is_connected():
            return [BrokerUnavailable("not connected to the broker")] * len(messages)
        errors: list[BrokerError | None] = [None] * len(messages)
        batch: list[tuple[int, OutgoingMessage]] = []
        for i, message in enumerate(messages):
            if message.message_id in self._in_flight:
                errors[i] = BrokerUnavailable(f"a publish of {message.message_id} is still in flight")
            else:
                self._in_flight.add(message.message_id)
                batch.append((i, message))
        channel = self._publish_channel
        try:
            if batch:
                outcomes = await self._publish_confirmed([m for _, m in batch])
                for (i, _), outcome in zip(batch, outcomes):
                    errors[i] = outcome
        finally:
            self._in_flight.difference_update(m.message_id for _, m in batch)
        if any(isinstance(error, BrokerNacked) for error in errors):
            await self._renew_publish_channel(channel)
        return errors

    async def _renew_publish_channel(self, nacked: AbstractChannel) -> None:
        """Publish on a fresh channel from now on: the one the broker nacked may go on nacking.

        Measured on RabbitMQ 3.10 (the node-lost drill): after the node leading a quorum queue was
        killed, the channel that had published to it while it had no leader got basic.nack for every
        later publish to that queue, for minutes, while a new channel on the same node and user had
        its publishes confirmed at once. A nack is rare otherwise (the inbox sets no length limit), so
        a channel per nacked batch costs nothing. Batches still waiting on the old channel see it close
        and are retried by the relay, like any unconfirmed publish.
        """
        async with self._renew_lock:
            if self._publish_channel is not nacked or self._connection is None or self._connection.is_closed:
                return  # another batch renewed it already, or the transport is stopping
            try:
                self._publish_channel = await self._connection.channel(publisher_confirms=True,
                                                                       on_return_raises=True)
            except (aiormq.exceptions.AMQPError, ConnectionError, RuntimeError, asyncio.TimeoutError) as exc:
                log.warning("could not open a fresh publish channel after a nack: %r", exc)
                return
        log.warning("the broker nacked publishes: publishing on a fresh channel")
        with contextlib.suppress(Exception):
            await nacked.close()

    async def _publish_confirmed(self, messages: list[OutgoingMessage]) -> list[BrokerError | None]:
        """Write the messages' frames to the publish channel in one piece and wait for their confirms.

        Nothing here waits for the socket drain (aiormq's ``wait=False``): aiormq's ``Exchange.publish``
        holds the channel's lock until the writer has written the frame, and with the event loop busy
        with submits and SQL that capped the relay at ~40–80 messages/s (docs/transport.md). aiormq's
        bounded write queue still pushes back. The confirm — what the relay waits for — is aiormq's as
        before: ack, nack (``DeliveryError``) and a mandatory return (``PublishError``, the channel has
        ``on_return_raises``) settle the futures ``_write`` registered.
        """
        assert self._publish_channel is not None and self._exchange is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.publish_timeout_s
        pending = len(messages)
        all_confirmed = loop.create_future()

        def one_confirmed(_: asyncio.Future[Any]) -> None:
            nonlocal pending
            pending -= 1
            if pending == 0 and not all_confirmed.done():
                all_confirmed.set_result(None)

        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    channel = await self._publish_channel.get_underlay_channel()
                    payload = self._encode(channel, messages)
                    first, confirms = await self._write(channel, messages, payload, one_confirmed)
                break
            except TimeoutError:  # the writer does not take frames: blocked, or the connection is gone
                if self.is_connected() and self.is_blocked():
                    deadline = loop.time() + self.publish_timeout_s
                    continue
                return [BrokerUnavailable(f"could not hand the messages to the connection within "
                                          f"{self.publish_timeout_s}s")] * len(messages)
            except ValueError as exc:  # a routing key, id or kind over 255 bytes: the messages' fault
                return [BrokerError(f"cannot publish: {exc}")] * len(messages)
            except (aiormq.exceptions.AMQPError, ConnectionError, RuntimeError) as exc:  # channel closed
                return [BrokerUnavailable(f"publish failed: {exc!r}")] * len(messages)

        closed = channel.closing
        reason = f"no publisher confirm within {self.publish_timeout_s}s"
        was_blocked = False
        try:
            while not all_confirmed.done():
                await asyncio.wait((all_confirmed, closed), timeout=max(0.0, deadline - loop.time()),
                                   return_when=asyncio.FIRST_COMPLETED)
                if all_confirmed.done():
                    break
                if closed.done():
                    reason = "the publish channel closed before the confirm"
                    break
                if loop.time() >= deadline:
                    if self.is_connected() and self.is_blocked():
                        deadline = loop.time() + self.publish_timeout_s  # the broker holds publishers back: wait
                        was_blocked = True
                        continue
                    if was_blocked:  # unblocked since the last look: the confirms get a full timeout from now
                        deadline = loop.time() + self.publish_timeout_s
                        was_blocked = False
                        continue
                    break
        finally:
            if not closed.done():
                closed.cancel()  # only this observer: the channel stays open
            # Forgotten before cancelled: a late basic.return then finds no message id and is only
            # logged; a late confirm finds a cancelled future and is logged at debug level (as aiormq does).
            self._forget_ids(channel, messages, first)
            if not all_confirmed.done():
                for confirm in confirms:
                    confirm.cancel()
        unconfirmed = BrokerUnavailable(reason)
        return [_outcome(confirm, message.routing_key, unconfirmed) for confirm, message in zip(confirms, messages)]

    def _encode(self, channel: Any, messages: Sequence[OutgoingMessage]) -> bytes:
        """The frames of all the messages, as one payload for the connection's writer."""
        if channel.is_closed or not channel.publisher_confirms:
            raise aiormq.exceptions.ChannelInvalidStateError("publish channel closed")
        frames = self._frames_for(channel)
        return b"".join([frames.encode(m.routing_key, m.message_id, m.kind, m.envelope) for m in messages])

    @classmethod
    async def _write(cls, channel: Any, messages: Sequence[OutgoingMessage], payload: bytes,
                     on_confirm: Any) -> tuple[int, list[asyncio.Future[Any]]]:
        """Take the next delivery tags, register a confirm future for each, queue the payload.

        What aiormq's ``basic_publish(wait=False)`` does for one message, for the batch: under the
        channel's lock (no other publish takes tags in between), a future in ``confirmations`` per tag —
        aiormq's reader settles it with the broker's ack or nack — and the message id in
        ``message_id_delivery_tag``, which is how aiormq matches a ``basic.return`` to its publish.
        Returns the tag before the batch's first and the futures, in the messages' order.
        """
        loop = asyncio.get_running_loop()
        async with channel.lock:
            first = channel.delivery_tag
            confirms = []
            for n, message in enumerate(messages, start=first + 1):
                confirm = loop.create_future()
                confirm.add_done_callback(on_confirm)
                channel.confirmations[n] = confirm
                channel.message_id_delivery_tag[message.message_id] = n
                confirms.append(confirm)
            channel.delivery_tag = first + len(messages)
            try:
                await channel.write_queue.put(ChannelFrame(payload=payload, should_close=False))
            except BaseException:
                # The broker saw none of it: give the delivery tags back while still holding the lock.
                channel.delivery_tag = first
                for n in range(first + 1, first + 1 + len(messages)):
                    channel.confirmations.pop(n, None)
                cls._forget_ids(channel, messages, first)
                for confirm in confirms:
                    confirm.remove_done_callback(on_confirm)
                    confirm.cancel()
                raise
        return first, confirms

    def _frames_for(self, channel: Any) -> PublishFrames:
        """The encoder for this channel (a reconnect brings a new channel, perhaps a new frame size)."""
        key = (channel.number, channel.max_content_size)
        if self._frames is None or self._frames[0] != key:
            assert self._exchange is not None
            self._frames = (key, PublishFrames(channel.number, self._exchange.name, ENVELOPE_CONTENT_TYPE,
                                               channel.max_content_size))
        return self._frames[1]

    @staticmethod
    def _forget_ids(channel: Any, messages: Sequence[OutgoingMessage], first: int) -> None:
        """Drop the message ids of a settled batch from aiormq's return lookup (its forget_message_id)."""
        ids = channel.message_id_delivery_tag
        for n, message in enumerate(messages, start=first + 1):
            if ids.get(message.message_id) == n:
                del ids[message.message_id]


    # --- consuming --------------------------------------------------------------------------------

    async def consume(self, handler: DeliveryHandler) -> None:
        if self._queue is None:
            raise BrokerError("broker not started")

        acks = AckWriter()

        async def on_message(message: AbstractIncomingMessage) -> None:
            delivery = Delivery(message.body, message.routing_key or "", bool(message.redelivered))
            try:
                await handler(delivery)
            except Exception:
                log.exception("handler failed for delivery %s; returning it to the queue", message.message_id)
                # The pause keeps a persistent failure (say, one message the database refuses) from busy-looping.
                await asyncio.sleep(self.failure_pause_s)
                await _settle(message.nack(requeue=True))
            else:
                # The acks of a batch go together, in one write (amqp_acks.py).
                acks.ack(message)

        self._consumer_tag = await self._queue.consume(on_message, no_ack=False)

    # --- operator ---------------------------------------------------------------------------------

    async def queue_depths(self) -> list[QueueDepth]:
        """Ready messages and consumers of the inbox and the poison queue (consumer lag, poison backlog)."""
        connection = await self._connect_once()
        async with connection:
            channel = await connection.channel()
            depths = []
            for name in (self.topology.queue, self.topology.poison_queue):
                q = await channel.declare_queue(name, passive=True)
                result = q.declaration_result
                depths.append(QueueDepth(name, result.message_count or 0, result.consumer_count or 0))
            return depths

    async def redrive_poison(self, limit: int = 1000) -> int:
        """Move messages from the poison queue back through the exchange to their townships' inbox.

        Each message is republished with a confirm before it is acked on the poison queue: a crash in
        between leaves a copy in both, which the idempotent inbox absorbs. Returns how many moved.
        """
        try:
            return await self._redrive_poison(limit)
        except BrokerError:
            raise
        except Exception as exc:  # a least-rights user may not read the poison queue: say so, not 500
            refusal = operator_refusal(f"re-drive of {self.topology.poison_queue}", exc)
            if refusal is None:
                raise
            raise refusal from None

    async def _redrive_poison(self, limit: int) -> int:
        connection = await self._connect_once()
        moved = 0
        async with connection:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            exchange = await channel.get_exchange(self.topology.exchange)
            poison = await channel.get_queue(self.topology.poison_queue)
            while moved < limit:
                message = await poison.get(no_ack=False, fail=False, timeout=5)
                if message is None:
                    break
                routing_key = _original_routing_key(message)
                await exchange.publish(
                    aio_pika.Message(message.body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                     message_id=message.message_id, type=message.type,
                                     content_type=message.content_type,
                                     headers={"x-redriven-from": self.topology.poison_queue}),
                    routing_key=routing_key, mandatory=True, timeout=self.publish_timeout_s,
                )
                await message.ack()
                moved += 1
        return moved

    # --- closing ----------------------------------------------------------------------------------

    async def close(self) -> None:
        if self._queue is not None and self._consumer_tag is not None:
            try:
                await asyncio.wait_for(self._queue.cancel(self._consumer_tag), timeout=5)
            except Exception:  # closing anyway; the broker requeues unacked messages
                log.debug("cancel failed during close", exc_info=True)
        if self._connection is not None:
            try:
                await asyncio.wait_for(self._connection.close(), timeout=5)
            except Exception:
                log.debug("close failed", exc_info=True)
        self._connection = self._exchange = self._queue = None
        self._publish_channel = self._consume_channel = None

    async def delete_topology(self) -> None:
        """Remove this gateway's queues and exchanges (demo and test runs clean up after themselves)."""
        connection = await self._connect_once()
        async with connection:
            channel = await connection.channel()
            t = self.topology
            for queue in (t.queue, t.poison_queue):
                await channel.queue_delete(queue)
            for exchange in (t.exchange, t.dead_letter_exchange):
                await channel.exchange_delete(exchange)


def _outcome(confirm: asyncio.Future[Any], routing_key: str, unconfirmed: BrokerError) -> BrokerError | None:
    """What one publish of a batch came to: None when the broker confirmed it."""
    if not confirm.done() or confirm.cancelled():
        return unconfirmed
    exc = confirm.exception()
    if exc is None:
        return None
    if isinstance(exc, aiormq.exceptions.PublishError):  # mandatory: nothing routes this code
        return BrokerError(f"broker returned the message: no queue serves township {routing_key} ({exc})")
    if isinstance(exc, aiormq.exceptions.DeliveryError):
        return BrokerNacked(f"broker refused the message for township {routing_key} (basic.nack)")
    return BrokerUnavailable(f"publish failed: {exc!r}")


async def _settle(action: Any) -> None:
    """Ack or nack; on a dropped channel the broker requeues the message by itself, so just log it."""
    try:
        await action
    except Exception as exc:
        log.info("could not settle a delivery (%r); the broker will redeliver it", exc)


def _original_routing_key(message: AbstractIncomingMessage) -> str:
    """A dead-lettered message keeps its routing key; x-death names it too (used if a shovel changed it)."""
    deaths = (message.headers or {}).get("x-death")
    if isinstance(deaths, list) and deaths:
        keys = deaths[0].get("routing-keys") if isinstance(deaths[0], dict) else None
        if keys:
            key = keys[0]
            return key.decode() if isinstance(key, bytes) else str(key)
    return message.routing_key or ""
