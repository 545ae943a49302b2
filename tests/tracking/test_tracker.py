"""The workflow rules driven by real exchanged messages (in-memory adapters, fake clock)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gateway.workflow.cases import CaseState
from gateway.workflow.periods import Quarter, ReportingMonth
from gateway.workflow.reminders import ReminderKind
from gateway.workflow.reverification import TaskState
from gateway.clock import FakeClock
from tests.gateways import FOUND, NOT_FOUND, REGISTRATION, RESIDENCE, T0, sample_query, running_gateway

CST = timezone(timedelta(hours=8))


@pytest.fixture
async def gateway():
    async with running_gateway(clock=FakeClock(T0)) as gw:
        yield gw


async def send_query(gw, **changes):
    record = {**sample_query(), **changes}
    query = await gw.service.submit(RESIDENCE, record)
    await gw.relay.run_once()
    return query


async def answer(gw, query, feedback):
    sent = await gw.service.answer(REGISTRATION, query.message_id, feedback)
    await gw.relay.run_once()
    return sent


async def test_a_received_query_opens_a_case_due_at_24_00_of_the_tenth_working_day(gateway):
    query = await send_query(gateway)  # received Tuesday 2026-03-10 10:00 CST
    case = await gateway.tracker.store.get_case(query.message_id)
    assert case.state is CaseState.AWAITING_REPLY
    assert case.deadline.last_working_day.isoformat() == "2026-03-24"
    assert case.deadline.due_at == datetime(2026, 3, 25, 0, 0, tzinfo=CST)
    assert case.residence_township == RESIDENCE and case.registration_township == REGISTRATION
    assert str(case.reporting_month) == "2026-03"


async def test_a_birth_information_query_is_due_in_five_working_days(gateway):
    query = await send_query(gateway, about_birth=True)
    case = await gateway.tracker.store.get_case(query.message_id)
    assert case.deadline.last_working_day.isoformat() == "2026-03-17"


async def test_an_answer_after_the_deadline_counts_late(gateway):
    query = await send_query(gateway)
    gateway.clock.set(datetime(2026, 3, 25, 0, 0, 1, tzinfo=CST))
    await answer(gateway, query, FOUND)
    case = await gateway.tracker.store.get_case(query.message_id)
    assert case.state is CaseState.ANSWERED_LATE


async def test_an_answer_before_the_deadline_counts_on_time(gateway):
    query = await send_query(gateway)
    gateway.clock.set(datetime(2026, 3, 24, 23, 59, 59, tzinfo=CST))
    await answer(gateway, query, FOUND)
    assert (await gateway.tracker.store.get_case(query.message_id)).state is CaseState.ANSWERED_ON_TIME


async def test_third_consecutive_no_such_person_counts_missed_management(gateway):
    ids = []
    for _ in range(3):
        query = await send_query(gateway)
        await answer(gateway, query, NOT_FOUND)
        ids.append(query.message_id)
        gateway.clock.advance(timedelta(days=1))
    [charge] = await gateway.tracker.store.charges(REGISTRATION)
    assert charge.evidence_query_ids == tuple(ids)
    assert (await gateway.tracker.store.get_case(ids[-1])).state is CaseState.MISSED_MANAGEMENT
    assert (await gateway.tracker.store.get_case(ids[0])).state is CaseState.NO_SUCH_PERSON


async def test_a_found_answer_in_between_resets_the_strikes(gateway):
    for feedback in (NOT_FOUND, NOT_FOUND, FOUND, NOT_FOUND, NOT_FOUND):
        await answer(gateway, await send_query(gateway), feedback)
        gateway.clock.advance(timedelta(hours=1))
    assert await gateway.tracker.store.charges() == []


async def test_no_such_person_opens_a_reverification_task_closed_by_the_corrected_query(gateway):
    first = await send_query(gateway)
    await answer(gateway, first, NOT_FOUND)
    [task] = await gateway.tracker.store.tasks(RESIDENCE)
    assert task.query_id == first.message_id and task.state is TaskState.OPEN
    assert task.remarks == NOT_FOUND["remarks"]

    corrected = await send_query(gateway, resubmission_of=first.message_id, current_address="幸福路11号")
    [task] = await gateway.tracker.store.tasks(RESIDENCE)
    assert task.state is TaskState.RESUBMITTED and task.resubmitted_as == corrected.message_id
    case = await gateway.tracker.store.get_case(corrected.message_id)
    assert case.resubmission_of == first.message_id
    assert case.earlier_query_ids == (first.message_id,)


async def test_tick_moves_an_unanswered_case_to_overdue_and_reminds_once_of_each(gateway):
    query = await send_query(gateway)
    gateway.clock.set(datetime(2026, 3, 23, 9, 0, tzinfo=CST))  # within the last 2 working days
    report = await gateway.tracker.tick()
    assert [r.kind for r in report.reminders] == [ReminderKind.DUE_SOON]
    assert (await gateway.tracker.store.get_case(query.message_id)).state is CaseState.DUE_SOON
    gateway.clock.set(datetime(2026, 3, 25, 0, 0, tzinfo=CST))
    report = await gateway.tracker.tick()
    assert [r.kind for r in report.reminders] == [ReminderKind.OVERDUE]
    assert (await gateway.tracker.store.get_case(query.message_id)).state is CaseState.OVERDUE
    assert (await gateway.tracker.tick()).reminders == []
    sent = await gateway.tracker.store.reminders(REGISTRATION)
    assert [r.kind for _, r in sent] == [ReminderKind.DUE_SOON, ReminderKind.OVERDUE]


async def test_a_month_closes_once_its_deadlines_have_passed_and_an_answer_after_the_20th_is_on_time(gateway):
    gateway.clock.set(datetime(2026, 3, 20, 23, 0, tzinfo=CST))  # received Fri 20 Mar: due 24:00 Fri 3 Apr
    query = await send_query(gateway)
    gateway.clock.set(datetime(2026, 3, 21, 0, 0, tzinfo=CST))
    assert (await gateway.tracker.tick()).closed == []  # past the cutoff, a deadline still running: provisional
    await answer(gateway, query, FOUND)  # answered on the 21st, within 10 working days
    case = await gateway.tracker.store.get_case(query.message_id)
    assert case.state is CaseState.ANSWERED_ON_TIME and str(case.reporting_month) == "2026-03"
    gateway.clock.set(datetime(2026, 4, 3, 23, 59, tzinfo=CST))
    assert (await gateway.tracker.tick()).closed == []
    gateway.clock.set(datetime(2026, 4, 4, 0, 0, tzinfo=CST))
    assert (await gateway.tracker.tick()).closed == ["2026-03", "2026Q1"]
    frozen = gateway.tracker.store.snapshots["2026-03"].as_dict()[REGISTRATION]
    assert (frozen.received, frozen.on_time, frozen.late) == (1, 1, 0)


async def test_a_notification_s_case_keeps_its_kind_and_event_date_for_the_statistical_year(gateway):
    from tests.gateways import sample_notification

    sent = await gateway.service.submit(RESIDENCE, sample_notification())  # kind ④, a pregnancy of 2 March 2026
    await gateway.relay.run_once()
    case = await gateway.tracker.store.get_case(sent.message_id)
    assert (case.notification_kind, case.event_date.isoformat()) == ("4", "2026-03-02")


async def test_a_closed_quarter_recomputes_identically_from_the_stored_cases(gateway):
    for feedback in (FOUND, NOT_FOUND, None):
        query = await send_query(gateway)
        if feedback:
            await answer(gateway, query, feedback)
    gateway.clock.set(datetime(2026, 3, 25, 0, 5, tzinfo=CST))  # every deadline of March's cases passed
    await gateway.tracker.tick()
    stored, again = await gateway.tracker.recompute_quarter(Quarter.parse("2026Q1"))
    assert stored is not None
    assert again.inputs_digest == stored.inputs_digest
    assert again.rows == stored.rows
    [(township, counts)] = stored.rows
    assert township == REGISTRATION and counts.received == 3 and counts.answered == 2


async def test_redelivered_query_does_not_open_a_second_case(gateway):
    query = await send_query(gateway)
    from gateway.exchange.ports import Delivery

    again = await gateway.service.receive(Delivery(query.envelope, REGISTRATION))
    assert again.result == "duplicate"
    assert len(gateway.tracker.store.cases) == 1
    assert ReportingMonth.parse("2026-03") in {c.reporting_month for c in gateway.tracker.store.cases.values()}


async def test_clerks_see_cases_tasks_and_reminders_over_http(gateway):
    from gateway.access.principal import Role
    from tests.access.helpers import signed_in_client

    query = await send_query(gateway)
    await answer(gateway, await send_query(gateway), NOT_FOUND)
    gateway.clock.set(datetime(2026, 3, 25, 0, 0, tzinfo=CST))
    await gateway.tracker.tick()
    async with signed_in_client(gateway, Role.CLERK, REGISTRATION) as http:
        cases = (await http.get(f"/nodes/{REGISTRATION}/cases")).json()
        reminders = (await http.get(f"/nodes/{REGISTRATION}/reminders")).json()
    async with signed_in_client(gateway, Role.CLERK, RESIDENCE) as http:
        tasks = (await http.get(f"/nodes/{RESIDENCE}/tasks")).json()
    assert [(c["case_id"], c["state"]) for c in cases] == [(query.message_id, "overdue")]
    assert [t["state"] for t in tasks] == ["open"]
    assert [r["kind"] for r in reminders] == ["overdue"]


async def test_a_batch_of_deliveries_opens_every_case_and_returns_every_receipt(gateway):
    from gateway.exchange.ports import Delivery
    from gateway.security.receipts import split_bundle

    queries = [await gateway.service.submit(RESIDENCE, sample_query()) for _ in range(3)]
    deliveries = [Delivery(q.envelope, REGISTRATION) for q in queries]
    outcomes = await gateway.service.receive_batch(deliveries + deliveries[:1])  # one redelivered in the batch
    assert [o.result for o in outcomes] == ["stored", "stored", "stored", "duplicate"]
    assert {c for c in gateway.tracker.store.cases} == {q.message_id for q in queries}
    [bundle] = [o for o in gateway.store.outbox.values() if o.kind == "receipt"]
    assert len(split_bundle(bundle.envelope)) == 3  # one receipt each, the redelivered one included once
    outcomes = await gateway.service.receive_batch([Delivery(bundle.envelope, RESIDENCE)])
    assert [o.result for o in outcomes] == ["receipted"]
    assert set(await gateway.service.receipts.received_for([q.message_id for q in queries])) == {
        q.message_id for q in queries
    }


async def test_replies_sent_at_once_are_recorded_in_groups_and_one_person_s_strikes_in_order(gateway):
    """Eight clerks answer at once: the tracker records the replies in groups, not one by one, and
    the four 查无此人 about one woman still count in order — the first three make one 漏管 charge, the
    fourth starts the next run."""
    import asyncio
    import random

    from gateway.demo_records import citizen_id

    rng = random.Random(7)
    hers = [await send_query(gateway) for _ in range(4)]
    others = [await send_query(gateway, person={**sample_query()["person"],
                                                "citizen_id": citizen_id(rng, REGISTRATION[:6], datetime(1990, 5, 17).date())})
              for _ in range(4)]
    await asyncio.gather(*(gateway.service.answer(REGISTRATION, q.message_id, NOT_FOUND) for q in hers + others))

    cases = [await gateway.tracker.store.get_case(q.message_id) for q in hers + others]
    assert all(c.feedback is not None for c in cases)
    assert gateway.tracker._answers.batches < 8
    charges = await gateway.tracker.store.charges(REGISTRATION)
    [charge] = [c for c in charges if set(c.evidence_query_ids) <= {q.message_id for q in hers}]
    assert len(set(charge.evidence_query_ids)) == 3
    assert len(charges) == 1  # each of the other women has one 查无此人 only
