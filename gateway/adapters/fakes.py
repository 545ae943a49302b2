"""In-memory fakes of the exchange's ports, for fast unit tests of the service (cosmicpython style)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from gateway.access.paging import Cursor, MessagePage
from gateway.exchange.errors import AlreadyAnswered, UnknownMessage
from gateway.exchange.ports import Delivery, DeliveryHandler
from gateway.exchange.receipting import bundle_outbox_items
from gateway.exchange.refusals import RefusalCount, hour_of, key_of_refusal
from gateway.exchange.records import (
    Counts,
    Direction,
    IncomingResult,
    OutboxBacklog,
    OutboxItem,
    QuarantineItem,
    Status,
    StoredMessage,
)


class FakeMessageStore:
    def __init__(self) -> None:
        self.messages: dict[tuple[str, str, str, str], StoredMessage] = {}
        self.outbox: dict[int, OutboxItem] = {}
        self.quarantine: list[QuarantineItem] = []
        self._redrives: dict[int, datetime] = {}  # quarantine id → when its re-drive claimed it

    def _mark_answered(self, node: str, direction: Direction, message_id: str, peer: str, by: StoredMessage) -> bool:
        """Claim the message for this answer, as the SQL store's conditional UPDATE does: only while unanswered."""
        for key, m in self.messages.items():
            peer_of = m.sender if direction is Direction.IN else m.recipient
            if (m.node, m.direction, m.message_id) == (node, direction, message_id) and peer_of == peer:
                if m.answered_by is not None:
                    return False
                self.messages[key] = replace(m, status=Status.ANSWERED, answered_by=by.message_id,
                                             answered_at=by.accepted_at, result=by.result)
                return True
        return False

    async def add_outgoing(self, message: StoredMessage, outbox: OutboxItem, *, answers: str | None = None) -> None:
        # No await before the claim: in one event loop the claim and the writes are one atomic step.
        if answers is not None and not self._mark_answered(message.node, Direction.IN, answers, message.recipient, message):
            original = next((m for m in self.messages.values()
                             if (m.node, m.direction, m.message_id) == (message.node, Direction.IN, answers)), None)
            if original is None or original.answered_by is None:
                raise UnknownMessage(f"{message.node} received no query or notification {answers} from {message.recipient}")
            raise AlreadyAnswered(f"{answers} was already answered by {original.answered_by}",
                                  answered_by=original.answered_by)
        self.messages[(message.node, message.direction.value, message.sender, message.message_id)] = message
        new_id = max(self.outbox, default=0) + 1
        self.outbox[new_id] = replace(outbox, id=new_id)

    async def add_incoming(self, message: StoredMessage) -> IncomingResult:
        key = (message.node, message.direction.value, message.sender, message.message_id)
        if key in self.messages:
            same = self.messages[key].envelope_sha256 == message.envelope_sha256
            return IncomingResult.DUPLICATE if same else IncomingResult.CONFLICT
        self.messages[key] = message
        if message.kind == "feedback" and message.in_reply_to:
            self._mark_answered(message.node, Direction.OUT, message.in_reply_to, message.sender, message)
        if message.kind == "withdrawal" and message.in_reply_to:
            for k, m in self.messages.items():  # the SQL store's _CLAIM_WITHDRAWN
                if ((m.node, m.direction, m.message_id, m.sender, m.kind) ==
                        (message.node, Direction.IN, message.in_reply_to, message.sender, "query") and m.answered_by is None):
                    self.messages[k] = replace(m, status=Status.WITHDRAWN, answered_by=message.message_id)
        return IncomingResult.STORED

    async def add_withdrawal(self, message: StoredMessage, outbox: OutboxItem) -> bool:
        for k, m in self.messages.items():  # the SQL store's _WITHDRAW_SENT, then the rows
            if ((m.node, m.direction, m.sender, m.message_id, m.kind) ==
                    (message.node, Direction.OUT, message.node, message.in_reply_to, "query")
                    and m.answered_by is None and m.status is not Status.WITHDRAWN):
                self.messages[k] = replace(m, status=Status.WITHDRAWN)
                break
        else:
            return False
        self.messages[(message.node, message.direction.value, message.sender, message.message_id)] = message
        new_id = max(self.outbox, default=0) + 1
        self.outbox[new_id] = replace(outbox, id=new_id)
        return True

    async def add_incoming_batch(
        self, batch: Sequence[StoredMessage], refused: Sequence[QuarantineItem] = ()
    ) -> list[IncomingResult]:
        results = [await self.add_incoming(m) for m in batch]
        for item in refused:
            await self.add_quarantine(item)
        return results

    async def add_quarantine(self, item: QuarantineItem) -> None:
        self.quarantine.append(replace(item, id=len(self.quarantine) + 1))

    async def get_quarantine(self, item_id: int) -> QuarantineItem | None:
        return next((q for q in self.quarantine if q.id == item_id), None)

    async def claim_quarantine_redrive(self, item_id: int, at: datetime, stale_before: datetime) -> bool:
        started = self._redrives.get(item_id)
        item = next((q for q in self.quarantine if q.id == item_id), None)
        if item is None or item.resolved or (started is not None and started >= stale_before):
            return False
        self._redrives[item_id] = at
        return True

    async def mark_quarantine_redriven(self, item_id: int, at: datetime, *, resolved: bool) -> None:
        self._redrives.pop(item_id, None)
        self.quarantine = [replace(q, redriven_at=at, resolved=resolved) if q.id == item_id else q
                           for q in self.quarantine]

    async def find(self, node: str, direction: Direction, message_id: str) -> StoredMessage | None:
        for m in self.messages.values():
            if (m.node, m.direction, m.message_id) == (node, direction, message_id):
                return m
        return None

    async def find_many(self, direction: Direction, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], StoredMessage]:
        wanted = set(keys)
        return {(m.node, m.message_id): m for m in self.messages.values()
                if m.direction is direction and (m.node, m.message_id) in wanted}

    async def list_messages(self, node: str, direction: Direction, *, kind: str | None = None, limit: int = 100) -> list[StoredMessage]:
        found = [m for m in self.messages.values() if m.node == node and m.direction is direction and kind in (None, m.kind)]
        return sorted(found, key=lambda m: m.accepted_at, reverse=True)[:limit]

    async def message_page(
        self, node: str, direction: Direction, *, limit: int, after: Cursor | None = None,
        statuses: frozenset[Status] | None = None, except_kinds: frozenset[str] = frozenset(),
    ) -> MessagePage:
        # A message's row is its place in insertion order, as the SQL store's id.
        found = [(Cursor.of(m.accepted_at, row), m) for row, m in enumerate(self.messages.values(), start=1)
                 if m.node == node and m.direction is direction and m.kind not in except_kinds
                 and (statuses is None or m.status in statuses)]
        found = sorted((f for f in found if after is None or f[0] < after), key=lambda f: f[0], reverse=True)
        return MessagePage([m for _, m in found[:limit]], found[limit - 1][0] if len(found) > limit else None)

    async def due_outbox(self, now: datetime, limit: int) -> list[OutboxItem]:
        due = [o for o in self.outbox.values() if o.published_at is None and o.next_attempt_at <= now]
        return due[:limit]

    async def claim_outbox(
        self, now: datetime, limit: int, lease_until: datetime, *, senders: Sequence[str] | None = None
    ) -> list[OutboxItem]:
        due = await self.due_outbox(now, len(self.outbox) if senders is not None else limit)
        claimed = due if senders is None else [o for o in due if o.sender in set(senders)][:limit]
        for o in claimed:
            assert o.id is not None
            self.outbox[o.id] = replace(o, next_attempt_at=lease_until)
        return claimed

    async def outbox_backlog(self, now: datetime) -> OutboxBacklog:
        pending = [o for o in self.outbox.values() if o.published_at is None]
        return OutboxBacklog(
            pending=len(pending),
            due=sum(o.next_attempt_at <= now for o in pending),
            retrying=sum(o.attempts > 0 for o in pending),
            oldest_created_at=min((o.created_at for o in pending), default=None),
            last_error=next((o.last_error for o in reversed(pending) if o.last_error), None),
        )

    async def mark_published(self, outbox_ids: list[int], at: datetime) -> None:
        for i in outbox_ids:
            item = self.outbox[i] = replace(self.outbox[i], published_at=at)
            for key, m in self.messages.items():
                if m.direction is Direction.OUT and m.message_id == item.message_id and m.status is Status.QUEUED:
                    self.messages[key] = m.with_status(Status.SENT)

    async def mark_publish_failed(self, outbox_id: int, error: str, next_attempt_at: datetime) -> None:
        o = self.outbox[outbox_id]
        self.outbox[outbox_id] = replace(o, attempts=o.attempts + 1, last_error=error, next_attempt_at=next_attempt_at)

    async def list_quarantine(self, limit: int = 100) -> list[QuarantineItem]:
        return list(reversed(self.quarantine))[:limit]

    async def refusal_counts(self, since: datetime, limit: int = 200) -> list[RefusalCount]:
        """The fake keeps every refusal (no caps): each one counted and stored."""
        seen = Counter(key_of_refusal(q) for q in self.quarantine if hour_of(q.received_at) >= hour_of(since))
        rows = [RefusalCount(*key, refused=n, stored=n) for key, n in seen.items()]
        return sorted(rows, key=lambda r: (r.hour, r.refused), reverse=True)[:limit]

    async def counts(self) -> Counts:
        ms = list(self.messages.values())
        return Counts(
            sent=sum(m.direction is Direction.OUT for m in ms),
            received=sum(m.direction is Direction.IN for m in ms),
            answered=sum(m.direction is Direction.OUT and m.status is Status.ANSWERED and m.kind != "feedback" for m in ms),
            outbox_pending=sum(o.published_at is None for o in self.outbox.values()),
            quarantined=len(self.quarantine),
        )

    async def ping(self) -> None:
        return None


class FakeBroker:
    """Routes by township code to the handler of whichever fake gateway hosts it; no network."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []
        self._routes: dict[str, DeliveryHandler] = {}
        self._townships: list[str] = []
        self.fail_next_publishes = 0

    async def start(self, townships: list[str]) -> None:
        self._townships = list(townships)

    async def consume(self, handler: DeliveryHandler) -> None:
        for code in self._townships:
            self._routes[code] = handler

    async def publish(self, routing_key: str, body: bytes, *, message_id: str, kind: str) -> None:
        if self.fail_next_publishes:
            self.fail_next_publishes -= 1
            raise ConnectionError("fake broker: connection dropped")
        if routing_key not in self._routes:
            raise ConnectionError(f"fake broker: no queue serves township {routing_key}")
        self.published.append((routing_key, body))
        await self._routes[routing_key](Delivery(body, routing_key))

    async def close(self) -> None:
        self._routes.clear()

    def is_connected(self) -> bool:
        return True

    def state(self) -> str:
        return "ok"

    async def wait_until_ready(self, timeout_s: float) -> bool:
        return True


class FakeReceiptStore:
    """Receipts in memory; queued receipts go into the fake message store's outbox, as in SQL."""

    def __init__(self, messages: FakeMessageStore) -> None:
        self.messages = messages
        self.sent: dict[tuple[str, str], bytes] = {}
        self.received: dict[str, datetime] = {}

    async def add_sent_many(self, signed, now: datetime) -> None:  # type: ignore[no-untyped-def]
        kept = {}
        for receipt, data in signed:
            key = (receipt.sender, receipt.message_id)
            self.sent.setdefault(key, data)  # a receipt kept before is queued again with its stored bytes
            kept.setdefault(key, (receipt, self.sent[key]))
        kept = list(kept.values())
        for item in bundle_outbox_items(kept, now):
            new_id = max(self.messages.outbox, default=0) + 1
            self.messages.outbox[new_id] = replace(item, id=new_id)

    async def add_received_many(self, batch, at: datetime) -> None:  # type: ignore[no-untyped-def]
        for receipt, data in batch:
            await self.add_received(receipt, data, at)

    async def add_received(self, receipt, data: bytes, at: datetime) -> bool:  # type: ignore[no-untyped-def]
        if receipt.message_id in self.received:
            return False
        self.received[receipt.message_id] = receipt.received
        return True

    async def received_for(self, message_ids) -> dict[str, datetime]:  # type: ignore[no-untyped-def]
        return {m: self.received[m] for m in message_ids if m in self.received}
