"""The message store's hot paths on both databases: grouped submits and the relay's set-based marking."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from gateway.adapters.sql.direct_pg import direct
from gateway.adapters.sql.engine import create_engine, create_schema, is_sqlite
from gateway.adapters.sql.store import SqlMessageStore
from gateway.adapters.sql.tables import messages, outbox
from gateway.exchange.records import Direction, OutboxItem, Status, StoredMessage
from tests.gateways import T0
from tests.statements import statements_run

pytestmark = pytest.mark.database

SENDER, RECIPIENT = "110101001", "120101001"


def outgoing(message_id: str | None = None, *, node: str = SENDER) -> tuple[StoredMessage, OutboxItem]:
    message_id = message_id or uuid.uuid4().hex
    envelope = os.urandom(64)
    message = StoredMessage(
        node=node, direction=Direction.OUT, message_id=message_id, kind="query", sender=node,
        recipient=RECIPIENT, in_reply_to=None, created_at=T0, accepted_at=T0, envelope_sha256="0" * 64,
        envelope=envelope, body_sealed=b"sealed", subject="s", status=Status.QUEUED, result=None,
    )
    item = OutboxItem(message_id=message_id, sender=node, routing_key=RECIPIENT, kind="query", envelope=envelope,
                      created_at=T0, next_attempt_at=T0)
    return message, item


@pytest.fixture
async def store(database_url: str):
    engine = create_engine(database_url)
    await create_schema(engine)
    yield SqlMessageStore(engine)
    await engine.dispose()


async def count(store: SqlMessageStore, table) -> int:  # type: ignore[no-untyped-def]
    async with store.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def test_concurrent_submits_share_transactions_and_each_keeps_its_outbox_row(store: SqlMessageStore) -> None:
    rows = [outgoing() for _ in range(300)]
    await asyncio.gather(*(store.add_outgoing(m, o) for m, o in rows))
    assert await count(store, messages) == await count(store, outbox) == 300
    assert store._outgoing.batches < 300  # grouped: fewer transactions than calls
    async with store.engine.connect() as conn:
        pairs = (await conn.execute(select(outbox.c.message_id, outbox.c.envelope))).all()
    assert {(m.message_id, m.envelope) for m, _ in rows} == {(p.message_id, bytes(p.envelope)) for p in pairs}


async def test_a_lone_submit_is_written_at_once(store: SqlMessageStore) -> None:
    message, item = outgoing()
    await store.add_outgoing(message, item)
    assert await store.find(SENDER, Direction.OUT, message.message_id) == message
    assert [o.message_id for o in await store.due_outbox(T0, 10)] == [message.message_id]


async def test_one_faulty_submit_in_a_shared_transaction_fails_alone(store: SqlMessageStore) -> None:
    taken, taken_item = outgoing("taken")
    await store.add_outgoing(taken, taken_item)
    good = [outgoing() for _ in range(20)]
    duplicate = outgoing("taken")  # same id again: the unique outbox.message_id refuses it
    calls = [store.add_outgoing(m, o) for m, o in good[:10]] + [store.add_outgoing(*duplicate)]
    calls += [store.add_outgoing(m, o) for m, o in good[10:]]
    results = await asyncio.gather(*calls, return_exceptions=True)
    failures = [r for r in results if isinstance(r, Exception)]
    assert len(failures) == 1 and results[10] is failures[0]
    assert await count(store, messages) == await count(store, outbox) == 21


async def test_a_cancelled_caller_does_not_hold_up_the_others(store: SqlMessageStore) -> None:
    rows = [outgoing() for _ in range(50)]
    tasks = [asyncio.create_task(store.add_outgoing(m, o)) for m, o in rows]
    tasks[3].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(isinstance(r, asyncio.CancelledError) for r in results) <= 1
    assert await count(store, outbox) >= 49  # the cancelled one may or may not have been committed


async def test_mark_published_marks_the_rows_and_their_messages_sent(store: SqlMessageStore) -> None:
    rows = [outgoing() for _ in range(40)] + [outgoing(node="110101002")]
    await asyncio.gather(*(store.add_outgoing(m, o) for m, o in rows))
    claimed = await store.claim_outbox(T0, 30, T0 + timedelta(seconds=60))
    assert len(claimed) == 30
    await store.mark_published([c.id for c in claimed if c.id is not None], T0 + timedelta(seconds=1))
    published = {c.message_id for c in claimed}
    for message, _ in rows:
        stored = await store.find(message.node, Direction.OUT, message.message_id)
        assert stored is not None
        assert stored.status is (Status.SENT if message.message_id in published else Status.QUEUED)
    later = T0 + timedelta(seconds=120)  # leases run out: only the unpublished rows are due again
    assert {o.message_id for o in await store.due_outbox(later, 100)} == {m.message_id for m, _ in rows} - published
    await store.mark_published([c.id for c in claimed if c.id is not None], later)  # again: harmless
    assert (await store.counts()).outbox_pending == len(rows) - 30


async def test_one_mark_covers_the_rows_of_every_township_the_gateway_hosts(store: SqlMessageStore) -> None:
    rows = [outgoing(node=code) for code in ("110101001", "110101002", "110101003") for _ in range(5)]
    for message, item in rows:
        await store.add_outgoing(message, item)
    claimed = await store.claim_outbox(T0, 100, T0 + timedelta(seconds=60))
    assert len(claimed) == len(rows)

    await store.mark_published([c.id for c in claimed if c.id is not None], T0 + timedelta(seconds=1))

    for message, _ in rows:
        stored = await store.find(message.node, Direction.OUT, message.message_id)
        assert stored is not None and stored.status is Status.SENT, message.node
    assert (await store.counts()).outbox_pending == 0


def incoming(message_id: str, sha: str = "a" * 64, *, sender: str = SENDER) -> StoredMessage:
    return StoredMessage(
        node=RECIPIENT, direction=Direction.IN, message_id=message_id, kind="query", sender=sender,
        recipient=RECIPIENT, in_reply_to=None, created_at=T0, accepted_at=T0, envelope_sha256=sha,
        envelope=sha.encode(), body_sealed=b"sealed", subject="s", status=Status.RECEIVED, result=None,
    )


async def test_incoming_batch_stores_the_new_and_tells_redeliveries_from_replays(store: SqlMessageStore) -> None:
    from gateway.exchange.records import IncomingResult as R

    assert await store.add_incoming_batch([incoming("m1")]) == [R.STORED]
    m2, m3 = incoming("m2"), incoming("m3")
    batch = [m2, incoming("m1"), incoming("m1", "b" * 64), m2, m3, incoming("m3", "c" * 64),
             incoming("m2", sender="110101002")]  # same id from another sender: another message
    assert await store.add_incoming_batch(batch) == [R.STORED, R.DUPLICATE, R.CONFLICT, R.DUPLICATE, R.STORED,
                                                     R.CONFLICT, R.STORED]
    assert (await store.counts()).received == 4
    stored = await store.find(RECIPIENT, Direction.IN, "m1")
    assert stored is not None and stored.envelope_sha256 == "a" * 64  # the replay changed nothing


async def test_lookups_of_every_batch_size_share_a_few_statement_texts(store: SqlMessageStore) -> None:
    """An IN list padded to a power of two: batches of 1–100 are eight SQL texts on SQLite, not a
    hundred; on PostgreSQL (direct_pg) each list is one array parameter, so one text. The drivers'
    caches of prepared statements hold them all and do not grow with the batch sizes seen."""
    rows = [outgoing() for _ in range(100)]
    await asyncio.gather(*(store.add_outgoing(m, o) for m, o in rows))
    texts: set[str] = set()
    postgres = not is_sqlite(str(store.engine.url))
    before = direct(store.engine).prepared_texts() if postgres else set()
    with statements_run(store.engine, texts.add):
        for size in range(1, 101):
            found = await store.find_many(Direction.OUT, [(SENDER, m.message_id) for m, _ in rows[:size]])
            assert set(found) == {(SENDER, m.message_id) for m, _ in rows[:size]}
    assert len(texts) == (1 if postgres else 8)  # one array, or 1, 2, 4, … 128 values
    if postgres:
        assert len(direct(store.engine).prepared_texts() - before) == 1


async def test_on_postgresql_a_submit_and_its_outbox_row_are_one_statement(postgres_url: str) -> None:
    """BEGIN, two INSERTs and COMMIT were four round trips for every lone submit; one statement in
    autocommit writes both tables, atomic on its own."""
    engine = create_engine(postgres_url)
    await create_schema(engine)
    store = SqlMessageStore(engine)
    statements: list[str] = []
    try:
        message, item = outgoing()
        with statements_run(engine, lambda sql: statements.append(sql.split(None, 1)[0].upper())):
            await store.add_outgoing(message, item)
        assert statements == ["WITH"]
        assert await store.find(SENDER, Direction.OUT, message.message_id) == message
        assert [(o.message_id, o.envelope) for o in await store.due_outbox(T0, 10)] == [(message.message_id, item.envelope)]
    finally:
        await engine.dispose()


def feedback(message_id: str, answers: str, *, result: str = "found") -> StoredMessage:
    """A feedback from RECIPIENT to SENDER answering the query ``answers`` that SENDER sent."""
    return StoredMessage(
        node=SENDER, direction=Direction.IN, message_id=message_id, kind="feedback", sender=RECIPIENT,
        recipient=SENDER, in_reply_to=answers, created_at=T0, accepted_at=T0 + timedelta(minutes=1),
        envelope_sha256="f" * 64, envelope=message_id.encode(), body_sealed=b"sealed", subject=None,
        status=Status.RECEIVED, result=result,
    )


async def test_a_stored_feedback_marks_its_query_answered_and_the_first_answer_stays(store: SqlMessageStore) -> None:
    from gateway.exchange.records import IncomingResult as R

    queries = [outgoing() for _ in range(3)]
    for m, o in queries:
        await store.add_outgoing(m, o)
    (q1, _), (q2, _), (q3, _) = queries
    batch = [feedback("f1", q1.message_id), feedback("f2", q2.message_id, result="not_found")]
    assert await store.add_incoming_batch(batch) == [R.STORED, R.STORED]
    later = [feedback("f1-again", q1.message_id, result="not_found"),  # a second answer to q1
             feedback("f3", q3.message_id), feedback("f3-again", q3.message_id, result="not_found")]
    assert await store.add_incoming_batch(later) == [R.STORED, R.STORED, R.STORED]
    answered = {m.message_id: await store.find(SENDER, Direction.OUT, m.message_id) for m in (q1, q2, q3)}
    assert {k: (v.status, v.answered_by, v.result) for k, v in answered.items() if v} == {
        q1.message_id: (Status.ANSWERED, "f1", "found"),
        q2.message_id: (Status.ANSWERED, "f2", "not_found"),
        q3.message_id: (Status.ANSWERED, "f3", "found"),  # of two in one batch, the first
    }


def answer_to(query: StoredMessage, message_id: str) -> tuple[StoredMessage, OutboxItem]:
    """RECIPIENT's feedback to a query it received from SENDER."""
    message, item = outgoing(message_id, node=RECIPIENT)
    message = dataclasses.replace(message, kind="feedback", recipient=SENDER, in_reply_to=query.message_id, result="found")
    return message, dataclasses.replace(item, routing_key=SENDER, kind="feedback")


async def test_a_lone_answer_claims_its_query_and_a_second_one_is_told_who_answered(store: SqlMessageStore) -> None:
    """On PostgreSQL the claim, the answer and its outbox row are one statement; the claim is the
    conditional write that decides which answer wins, so the second learns the first's id and stores nothing."""
    from gateway.exchange.errors import AlreadyAnswered, UnknownMessage

    query = incoming("q1")  # RECIPIENT received q1 from SENDER
    await store.add_incoming_batch([query])
    statements: list[str] = []
    with statements_run(store.engine, lambda sql: statements.append(sql.split(None, 1)[0].upper())):
        await store.add_outgoing(*answer_to(query, "a1"), answers="q1")
    if not store._sqlite:
        assert statements == ["WITH"]
    with pytest.raises(AlreadyAnswered) as second:
        await store.add_outgoing(*answer_to(query, "a2"), answers="q1")
    assert second.value.answered_by == "a1"
    with pytest.raises(UnknownMessage):
        await store.add_outgoing(*answer_to(incoming("never-received"), "a3"), answers="never-received")
    stored = await store.find(RECIPIENT, Direction.IN, "q1")
    assert stored is not None and (stored.status, stored.answered_by) == (Status.ANSWERED, "a1")
    assert await store.find(RECIPIENT, Direction.OUT, "a1") is not None
    assert await store.find(RECIPIENT, Direction.OUT, "a2") is None
    assert [o.message_id for o in await store.due_outbox(T0, 10)] == ["a1"]


async def test_answers_written_together_each_claim_their_own_query_and_one_query_gets_one_answer(store: SqlMessageStore) -> None:
    """A batch of answers with a plain submit among them (on PostgreSQL one statement): each answer
    claims its query; of two answers in the batch to one query exactly one is stored, the other is
    told which; an answer to a query never received is refused; the submit is stored either way."""
    from gateway.exchange.errors import AlreadyAnswered, UnknownMessage

    q1, q2 = incoming("q1"), incoming("q2")
    await store.add_incoming_batch([q1, q2])
    plain = outgoing("plain", node=RECIPIENT)
    batch = [(*answer_to(q1, "a1"), "q1", None), (*answer_to(q1, "a1-too"), "q1", None),
             (*answer_to(q2, "a2"), "q2", None), (*plain, None, None),
             (*answer_to(incoming("never-received"), "a3"), "never-received", None)]
    statements: list[str] = []
    with statements_run(store.engine, lambda sql: statements.append(sql.split(None, 1)[0].upper())):
        refused = await store._add_outgoing_many(batch)  # noqa: SLF001  (one batch, as the batcher forms it)
    if not store._sqlite:
        assert statements == ["WITH", "SELECT", "SELECT"]  # the batch, then who won q1, and that nobody has q3
    assert set(refused) == {1, 4} or set(refused) == {0, 4}
    loser = 1 if 1 in refused else 0
    winner = "a1" if loser == 1 else "a1-too"
    assert isinstance(refused[loser], AlreadyAnswered) and refused[loser].answered_by == winner
    assert isinstance(refused[4], UnknownMessage)
    assert {(m.message_id, m.answered_by) for m in (await store.find_many(Direction.IN, [(RECIPIENT, "q1"), (RECIPIENT, "q2")])).values()} \
        == {("q1", winner), ("q2", "a2")}
    sent = {m.message_id for m in (await store.find_many(Direction.OUT, [(RECIPIENT, i) for i in ("a1", "a1-too", "a2", "plain", "a3")])).values()}
    assert sent == {winner, "a2", "plain"}
    assert sorted(o.message_id for o in await store.due_outbox(T0, 10)) == sorted([winner, "a2", "plain"])
