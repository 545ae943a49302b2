from __future__ import annotations

from datetime import timedelta

from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.cases import Case, CaseState
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet
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


# Rules 六 and 十二: 同一个信息连续三次收到同一个现居住地发送的个案查询信息,却查找不到该流出人员的,
# 视为该乡(镇、社区)对流出人员的漏管. 个案查询信息: queries; a notification (通报) is not one.


def test_no_such_person_answers_to_notifications_never_make_a_strike(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    ledger, outcomes = StrikeLedger(), []
    for i in range(3):
        received = cst(2026, 3, 2, 9) + timedelta(days=7 * i)
        case = a_query(received, rules, real_calendar, kind=CaseKind.NOTIFICATION, case_id=f"n{i + 1}")
        outcome = handle_feedback(case, ledger, received + timedelta(days=1), NSP, reason=NoSuchPersonReason.WRONG_ADDRESS)
        ledger = outcome.ledger
        outcomes.append(outcome)
    assert [o.charge for o in outcomes] == [None, None, None]
    assert outcomes[-1].case.state is CaseState.NO_SUCH_PERSON
    assert ledger.count(outcomes[-1].case.strike_key) == 0


def test_a_notification_in_between_neither_counts_nor_resets_the_queries_run(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    ledger, charges = StrikeLedger(), []
    for i, kind in enumerate([CaseKind.QUERY, CaseKind.NOTIFICATION, CaseKind.QUERY, CaseKind.QUERY]):
        received = cst(2026, 3, 2, 9) + timedelta(days=3 * i)
        case = a_query(received, rules, real_calendar, kind=kind, case_id=f"m{i + 1}")
        result = FOUND if kind is CaseKind.NOTIFICATION else NSP
        outcome = handle_feedback(case, ledger, received + timedelta(days=1), result,
                                  reason=None if result is FOUND else NoSuchPersonReason.WRONG_NAME)
        ledger = outcome.ledger
        charges.append(outcome.charge)
    assert charges[:3] == [None, None, None]
    assert charges[3] is not None and charges[3].evidence_query_ids == ("m1", "m3", "m4")


def test_a_corrected_resubmission_continues_the_run_even_when_the_id_number_was_corrected(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    # Rule 五: 再次入户调查核实,并补充、完善查询信息内容后重新录入上报 — the same information, corrected.
    ids = ["43052119900101002X", "430521199001010037", "430521199001010045"]
    ledger, earlier, outcomes = StrikeLedger(), None, []
    for i, citizen in enumerate(ids):
        received = cst(2026, 3, 2, 9) + timedelta(days=7 * i)
        case = a_query(received, rules, real_calendar, case_id=f"r{i + 1}", citizen_id=citizen, resubmits=earlier)
        outcome = handle_feedback(case, ledger, received + timedelta(days=1), NSP, reason=NoSuchPersonReason.WRONG_ID_NUMBER)
        ledger, earlier = outcome.ledger, outcome.case
        outcomes.append(outcome)
    assert [o.case.strike_key.citizen_id for o in outcomes] == [ids[0]] * 3
    charge = outcomes[-1].charge
    assert charge is not None and charge.evidence_query_ids == ("r1", "r2", "r3")
    assert rebuild_ledger([o.case for o in outcomes]) == ledger


def test_a_new_query_with_the_corrected_id_but_no_resubmission_link_starts_its_own_run(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    first = a_query(cst(2026, 3, 2, 9), rules, real_calendar, case_id="s1")
    o1 = handle_feedback(first, StrikeLedger(), cst(2026, 3, 3), NSP, reason=NoSuchPersonReason.WRONG_ID_NUMBER)
    fresh = a_query(cst(2026, 3, 9, 9), rules, real_calendar, case_id="s2", citizen_id="430521199001010037")
    assert fresh.strike_key != o1.case.strike_key


def test_a_resubmission_sent_to_another_registration_township_starts_that_townships_run(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    # The address was wrong (地址有误): the other township has not yet failed to find her once.
    first = a_query(cst(2026, 3, 2, 9), rules, real_calendar, case_id="t1")
    o1 = handle_feedback(first, StrikeLedger(), cst(2026, 3, 3), NSP, reason=NoSuchPersonReason.WRONG_ADDRESS)
    moved = a_query(cst(2026, 3, 9, 9), rules, real_calendar, case_id="t2", registration="430521102",
                    citizen_id="430521199001010037", resubmits=o1.case)
    assert moved.strike_key.registration_township == "430521102"
    assert moved.strike_key.citizen_id == "430521199001010037"
    assert moved.earlier_query_ids == ("t1",)
