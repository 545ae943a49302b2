"""Delivery without RabbitMQ: the relay's publishes, queued in memory, handed to the consumer's receive path.

A commission replaying its cases may have no broker. What a scenario must exercise is everything on
either side of the wire: the sender's outbox and relay, the sealed envelope (signed and encrypted for
the recipient), and the recipient's `ExchangeService.receive` — the call the consumer makes with the
bytes it took off the queue, for a delivery on its own (the batching inbox hands many at once to
`receive_batch`: the same checks and writes) — verify, decrypt, validate, store, track, receipt. Only
the queue in between is a list. A publish is queued and returns, as a confirmed publish does; the
deliveries run when the player asks (`deliver_all`), so what a clerk sees at an instant is what the
recipient had received by then.

A delivery whose receive raises is not retried here (the consumer would redeliver it and, in the end,
move it to the poison queue); its failure is recorded, so the scenario reports it instead of hiding it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from gateway.exchange.ports import Delivery, DeliveryHandler

FAILURE_TEXT = 300  # characters of an exception kept in the outcome (bounded, as every kept reason)


@dataclass(frozen=True)
class Delivered:
    message_id: str
    kind: str
    recipient: str
    result: str  # the receive outcome ("stored", "duplicate", "quarantined", …) or "failed"
    reason: str | None = None


class InProcessBroker:
    """The `Broker` port over a queue in memory; one consumer handler for every hosted township."""

    def __init__(self) -> None:
        self._queue: deque[tuple[Delivery, str, str]] = deque()
        self._handler: DeliveryHandler | None = None
        self._townships: frozenset[str] = frozenset()
        self.delivered: dict[str, Delivered] = {}  # message id → what its recipient did with it

    async def start(self, townships: list[str]) -> None:
        self._townships = frozenset(townships)

    async def consume(self, handler: DeliveryHandler) -> None:
        self._handler = handler

    async def publish(self, routing_key: str, body: bytes, *, message_id: str, kind: str) -> None:
        if routing_key not in self._townships:
            raise ConnectionError(f"no queue serves township {routing_key} in this scenario")
        self._queue.append((Delivery(body, routing_key), message_id, kind))

    async def deliver_all(self) -> int:
        """Hand every queued delivery to the consumer, in publish order; return how many."""
        if self._handler is None:
            raise RuntimeError("no consumer: call consume() first")
        count = 0
        while self._queue:
            delivery, message_id, kind = self._queue.popleft()
            try:
                outcome = await self._handler(delivery)
            except Exception as exc:  # the consumer would nack it; the scenario says so
                self.delivered[message_id] = Delivered(message_id, kind, delivery.routing_key, "failed",
                                                       f"{type(exc).__name__}: {str(exc)[:FAILURE_TEXT]}")
            else:
                result = getattr(outcome, "result", "stored")
                self.delivered[message_id] = Delivered(message_id, kind, delivery.routing_key, result,
                                                       getattr(outcome, "reason", None))
            count += 1
        return count

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def close(self) -> None:
        self._handler = None

    def is_connected(self) -> bool:
        return True

    def state(self) -> str:
        return "ok"

    async def wait_until_ready(self, timeout_s: float) -> bool:
        return True
