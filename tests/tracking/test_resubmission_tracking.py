"""Rule 五 on the receiving side, in the SQL store (SQLite and PostgreSQL): a corrected query continues
the chain of a query answered 查无此人; any other `resubmission_of` is tracked as a plain case that says
why, never raised (a raise nacks the delivery until it is dead-lettered to the poison queue)."""

from __future__ import annotations

from datetime import datetime

import pytest

from gateway.adapters.sql.case_store import SqlCaseStore
from gateway.adapters.sql.engine import create_engine, create_schema
from gateway.clock import FakeClock
from gateway.codec.messages import Query, parse_message
from gateway.exchange.records import Direction as MessageDirection
from gateway.exchange.records import Status, StoredMessage
from gateway.tracking.tracker import CaseTracker
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.cases import CaseState, Direction, open_case
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet
from gateway.workflow.feedback import FeedbackResult, NoSuchPersonReason
from gateway.workflow.feedback_handling import handle_feedback, rebuild_ledger
from tests.gateways import ELSEWHERE, REGISTRATION, RESIDENCE, sample_query

from ..workflow.conftest import cst

CITIZEN_ID = sample_query()["person"]["citizen_id"]


def received(message_id: str, sender: str, at: datetime) -> StoredMessage:
    return StoredMessage(node=REGISTRATION, direction=MessageDirection.IN, message_id=message_id, kind="query",
                         sender=sender, recipient=REGISTRATION, in_reply_to=None, created_at=at, accepted_at=at,
                         envelope_sha256="", envelope=b"", body_sealed=b"", subject=CITIZEN_ID, status=Status.RECEIVED)


def correction(of: str, residence: str = RESIDENCE) -> Query:
    message = parse_message({**sample_query(residence=residence), "current_address": "幸福路2号", "resubmission_of": of})
    assert isinstance(message, Query)
    return message


@pytest.fixture
async def tracker(database_url: str, rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar):
    engine = create_engine(database_url)
    await create_schema(engine)
    try:
        yield CaseTracker(SqlCaseStore(engine), FakeClock(cst(2026, 3, 20, 9)), real_calendar, rules)
    finally:
        await engine.dispose()


async def _earlier(tracker: CaseTracker, case_id: str, *, answer: FeedbackResult | None,
                   kind: CaseKind = CaseKind.QUERY, residence: str = RESIDENCE) -> None:
    case = open_case(case_id, kind, residence, REGISTRATION, CITIZEN_ID, cst(2026, 3, 2, 9), tracker.rules,
                     tracker.calendar, direction=Direction.TO_REGISTRATION,
                     event_date=cst(2026, 3, 1, 9).date() if kind is CaseKind.NOTIFICATION else None)
    await tracker.store.add_case(case)
    if answer is not None:
        ledger = rebuild_ledger(await tracker.store.cases_for_key(case.strike_key))
        reason = NoSuchPersonReason.WRONG_ADDRESS if answer is FeedbackResult.NO_SUCH_PERSON else None
        outcome = handle_feedback(case, ledger, cst(2026, 3, 3, 9), answer, reason=reason)
        await tracker.store.save_answer(outcome.case, outcome.charge)


async def test_a_correction_of_a_query_answered_no_such_person_continues_its_chain(tracker) -> None:
    await _earlier(tracker, "q-nsp", answer=FeedbackResult.NO_SUCH_PERSON)
    case = await tracker.query_received(received("q2", RESIDENCE, cst(2026, 3, 10, 9)), correction("q-nsp"))
    assert case.resubmission_of == "q-nsp" and case.earlier_query_ids == ("q-nsp",)
    assert case.history[0].cause == "received; corrected re-submission of q-nsp"


@pytest.mark.parametrize("setup, why", [
    (dict(answer=None), "case q1 was not answered 查无此人 (it is awaiting_reply); nothing to re-submit"),
    (dict(answer=FeedbackResult.FOUND), "case q1 was not answered 查无此人 (it is answered_on_time); nothing to re-submit"),
    (dict(answer=None, kind=CaseKind.NOTIFICATION), "q1 is a notification, not a query"),
    (dict(answer=FeedbackResult.NO_SUCH_PERSON, residence=ELSEWHERE),
     "only the residence township that sent a query can re-submit it"),
    (None, "no case q1 here"),
])
async def test_a_correction_the_receiver_cannot_continue_is_a_plain_case_that_says_why(tracker, setup, why, caplog) -> None:
    if setup is not None:
        await _earlier(tracker, "q1", **setup)
    with caplog.at_level("INFO", logger="gateway.tracking.tracker"):
        case = await tracker.query_received(received("q2", RESIDENCE, cst(2026, 3, 10, 9)), correction("q1"))
    assert case.state is CaseState.AWAITING_REPLY and case.registration_township == REGISTRATION
    assert case.resubmission_of is None and case.earlier_query_ids == ()
    assert case.history[0].cause == f"received; resubmission_of q1 not linked: {why}"
    assert (await tracker.store.get_case("q2")) == case  # stored: it counts in the figures like any query
    assert any("q2" in r.getMessage() and "tracked as a plain case" in r.getMessage() for r in caplog.records)


async def test_a_batch_with_a_correction_the_receiver_cannot_continue_is_tracked_whole(tracker) -> None:
    await _earlier(tracker, "q1", answer=FeedbackResult.FOUND)
    batch = [(received("q2", RESIDENCE, cst(2026, 3, 10, 9)), correction("q1")),
             (received("q3", RESIDENCE, cst(2026, 3, 10, 9)), parse_message(sample_query()))]
    await tracker.queries_received(batch)  # type: ignore[arg-type]
    assert {c: (await tracker.store.get_case(c)) is not None for c in ("q2", "q3")} == {"q2": True, "q3": True}
