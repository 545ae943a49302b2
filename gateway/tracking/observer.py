"""Connects the exchange to the tracker: which stored message means which workflow event."""

from __future__ import annotations

from typing import Any

from gateway.codec.messages import Feedback, Notification, Query, Withdrawal
from gateway.exchange.ports import MessageStore
from gateway.exchange.records import Direction, StoredMessage
from gateway.tracking.tracker import CaseTracker


class TrackingObserver:
    def __init__(self, tracker: CaseTracker, messages: MessageStore) -> None:
        self.tracker = tracker
        self.messages = messages

    async def messages_stored(self, items: list[tuple[StoredMessage, Any]]) -> None:
        """A batch of received messages: new cases opened together; a 查无此人's re-verification task
        needs the query it answers, read for the whole batch at once; the rest one by one."""
        queries = [(s, m) for s, m in items if s.direction is Direction.IN and isinstance(m, (Query, Notification))]
        if queries:
            await self.tracker.queries_received(queries)
        feedback = [(s, m) for s, m in items if s.direction is Direction.IN and isinstance(m, Feedback)]
        wanted = [(s.node, m.in_reply_to) for s, m in feedback if m.result == "not_found"]
        answered = await self.messages.find_many(Direction.OUT, wanted) if wanted else {}
        for stored, message in feedback:
            await self.tracker.feedback_received(stored, message, answered.get((stored.node, message.in_reply_to)))
        for stored, message in items:
            if stored.direction is not Direction.IN or isinstance(message, Withdrawal):
                await self.message_stored(stored, message)

    async def message_stored(self, stored: StoredMessage, message: Any) -> None:
        incoming = stored.direction is Direction.IN
        if isinstance(message, (Query, Notification)):
            if incoming:
                await self.tracker.query_received(stored, message)
            else:
                await self.tracker.query_sent(stored, message)
        elif isinstance(message, Withdrawal):
            # The store's claim of the query decided between this withdrawal and an answer: the case
            # follows it, so the two never disagree.
            query = await self.messages.find(stored.node, Direction.IN, message.withdraws) if incoming else None
            if query is not None and query.answered_by == stored.message_id:
                await self.tracker.query_withdrawn(stored, message)
        elif isinstance(message, Feedback):
            if incoming:
                query = await self.messages.find(stored.node, Direction.OUT, message.in_reply_to)
                await self.tracker.feedback_received(stored, message, query)
            else:
                await self.tracker.answered(stored, message)
