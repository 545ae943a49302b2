"""The sending side assessed (seed 002 第三十一条): submission on time, accuracy, re-verification."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

from gateway.workflow.accounting import Level
from gateway.workflow.calendar import WorkingDayCalendar
from gateway.workflow.case_facts import facts_of
from gateway.workflow.cases import Direction, open_case, record_feedback, withdraw
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet
from gateway.workflow.feedback import FeedbackResult, NoSuchPersonReason
from gateway.workflow.periods import Quarter, ReportingMonth
from gateway.workflow.sender_accounting import count_senders, roll_up_senders

from .builders import REGISTRATION, RESIDENCE, a_query
from .conftest import cst

MARCH = ReportingMonth(2026, 3)
NSP = FeedbackResult.NO_SUCH_PERSON


def notification(case_id: str, received, event: date, rules, calendar, learned: date | None = None, **kw):  # type: ignore[no-untyped-def]
    return open_case(case_id, CaseKind.NOTIFICATION, kw.pop("residence", RESIDENCE), kw.pop("registration", REGISTRATION),
                     "43052119900101002X", received, rules, calendar, event_date=event, learned_on=learned, **kw)


def test_a_notification_is_due_within_5_working_days_of_its_event(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    # 第二十四条: 对应通报信息,应在5个工作日内提交. Event Monday 2 March 2026: the 5th working day after is Monday 9 March.
    on_time = notification("n1", cst(2026, 3, 9, 23, 59), date(2026, 3, 2), rules, real_calendar)
    late = notification("n2", cst(2026, 3, 10, 0, 0), date(2026, 3, 2), rules, real_calendar)
    assert on_time.submission_due_at == cst(2026, 3, 10) and on_time.submitted_on_time is True
    assert late.submitted_on_time is False
    counts = count_senders([facts_of(on_time), facts_of(late)], MARCH, cst(2026, 3, 21))[RESIDENCE]
    assert (counts.notifications_sent, counts.notifications_judged, counts.notifications_on_time) == (2, 2, 1)
    assert counts.submission_rate == Fraction(1, 2)


def test_or_within_5_working_days_of_the_day_the_sender_learned_of_it(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    # The event happened on 2 March, the residence township learned of it on 9 March: due 16 March, 24:00.
    learned_late = notification("n3", cst(2026, 3, 16, 20), date(2026, 3, 2), rules, real_calendar, learned=date(2026, 3, 9))
    assert learned_late.submission_due_at == cst(2026, 3, 17) and learned_late.submitted_on_time is True


def test_accuracy_counts_only_the_senders_own_errors_reasons_1_to_3(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    # Rule 四: 查无此人(地址有误、姓名有误、身份证号码有误、其它见备注); only the first three are the sender's errors.
    answers = [
        (NSP, NoSuchPersonReason.WRONG_ADDRESS), (NSP, NoSuchPersonReason.WRONG_NAME),
        (NSP, NoSuchPersonReason.OTHER), (FeedbackResult.FOUND, None),
    ]
    cases = []
    for i, (result, reason) in enumerate(answers):
        q = a_query(cst(2026, 3, 2 + i, 9), rules, real_calendar, case_id=f"a{i}")
        cases.append(record_feedback(q, cst(2026, 3, 3 + i), result, reason=reason, remarks="已迁出" if reason else ""))
    cases.append(a_query(cst(2026, 3, 10, 9), rules, real_calendar, case_id="unanswered"))
    cases.append(withdraw(a_query(cst(2026, 3, 10, 9), rules, real_calendar, case_id="withdrawn"), cst(2026, 3, 11)))
    counts = count_senders([facts_of(c) for c in cases], MARCH, cst(2026, 3, 21))[RESIDENCE]
    assert (counts.queries_sent, counts.queries_answered, counts.own_error_no_such_person) == (5, 4, 2)
    assert counts.accuracy == Fraction(1, 2)


def test_reverification_is_done_when_the_corrected_query_is_sent_and_its_time_is_kept(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    # Rule 五: 再次入户调查核实,并补充、完善查询信息内容后重新录入上报.
    first = record_feedback(a_query(cst(2026, 3, 2, 9), rules, real_calendar, case_id="f1"), cst(2026, 3, 4, 9), NSP,
                            reason=NoSuchPersonReason.WRONG_ADDRESS)
    other = record_feedback(a_query(cst(2026, 3, 2, 9), rules, real_calendar, case_id="f2"), cst(2026, 3, 4, 9), NSP,
                            reason=NoSuchPersonReason.WRONG_NAME)
    corrected = a_query(cst(2026, 3, 7, 9), rules, real_calendar, case_id="f1b", resubmits=first)
    # Corrected in April: it completes the March re-visit once it has arrived.
    late_fix = a_query(cst(2026, 3, 24, 9), rules, real_calendar, case_id="f2b", resubmits=other)
    facts = [facts_of(c) for c in (first, other, corrected, late_fix)]
    march = count_senders(facts, MARCH, cst(2026, 3, 21))[RESIDENCE]
    assert (march.reverifications_opened, march.reverifications_done) == (2, 1)
    assert march.mean_reverification_days == 3
    later = count_senders(facts, MARCH, cst(2026, 3, 25))[RESIDENCE]
    assert later.reverifications_done == 2 and later.reverification_seconds == 3 * 86400 + 20 * 86400


def test_a_to_residence_notification_is_judged_on_the_registration_township_as_sender(
    rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar
) -> None:
    # 第三十一条(二)4: 户籍地…及时向现居住地通报流出人口相关信息.
    n = notification("back", cst(2026, 3, 5, 9), date(2026, 3, 2), rules, real_calendar, direction=Direction.TO_RESIDENCE)
    assert n.responsible_township == RESIDENCE and n.sender_township == REGISTRATION
    rows = count_senders([facts_of(n)], MARCH, cst(2026, 3, 21))
    assert list(rows) == [REGISTRATION] and rows[REGISTRATION].notifications_on_time == 1


def test_sender_figures_roll_up_by_sums(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    a = notification("x1", cst(2026, 3, 5, 9), date(2026, 3, 2), rules, real_calendar, residence="440106001")
    b = notification("x2", cst(2026, 3, 20, 9), date(2026, 3, 2), rules, real_calendar, residence="440106002")
    c = notification("x3", cst(2026, 3, 5, 9), date(2026, 3, 2), rules, real_calendar, residence="440106003")
    rows = count_senders([facts_of(x) for x in (a, b, c)], Quarter(2026, 1), cst(2026, 3, 21))
    for level, code in ((Level.COUNTY, "440106"), (Level.CITY, "4401"), (Level.PROVINCE, "44")):
        total = roll_up_senders(rows, level)[code]
        assert (total.notifications_judged, total.notifications_on_time) == (3, 2)
        assert total.submission_rate == Fraction(2, 3)


def test_a_fact_after_the_instant_is_not_yet_counted(rules: DeadlineRuleSet, real_calendar: WorkingDayCalendar) -> None:
    q = record_feedback(a_query(cst(2026, 3, 2, 9), rules, real_calendar, case_id="g1"), cst(2026, 3, 12), NSP,
                        reason=NoSuchPersonReason.WRONG_NAME)
    before = count_senders([facts_of(q)], MARCH, cst(2026, 3, 11))[RESIDENCE]
    assert (before.queries_sent, before.queries_answered, before.own_error_no_such_person) == (1, 0, 0)
    assert before.accuracy is None
