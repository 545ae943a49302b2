from __future__ import annotations

from datetime import timedelta

from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.cases import Case, CaseState
from gateway.workflow.deadlines import DeadlineRuleSet
from gateway.workflow.feedback import FeedbackResult, NoSuchPersonReason
from gateway.workflow.feedback_handling import FeedbackOutcome, handle_feedback, rebuild_ledger
from gateway.workflow.reverification import TaskState, link_resubmission
from gateway.workflow.strikes import StrikeLedger

from .builders import RESIDENCE, a_query
from .conftest import cst

NSP = FeedbackResult.NO_SUCH_PERSON
FOUND = FeedbackResult.FOUND


def run(answers: list[FeedbackResult], rules: DeadlineRuleSet, calendar: WorkingDayCalendar, *, residences: list[str] | None = None) -> list[FeedbackOutcome]:
    """Query the same person again after every answer, one week apart."""
    ledger = StrikeLedger()
    outcomes: list[FeedbackOutcome] = []
    start = cst(2026, 3, 2, 9)
    for i, result in enumerate(answers):
        received = start + timedelta(days=7 * i)
        case = a_query(received, rules, calendar, case_id=f"q{i + 1}", residence=(residences or [RESIDENCE] * len(answers))[i])
        reason = NoSuchPersonReason.WRONG_ADDRESS if result is NSP else None
        outcome = handle_feedback(case, ledger, received + timedelta(days=1), result, reason=reason)
        ledger = outcome.ledger
        outcomes.append(outcome)
    return outcomes


def test_third_consecutive_no_such_person_counts_missed_management(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    outcomes = run([NSP, NSP, NSP], rules, real_calendar)
    assert [o.charge for o in outcomes[:2]] == [None, None]
    charge = outcomes[2].charge
    assert charge is not None
    assert charge.registration_township == "430521101"
    assert charge.evidence_query_ids == ("q1", "q2", "q3")
    assert outcomes[2].case.state is CaseState.MISSED_MANAGEMENT
    assert outcomes[2].case.missed_management == charge


def test_a_found_answer_in_between_resets_the_count(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    outcomes = run([NSP, NSP, FOUND, NSP, NSP], rules, real_calendar)
    assert all(o.charge is None for o in outcomes)
    assert outcomes[-1].ledger.count(outcomes[-1].case.strike_key) == 2


def test_after_a_charge_the_count_restarts_at_zero(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    outcomes = run([NSP] * 6, rules, real_calendar)
    charges = [o.charge for o in outcomes if o.charge]
    assert [c.evidence_query_ids for c in charges] == [("q1", "q2", "q3"), ("q4", "q5", "q6")]


def test_queries_from_different_residence_townships_are_counted_separately(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    outcomes = run([NSP, NSP, NSP], rules, real_calendar, residences=[RESIDENCE, "310101002", RESIDENCE])
    assert all(o.charge is None for o in outcomes)


def test_every_no_such_person_opens_a_reverification_task_for_the_residence_township(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    outcomes = run([NSP, FOUND], rules, real_calendar)
    task = outcomes[0].reverification
    assert task is not None and task.residence_township == RESIDENCE and task.query_id == "q1"
    assert task.reason is NoSuchPersonReason.WRONG_ADDRESS
    assert outcomes[1].reverification is None


def test_a_corrected_resubmission_links_to_all_earlier_queries(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    first = a_query(cst(2026, 3, 2, 9), rules, real_calendar, case_id="q1")
    o1 = handle_feedback(first, StrikeLedger(), cst(2026, 3, 3), NSP, reason=NoSuchPersonReason.WRONG_NAME)
    second = a_query(cst(2026, 3, 9, 9), rules, real_calendar, case_id="q2", resubmits=o1.case)
    assert o1.reverification is not None
    task = link_resubmission(o1.reverification, second)
    assert task.state is TaskState.RESUBMITTED and task.resubmitted_as == "q2"
    o2 = handle_feedback(second, o1.ledger, cst(2026, 3, 10), NSP, reason=NoSuchPersonReason.WRONG_NAME)
    third: Case = a_query(cst(2026, 3, 16, 9), rules, real_calendar, case_id="q3", resubmits=o2.case)
    assert third.resubmission_of == "q2" and third.earlier_query_ids == ("q1", "q2")


def test_the_ledger_can_be_rebuilt_from_stored_cases(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    outcomes = run([NSP, FOUND, NSP, NSP], rules, real_calendar)
    assert rebuild_ledger([o.case for o in outcomes]) == outcomes[-1].ledger
