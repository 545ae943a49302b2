"""Nothing tracked is lost: a message committed and then not tracked (its hook failed, or the process
died between the two writes) is tracked by the reconcile at start-up and on the next tick, on SQLite
and PostgreSQL. The figures a township is judged by are then what they would have been.

Both townships are hosted by one gateway on the real SQL stores; the broker is the in-process fake (what
is under test is the database's account, not delivery; the process-kill test beside this one, in
test_reconcile_after_kill.py, delivers over RabbitMQ).
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.adapters.fakes import FakeBroker
from gateway.adapters.sql.tables import messages
from gateway.adapters.sql.workflow_tables import tracking_marks
from gateway.bootstrap import Gateway, build_gateway
from gateway.clock import FakeClock
from gateway.exchange.nodes import HostedNode
from gateway.exchange.ports import Delivery
from gateway.exchange.records import Direction
from gateway.security.directory import KeyDirectory
from gateway.settings import Settings
from gateway.tracking.reconcile import Reconciler
from gateway.adapters.sql.tracking_gaps import SqlTrackingGaps
from gateway.workflow.cases import CaseState
from gateway.workflow.periods import ReportingMonth
from gateway.workflow.reverification import TaskState
from tests.gateways import FOUND, NOT_FOUND, REGISTRATION, RESIDENCE, T0, TEST_HOSTS, keyrings, sample_query

pytestmark = pytest.mark.database


class TrackerDown(Exception):
    """The tracker's hook failing between the message's commit and its tracking."""


def hook_down(*_args, **_kwargs):
    raise TrackerDown("the case store went away")


@pytest.fixture
async def restart(database_url: str, tmp_path: Path):
    """Each call stops the last gateway and starts it again: nothing of its memory is kept, the
    database is as it was left. Both townships hosted, one set of keys, one clock."""
    rings = keyrings(RESIDENCE, REGISTRATION)
    clock = FakeClock(T0)
    running: list[Gateway] = []

    async def again(tick_interval_s: float = 0) -> Gateway:
        if running:
            await running.pop().stop()
        settings = Settings(nodes=sorted(rings), data_dir=tmp_path, database_url=database_url,
                            tick_interval_s=tick_interval_s, allowed_hosts=TEST_HOSTS)
        gw = build_gateway(settings, clock=clock, broker=FakeBroker(), nodes={c: HostedNode(r) for c, r in rings.items()},
                           directory=KeyDirectory.from_keyrings(rings.values()))
        await gw.start(relay=False)
        running.append(gw)
        return gw

    yield again
    if running:
        await running.pop().stop()


async def received_query(gw: Gateway, **changes) -> str:
    query = await gw.service.submit(RESIDENCE, {**sample_query(), **changes})
    await gw.relay.run_once()
    assert await gw.store.find(REGISTRATION, Direction.IN, query.message_id) is not None
    return query.message_id


async def outbox_envelope(gw: Gateway, message_id: str) -> bytes:
    [envelope] = [o.envelope for o in await gw.store.due_outbox(gw.clock.now(), 1000) if o.message_id == message_id]
    return envelope


async def test_answer_committed_before_its_case_is_healed_at_start_up(restart, monkeypatch):
    gw = await restart()
    query_id = await received_query(gw)
    gw.clock.advance(timedelta(days=2))  # answered Thu 12 Mar, due in 10 working days
    monkeypatch.setattr(gw.tracker, "answered", hook_down)
    sent = await gw.service.answer(REGISTRATION, query_id, FOUND)  # committed; its tracking failed
    case = await gw.tracker.store.get_case(query_id)
    assert case.is_open  # the difference the crash leaves

    gw = await restart()

    case = await gw.tracker.store.get_case(query_id)
    assert not case.is_open and case.feedback.message_id == sent.message_id
    assert case.feedback.answered_at == sent.accepted_at  # when it was sent, not when it was healed
    assert case.state is CaseState.ANSWERED_ON_TIME
    # The figures: nothing open or overdue for the township after the deadline, the month's facts answered.
    after_deadline = T0 + timedelta(days=30)
    gw.clock.set(after_deadline)
    await gw.tracker.tick()
    assert await gw.tracker.store.open_cases(REGISTRATION) == []
    assert await gw.tracker.store.overdue_cases(REGISTRATION[:6], case.reporting_month, after_deadline) == []
    [facts] = await gw.tracker.store.facts_in_months([case.reporting_month])
    assert facts.answered_at == sent.accepted_at


async def test_third_no_such_person_committed_before_its_case_is_charged_as_missed_management_at_start_up(
        restart, monkeypatch):
    gw = await restart()
    queries = [await received_query(gw) for _ in range(3)]
    for query_id in queries[:2]:
        await gw.service.answer(REGISTRATION, query_id, NOT_FOUND)
        gw.clock.advance(timedelta(minutes=1))
    monkeypatch.setattr(gw.tracker, "answered", hook_down)
    await gw.service.answer(REGISTRATION, queries[2], NOT_FOUND)
    assert await gw.tracker.store.charges(REGISTRATION) == []  # the third strike, not counted yet

    gw = await restart()

    [charge] = await gw.tracker.store.charges(REGISTRATION)
    assert charge.evidence_query_ids == tuple(queries)
    for query_id in queries:
        assert not (await gw.tracker.store.get_case(query_id)).is_open


async def test_query_stored_before_its_case_is_opened_by_the_next_tick(restart, monkeypatch):
    gw = await restart()
    query = await gw.service.submit(RESIDENCE, sample_query())
    envelope = await outbox_envelope(gw, query.message_id)
    with monkeypatch.context() as patched:
        patched.setattr(gw.tracker, "queries_received", hook_down)
        patched.setattr(gw.tracker, "query_received", hook_down)
        with pytest.raises(TrackerDown):
            await gw.service.receive(Delivery(envelope, REGISTRATION))  # stored, then its hook failed
    assert await gw.store.find(REGISTRATION, Direction.IN, query.message_id) is not None
    assert await gw.tracker.store.get_case(query.message_id) is None

    report = await gw.reconcile()  # what every tick does first

    assert query.message_id in report.healed
    case = await gw.tracker.store.get_case(query.message_id)
    assert case is not None and case.is_open and case.received_at == query.accepted_at


async def test_answer_whose_tracking_failed_is_healed_by_the_next_tick_without_a_restart(restart, monkeypatch):
    gw = await restart(tick_interval_s=0.2)
    query_id = await received_query(gw)
    with monkeypatch.context() as patched:
        patched.setattr(gw.tracker, "answered", hook_down)
        sent = await gw.service.answer(REGISTRATION, query_id, FOUND)
        assert (await gw.tracker.store.get_case(query_id)).is_open

    async def healed() -> bool:
        return not (await gw.tracker.store.get_case(query_id)).is_open

    for _ in range(50):
        if await healed():
            break
        await asyncio.sleep(0.1)
    case = await gw.tracker.store.get_case(query_id)
    assert not case.is_open and case.feedback.message_id == sent.message_id


async def _no_such_person_arrived_untracked(gw: Gateway, monkeypatch) -> str:
    """A 查无此人 reaches the residence township and is stored; its re-verification task is not opened."""
    query_id = await received_query(gw)
    feedback = await gw.service.answer(REGISTRATION, query_id, NOT_FOUND)
    envelope = await outbox_envelope(gw, feedback.message_id)
    with monkeypatch.context() as patched:
        patched.setattr(gw.tracker, "feedback_received", hook_down)
        with pytest.raises(TrackerDown):
            await gw.service.receive(Delivery(envelope, RESIDENCE))
    assert await gw.store.find(RESIDENCE, Direction.IN, feedback.message_id) is not None
    assert await gw.tracker.store.get_task(query_id) is None
    return query_id


async def test_no_such_person_received_before_its_task_is_opened_at_start_up(restart, monkeypatch):
    gw = await restart()
    query_id = await _no_such_person_arrived_untracked(gw, monkeypatch)

    gw = await restart()

    task = await gw.tracker.store.get_task(query_id)
    assert task is not None and task.state is TaskState.OPEN and task.residence_township == RESIDENCE


async def test_correction_sent_before_its_task_is_closed_at_start_up(restart, monkeypatch):
    gw = await restart()
    query_id = await _no_such_person_arrived_untracked(gw, monkeypatch)
    await gw.reconcile()
    assert (await gw.tracker.store.get_task(query_id)).state is TaskState.OPEN
    gw.clock.advance(timedelta(days=1))
    monkeypatch.setattr(gw.tracker, "query_sent", hook_down)
    correction = await gw.service.submit(
        RESIDENCE, {**sample_query(), "current_address": "幸福路9号", "resubmission_of": query_id})
    assert (await gw.tracker.store.get_task(query_id)).state is TaskState.OPEN

    gw = await restart()

    task = await gw.tracker.store.get_task(query_id)
    assert task.state is TaskState.RESUBMITTED and task.resubmitted_as == correction.message_id
    assert task.resubmitted_at == correction.accepted_at


async def test_reconcile_twice_at_once_records_one_reply_and_one_strike(restart, monkeypatch):
    gw = await restart()
    queries = [await received_query(gw) for _ in range(3)]
    for query_id in queries[:2]:
        await gw.service.answer(REGISTRATION, query_id, NOT_FOUND)
        gw.clock.advance(timedelta(minutes=1))
    with monkeypatch.context() as patched:
        patched.setattr(gw.tracker, "answered", hook_down)
        sent = await gw.service.answer(REGISTRATION, queries[2], NOT_FOUND)
    # Two processes of the gateway healing the same difference at the same moment.
    other = Reconciler(SqlTrackingGaps(gw.engine), gw.service.observer, gw.service.read_body, [REGISTRATION, RESIDENCE],
                       gw.clock)
    reports = await asyncio.gather(gw.reconcile(), other.run())

    assert any(sent.message_id in r.healed for r in reports)  # the other may see it healed already
    [charge] = await gw.tracker.store.charges(REGISTRATION)
    assert charge.evidence_query_ids == tuple(queries)
    assert (await gw.tracker.store.get_case(queries[2])).feedback.message_id == sent.message_id


async def test_reconcile_looks_at_each_message_twice_and_then_moves_its_mark_past_it(restart):
    gw = await restart()
    for _ in range(3):
        await received_query(gw)
    clock = [0.0]
    reconciler = Reconciler(SqlTrackingGaps(gw.engine), gw.service.observer, gw.service.read_body,
                            [REGISTRATION, RESIDENCE], gw.clock, settle_s=120, monotonic=lambda: clock[0])
    async with gw.engine.connect() as conn:
        last = (await conn.execute(select(func.max(messages.c.id)))).scalar_one()

    first = await reconciler.run()
    assert (first.checked_through, first.mark, first.healed) == (last, 0, [])  # looked once; not settled
    clock[0] = 60.0
    assert (await reconciler.run()).mark == 0
    clock[0] = 121.0
    settled = await reconciler.run()
    assert settled.mark == last and settled.healed == []
    async with gw.engine.connect() as conn:
        marks = dict((await conn.execute(select(tracking_marks.c.node, tracking_marks.c.checked_through))).all())
    assert marks == {REGISTRATION: last, RESIDENCE: last}

    # A restart looks again from the mark only: a new query since is the only row it looks at.
    query_id = await received_query(gw)
    again = Reconciler(SqlTrackingGaps(gw.engine), gw.service.observer, gw.service.read_body,
                       [REGISTRATION, RESIDENCE], gw.clock)
    report = await again.run()
    assert report.mark == last and report.checked_through > last and report.healed == []
    assert (await gw.tracker.store.get_case(query_id)).is_open


async def test_a_month_is_closed_only_after_the_reconcile_has_healed_its_answers(restart, monkeypatch):
    """Down across the cutoff: the gateway that starts again reconciles before its first tick closes
    March, so the frozen month counts the reply its clerk sent on 11 March, before the crash."""
    gw = await restart()
    query_id = await received_query(gw)
    gw.clock.advance(timedelta(days=1))
    monkeypatch.setattr(gw.tracker, "answered", hook_down)
    await gw.service.answer(REGISTRATION, query_id, FOUND)
    assert (await gw.tracker.store.get_case(query_id)).is_open

    gw.clock.set(T0 + timedelta(days=76))  # 25 May: every rule has closed March by then
    gw = await restart()
    await gw.tracker.tick()

    march = ReportingMonth(2026, 3)
    snapshot = await gw.tracker.store.period_snapshot(str(march))
    assert snapshot is not None
    counts = snapshot.as_dict()[REGISTRATION]
    assert (counts.received, counts.answered, counts.on_time, counts.overdue, counts.still_open) == (1, 1, 1, 0, 0)


async def test_a_correction_already_linked_is_left_alone_while_another_task_is_open(restart, monkeypatch):
    gw = await restart()
    corrected, waiting = [await _no_such_person_arrived_untracked(gw, monkeypatch) for _ in range(2)]
    await gw.reconcile()  # both tasks opened
    correction = await gw.service.submit(
        RESIDENCE, {**sample_query(), "current_address": "幸福路9号", "resubmission_of": corrected})
    assert (await gw.tracker.store.get_task(corrected)).resubmitted_as == correction.message_id

    from_the_start = Reconciler(SqlTrackingGaps(gw.engine), gw.service.observer, gw.service.read_body,
                                [REGISTRATION, RESIDENCE], gw.clock)
    report = await from_the_start.run()

    assert report.healed == [] and report.failed == []
    assert (await gw.tracker.store.get_task(waiting)).state is TaskState.OPEN


async def test_the_second_look_at_a_long_history_is_spread_over_ticks(restart):
    gw = await restart()
    for _ in range(4):
        await received_query(gw)  # 8 message rows: each query sent and received
    clock = [0.0]
    reconciler = Reconciler(SqlTrackingGaps(gw.engine), gw.service.observer, gw.service.read_body,
                            [REGISTRATION, RESIDENCE], gw.clock, settle_s=0, page_rows=2, second_look_pages=1,
                            monotonic=lambda: clock[0])
    last = (await reconciler.run()).checked_through
    marks = [(await reconciler.run()).mark for _ in range(6)]
    assert last >= 8 and marks[0] < marks[1] < marks[2] and marks[-1] == last
    assert all(b - a <= 2 for a, b in zip(marks, marks[1:]))


async def test_a_message_whose_tracking_keeps_failing_holds_the_mark_until_it_is_tracked(restart, monkeypatch):
    gw = await restart()
    query_id = await received_query(gw)
    monkeypatch.setattr(gw.tracker, "answered", hook_down)  # failing live, and in every reconcile
    sent = await gw.service.answer(REGISTRATION, query_id, FOUND)
    later = await received_query(gw)  # rows after the failing one

    def reconciler() -> Reconciler:
        return Reconciler(SqlTrackingGaps(gw.engine), gw.service.observer, gw.service.read_body,
                          [REGISTRATION, RESIDENCE], gw.clock, settle_s=0)

    async with gw.engine.connect() as conn:
        reply_row = (await conn.execute(select(messages.c.id).where(
            messages.c.message_id == sent.message_id, messages.c.direction == "out"))).scalar_one()
    running = reconciler()
    reports = [await running.run() for _ in range(3)]
    assert all(sent.message_id in r.failed for r in reports)
    assert {r.mark for r in reports} == {reply_row - 1}  # held before it, though later rows were looked at
    assert reports[-1].checked_through > reply_row and await gw.tracker.store.get_case(later) is not None

    restarted = reconciler()  # a restart looks again from the mark: the failing reply is found again
    assert sent.message_id in (await restarted.run()).failed

    monkeypatch.undo()  # the cause fixed
    healed = await running.run()
    assert sent.message_id in healed.healed and healed.mark >= reply_row
    assert (await gw.tracker.store.get_case(query_id)).feedback.message_id == sent.message_id


async def test_reply_after_the_20th_committed_before_its_case_is_on_time_after_a_restart_past_its_deadline(
        restart, monkeypatch):
    """Received Fri 17 Jul 2026 (reporting month July, due Fri 31 Jul: 10 working days), answered Wed
    22 Jul, after the 20th; the gateway dies before tracking it and starts again on Mon 3 Aug, after
    the deadline: the reply is on time, nothing is overdue."""
    gw = await restart()
    gw.clock.set(datetime(2026, 7, 17, 2, 0, tzinfo=timezone.utc))  # 10:00 Beijing time
    query_id = await received_query(gw)
    case = await gw.tracker.store.get_case(query_id)
    assert case.reporting_month == ReportingMonth(2026, 7)
    assert case.deadline.last_working_day == date(2026, 7, 31)
    gw.clock.set(datetime(2026, 7, 22, 2, 0, tzinfo=timezone.utc))
    monkeypatch.setattr(gw.tracker, "answered", hook_down)
    sent = await gw.service.answer(REGISTRATION, query_id, FOUND)

    gw.clock.set(datetime(2026, 8, 3, 1, 0, tzinfo=timezone.utc))
    gw = await restart()

    case = await gw.tracker.store.get_case(query_id)
    assert case.state is CaseState.ANSWERED_ON_TIME and case.feedback.answered_at == sent.accepted_at
    assert await gw.tracker.store.overdue_cases(REGISTRATION[:6], case.reporting_month, gw.clock.now()) == []
