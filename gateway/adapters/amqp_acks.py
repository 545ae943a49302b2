"""Settling the deliveries of one AMQP channel: acks coalesced into one write per turn, nacks one by one.

The consumer acks a delivery once its batch is committed and nacks it (requeue) when its handler
failed. The deliveries of a batch are settled together, so instead of one ``basic.ack`` frame each
(marshalled, queued, then written to the socket with a system call of its own), what is settled in one
turn of the event loop goes out as one write: a ``basic.ack`` with ``multiple`` set up to the highest
tag below which every delivery is settled, a single ack for each settled tag above a delivery that is
still in work (so a slow delivery holds back no other ack), and the nacks, written first.

Delivery tags on a channel are 1, 2, 3 … in delivery order and every delivery reaches the consumer,
so "everything up to N is settled" is known from the tags. RabbitMQ refuses (and closes the channel
on) a ``multiple`` ack whose own tag is not outstanding, so the multiple ack always names a tag being
acked now, never one settled earlier. Should a tag never be settled (a handler that never returns),
the set of tags settled above it is capped: past ``MAX_TRACKED`` this channel falls back to one ack
per delivery, as without coalescing, and memory stays flat.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiormq.abc import ChannelFrame
from pamqp import commands as spec

log = logging.getLogger(__name__)

MAX_TRACKED = 10_000


class ChannelAcks:
    def __init__(self, channel: Any) -> None:
        self.channel = channel  # the aiormq channel the deliveries came on; acks are only valid there
        self._floor = 0  # every tag up to here is settled on the wire
        self._sent: set[int] = set()  # tags above the floor settled on the wire one by one
        self._to_ack: set[int] = set()
        self._to_nack: list[int] = []
        self._coalescing = True
        self._scheduled = False
        self._backlog: list[Any] = []  # frames waiting for room in the connection's write queue
        self._writer: asyncio.Task[None] | None = None
        self.frames_written = 0

    def ack(self, tag: int) -> None:
        self._to_ack.add(tag)
        self._schedule()

    def nack(self, tag: int) -> None:
        """Return the delivery to the queue (requeue: the quorum queue counts it toward its delivery limit)."""
        self._to_nack.append(tag)
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        frames: list[Any] = [spec.Basic.Nack(delivery_tag=tag, multiple=False, requeue=True) for tag in self._to_nack]
        to_ack, sent = self._to_ack, self._sent
        if self._coalescing:
            sent.update(self._to_nack)
            top = newest = self._floor
            count = 0
            while True:  # the floor rises through every tag settled now or before
                tag = top + 1
                if tag in to_ack:
                    to_ack.discard(tag)
                    newest, count = tag, count + 1
                elif tag in sent:
                    sent.discard(tag)
                else:
                    break
                top = tag
            self._floor = top
            if count:
                frames.append(spec.Basic.Ack(delivery_tag=newest, multiple=count > 1))
            sent.update(to_ack)
            if len(sent) > MAX_TRACKED:
                log.warning("delivery %d of channel %s is still unsettled after %d others; acking one by one",
                            top + 1, self.channel, len(sent))
                self._coalescing = False
                sent.clear()
        frames += [spec.Basic.Ack(delivery_tag=tag, multiple=False) for tag in sorted(to_ack)]
        to_ack.clear()
        self._to_nack = []
        if frames:
            self._write(frames)

    def _write(self, frames: list[Any]) -> None:
        channel = self.channel
        if channel.is_closed:  # the broker requeues whatever this channel did not settle
            log.info("channel closed before %d settlements were written; the broker redelivers", len(frames))
            return
        frame = ChannelFrame.marshall(channel_number=channel.number, frames=frames)
        if self._writer is None:  # nothing waiting before it: straight into the writer's queue
            try:
                channel.write_queue.put_nowait(frame)
                self.frames_written += 1
                return
            except asyncio.QueueFull:
                pass
        self._backlog.append(frame)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        """Hand the frames to the connection's writer in order; waits only when its queue is full."""
        queue = self.channel.write_queue
        try:
            while self._backlog:
                frame = self._backlog.pop(0)
                try:
                    queue.put_nowait(frame)
                except asyncio.QueueFull:
                    await queue.put(frame)
                self.frames_written += 1
        except Exception as exc:  # the connection went away: the broker redelivers what was not settled
            log.info("could not write settlements (%r); the broker redelivers", exc)
            self._backlog.clear()
        finally:
            self._writer = None
