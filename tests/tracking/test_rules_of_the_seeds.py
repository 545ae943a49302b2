"""Issue 13 through the exchange and the store: the rules as the seeds state them.

Rules 六/十二 (漏管 from 个案查询信息 only, the same information through its corrections) on exchanged
messages, and the township that must reply — the recipient, in both directions — kept by the SQL
store on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from gateway.adapters.sql.case_store import SqlCaseStore
from gateway.adapters.sql.engine import create_engine, create_schema
from gateway.codec.citizen_id import check_character
from gateway.codec.messages import Notification
from gateway.clock import FakeClock
from gateway.exchange.records import Direction as MessageDirection
from gateway.exchange.records import Status, StoredMessage
from gateway.tracking.tracker import CaseTracker
from gateway.workflow.accounting import count_as_of
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.cases import CaseState, Direction, open_case
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet
from gateway.workflow.feedback import FeedbackResult, NoSuchPersonReason
from gateway.workflow.feedback_handling import handle_feedback, rebuild_ledger
from gateway.workflow.periods import ReportingMonth
from tests.gateways import NOT_FOUND, REGISTRATION, RESIDENCE, T0, sample_notification, sample_query, running_gateway

from ..workflow.conftest import cst

MARCH = ReportingMonth(2026, 3)


def stored_message(message_id: str, sender: str, recipient: str) -> StoredMessage:
    at = cst(2026, 3, 6, 9)
    return StoredMessage(node=recipient, direction=MessageDirection.IN, message_id=message_id, kind="notification",
                         sender=sender, recipient=recipient, in_reply_to=None, created_at=at, accepted_at=at,
                         envelope_sha256="", envelope=b"", body_sealed=b"", subject=an_id(24), status=Status.RECEIVED)


def an_id(sequence: int) -> str:
    first17 = f"12010119900517{sequence:03d}"
    return first17 + check_character(first17)


@pytest.fixture
async def gateway():
    async with running_gateway(clock=FakeClock(T0)) as gw:
        yield gw


async def exchange(gw, record: dict, feedback: dict):  # type: ignore[no-untyped-def]
    sent = await gw.service.submit(RESIDENCE, record)
    await gw.relay.run_once()
    await gw.service.answer(REGISTRATION, sent.message_id, feedback)
    await gw.relay.run_once()
    gw.clock.advance(timedelta(days=1))
    return sent


# Rule 六: 同一个信息连续三次收到同一个现居住地发送的个案查询信息,却查找不到该流出人员的,视为…漏管.


async def test_three_no_such_person_answers_to_notifications_charge_no_missed_management(gateway) -> None:
    for _ in range(3):
        await exchange(gateway, sample_notification(), NOT_FOUND)
    assert await gateway.tracker.store.charges() == []


async def test_a_query_corrected_three_times_for_its_id_number_is_still_the_same_information(gateway) -> None:
    # Rule 五: 补充、完善查询信息内容后重新录入上报 — corrected, it is the same query sent again.
    earlier, ids = None, []
    for sequence in (24, 26, 28):
        record = sample_query()
        record["person"] = {**record["person"], "citizen_id": an_id(sequence)}
        if earlier is not None:
            record["resubmission_of"] = earlier.message_id
        earlier = await exchange(gateway, record, {**NOT_FOUND, "not_found_reason": "3"})
        ids.append(earlier.message_id)
    [charge] = await gateway.tracker.store.charges(REGISTRATION)
    assert charge.evidence_query_ids == tuple(ids)


async def test_the_store_finds_a_run_by_the_chain_not_by_the_corrected_id(
    database_url: str, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    engine = create_engine(database_url)
    try:
        await create_schema(engine)
        store = SqlCaseStore(engine)
        earlier, ledger = None, None
        for i, sequence in enumerate((24, 26, 28)):
            case = open_case(f"c{i}", CaseKind.QUERY, RESIDENCE, REGISTRATION, an_id(sequence), cst(2026, 3, 2 + 7 * i, 9),
                             rules, real_calendar, resubmits=earlier)
            await store.add_case(case)
            ledger = rebuild_ledger(await store.cases_for_key(case.strike_key))
            outcome = handle_feedback(case, ledger, cst(2026, 3, 3 + 7 * i), FeedbackResult.NO_SUCH_PERSON,
                                      reason=NoSuchPersonReason.WRONG_ID_NUMBER)
            await store.save_answer(outcome.case, outcome.charge)
            earlier = outcome.case
        assert earlier is not None and earlier.state is CaseState.MISSED_MANAGEMENT
        [charge] = await store.charges(REGISTRATION)
        assert charge.evidence_query_ids == ("c0", "c1", "c2")
    finally:
        await engine.dispose()


# 第三十一条(二)4: 户籍地…及时向现居住地通报; the township that must reply is the recipient.


async def test_a_to_residence_notification_is_a_case_of_the_residence_township(
    database_url: str, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    engine = create_engine(database_url)
    try:
        await create_schema(engine)
        store = SqlCaseStore(engine)
        case = open_case("back", CaseKind.NOTIFICATION, RESIDENCE, REGISTRATION, an_id(24), cst(2026, 3, 5, 9), rules,
                         real_calendar, direction=Direction.TO_RESIDENCE, event_date=date(2026, 3, 2))
        await store.add_case(case)
        assert [c.case_id for c in await store.open_cases(RESIDENCE)] == ["back"]
        assert await store.open_cases(REGISTRATION) == []
        due = case.deadline.due_at
        assert [c.case_id for c in await store.overdue_cases(RESIDENCE[:6], MARCH, due)] == ["back"]
        [facts] = await store.facts_in_months([MARCH])
        assert facts.responsible_township == RESIDENCE and facts.sender_township == REGISTRATION
        assert facts.submission_due_at == cst(2026, 3, 10) and facts.kind is CaseKind.NOTIFICATION
        rows = count_as_of([facts], MARCH, due)
        assert list(rows) == [RESIDENCE]
        assert (rows[RESIDENCE].notifications_received, rows[RESIDENCE].notifications_overdue, rows[RESIDENCE].received) == (1, 1, 0)
    finally:
        await engine.dispose()


async def test_the_tracker_reads_direction_and_learned_on_from_the_message_when_it_has_them(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    from gateway.adapters.fake_case_store import FakeCaseStore

    tracker = CaseTracker(FakeCaseStore(), FakeClock(T0), real_calendar, rules)
    plain = Notification.model_validate(sample_notification(), context={"accepted_on": T0.date()})
    cases = []
    for message_id, message, sender, recipient in (
        ("n-plain", plain, RESIDENCE, REGISTRATION),
        ("n-back", plain.model_copy(update={"direction": "to_residence", "learned_on": date(2026, 3, 5)}), REGISTRATION, RESIDENCE),
    ):
        cases.append(await tracker.query_received(stored_message(message_id, sender, recipient), message))
    forward, back = cases
    assert forward.direction is Direction.TO_REGISTRATION and forward.responsible_township == REGISTRATION
    assert forward.learned_on == date(2026, 3, 2) and forward.submission_due_at == cst(2026, 3, 10)
    assert back.direction is Direction.TO_RESIDENCE and back.responsible_township == RESIDENCE
    assert back.residence_township == RESIDENCE and back.registration_township == REGISTRATION
    assert back.learned_on == date(2026, 3, 5) and back.submission_due_at == cst(2026, 3, 13)


async def test_a_to_residence_notification_reminds_the_residence_township_and_counts_in_its_figures(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    # 收到通知单的一方必须及时回复 (seed 000, 两地信息通报协调制度): the residence township must reply, in 5 working days.
    from gateway.adapters.fake_case_store import FakeCaseStore

    clock = FakeClock(cst(2026, 3, 6, 9))
    tracker = CaseTracker(FakeCaseStore(), clock, real_calendar, rules)
    back = Notification.model_validate(sample_notification(), context={"accepted_on": clock.now().date()}).model_copy(
        update={"direction": "to_residence"})
    case = await tracker.query_received(stored_message("n-back", REGISTRATION, RESIDENCE), back)
    assert case.deadline.last_working_day == date(2026, 3, 13)  # 5 working days after Friday 6 March
    clock.set(case.deadline.due_at)
    report = await tracker.tick()
    assert report.reminders and {r.township for r in report.reminders} == {RESIDENCE}
    assert "overdue" in {r.kind.value for r in report.reminders}
    [facts] = await tracker.store.facts_in_months([MARCH])
    rows = count_as_of([facts], MARCH, case.deadline.due_at)
    assert rows[RESIDENCE].notifications_overdue == 1 and REGISTRATION not in rows
