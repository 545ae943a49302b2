"""The message store on SQLAlchemy Core: messages, outbox and quarantine, each change one transaction."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.adapters.sql.direct_pg import direct
from gateway.adapters.sql.in_lists import padded, padded_sorted
from gateway.adapters.sql.engine import is_sqlite, reader, write_transaction
from gateway.adapters.sql.sqlite_hop import HopStatements, write_in_one_hop
from gateway.adapters.sql.sqlite_inline import inline_reads, read_rows
from gateway.adapters.sql.quarantine_caps import count_statement, keep_within_caps, refusal_counts
from gateway.adapters.sql.tables import messages, outbox, quarantine
from gateway.adapters.sql.unnest_insert import column_arrays, unnest_insert
from gateway.group_commit import GroupRunner
from gateway.exchange.errors import AlreadyAnswered, UnknownMessage
from gateway.exchange.refusals import QuarantineCaps, RefusalCount
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
    values = {f.name: m[f.name] for f in fields(cls) if f.name in m}  # a field without a column keeps its default
    for key, value in values.items():
        if isinstance(value, datetime):
            values[key] = _utc(value)
        elif isinstance(value, memoryview):
            values[key] = bytes(value)
    return cls(**values)


_MESSAGE_FIELDS = tuple(f.name for f in fields(StoredMessage))
_OUTBOX_FIELDS = tuple(f.name for f in fields(OutboxItem) if f.name != "id")


def _message_values(message: StoredMessage) -> dict[str, Any]:
    values = {name: getattr(message, name) for name in _MESSAGE_FIELDS}
    values["direction"] = message.direction.value
    values["status"] = message.status.value
    return values


def _outbox_values(item: OutboxItem) -> dict[str, Any]:
    return {name: getattr(item, name) for name in _OUTBOX_FIELDS}


# The hot statements, built once (SQLAlchemy then finds their compiled form in its cache by identity
# of structure, without rebuilding the construct on every call).
_INSERT_MESSAGES = insert(messages)
_INSERT_OUTBOX = insert(outbox)
# Submitted messages and their outbox rows in ONE statement (PostgreSQL, autocommit: atomic on its own):
# one round trip where BEGIN, two INSERTs and COMMIT took four, for a lone clerk's submit as for a batch.
# A batch of deliveries stored in ONE autocommit statement (PostgreSQL): the new rows inserted (a
# message already stored is skipped on the unique identity, as in the transaction), each feedback's
# query marked answered unless answered before, and the rows inserted returned.
_ADD_INCOMING_PG = text(
    "WITH stored AS (" + unnest_insert(messages, _MESSAGE_FIELDS)
    + " ON CONFLICT ON CONSTRAINT uq_messages_identity DO NOTHING"
    " RETURNING node, sender, message_id, kind, in_reply_to, accepted_at, result), "
    f"answered AS (UPDATE messages SET status = '{Status.ANSWERED.value}', answered_by = stored.message_id, "
    "answered_at = stored.accepted_at, result = stored.result FROM stored "
    "WHERE stored.kind = 'feedback' AND stored.in_reply_to IS NOT NULL AND messages.node = stored.node "
    f"AND messages.direction = '{Direction.OUT.value}' AND messages.sender = stored.node "
    "AND messages.message_id = stored.in_reply_to AND messages.recipient = stored.sender "
    "AND messages.answered_by IS NULL) "
    "SELECT node, sender, message_id FROM stored"
)
# Answers (and the plain submits batched with them) in ONE statement (PostgreSQL, autocommit): the
# claim of each answered query — the conditional write of _CLAIM_ANSWER, which decides a race between
# clerks — then the messages and outbox rows of the answers whose claim was won, and of the plain
# submits; the ids of the answers that won come back. Two answers of one batch to one query: the
# UPDATE changes the query's row once, with one of them, and returns that one alone.
_ANSWERS_PG = text(
    "WITH given AS (SELECT * FROM unnest(CAST(:a_node AS VARCHAR[]), CAST(:a_answers AS VARCHAR[]),"
    " CAST(:a_peer AS VARCHAR[]), CAST(:a_id AS VARCHAR[]), CAST(:a_at AS TIMESTAMPTZ[]),"
    " CAST(:a_result AS VARCHAR[])) AS g(node, answers, peer, id, at, result)), "
    f"claimed AS (UPDATE messages SET status = '{Status.ANSWERED.value}', answered_by = given.id, "
    "answered_at = given.at, result = given.result FROM given "
    f"WHERE messages.node = given.node AND messages.direction = '{Direction.IN.value}' "
    "AND messages.message_id = given.answers AND messages.sender = given.peer AND messages.answered_by IS NULL "
    "RETURNING given.id), "
    "kept AS (SELECT id FROM claimed UNION ALL SELECT unnest(CAST(:plain AS VARCHAR[]))), "
    "stored AS (" + unnest_insert(messages, _MESSAGE_FIELDS, prefix="m_")
    + f" AS r({', '.join(_MESSAGE_FIELDS)}) WHERE r.message_id IN (SELECT id FROM kept)), "
    "queued AS (" + unnest_insert(outbox, _OUTBOX_FIELDS, prefix="o_")
    + f" AS r({', '.join(_OUTBOX_FIELDS)}) WHERE r.message_id IN (SELECT id FROM kept)) "
    "SELECT id FROM claimed"
)
_ADD_OUTGOING_PG = text(
    f"WITH stored AS ({unnest_insert(messages, _MESSAGE_FIELDS, prefix='m_')}) "
    + unnest_insert(outbox, _OUTBOX_FIELDS, prefix="o_")
)
# Claims a received query for one answer: the conditional write decides a race between clerks (on
# PostgreSQL the second UPDATE waits for the first's row lock, then finds answered_by set and matches
# nothing; SQLite has one writer). Run one row at a time, so each claim's row count is its own.
_CLAIM_ANSWER = (
    update(messages)
    .where(
        messages.c.node == bindparam("b_node"),
        messages.c.direction == Direction.IN.value,
        messages.c.message_id == bindparam("b_answers"),
        messages.c.sender == bindparam("b_peer"),
        messages.c.answered_by.is_(None),
    )
    .values(status=Status.ANSWERED.value, answered_by=bindparam("b_id"),
            answered_at=bindparam("b_at"), result=bindparam("b_result"))
)
# A received withdrawal claims the query it withdraws, as an answer would (the same conditional write
# on ``answered_by``): of an answer and a withdrawal at once, the database lets one win; the query then
# reads withdrawn, and an answer tried after finds it claimed.
_CLAIM_WITHDRAWN = (
    update(messages)
    .where(
        messages.c.node == bindparam("b_node"),
        messages.c.direction == Direction.IN.value,
        messages.c.message_id == bindparam("b_query"),
        messages.c.sender == bindparam("b_sender"),
        messages.c.kind == "query",
        messages.c.answered_by.is_(None),
    )
    .values(status=Status.WITHDRAWN.value, answered_by=bindparam("b_id"))
)
# The residence township's withdrawal of its own query: only while no reply was linked to it.
_WITHDRAW_SENT = (
    update(messages)
    .where(
        messages.c.node == bindparam("b_node"),
        messages.c.direction == Direction.OUT.value,
        messages.c.sender == bindparam("b_node"),
        messages.c.message_id == bindparam("b_query"),
        messages.c.kind == "query",
        messages.c.answered_by.is_(None),
        messages.c.status != Status.WITHDRAWN.value,
    )
    .values(status=Status.WITHDRAWN.value)
)


def _withdrawal_claim(m: StoredMessage) -> dict[str, Any]:
    return {"b_node": m.node, "b_query": m.in_reply_to, "b_sender": m.sender, "b_id": m.message_id}


_WINNER = select(messages.c.answered_by).where(
    messages.c.node == bindparam("b_node"),
    messages.c.direction == Direction.IN.value,
    messages.c.message_id == bindparam("b_answers"),
)

# Lookups with IN lists as expanding parameters (padded, in_lists.py): built once, so that they are
# compiled once for either database (and, on PostgreSQL, each list is one array: direct_pg.py).
_FIND_MANY = select(messages).where(
    messages.c.node.in_(bindparam("b_nodes", expanding=True)),
    messages.c.direction == bindparam("b_direction"),
    messages.c.message_id.in_(bindparam("b_ids", expanding=True)),
)
_STORED_SHAS = select(messages.c.node, messages.c.sender, messages.c.message_id, messages.c.envelope_sha256).where(
    messages.c.node.in_(bindparam("b_nodes", expanding=True)),
    messages.c.direction == Direction.IN.value,
    messages.c.sender.in_(bindparam("b_senders", expanding=True)),
    messages.c.message_id.in_(bindparam("b_ids", expanding=True)),
)


def _claim_outbox(of_senders: bool) -> Any:
    """Due rows leased to one relay (see claim_outbox); ``of_senders``: only the given senders' rows."""
    due = select(outbox.c.id).where(outbox.c.published_at.is_(None), outbox.c.next_attempt_at <= bindparam("b_now"))
    if of_senders:
        due = due.where(outbox.c.sender.in_(bindparam("b_senders", expanding=True)))
    due = due.order_by(outbox.c.id).limit(bindparam("b_limit")).with_for_update(skip_locked=True)
    return (update(outbox).where(outbox.c.id.in_(due.scalar_subquery()))
            .values(next_attempt_at=bindparam("b_lease")).returning(*outbox.c))


_CLAIM_OUTBOX = {False: _claim_outbox(False), True: _claim_outbox(True)}

# Confirmed outbox rows marked published; their (sender, message id) come back for the messages.
_MARK_PUBLISHED_SQLITE = (
    update(outbox)
    .where(outbox.c.id.in_(bindparam("ids", expanding=True)))
    .values(published_at=bindparam("at"))
    .returning(outbox.c.sender, outbox.c.message_id)
)
# The confirmed rows of a relay pass published and their messages sent, in ONE statement (run in
# autocommit, so it is its own transaction). The messages are matched per sending node with
# ``message_id = ANY(ids)`` on the unique (node, direction, sender, message_id) index, from the rows the
# outbox UPDATE returned: a join row by row to the ids could, with the plan chosen before the first
# ANALYZE of a fresh table, re-read the node's rows once per id (1.3 s for 50 rows after 3,500). Not worth a wait for the WAL flush (set_config(…, true): for this statement's transaction
# only): a mark lost with a database crash only lets its rows fall due again when their lease runs out,
# and the recipient's idempotent inbox absorbs the second copy. (Submits and the inbox keep synchronous
# commits.)
_MARK_PUBLISHED_AND_SENT_PG = text(
    "WITH published AS ("
    " UPDATE outbox SET published_at = :at WHERE outbox.id = ANY(CAST(:ids AS BIGINT[]))"
    " RETURNING outbox.sender, outbox.message_id),"
    " by_sender AS (SELECT sender, array_agg(message_id) AS ids FROM published GROUP BY sender),"
    " no_wait AS (SELECT set_config('synchronous_commit', 'off', true) AS setting) "
    "UPDATE messages SET status = :sent FROM no_wait WHERE messages.id IN ("
    " SELECT sent.id FROM by_sender, LATERAL ("
    "  SELECT m.id FROM messages AS m WHERE m.node = by_sender.sender AND m.direction = :out"
    "  AND m.sender = by_sender.sender AND m.message_id = ANY(by_sender.ids) AND m.status = :queued OFFSET 0"
    " ) AS sent)"
).bindparams(sent=Status.SENT.value, out=Direction.OUT.value, queued=Status.QUEUED.value)
# SQLite: one UPDATE per message on the unique index (executemany; no network round trips there).
_MARK_SENT_SQLITE = (
    update(messages)
    .where(
        messages.c.node == bindparam("b_sender"),
        messages.c.direction == Direction.OUT.value,
        messages.c.sender == bindparam("b_sender"),
        messages.c.message_id == bindparam("b_id"),
        messages.c.status == Status.QUEUED.value,
    )
    .values(status=Status.SENT.value)
)

_Outgoing = tuple[StoredMessage, OutboxItem, str | None, "asyncio.Future[None]"]


class _OutgoingBatcher:
    """Group commit for ``add_outgoing``: the calls that arrive while a write is under way share the
    next transaction.

    Nothing waits for a timer: a lone submit is written at once, exactly as before. Under load, the
    submits that came in during one commit go together in the next (one multi-row INSERT for the
    messages, one for their outbox rows, one UPDATE for the answered ones), so a clerk's message and its
    outbox row are still committed in one transaction, and each caller returns only after the commit
    that holds its rows. When a shared transaction fails, every call is retried in a transaction of
    its own, so only the call at fault sees the error.
    """

    def __init__(self, store: "SqlMessageStore", *, max_batch: int, writers: int) -> None:
        self.store = store
        self.max_batch = max_batch
        self.writers = writers
        self._pending: list[_Outgoing] = []
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0

    async def add(self, message: StoredMessage, item: OutboxItem, answers: str | None) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append((message, item, answers, future))
        if self._running < self.writers:
            self._running += 1
            task = loop.create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # A caller that is cancelled while its transaction runs does not roll it back: the message is
        # then committed and will be sent, as when the cancellation comes just after a commit.
        await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                live = [entry for entry in batch if not entry[3].done()]
                if not live:
                    continue
                try:
                    refused = await self.store._add_outgoing_many(live)
                except Exception as exc:
                    if len(live) == 1:
                        _settle(live[0][3], exc)
                        continue
                    for entry in live:  # each alone: only the faulty one fails
                        try:
                            alone = await self.store._add_outgoing_many([entry])
                        except Exception as exc:
                            _settle(entry[3], exc)
                        else:
                            _settle(entry[3], alone.get(0))
                else:
                    self.batches += 1
                    # A second answer to a query lost its claim: it alone fails, after the commit that
                    # holds the others (and the winner, when they shared the transaction).
                    for index, entry in enumerate(live):
                        _settle(entry[3], refused.get(index))
        finally:
            self._running -= 1


def _settle(future: "asyncio.Future[None]", error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _refusal(answer: StoredMessage, answers: str | None, winner: str | None) -> Exception:
    """Why an answer lost its claim on the query it answers."""
    if winner is None:
        return UnknownMessage(f"{answer.node} received no query or notification {answers} from {answer.recipient}")
    return AlreadyAnswered(f"{answers} was already answered by {winner}", answered_by=winner)


def _outgoing_arrays(batch: Sequence[_Outgoing]) -> dict[str, list[Any]]:
    """The messages and outbox rows of a batch as the array parameters of _ADD_OUTGOING_PG / _ANSWERS_PG."""
    return {**column_arrays([_message_values(m) for m, _, _, _ in batch], _MESSAGE_FIELDS, prefix="m_"),
            **column_arrays([_outbox_values(o) for _, o, _, _ in batch], _OUTBOX_FIELDS, prefix="o_")}


def _first_of_each(batch: Sequence[StoredMessage]) -> dict[tuple[str, str, str], StoredMessage]:
    """The first delivery of each (node, sender, message id) in the batch: the one offered to the table."""
    first: dict[tuple[str, str, str], StoredMessage] = {}
    for m in batch:
        first.setdefault((m.node, m.sender, m.message_id), m)
    return first


def _incoming_results(batch: Sequence[StoredMessage], first: Mapping[tuple[str, str, str], StoredMessage],
                      known: Mapping[tuple[str, str, str], str]) -> list[IncomingResult]:
    """Per delivery: stored (the first of its identity, new to the table), a duplicate (the same bytes
    as the one stored or offered first) or a conflict (other bytes under the same id: a replay)."""
    results: list[IncomingResult] = []
    offered: set[int] = set()
    for m in batch:
        key = (m.node, m.sender, m.message_id)
        original = first[key]
        if m is original and id(m) not in offered and key not in known:
            offered.add(id(m))
            results.append(IncomingResult.STORED)
            continue
        sha = known.get(key, original.envelope_sha256)
        results.append(IncomingResult.DUPLICATE if sha == m.envelope_sha256 else IncomingResult.CONFLICT)
    return results


def _withdrawals(batch: Sequence[StoredMessage]) -> list[StoredMessage]:
    return [m for m in batch if m.kind == "withdrawal" and m.in_reply_to]


def _one_feedback_per_query(batch: Sequence[StoredMessage]) -> bool:
    """No two feedbacks of the batch answer the same query: which of two came first is the
    transaction's order to decide, which one statement could not tell."""
    answered = [(m.node, m.in_reply_to) for m in batch if m.kind == "feedback" and m.in_reply_to]
    return len(answered) == len(set(answered))


class SqlMessageStore:
    def __init__(self, engine: AsyncEngine, *, outgoing_batch: int = 256,
                 quarantine_caps: QuarantineCaps = QuarantineCaps()) -> None:
        self.engine = engine
        self.quarantine_caps = quarantine_caps
        self._reader = reader(engine)  # one-shot reads: no BEGIN … ROLLBACK on PostgreSQL
        self._oneshot = direct(engine)  # the hot path's one-shot statements, straight on asyncpg (PostgreSQL)
        self._inline = inline_reads(engine)  # lookups of a few messages on the loop's thread (SQLite)
        self._finds: GroupRunner[tuple[str, Direction, str], StoredMessage | None] = GroupRunner(self._find_group)
        # Two transactions in flight on PostgreSQL (one commits while the next batch gathers); SQLite
        # has one writer anyway.
        self._sqlite = is_sqlite(str(engine.url))
        identity = [messages.c.node, messages.c.direction, messages.c.sender, messages.c.message_id]
        dialect_insert = sqlite_insert if self._sqlite else pg_insert
        self._insert_incoming = (
            dialect_insert(messages).on_conflict_do_nothing(index_elements=identity)
            .returning(messages.c.node, messages.c.sender, messages.c.message_id)
        )
        self._count_refusals = count_statement(self._sqlite)
        writers = 1 if self._sqlite else 2
        self._outgoing = _OutgoingBatcher(self, max_batch=outgoing_batch, writers=writers)

    def _write(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        return write_transaction(self.engine)

    async def add_outgoing(self, message: StoredMessage, item: OutboxItem, *, answers: str | None = None) -> None:
        """Store the message and its outbox row in one transaction (shared with concurrent calls)."""
        await self._outgoing.add(message, item, answers)

    async def _add_outgoing_many(self, batch: Sequence[_Outgoing]) -> dict[int, Exception]:
        """Write a batch in one transaction; returns the refusals (by index in ``batch``) of the answers
        that lost their claim, whose rows are then not written."""
        refused: dict[int, Exception] = {}
        if not self._sqlite and all(answers is None for _, _, answers, _ in batch):
            async with self._oneshot.connect() as conn:
                await conn.execute(_ADD_OUTGOING_PG, _outgoing_arrays(batch))
            return refused
        if not self._sqlite:
            return await self._add_answers_pg(batch)
        # The batch and its commit in one hop to the connection's thread, however many claims.
        return await write_in_one_hop(self.engine, lambda run: self._add_outgoing_sqlite(run, batch))

    @staticmethod
    def _add_outgoing_sqlite(run: HopStatements, batch: Sequence[_Outgoing]) -> dict[int, Exception]:
        # Claims first, in a fixed order, so two transactions claiming the same queries never wait on
        # each other crosswise (a deadlock would fail the whole batch, to be retried one by one).
        refused: dict[int, Exception] = {}
        claims = sorted(
            (i for i, (_, _, answers, _) in enumerate(batch) if answers is not None),
            key=lambda i: (batch[i][0].node, batch[i][2] or ""),
        )
        for i in claims:
            m, _, answers, _ = batch[i]
            params = {"b_node": m.node, "b_answers": answers, "b_peer": m.recipient, "b_id": m.message_id,
                      "b_at": m.accepted_at, "b_result": m.result}
            if run.execute(_CLAIM_ANSWER, params).rowcount == 1:
                continue
            refused[i] = _refusal(m, answers, run.execute(_WINNER, params).scalar())
        kept = [entry for i, entry in enumerate(batch) if i not in refused]
        run.executemany(_INSERT_MESSAGES, [_message_values(m) for m, _, _, _ in kept])
        run.executemany(_INSERT_OUTBOX, [_outbox_values(item) for _, item, _, _ in kept])
        return refused

    async def _add_answers_pg(self, batch: Sequence[_Outgoing]) -> dict[int, Exception]:
        """A batch holding answers in one statement (_ANSWERS_PG); the refusals of the answers that
        lost their claim (each told who answered first, read after the statement)."""
        answering = [i for i, (_, _, answers, _) in enumerate(batch) if answers is not None]
        params = {
            **_outgoing_arrays(batch),
            "a_node": [batch[i][0].node for i in answering],
            "a_answers": [batch[i][2] for i in answering],
            "a_peer": [batch[i][0].recipient for i in answering],
            "a_id": [batch[i][0].message_id for i in answering],
            "a_at": [batch[i][0].accepted_at for i in answering],
            "a_result": [batch[i][0].result for i in answering],
            "plain": [m.message_id for m, _, answers, _ in batch if answers is None],
        }
        refused: dict[int, Exception] = {}
        async with self._oneshot.connect() as conn:
            won = set((await conn.execute(_ANSWERS_PG, params)).scalars())
            for i in answering:
                m, _, answers, _ = batch[i]
                if m.message_id not in won:
                    winner = (await conn.execute(_WINNER, {"b_node": m.node, "b_answers": answers})).scalar_one_or_none()
                    refused[i] = _refusal(m, answers, winner)
        return refused

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
                            messages.c.answered_by.is_(None),  # a second feedback never replaces the first
                        )
                        .values(status=Status.ANSWERED.value, answered_by=message.message_id,
                                answered_at=message.accepted_at, result=message.result)
                    )
                if message.kind == "withdrawal" and message.in_reply_to:
                    await conn.execute(_CLAIM_WITHDRAWN, _withdrawal_claim(message))
                return IncomingResult.STORED
        except IntegrityError:
            # Two consumers raced on the same delivery: the other one stored it.
            async with self._reader.connect() as conn:
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
            if not self._sqlite and not refused and _one_feedback_per_query(batch) and not _withdrawals(batch):
                return await self._add_incoming_batch_pg(batch)
            async with self._write() as conn:
                return await self._add_incoming_batch(conn, batch, refused)
        except IntegrityError:
            # Another consumer stored one of them meanwhile: one transaction each settles who was first.
            results = [await self.add_incoming(m) for m in batch]
            for item in refused:
                await self.add_quarantine(item)
            return results

    async def _add_incoming_batch_pg(self, batch: Sequence[StoredMessage]) -> list[IncomingResult]:
        """The batch in one statement (no BEGIN and COMMIT round trips); the stored envelopes' digests
        of the rare deliveries stored before are read after it (a stored message never changes)."""
        first = _first_of_each(batch)
        params = column_arrays([_message_values(m) for m in first.values()], _MESSAGE_FIELDS)
        async with self._oneshot.connect() as conn:
            inserted = {(r.node, r.sender, r.message_id) for r in await conn.execute(_ADD_INCOMING_PG, params)}
            stored_before = [key for key in first if key not in inserted]
            known = await self._stored_shas(conn, stored_before) if stored_before else {}
        if len(known) != len(stored_before):
            raise RuntimeError("a message the inbox refused as stored is not there")  # → one by one
        return _incoming_results(batch, first, known)

    async def _add_incoming_batch(
        self, conn: AsyncConnection, batch: Sequence[StoredMessage], refused: Sequence[QuarantineItem]
    ) -> list[IncomingResult]:
        # The first of each (node, sender, message id) in the batch is offered to the table; a repeat
        # within the batch is settled against it (same bytes: duplicate; other bytes: conflict).
        first = _first_of_each(batch)
        new: list[StoredMessage] = []
        known: dict[tuple[str, str, str], str] = {}  # what the table held before: key → its sha
        if first:
            # INSERT … ON CONFLICT DO NOTHING on the unique identity: the database finds what is
            # already stored through the unique index (no scan), and in the same round trip.
            inserted = {
                (r.node, r.sender, r.message_id)
                for r in await conn.execute(self._insert_incoming, [_message_values(m) for m in first.values()])
            }
            new = [m for key, m in first.items() if key in inserted]
            stored_before = [key for key in first if key not in inserted]
            if stored_before:  # redeliveries and replays: rare, read their stored sha
                known = await self._stored_shas(conn, stored_before)
                if len(known) != len(stored_before):
                    raise RuntimeError("a message the inbox refused as stored is not there")  # → one by one
        results = _incoming_results(batch, first, known)
        answers = [m for m in new if m.kind == "feedback" and m.in_reply_to]
        if answers:
            await conn.execute(
                update(messages)
                .where(
                    messages.c.node == bindparam("b_node"),
                    messages.c.direction == Direction.OUT.value,
                    messages.c.sender == bindparam("b_node"),  # always so when sent: the unique index serves
                    messages.c.message_id == bindparam("b_reply"),
                    messages.c.recipient == bindparam("b_sender"),
                    messages.c.answered_by.is_(None),  # a second feedback never replaces the first
                )
                .values(status=Status.ANSWERED.value, answered_by=bindparam("b_id"),
                        answered_at=bindparam("b_at"), result=bindparam("b_result")),
                [{"b_node": m.node, "b_reply": m.in_reply_to, "b_sender": m.sender, "b_id": m.message_id,
                  "b_at": m.accepted_at, "b_result": m.result} for m in answers],
            )
        withdrawals = _withdrawals(new)
        if withdrawals:
            await conn.execute(_CLAIM_WITHDRAWN, [_withdrawal_claim(m) for m in withdrawals])
        if refused:
            await keep_within_caps(conn, refused, self.quarantine_caps, self._count_refusals)
        return results

    @staticmethod
    async def _stored_shas(conn: Any, keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], str]:
        rows = await conn.execute(_STORED_SHAS, {"b_nodes": padded_sorted(k[0] for k in keys),
                                                 "b_senders": padded_sorted(k[1] for k in keys),
                                                 "b_ids": padded_sorted(k[2] for k in keys)})
        wanted = set(keys)
        return {(r.node, r.sender, r.message_id): r.envelope_sha256 for r in rows
                if (r.node, r.sender, r.message_id) in wanted}

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

    async def add_withdrawal(self, message: StoredMessage, item: OutboxItem) -> bool:
        """The withdrawal of a sent query, with its outbox row, in one transaction: written only when the
        conditional write marks the query withdrawn (no reply linked to it, not withdrawn before);
        False, and nothing written, otherwise."""
        async with self._write() as conn:
            claimed = await conn.execute(_WITHDRAW_SENT, {"b_node": message.node, "b_query": message.in_reply_to})
            if claimed.rowcount != 1:
                return False
            await conn.execute(insert(messages), _message_values(message))
            await conn.execute(insert(outbox), _outbox_values(item))
        return True

    async def add_quarantine(self, item: QuarantineItem) -> None:
        """Count the refusal; store it if its bucket, its sender and the quarantine have room."""
        async with self._write() as conn:
            await keep_within_caps(conn, [item], self.quarantine_caps, self._count_refusals)

    async def refusal_counts(self, since: datetime, limit: int = 200) -> list[RefusalCount]:
        return await refusal_counts(self.engine, since, limit)

    async def find(self, node: str, direction: Direction, message_id: str) -> StoredMessage | None:
        """One message; lookups made at the same moment (concurrent answers, say) share one read."""
        return await self._finds((node, direction, message_id))

    async def _find_group(self, keys: Sequence[tuple[str, Direction, str]]) -> list[StoredMessage | None]:
        found: dict[tuple[str, Direction, str], StoredMessage] = {}
        for direction in {k[1] for k in keys}:
            for (node, message_id), m in (await self.find_many(direction, [(k[0], k[2]) for k in keys if k[1] is direction])).items():
                found[(node, direction, message_id)] = m
        return [found.get(k) for k in keys]

    async def find_many(
        self, direction: Direction, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], StoredMessage]:
        """One read for many (node, message id) pairs, through the (node, direction, message_id) index."""
        wanted = set(keys)
        if not wanted:
            return {}
        params = {"b_nodes": padded_sorted(k[0] for k in wanted), "b_direction": direction.value,
                  "b_ids": padded_sorted(k[1] for k in wanted)}
        rows = await read_rows(self._inline, self._oneshot, _FIND_MANY, params)
        found = (_message_from_row(r) for r in rows)
        return {(m.node, m.message_id): m for m in found if (m.node, m.message_id) in wanted}

    async def list_messages(
        self, node: str, direction: Direction, *, kind: str | None = None, limit: int = 100
    ) -> list[StoredMessage]:
        query = select(messages).where(messages.c.node == node, messages.c.direction == direction.value)
        if kind is not None:
            query = query.where(messages.c.kind == kind)
        query = query.order_by(messages.c.accepted_at.desc(), messages.c.id.desc()).limit(limit)
        async with self._reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_message_from_row(r) for r in rows]

    async def due_outbox(self, now: datetime, limit: int) -> list[OutboxItem]:
        query = (
            select(outbox)
            .where(outbox.c.published_at.is_(None), outbox.c.next_attempt_at <= now)
            .order_by(outbox.c.id)
            .limit(limit)
        )
        async with self._reader.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_record_from_row(OutboxItem, r) for r in rows]

    async def mark_published(self, outbox_ids: list[int], at: datetime) -> None:
        """Mark confirmed outbox rows published and their messages sent, in one transaction.

        Set-based on PostgreSQL: one UPDATE for the rows, one per sending node for the messages (not
        one per message).
        """
        if not outbox_ids:
            return
        if self._sqlite:
            async with self._write() as conn:
                sent = (await conn.execute(_MARK_PUBLISHED_SQLITE, {"ids": padded(outbox_ids), "at": at})).all()
                if sent:
                    await conn.execute(_MARK_SENT_SQLITE, [{"b_sender": r.sender, "b_id": r.message_id} for r in sent])
            return
        # One statement in autocommit: no BEGIN, SET LOCAL or COMMIT round trips (at a few messages a
        # second each relay pass marks one row, and the five round trips it took were a fifth of a
        # message's statements). A single statement is its own transaction, so the rows and their
        # messages are still marked together.
        async with self._oneshot.connect() as conn:
            await conn.execute(_MARK_PUBLISHED_AND_SENT_PG, {"ids": outbox_ids, "at": at})

    async def mark_publish_failed(self, outbox_id: int, error: str, next_attempt_at: datetime) -> None:
        async with self._write() as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == outbox_id)
                .values(attempts=outbox.c.attempts + 1, last_error=error[:2000], next_attempt_at=next_attempt_at)
            )

    async def claim_outbox(
        self, now: datetime, limit: int, lease_until: datetime, *, senders: Sequence[str] | None = None
    ) -> list[OutboxItem]:
        """Take up to ``limit`` due rows for one relay until ``lease_until``.

        The lease is the row's ``next_attempt_at``: other relays skip the row until then, and if this
        relay dies before it confirms, the row is due again when the lease runs out. On PostgreSQL
        ``FOR UPDATE SKIP LOCKED`` keeps two relays claiming at the same instant from taking the same row.

        ``senders``: the townships the calling gateway hosts. Several gateways on one database then
        each publish only their own townships' rows; a township moved to another gateway (a gateway
        removed, its townships given to another) has its waiting rows published by the new one.
        """
        params: dict[str, Any] = {"b_now": now, "b_limit": limit, "b_lease": lease_until}
        if senders is not None:
            params["b_senders"] = codes = sorted(set(senders))
            if not codes:
                return []
        # One statement: on PostgreSQL it runs in autocommit (its own transaction, without the BEGIN and
        # COMMIT round trips); SQLite's writes go through the one writer.
        async with (self._write() if self._sqlite else self._oneshot.connect()) as conn:
            rows = (await conn.execute(_CLAIM_OUTBOX[senders is not None], params)).all()
        return sorted((_record_from_row(OutboxItem, r) for r in rows), key=lambda item: item.id or 0)

    async def outbox_backlog(self, now: datetime) -> OutboxBacklog:
        pending = outbox.c.published_at.is_(None)
        async with self._reader.connect() as conn:
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
        async with self._reader.connect() as conn:
            rows = (await conn.execute(select(quarantine).order_by(quarantine.c.id.desc()).limit(limit))).all()
        return [_record_from_row(QuarantineItem, r) for r in rows]

    async def get_quarantine(self, item_id: int) -> QuarantineItem | None:
        async with self._reader.connect() as conn:
            row = (await conn.execute(select(quarantine).where(quarantine.c.id == item_id))).first()
        return _record_from_row(QuarantineItem, row) if row else None

    async def claim_quarantine_redrive(self, item_id: int, at: datetime, stale_before: datetime) -> bool:
        """Take an unresolved item for one re-drive (conditional write: of two at once, one wins; a claim
        older than ``stale_before`` is that of a re-drive that died, and may be taken over)."""
        async with self._write() as conn:
            written = await conn.execute(
                update(quarantine)
                .where(
                    quarantine.c.id == item_id,
                    quarantine.c.resolved.is_(False),
                    or_(quarantine.c.redrive_started_at.is_(None), quarantine.c.redrive_started_at < stale_before),
                )
                .values(redrive_started_at=at)
            )
        return written.rowcount == 1

    async def mark_quarantine_redriven(self, item_id: int, at: datetime, *, resolved: bool) -> None:
        async with self._write() as conn:
            await conn.execute(
                update(quarantine).where(quarantine.c.id == item_id)
                .values(redriven_at=at, resolved=resolved, redrive_started_at=None)
            )

    async def counts(self) -> Counts:
        async with self._reader.connect() as conn:
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
        async with self._reader.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def message_page(
        self, node: str, direction: Direction, *, limit: int, after: Any = None,
        statuses: frozenset[Status] | None = None, except_kinds: frozenset[str] = frozenset(),
    ) -> Any:
        """A page of ``node``'s messages, newest first, strictly after the cursor ``after``
        (``gateway.access.paging``; the query is ``gateway/adapters/sql/message_pages.py``)."""
        from gateway.adapters.sql.message_pages import message_page

        return await message_page(self.engine, node, direction, limit=limit, after=after, statuses=statuses,
                                  except_kinds=except_kinds)
