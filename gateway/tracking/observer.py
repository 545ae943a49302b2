"""Connects the exchange to the tracker: which stored message means which workflow event."""

from __future__ import annotations

from typing import Any

from gateway.codec.messages import Feedback, Notification, Query
from gateway.exchange.ports import MessageStore
from gateway.exchange.records import Direction, StoredMessage
from gateway.tracking.tracker import CaseTracker


class TrackingObserver:
    def __init__(self, tracker: CaseTracker, messages: MessageStore) -> None:
        self.tracker = tracker
        self.messages = messages

    async def messages_stored(self, items: list[tuple[StoredMessage, Any]]) -> None:
        """A batch of received messages: new cases opened together, the rest one by one."""
        queries = [(s, m) for s, m in items if s.direction is Direction.IN and isinstance(m, (Query, Notification))]
        if queries:
            await self.tracker.queries_received(queries)
        for stored, message in items:
            if not (stored.direction is Direction.IN and isinstance(message, (Query, Notification))):
                await self.message_stored(stored, message)

    async def message_stored(self, stored: StoredMessage, message: Any) -> None:
        incoming = stored.direction is Direction.IN
        if isinstance(message, (Query, Notification)):
            if incoming:
                await self.tracker.query_received(stored, message)
            else:
                await self.tracker.query_sent(stored, message)
        elif isinstance(message, Feedback):
            if incoming:
                query = await self.messages.find(stored.node, Direction.OUT, message.in_reply_to)
                await self.tracker.feedback_received(stored, message, query)
            else:
                await self.tracker.answered(stored, message)
