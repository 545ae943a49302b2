"""Notifications both ways (issue 13, item 4), and corrected resubmissions (item 1), through the exchange service.

Seed 002 第三十一条 (二) 4: 利用流动人口计划生育信息交换平台及时向现居住地通报流出人口相关信息 (the registration
place notifies the residence place); 范文篇7 (五): 收到通知单的一方必须及时回复 (whoever receives it replies).
"""

from __future__ import annotations

import pytest

from gateway.codec import parse_message
from gateway.exchange.errors import InvalidRequest
from gateway.exchange.records import Direction, Status
from tests.gateways import (
    ELSEWHERE,
    FOUND,
    NOT_FOUND,
    REGISTRATION,
    RESIDENCE,
    fake_gateway,
    keyrings,
    sample_notification,
    running_gateway,
    sample_query,
)


def outflow_notification() -> dict:
    """Kind ⑤ from the registration township: she left without a valid 婚育证明."""
    record = sample_notification()
    for field in ("pregnancy_weeks", "residence_township", "registration_township"):
        record.pop(field)
    return {
        **record,
        "notification_kind": "5",
        "direction": "to_residence",
        "residence_township": RESIDENCE,
        "registration_address": "天津市和平区劝业场街道新津社区",
        "remarks": "外出前未办理婚育证明",
    }


@pytest.fixture
async def gateway():
    async with running_gateway() as gw:
        yield gw


async def test_registration_township_notifies_the_residence_township_and_gets_its_reply(gateway):
    sent = await gateway.service.submit(REGISTRATION, outflow_notification())
    assert (sent.sender, sent.recipient) == (REGISTRATION, RESIDENCE)
    await gateway.relay.run_once()
    received = await gateway.store.find(RESIDENCE, Direction.IN, sent.message_id)
    assert received is not None and received.sender == REGISTRATION
    body = gateway.service.read_body(received)
    assert body.direction == "to_residence" and body.recipient_township == RESIDENCE

    # The residence township must reply; its feedback goes back to the registration township.
    feedback = await gateway.service.answer(RESIDENCE, sent.message_id, FOUND)
    assert (feedback.sender, feedback.recipient) == (RESIDENCE, REGISTRATION)
    await gateway.relay.run_once()
    original = await gateway.store.find(REGISTRATION, Direction.OUT, sent.message_id)
    assert original.status is Status.ANSWERED and original.answered_by == feedback.message_id
    assert gateway.store.quarantine == []


async def test_a_to_residence_notification_must_come_from_the_registration_township(gateway):
    with pytest.raises(InvalidRequest) as refused:
        await gateway.service.submit(RESIDENCE, {**outflow_notification(), "registration_township": REGISTRATION})
    assert [(e.path, e.reason) for e in refused.value.errors] == [
        ("notification.registration_township", f"must be this node, {RESIDENCE}")
    ]
    assert gateway.store.outbox == {}


async def test_a_notification_whose_direction_disagrees_with_its_envelope_is_quarantined(gateway):
    # Sent by the registration township, but the record says residence → registration.
    record = {**outflow_notification(), "direction": "to_registration", "registration_township": REGISTRATION}
    message = parse_message(record)
    node = gateway.service.node(REGISTRATION)
    await gateway.service._send(node, message, recipient=RESIDENCE, subject=message.person.citizen_id)
    await gateway.relay.run_once()
    [refused] = gateway.store.quarantine
    assert refused.reason == "route_mismatch"
    assert f"to_registration {RESIDENCE} → {REGISTRATION}), envelope {REGISTRATION} → {RESIDENCE}" in refused.detail


# --- rule 五: a resubmission completes and corrects the query -----------------------------------


async def test_resubmission_identical_to_the_query_it_corrects_is_refused(gateway):
    # Rule 五: 凡是反馈的内容标明"查无此人"情况的,…再次入户调查核实,并补充、完善查询信息内容后重新录入上报。
    first = await gateway.service.submit(RESIDENCE, sample_query())
    await gateway.relay.run_once()
    await gateway.service.answer(REGISTRATION, first.message_id, NOT_FOUND)
    await gateway.relay.run_once()

    with pytest.raises(InvalidRequest) as refused:
        await gateway.service.submit(RESIDENCE, {**sample_query(), "resubmission_of": first.message_id})
    [error] = refused.value.errors
    assert error.path == "query" and error.reason.startswith(f"identical to the query {first.message_id} it corrects")

    corrected = await gateway.service.submit(
        RESIDENCE,
        {**sample_query(), "resubmission_of": first.message_id, "registration_address": "天津市和平区劝业场街道新津社区"},
    )
    assert corrected.kind == "query"
    body = gateway.service.read_body(corrected)
    assert body.resubmission_of == first.message_id


async def test_resubmission_must_name_a_query_this_township_sent(gateway):
    with pytest.raises(InvalidRequest) as refused:
        await gateway.service.submit(RESIDENCE, {**sample_query(), "resubmission_of": "never-sent"})
    assert [(e.path, e.reason) for e in refused.value.errors] == [
        ("query.resubmission_of", f"{RESIDENCE} sent no query never-sent")
    ]


async def test_resubmission_cannot_name_another_townships_query():
    gw = fake_gateway(keyrings(RESIDENCE, REGISTRATION, ELSEWHERE))
    await gw.start(relay=False)
    try:
        other = await gw.service.submit(ELSEWHERE, sample_query(residence=ELSEWHERE))
        with pytest.raises(InvalidRequest) as refused:
            await gw.service.submit(RESIDENCE, {**sample_query(), "resubmission_of": other.message_id})
        assert refused.value.errors[0].path == "query.resubmission_of"
    finally:
        await gw.stop()


async def test_an_unchanged_resubmission_that_reaches_the_registration_township_is_quarantined(gateway):
    # A sending gateway that skips the check (an older release) is caught on receipt: nothing is trusted.
    first = await gateway.service.submit(RESIDENCE, sample_query())
    await gateway.relay.run_once()
    message = parse_message({**sample_query(), "resubmission_of": first.message_id})
    node = gateway.service.node(RESIDENCE)
    again = await gateway.service._send(node, message, recipient=REGISTRATION, subject=message.person.citizen_id)
    await gateway.relay.run_once()
    [refused] = gateway.store.quarantine
    assert refused.reason == "resubmission_unchanged" and refused.message_id == again.message_id
    assert await gateway.store.find(REGISTRATION, Direction.IN, again.message_id) is None
