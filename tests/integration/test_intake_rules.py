"""What a gateway accepts at intake, played between two gateways on the real broker and database.

* Statistical year (seed 002 第二十四条; seed 000 登记制度 七): a birth of the last days of a statistical
  year is notified in the next one while its 5 working days after learned_on run, across National Day.
* Resubmission (rule 五: 凡是反馈的内容标明"查无此人"情况的,…补充、完善查询信息内容后重新录入上报): only a
  query answered 查无此人 is re-submitted; anything else is a 422 with the reason. A receiving gateway
  that gets a resubmission it cannot continue (from a sender that does not check) tracks it as a plain
  case and says why: it never loops to the poison queue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from gateway.access.principal import Role
from gateway.bootstrap import Gateway, build_gateway
from gateway.clock import Clock, FakeClock
from gateway.codec.messages import parse_message
from gateway.exchange.nodes import HostedNode
from gateway.exchange.records import Direction
from gateway.security.directory import KeyDirectory
from gateway.settings import Settings
from gateway.web.reasons_zh import in_chinese
from gateway.workflow.periods import statistical_year_of
from tests.access.helpers import signed_in_client
from tests.gateways import (
    FOUND,
    NOT_FOUND,
    REGISTRATION,
    RESIDENCE,
    TEST_HOSTS,
    keyrings,
    running,
    sample_notification,
    sample_query,
)
from tests.waiting import eventually

pytestmark = [pytest.mark.broker, pytest.mark.database]


def _gateway(name: str, rings, directory, *, clock: Clock | None, amqp_url: str, database_url: str, token: str,
             data_dir: Path) -> Gateway:
    settings = Settings(gateway_id=f"{name}-{token}", exchange=f"test-{token}.exchange", nodes=sorted(rings),
                        data_dir=data_dir, database_url=database_url, amqp_url=amqp_url, allowed_hosts=TEST_HOSTS)
    return build_gateway(settings, clock=clock, nodes={c: HostedNode(r) for c, r in rings.items()}, directory=directory)


@pytest.fixture
def clock() -> Clock | None:
    return None  # the system clock; a test overrides it with a FakeClock


@pytest.fixture
async def gateways(clock, database_url, amqp_url, run_token, tmp_path: Path) -> AsyncIterator[tuple[Gateway, Gateway]]:
    rings = keyrings(RESIDENCE, REGISTRATION)
    directory = KeyDirectory.from_keyrings(rings.values())
    common = dict(clock=clock, amqp_url=amqp_url, database_url=database_url, token=run_token, data_dir=tmp_path)
    residence = _gateway("res", {RESIDENCE: rings[RESIDENCE]}, directory, **common)
    registration = _gateway("reg", {REGISTRATION: rings[REGISTRATION]}, directory, **common)
    async with running(residence, registration):
        yield residence, registration


async def _case(gateway: Gateway, message_id: str):
    async def opened():
        return await gateway.tracker.store.get_case(message_id)

    return await eventually(opened)


async def _answered(gateway: Gateway, message_id: str):
    async def arrived():
        stored = await gateway.store.find(RESIDENCE, Direction.OUT, message_id)
        return stored if stored is not None and stored.answered_by else None

    return await eventually(arrived)


async def _poison_depth(gateway: Gateway) -> int:
    depths = {d.queue: d.messages for d in await gateway.broker.queue_depths()}
    return depths[gateway.broker.topology.poison_queue]


# --- the statistical year ------------------------------------------------------------------------


@pytest.mark.parametrize("clock", [FakeClock(datetime(2026, 10, 10, 2, 0, tzinfo=timezone.utc))])  # Sat 10 Oct, 调休
async def test_a_birth_of_27_september_notified_on_10_october_within_its_working_days_is_accepted_and_tracked(
    gateways, clock
):
    residence, registration = gateways
    birth = {**sample_notification(), "notification_kind": "1", "child_sex": "1", "event_date": "2026-09-27",
             "learned_on": "2026-09-28"}
    del birth["pregnancy_weeks"]
    res_http = signed_in_client(residence, Role.CLERK, RESIDENCE, base_url="http://res")
    async with res_http as http:
        posted = await http.post(f"/nodes/{RESIDENCE}/notifications", json=birth)
        assert posted.status_code == 202, posted.text
        # Known on the day of the birth, its 5 working days ran until Fri 9 Oct: refused, with that day.
        too_late = await http.post(f"/nodes/{RESIDENCE}/notifications", json={**birth, "learned_on": "2026-09-27"})
        assert too_late.status_code == 422
        [error] = too_late.json()["detail"]
        assert error["loc"] == ["body", "notification", "event_date"]
        assert "(5 working days after 2026-09-27: until 2026-10-09)" in error["msg"]
    notification_id = posted.json()["message_id"]
    # The registration township's gateway reads it with the sender's acceptance date and the same
    # calendar: it is stored and tracked, not quarantined.
    case = await _case(registration, notification_id)
    assert case is not None, "the notification was never tracked by the registration township"
    assert case.event_date == date(2026, 9, 27) and statistical_year_of(case.event_date) == 2026
    assert await registration.store.list_quarantine() == []
    stored = await registration.store.find(REGISTRATION, Direction.IN, notification_id)
    assert registration.service.read_body(stored).event_date == date(2026, 9, 27)


# --- resubmission --------------------------------------------------------------------------------


def _corrected(query_id: str, n: int = 1) -> dict:
    return {**sample_query(), "current_address": f"幸福路{n + 1}号", "resubmission_of": query_id}


async def test_a_resubmission_is_accepted_only_for_a_query_answered_no_such_person(gateways):
    residence, registration = gateways
    res_http = signed_in_client(residence, Role.CLERK, RESIDENCE, base_url="http://res")
    reg_http = signed_in_client(registration, Role.CLERK, REGISTRATION, base_url="http://reg")
    async with res_http as res, reg_http as reg:
        async def send(path: str, body: dict) -> str:
            posted = await res.post(f"/nodes/{RESIDENCE}/{path}", json=body)
            assert posted.status_code == 202, posted.text
            return posted.json()["message_id"]

        async def refused(body: dict) -> str:
            response = await res.post(f"/nodes/{RESIDENCE}/queries", json=body)
            assert response.status_code == 422, response.text
            [error] = response.json()["detail"]
            assert error["loc"] == ["body", "query", "resubmission_of"]
            return error["msg"]

        unanswered = await send("queries", sample_query())
        # Kind ⑥ (a pregnancy check here) is not bound to the statistical year: the test runs on any day.
        notification = await send("notifications", {**sample_notification(), "notification_kind": "6", "pregnant": True})
        found = await send("queries", {**sample_query(), "current_address": "幸福路9号"})
        not_found = await send("queries", {**sample_query(), "current_address": "幸福路8号"})
        for query_id, answer in ((found, FOUND), (not_found, NOT_FOUND)):
            assert await _case(registration, query_id)
            answered = await reg.post(f"/nodes/{REGISTRATION}/inbox/{query_id}/feedback", json=answer)
            assert answered.status_code == 202, answered.text
            assert await _answered(residence, query_id)

        assert await refused(_corrected("never-sent")) == f"{RESIDENCE} sent no query never-sent"
        assert await refused(_corrected(unanswered)) == (
            f"the query {unanswered} has not been answered yet: only a query answered 查无此人 is re-submitted (rule 五)")
        assert await refused(_corrected(found)) == (
            f"the query {found} was answered found, not 查无此人: only a query answered 查无此人 is re-submitted (rule 五)")
        assert await refused(_corrected(notification)) == (
            f"{notification} is a notification, not a query: only a query answered 查无此人 is re-submitted (rule 五)")

        # The clerk reads each reason in Chinese.
        assert in_chinese(await refused(_corrected(unanswered))) == (
            f"查询{unanswered}尚未收到反馈：只有反馈为“查无此人”的查询才能更正后重新上报（规则五）")
        assert in_chinese(await refused(_corrected(found))).startswith(f"查询{found}的反馈是查到此人")
        assert in_chinese(await refused(_corrected(notification))).startswith(f"{notification}不是查询")
        assert in_chinese(await refused(_corrected("never-sent"))) == f"本乡镇（街道）{RESIDENCE}没有发出过查询never-sent"

        resubmitted = await send("queries", _corrected(not_found))
    case = await _case(registration, resubmitted)
    assert case.resubmission_of == not_found and case.earlier_query_ids == (not_found,)


async def test_a_resubmission_the_receiver_cannot_continue_ends_in_a_plain_case_not_in_the_poison_queue(
    gateways, caplog
):
    residence, registration = gateways
    first = await residence.service.submit(RESIDENCE, sample_query())
    assert await _case(registration, first.message_id)
    # A sending gateway that does not check (an older release) re-submits a query nobody answered.
    message = parse_message(_corrected(first.message_id), labels=True)
    node = residence.service.node(RESIDENCE)
    with caplog.at_level("WARNING", logger="gateway.tracking.tracker"):
        again = await residence.service._send(node, message, recipient=REGISTRATION, subject=message.person.citizen_id)
        case = await _case(registration, again.message_id)
    assert case is not None, "the resubmission was never tracked: its delivery looped"
    # A case of its own, outside the chain, that says why; the query counts like any other.
    assert case.resubmission_of is None and case.earlier_query_ids == ()
    assert case.is_open and case.registration_township == REGISTRATION
    assert case.history[0].cause == (
        f"received; resubmission_of {first.message_id} not linked: case {first.message_id} was not answered 查无此人 "
        f"(it is {(await registration.tracker.store.get_case(first.message_id)).state.value}); nothing to re-submit")
    assert any(again.message_id in r.getMessage() and "tracked as a plain case" in r.getMessage() for r in caplog.records)
    assert await registration.store.list_quarantine() == []
    assert await _poison_depth(registration) == 0
    # And it is answered like any other query.
    answered = await registration.service.answer(REGISTRATION, again.message_id, FOUND)
    assert answered.in_reply_to == again.message_id
