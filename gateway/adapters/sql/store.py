"""The message store on SQLAlchemy Core: messages, outbox and quarantine, each change one transaction."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.adapters.sql.engine import write_transaction
from gateway.adapters.sql.tables import messages, outbox, quarantine
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


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes even for timezone-aware columns; everything stored is UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def _message_from_row(row: Any) -> StoredMessage:
    m = row._mapping
    return StoredMessage(
        node=m["node"],
        direction=Direction(m["direction"]),
        message_id=m["message_id"],
        kind=m["kind"],
        sender=m["sender"],
        recipient=m["recipient"],
        in_reply_to=m["in_reply_to"],
        created_at=_utc(m["created_at"]),  # type: ignore[arg-type]
        accepted_at=_utc(m["accepted_at"]),  # type: ignore[arg-type]
        envelope_sha256=m["envelope_sha256"],
        envelope=bytes(m["envelope"]),
        body_sealed=bytes(m["body_sealed"]),
        subject=m["subject"],
        status=Status(m["status"]),
        answered_by=m["answered_by"],
        answered_at=_utc(m["answered_at"]),
        result=m["result"],
    )


def _record_from_row(cls: type, row: Any) -> Any:
    m = row._mapping
    values = {f.name: m[f.name] for f in fields(cls)}
    for key, value in values.items():
        if isinstance(value, datetime):
            values[key] = _utc(value)
        elif isinstance(value, memoryview):
            values[key] = bytes(value)
    return cls(**values)


def _shallow(record: Any) -> dict[str, Any]:
    # dataclasses.asdict deep-copies every field (bytes included) on the hot path; a row needs no copy.
    return {f.name: getattr(record, f.name) for f in fields(record)}


def _message_values(message: StoredMessage) -> dict[str, Any]:
    values = _shallow(message)
    values["direction"] = message.direction.value
    values["status"] = message.status.value
    return values


class SqlMessageStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def _write(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        return write_transaction(self.engine)

    async def add_outgoing(self, message: StoredMessage, item: OutboxItem, *, answers: str | None = None) -> None:
        async with self._write() as conn:
            await conn.execute(insert(messages), _message_values(message))
            values = _shallow(item)
            values.pop("id")
            await conn.execute(insert(outbox), values)
            if answers is not None:
                await conn.execute(
                    update(messages)
                    .where(
                        messages.c.node == message.node,
                        messages.c.direction == Direction.IN.value,
                        messages.c.message_id == answers,
                        messages.c.sender == message.recipient,
                    )
                    .values(status=Status.ANSWERED.value, answered_by=message.message_id,
                            answered_at=message.accepted_at, result=message.result)
                )

    async def add_incoming(self, message: StoredMessage) -> IncomingResult:
        try:
            async with self._write() as conn:
                existing = await self._existing_sha(conn, message)
                if existing is not None:
                    return IncomingResult.DUPLICATE if existing == message.envelope_sha256 else IncomingResult.CONFLICT
                await conn.execute(insert(messages), _message_values(message))
                if message.kind == "feedback" and message.in_reply_to:
                    await conn.execute(
                        update(messages)
                        .where(
                            messages.c.node == message.node,
                            messages.c.direction == Direction.OUT.value,
                            messages.c.message_id == message.in_reply_to,
                            messages.c.recipient == message.sender,
                        )
                        .values(status=Status.ANSWERED.value, answered_by=message.message_id,
                                answered_at=message.accepted_at, result=message.result)
                    )
                return IncomingResult.STORED
        except IntegrityError:
            # Two consumers raced on the same delivery: the other one stored it.
            async with self.engine.connect() as conn:
                existing = await self._existing_sha(conn, message)
            if existing is None:
                raise
            return IncomingResult.DUPLICATE if existing == message.envelope_sha256 else IncomingResult.CONFLICT

    async def add_incoming_batch(
        self, batch: Sequence[StoredMessage], refused: Sequence[QuarantineItem] = ()
    ) -> list[IncomingResult]:
        """``add_incoming`` for many messages, plus refusals for the quarantine, in ONE transaction.

        One SELECT finds the ids already stored, one multi-row INSERT stores the new ones: the consumer's
        cost per message is then a fraction of a commit instead of a commit.
        """
        if not batch and not refused:
            return []
        try:
            async with self._write() as conn:
                return await self._add_incoming_batch(conn, batch, refused)
        except IntegrityError:
            # Another consumer stored one of them meanwhile: one transaction each settles who was first.
            results = [await self.add_incoming(m) for m in batch]
            for item in refused:
                await self.add_quarantine(item)
            return results

    async def _add_incoming_batch(
        self, conn: AsyncConnection, batch: Sequence[StoredMessage], refused: Sequence[QuarantineItem]
    ) -> list[IncomingResult]:
        known: dict[tuple[str, str, str], str] = {}
        if batch:
            rows = await conn.execute(
                select(messages.c.node, messages.c.sender, messages.c.message_id, messages.c.envelope_sha256).where(
                    messages.c.direction == Direction.IN.value,
                    messages.c.message_id.in_(sorted({m.message_id for m in batch})),
                )
            )
            known = {(r.node, r.sender, r.message_id): r.envelope_sha256 for r in rows}
        results: list[IncomingResult] = []
        new: list[StoredMessage] = []
        for m in batch:
            key = (m.node, m.sender, m.message_id)
            if key in known:
                results.append(IncomingResult.DUPLICATE if known[key] == m.envelope_sha256 else IncomingResult.CONFLICT)
                continue
            known[key] = m.envelope_sha256  # the same delivery twice in one batch is a duplicate too
            new.append(m)
            results.append(IncomingResult.STORED)
        if new:
            await conn.execute(insert(messages), [_message_values(m) for m in new])
        answers = [m for m in new if m.kind == "feedback" and m.in_reply_to]
        if answers:
            await conn.execute(
                update(messages)
                .where(
                    messages.c.node == bindparam("b_node"),
                    messages.c.direction == Direction.OUT.value,
                    messages.c.message_id == bindparam("b_reply"),
                    messages.c.recipient == bindparam("b_sender"),
                )
                .values(status=Status.ANSWERED.value, answered_by=bindparam("b_id"),
                        answered_at=bindparam("b_at"), result=bindparam("b_result")),
                [{"b_node": m.node, "b_reply": m.in_reply_to, "b_sender": m.sender, "b_id": m.message_id,
                  "b_at": m.accepted_at, "b_result": m.result} for m in answers],
            )
        if refused:
            await conn.execute(insert(quarantine), [{k: v for k, v in _shallow(q).items() if k != "id"} for q in refused])
        return results

    @staticmethod
    async def _existing_sha(conn: AsyncConnection, message: StoredMessage) -> str | None:
        return (
            await conn.execute(
                select(messages.c.envelope_sha256).where(
                    messages.c.node == message.node,
                    messages.c.direction == message.direction.value,
                    messages.c.sender == message.sender,
                    messages.c.message_id == message.message_id,
                )
            )
        ).scalar_one_or_none()

    async def add_quarantine(self, item: QuarantineItem) -> None:
        values = _shallow(item)
        values.pop("id")
        async with self._write() as conn:
            await conn.execute(insert(quarantine), values)

    async def find(self, node: str, direction: Direction, message_id: str) -> StoredMessage | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(messages).where(
                        messages.c.node == node,
                        messages.c.direction == direction.value,
                        messages.c.message_id == message_id,
                    )
                )
            ).first()
        return _message_from_row(row) if row else None

    async def list_messages(
        self, node: str, direction: Direction, *, kind: str | None = None, limit: int = 100
    ) -> list[StoredMessage]:
        query = select(messages).where(messages.c.node == node, messages.c.direction == direction.value)
        if kind is not None:
            query = query.where(messages.c.kind == kind)
        query = query.order_by(messages.c.accepted_at.desc(), messages.c.id.desc()).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_message_from_row(r) for r in rows]

    async def due_outbox(self, now: datetime, limit: int) -> list[OutboxItem]:
        query = (
            select(outbox)
            .where(outbox.c.published_at.is_(None), outbox.c.next_attempt_at <= now)
            .order_by(outbox.c.id)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_record_from_row(OutboxItem, r) for r in rows]

    async def mark_published(self, outbox_ids: list[int], at: datetime) -> None:
        if not outbox_ids:
            return
        async with self._write() as conn:
            sent = (
                await conn.execute(
                    update(outbox).where(outbox.c.id.in_(outbox_ids)).values(published_at=at)
                    .returning(outbox.c.sender, outbox.c.message_id)
                )
            ).all()
            if not sent:
                return
            # Keyed by the unique (node, direction, sender, message_id) index: no scan of the messages table.
            await conn.execute(
                update(messages)
                .where(
                    messages.c.node == bindparam("b_sender"),
                    messages.c.direction == Direction.OUT.value,
                    messages.c.sender == bindparam("b_sender"),
                    messages.c.message_id == bindparam("b_id"),
                    messages.c.status == Status.QUEUED.value,
                )
                .values(status=Status.SENT.value),
                [{"b_sender": r.sender, "b_id": r.message_id} for r in sent],
            )

    async def mark_publish_failed(self, outbox_id: int, error: str, next_attempt_at: datetime) -> None:
        async with self._write() as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == outbox_id)
                .values(attempts=outbox.c.attempts + 1, last_error=error[:2000], next_attempt_at=next_attempt_at)
            )

    async def claim_outbox(self, now: datetime, limit: int, lease_until: datetime) -> list[OutboxItem]:
        """Take up to ``limit`` due rows for one relay until ``lease_until``.

        The lease is the row's ``next_attempt_at``: other relays skip the row until then, and if this
        relay dies before it confirms, the row is due again when the lease runs out. On PostgreSQL
        ``FOR UPDATE SKIP LOCKED`` keeps two relays claiming at the same instant from taking the same row.
        """
        due = (
            select(outbox.c.id)
            .where(outbox.c.published_at.is_(None), outbox.c.next_attempt_at <= now)
            .order_by(outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self._write() as conn:
            rows = (
                await conn.execute(
                    update(outbox)
                    .where(outbox.c.id.in_(due.scalar_subquery()))
                    .values(next_attempt_at=lease_until)
                    .returning(*outbox.c)
                )
            ).all()
        return sorted((_record_from_row(OutboxItem, r) for r in rows), key=lambda item: item.id or 0)

    async def outbox_backlog(self, now: datetime) -> OutboxBacklog:
        pending = outbox.c.published_at.is_(None)
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        func.count(),
                        func.count().filter(outbox.c.next_attempt_at <= now),
                        func.count().filter(outbox.c.attempts > 0),
                        func.min(outbox.c.created_at),
                    ).where(pending)
                )
            ).one()
            last_error = (
                await conn.execute(
                    select(outbox.c.last_error)
                    .where(pending, outbox.c.last_error.is_not(None))
                    .order_by(outbox.c.id.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
        return OutboxBacklog(pending=row[0], due=row[1], retrying=row[2], oldest_created_at=_utc(row[3]),
                             last_error=last_error)

    async def list_quarantine(self, limit: int = 100) -> list[QuarantineItem]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(quarantine).order_by(quarantine.c.id.desc()).limit(limit))).all()
        return [_record_from_row(QuarantineItem, r) for r in rows]

    async def get_quarantine(self, item_id: int) -> QuarantineItem | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(quarantine).where(quarantine.c.id == item_id))).first()
        return _record_from_row(QuarantineItem, row) if row else None

    async def mark_quarantine_redriven(self, item_id: int, at: datetime, *, resolved: bool) -> None:
        async with self._write() as conn:
            await conn.execute(
                update(quarantine).where(quarantine.c.id == item_id).values(redriven_at=at, resolved=resolved)
            )

    async def counts(self) -> Counts:
        async with self.engine.connect() as conn:
            by_dir = dict(
                (await conn.execute(select(messages.c.direction, func.count()).group_by(messages.c.direction))).all()
            )
            answered = (
                await conn.execute(
                    select(func.count()).where(
                        and_(messages.c.direction == Direction.OUT.value, messages.c.status == Status.ANSWERED.value,
                             messages.c.kind != "feedback")
                    )
                )
            ).scalar_one()
            pending = (await conn.execute(select(func.count()).where(outbox.c.published_at.is_(None)))).scalar_one()
            quarantined = (await conn.execute(select(func.count()).select_from(quarantine))).scalar_one()
        return Counts(
            sent=by_dir.get(Direction.OUT.value, 0),
            received=by_dir.get(Direction.IN.value, 0),
            answered=answered,
            outbox_pending=pending,
            quarantined=quarantined,
        )

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

