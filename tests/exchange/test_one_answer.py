"""One answer per query, decided by the database: concurrent clerks, concurrent tracking, concurrent
resubmissions and a redelivery racing its first copy, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.adapters.fakes import FakeBroker
from gateway.adapters.sql.receipt_store import SqlReceiptStore
from gateway.adapters.sql.store import SqlMessageStore
from gateway.adapters.sql.security_tables import receipts
from gateway.adapters.sql.tables import messages, outbox
from gateway.adapters.sql.workflow_tables import cases, missed_management
from gateway.bootstrap import build_gateway
from gateway.clock import FakeClock
from gateway.codec import wire
from gateway.codec.messages import parse_message
from gateway.exchange.errors import AlreadyAnswered
from gateway.exchange.nodes import HostedNode
from gateway.exchange.redrive import RedriveRefused, redrive_quarantined
from gateway.exchange.ports import Delivery
from gateway.exchange.records import Direction, OutboxItem, Status
from gateway.exchange.service import ExchangeService
from gateway.security.directory import KeyDirectory
from gateway.security.envelope import seal
from gateway.security.receipts import split_bundle
from gateway.settings import Settings
from gateway.workflow.reverification import TaskState
from gateway.access.principal import Role
from tests.access.helpers import signed_in_client
from tests.gateways import NOT_FOUND, REGISTRATION, RESIDENCE, T0, TEST_HOSTS, database_gateway, keyrings, sample_query

pytestmark = pytest.mark.database

CLERKS = 20


@pytest.fixture
async def gateway(database_url: str, tmp_path: Path):
    """Both townships on one gateway with the real SQL stores; the broker is the in-process fake (the
    races under test are the database's)."""
    gw = database_gateway(keyrings(RESIDENCE, REGISTRATION), database_url=database_url, data_dir=tmp_path)
    await gw.start(relay=False)
    yield gw
    await gw.stop()


async def received_query(gw, **changes) -> str:
    query = await gw.service.submit(RESIDENCE, {**sample_query(), **changes})
    await gw.relay.run_once()
    assert await gw.store.find(REGISTRATION, Direction.IN, query.message_id) is not None
    return query.message_id


async def rows(gw, statement) -> list:
    async with gw.engine.connect() as conn:
        return list((await conn.execute(statement)).all())


async def feedback_rows(gw, query_id: str) -> list:
    return await rows(gw, select(messages.c.message_id).where(
        messages.c.node == REGISTRATION, messages.c.direction == "out", messages.c.in_reply_to == query_id))


def http(gw):
    """The registration township's clerk, signed in: every clerk of the race uses this one account."""
    return signed_in_client(gw, Role.CLERK, REGISTRATION)


async def test_twenty_concurrent_answers_to_one_query_give_one_202_and_nineteen_409_naming_the_winner(gateway):
    earlier = [await received_query(gateway) for _ in range(2)]
    for query_id in earlier:  # two 查无此人 already: the third completes a 漏管 run
        await gateway.service.answer(REGISTRATION, query_id, NOT_FOUND)
        gateway.clock.advance(timedelta(minutes=1))
    query_id = await received_query(gateway)
    outbox_before = (await rows(gateway, select(func.count()).select_from(outbox)))[0][0]

    async with http(gateway) as client:
        responses = await asyncio.gather(*(
            client.post(f"/nodes/{REGISTRATION}/inbox/{query_id}/feedback", json=NOT_FOUND) for _ in range(CLERKS)))

    accepted = [r for r in responses if r.status_code == 202]
    refused = [r for r in responses if r.status_code == 409]
    assert len(accepted) == 1 and len(refused) == CLERKS - 1, [r.status_code for r in responses]
    winner = accepted[0].json()["message_id"]
    assert {r.json()["answered_by"] for r in refused} == {winner}
    assert all(winner in r.json()["detail"] for r in refused)

    assert [r.message_id for r in await feedback_rows(gateway, query_id)] == [winner]
    outbox_after = (await rows(gateway, select(func.count()).select_from(outbox)))[0][0]
    assert outbox_after - outbox_before == 1
    original = await gateway.store.find(REGISTRATION, Direction.IN, query_id)
    assert original.answered_by == winner
    case = await gateway.tracker.store.get_case(query_id)
    assert case.feedback is not None and case.feedback.message_id == winner
    [charge] = await gateway.tracker.store.charges(REGISTRATION)
    assert charge.evidence_query_ids == (*earlier, query_id)  # each query once


async def test_concurrent_answers_that_share_a_group_commit_fail_alone(gateway):
    """The store's own decision, without the service's early check: 20 writes claiming one query, sent
    together so that they share transactions, beside 5 answers to other queries that must all land."""
    target = await received_query(gateway)
    others = [await received_query(gateway) for _ in range(5)]
    original = await gateway.store.find(REGISTRATION, Direction.IN, target)

    def answer_rows(query_id: str):
        message_id = uuid.uuid4().hex
        stored = dataclasses.replace(
            original, direction=Direction.OUT, message_id=message_id, kind="feedback", sender=REGISTRATION,
            recipient=RESIDENCE, in_reply_to=query_id, status=Status.QUEUED, result="not_found")
        item = OutboxItem(message_id=message_id, sender=REGISTRATION, routing_key=RESIDENCE, kind="feedback",
                          envelope=b"e", created_at=T0, next_attempt_at=T0)
        return stored, item

    racing = [answer_rows(target) for _ in range(CLERKS)]
    bystanders = [answer_rows(q) for q in others]
    calls = [gateway.store.add_outgoing(m, o, answers=m.in_reply_to) for m, o in racing + bystanders]
    results = await asyncio.gather(*calls, return_exceptions=True)

    race, rest = results[:CLERKS], results[CLERKS:]
    assert rest == [None] * len(others)
    won = [i for i, r in enumerate(race) if r is None]
    assert len(won) == 1
    winner = racing[won[0]][0].message_id
    losers = [r for r in race if r is not None]
    assert all(isinstance(r, AlreadyAnswered) and r.answered_by == winner for r in losers)
    assert [r.message_id for r in await feedback_rows(gateway, target)] == [winner]
    kept = {r.message_id for r in await rows(gateway, select(outbox.c.message_id).where(outbox.c.kind == "feedback"))}
    assert kept == {winner} | {m.message_id for m, _ in bystanders}


async def test_concurrent_tracking_of_one_answer_records_one_reply_and_one_strike(gateway):
    """The tracker's hook replayed at once (a reconcile beside the live call): the case store's
    conditional write lets one through; the 漏管 evidence names each query once."""
    queries = [await received_query(gateway) for _ in range(3)]
    for query_id in queries[:2]:
        await gateway.service.answer(REGISTRATION, query_id, NOT_FOUND)
        gateway.clock.advance(timedelta(minutes=1))
    sent = await gateway.service.answer(REGISTRATION, queries[2], NOT_FOUND)
    feedback = gateway.service.read_body(sent)
    await asyncio.gather(*(gateway.tracker.answered(sent, feedback) for _ in range(10)))

    [charge] = await gateway.tracker.store.charges(REGISTRATION)
    assert charge.evidence_query_ids == tuple(queries)
    answered = await rows(gateway, select(cases.c.case_id).where(cases.c.answered_at.is_not(None)))
    assert sorted(r.case_id for r in answered) == sorted(queries)
    assert len(await rows(gateway, select(missed_management.c.id))) == 1


def corrected(query_id: str, n: int) -> dict:
    """A correction of ``query_id``: rule 五 wants the record completed, so each changes the address."""
    return {**sample_query(), "current_address": f"幸福路{n + 2}号", "resubmission_of": query_id}


async def test_two_corrections_of_one_query_sent_at_once_link_one_of_them(gateway):
    query_id = await received_query(gateway)
    await gateway.service.answer(REGISTRATION, query_id, NOT_FOUND)
    await gateway.relay.run_once()
    assert (await gateway.tracker.store.get_task(query_id)).state is TaskState.OPEN

    corrections = await asyncio.gather(*(
        gateway.service.submit(RESIDENCE, corrected(query_id, n)) for n in range(5)))

    task = await gateway.tracker.store.get_task(query_id)
    assert task.state is TaskState.RESUBMITTED
    assert task.resubmitted_as in {c.message_id for c in corrections}
    # The link stays the first one written: a later correction does not move it.
    again = await gateway.service.submit(RESIDENCE, corrected(query_id, 5))
    assert (await gateway.tracker.store.get_task(query_id)).resubmitted_as == task.resubmitted_as != again.message_id


async def test_a_redelivery_arriving_while_its_first_copy_is_stored_is_stored_once(gateway):
    """Two copies of one envelope received at once through separate stores (two consumers): one row,
    one case, one receipt — and whatever is queued for the sender carries that one receipt's bytes."""
    query = await gateway.service.submit(RESIDENCE, sample_query())  # not relayed: we deliver it ourselves
    [(_, envelope)] = [(o.routing_key, o.envelope) for o in await gateway.store.due_outbox(T0, 10)
                       if o.message_id == query.message_id]
    other = ExchangeService(gateway.service.nodes, gateway.service.directory, SqlMessageStore(gateway.engine),
                            gateway.clock, observer=gateway.service.observer, receipts=SqlReceiptStore(gateway.engine))
    outcomes = await asyncio.gather(
        *(svc.receive(Delivery(envelope, REGISTRATION)) for svc in (gateway.service, other, gateway.service, other)))

    assert sorted(o.result for o in outcomes) == ["duplicate", "duplicate", "duplicate", "stored"]
    stored = await rows(gateway, select(messages.c.id).where(
        messages.c.direction == "in", messages.c.message_id == query.message_id))
    assert len(stored) == 1
    assert len(await rows(gateway, select(cases.c.case_id).where(cases.c.case_id == query.message_id))) == 1
    kept = await rows(gateway, select(receipts.c.data).where(receipts.c.direction == "sent",
                                                              receipts.c.message_id == query.message_id))
    assert len(kept) == 1
    queued = await rows(gateway, select(outbox.c.envelope).where(outbox.c.kind == "receipt", outbox.c.sender == REGISTRATION))
    assert queued and all(split_bundle(bytes(bundle)) == [bytes(kept[0][0])] for (bundle,) in queued)


async def test_the_case_store_writes_one_reply_per_case_whoever_computed_it(gateway):
    """Ten trackers that each read the case while it was open and computed the same 漏管: the
    conditional write lets the first through; the others record nothing, charge included."""
    from gateway.workflow.feedback import FeedbackResult, NoSuchPersonReason
    from gateway.workflow.feedback_handling import handle_feedback, rebuild_ledger

    queries = [await received_query(gateway) for _ in range(3)]
    for query_id in queries[:2]:
        await gateway.service.answer(REGISTRATION, query_id, NOT_FOUND)
        gateway.clock.advance(timedelta(minutes=1))
    store = gateway.tracker.store
    case = await store.get_case(queries[2])
    ledger = rebuild_ledger(await store.cases_for_key(case.strike_key))
    outcome = handle_feedback(case, ledger, gateway.clock.now(), FeedbackResult.NO_SUCH_PERSON,
                              reason=NoSuchPersonReason.WRONG_ADDRESS, remarks="门牌号不存在", message_id="f-1")
    assert outcome.charge is not None

    written = await asyncio.gather(*(store.save_answer(outcome.case, outcome.charge) for _ in range(10)))

    assert sorted(written) == [False] * 9 + [True]
    [charge] = await store.charges(REGISTRATION)
    assert charge.evidence_query_ids == tuple(queries)


async def test_of_concurrent_resubmission_links_the_database_keeps_exactly_one(gateway):
    query_id = await received_query(gateway)
    await gateway.service.answer(REGISTRATION, query_id, NOT_FOUND)
    await gateway.relay.run_once()
    store = gateway.tracker.store
    task = await store.get_task(query_id)
    links = [dataclasses.replace(task, state=TaskState.RESUBMITTED, resubmitted_as=f"correction-{i}",
                                 resubmitted_at=T0) for i in range(5)]

    written = await asyncio.gather(*(store.resubmit_task(link) for link in links))

    assert sorted(written) == [False] * 4 + [True]
    winner = links[written.index(True)].resubmitted_as
    assert (await store.get_task(query_id)).resubmitted_as == winner


class CountingBroker(FakeBroker):
    """The fake broker, counting what the relay publishes per message id."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []

    async def publish(self, routing_key: str, body: bytes, *, message_id: str, kind: str) -> None:
        self.ids.append(message_id)
        await super().publish(routing_key, body, message_id=message_id, kind=kind)


async def test_two_concurrent_redrives_of_one_quarantined_message_store_it_and_publish_its_receipt_once(
    database_url: str, tmp_path: Path
):
    rings = keyrings(RESIDENCE, REGISTRATION)
    broker = CountingBroker()
    settings = Settings(nodes=sorted(rings), data_dir=tmp_path, database_url=database_url, tick_interval_s=0,
                        allowed_hosts=TEST_HOSTS)
    gw = build_gateway(settings, clock=FakeClock(T0), broker=broker,
                       nodes={c: HostedNode(r) for c, r in rings.items()},
                       directory=KeyDirectory.from_keyrings([rings[REGISTRATION]]))  # RESIDENCE's key missing
    await gw.start(relay=False)
    try:
        envelope = seal(plaintext=wire.encode(parse_message(sample_query())), message_id="q-redriven", kind="query",
                        sender=rings[RESIDENCE].sender_key(),
                        recipient=gw.service.directory.recipient_key(REGISTRATION), created_at=T0)
        refused = await gw.service.receive(Delivery(envelope, REGISTRATION))
        assert refused.result == "quarantined"
        [item] = await gw.store.list_quarantine()
        gw.service.directory = KeyDirectory.from_keyrings(rings.values())  # the operator adds the key

        results = await asyncio.gather(*(redrive_quarantined(gw.service, gw.store, gw.clock, item.id) for _ in range(2)),
                                       return_exceptions=True)
        done = [r for r in results if not isinstance(r, BaseException)]
        assert [r.result for r in done] == ["stored"]
        [lost] = [r for r in results if isinstance(r, BaseException)]
        assert isinstance(lost, RedriveRefused) and "re-driven" in str(lost)
        with pytest.raises(RedriveRefused, match="already re-driven and accepted"):
            await redrive_quarantined(gw.service, gw.store, gw.clock, item.id)

        await gw.relay.run_once()
        receipts = [r for r in await rows(gw, select(outbox.c.message_id).where(outbox.c.sender == REGISTRATION))]
        assert len(receipts) == 1
        assert broker.ids.count(receipts[0].message_id) == 1
        stored = await rows(gw, select(messages.c.id).where(messages.c.message_id == "q-redriven"))
        assert len(stored) == 1
    finally:
        await gw.stop()


async def test_answers_to_two_queries_of_one_person_at_once_make_one_charge_with_distinct_evidence(gateway):
    """After two 查无此人, the third and fourth queries about her are answered at the same moment: the
    ledger's version decides which completes the run; the other starts the next run."""
    queries = [await received_query(gateway) for _ in range(4)]
    for query_id in queries[:2]:
        await gateway.service.answer(REGISTRATION, query_id, NOT_FOUND)
        gateway.clock.advance(timedelta(minutes=1))

    async with http(gateway) as client:
        responses = await asyncio.gather(*(
            client.post(f"/nodes/{REGISTRATION}/inbox/{q}/feedback", json=NOT_FOUND) for q in queries[2:]))

    assert [r.status_code for r in responses] == [202, 202]
    [charge] = await gateway.tracker.store.charges(REGISTRATION)
    assert len(set(charge.evidence_query_ids)) == 3 and charge.evidence_query_ids[:2] == tuple(queries[:2])
    assert charge.evidence_query_ids[2] in queries[2:]
    answered = await rows(gateway, select(cases.c.case_id).where(cases.c.answered_at.is_not(None)))
    assert sorted(r.case_id for r in answered) == sorted(queries)


async def test_a_charge_naming_a_query_already_evidence_of_another_is_refused_by_the_database(gateway):
    from gateway.tracking.ports import StrikeConflict
    from gateway.workflow.feedback import FeedbackResult, NoSuchPersonReason
    from gateway.workflow.feedback_handling import handle_feedback, rebuild_ledger

    queries = [await received_query(gateway) for _ in range(4)]
    for query_id in queries[:2]:
        await gateway.service.answer(REGISTRATION, query_id, NOT_FOUND)
        gateway.clock.advance(timedelta(minutes=1))
    store = gateway.tracker.store
    ledger = rebuild_ledger(await store.cases_for_key((await store.get_case(queries[2])).strike_key))
    outcomes = [handle_feedback(await store.get_case(q), ledger, gateway.clock.now(), FeedbackResult.NO_SUCH_PERSON,
                                reason=NoSuchPersonReason.WRONG_ADDRESS, remarks="门牌号不存在", message_id=f"f-{q}")
                for q in queries[2:]]
    assert all(o.charge is not None for o in outcomes)  # both computed from the same two strikes

    assert await store.save_answer(outcomes[0].case, outcomes[0].charge)
    with pytest.raises(StrikeConflict):
        await store.save_answer(outcomes[1].case, outcomes[1].charge)
    assert len(await store.charges(REGISTRATION)) == 1
    assert (await store.get_case(queries[3])).feedback is None  # nothing of the refused answer was written
