"""Every message kind, and both cipher suites, through the exchange service."""

from __future__ import annotations

from gateway.exchange.records import Direction, Status
from gateway.security.directory import KeyDirectory
from gateway.security.keys import generate_keyring
from gateway.security.envelope import parse_envelope
from gateway.security.suites import SM_SUITE_ID
from gateway.workflow.deadlines import CaseKind
from tests.gateways import FOUND, REGISTRATION, RESIDENCE, fake_gateway, keyrings, sample_notification, sample_query


async def test_a_notification_is_delivered_opens_a_five_day_case_and_gets_its_feedback():
    gw = fake_gateway(keyrings(RESIDENCE, REGISTRATION))
    await gw.start(relay=False)
    notification = await gw.service.submit(RESIDENCE, sample_notification())
    await gw.relay.run_once()
    received = await gw.store.find(REGISTRATION, Direction.IN, notification.message_id)
    body = gw.service.read_body(received)
    assert body.kind == "notification" and body.notification_kind == "4" and body.pregnancy_weeks == 12
    case = await gw.tracker.store.get_case(notification.message_id)
    assert case.kind is CaseKind.NOTIFICATION and case.deadline.working_days == 5

    await gw.service.answer(REGISTRATION, notification.message_id, FOUND)
    await gw.relay.run_once()
    sent = await gw.store.find(RESIDENCE, Direction.OUT, notification.message_id)
    assert sent.status is Status.ANSWERED and sent.result == "found"
    await gw.stop()


async def test_a_pair_pinned_to_the_guomi_suite_exchanges_sm2_sm4_envelopes():
    rings = {code: generate_keyring(code, sm2=True) for code in (RESIDENCE, REGISTRATION)}
    directory = KeyDirectory.from_keyrings(rings.values()).with_pair_preference(RESIDENCE, REGISTRATION, SM_SUITE_ID)
    gw = fake_gateway(rings, directory=directory)
    await gw.start(relay=False)

    query = await gw.service.submit(RESIDENCE, sample_query())
    assert parse_envelope(query.envelope).header.suite == SM_SUITE_ID
    await gw.relay.run_once()
    feedback = await gw.service.answer(REGISTRATION, query.message_id, FOUND)
    assert parse_envelope(feedback.envelope).header.suite == SM_SUITE_ID
    await gw.relay.run_once()
    await gw.relay.run_once()
    sent = await gw.store.find(RESIDENCE, Direction.OUT, query.message_id)
    assert sent.status is Status.ANSWERED
    assert query.message_id in await gw.service.receipts.received_for([query.message_id])
    assert gw.store.quarantine == []
    await gw.stop()
