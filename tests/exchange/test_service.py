"""The exchange service on in-memory adapters: the rules of submitting, receiving and answering."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.codec.errors import CodecError
from gateway.exchange.errors import AlreadyAnswered, InvalidRequest, UnknownNode
from gateway.exchange.ports import Delivery
from gateway.exchange.records import Direction, Status
from gateway.security.envelope import seal
from gateway.codec import wire
from gateway.codec.messages import parse_message
from tests.gateways import ELSEWHERE, FOUND, NOT_FOUND, REGISTRATION, RESIDENCE, T0, fake_gateway, keyrings, sample_query, running_gateway


@pytest.fixture
async def gateway():
    async with running_gateway(RESIDENCE, REGISTRATION, ELSEWHERE) as gw:
        yield gw


async def test_feedback_arrives_linked_to_its_query(gateway):
    query = await gateway.service.submit(RESIDENCE, sample_query())
    await gateway.relay.run_once()
    received = await gateway.store.find(REGISTRATION, Direction.IN, query.message_id)
    assert received is not None and received.status is Status.RECEIVED

    feedback = await gateway.service.answer(REGISTRATION, query.message_id, FOUND)
    await gateway.relay.run_once()

    sent = await gateway.store.find(RESIDENCE, Direction.OUT, query.message_id)
    assert sent.status is Status.ANSWERED
    assert sent.answered_by == feedback.message_id
    assert sent.result == "found"
    answered_incoming = await gateway.store.find(REGISTRATION, Direction.IN, query.message_id)
    assert answered_incoming.status is Status.ANSWERED


async def test_recipient_reads_the_decrypted_record(gateway):
    query = await gateway.service.submit(RESIDENCE, sample_query())
    await gateway.relay.run_once()
    received = await gateway.store.find(REGISTRATION, Direction.IN, query.message_id)
    body = gateway.service.read_body(received)
    assert body.person.name == "王秀英"
    assert body.person.citizen_id == "120101199005170245"


async def test_nothing_personal_is_stored_in_clear(gateway):
    query = await gateway.service.submit(RESIDENCE, sample_query())
    await gateway.relay.run_once()
    for stored in gateway.store.messages.values():
        for blob in (stored.envelope, stored.body_sealed, (stored.subject or "").encode()):
            assert b"120101199005170245" not in blob
            assert "王秀英".encode() not in blob
    assert query.subject is not None and len(query.subject) == 64


async def test_tampered_envelope_is_quarantined_as_bad_signature(gateway):
    query = await gateway.service.submit(RESIDENCE, sample_query())
    forged = bytearray(query.envelope)
    forged[-80] ^= 0x01
    outcome = await gateway.service.receive(Delivery(bytes(forged), REGISTRATION))
    assert outcome.result == "quarantined"
    assert outcome.reason == "bad_signature"
    assert gateway.store.quarantine[0].raw == bytes(forged)


async def test_garbage_on_the_wire_is_quarantined_not_raised(gateway):
    outcome = await gateway.service.receive(Delivery(b"hello", REGISTRATION))
    assert (outcome.result, outcome.reason) == ("quarantined", "bad_magic")


async def test_envelope_for_a_township_this_gateway_does_not_host_is_quarantined():
    rings = keyrings(RESIDENCE, REGISTRATION)
    sender_side = fake_gateway(rings)
    only_residence = fake_gateway({RESIDENCE: rings[RESIDENCE]})
    only_residence.service.directory = sender_side.service.directory
    query = await sender_side.service.submit(RESIDENCE, sample_query())
    outcome = await only_residence.service.receive(Delivery(query.envelope, REGISTRATION))
    assert (outcome.result, outcome.reason) == ("quarantined", "not_hosted")


async def test_envelope_routed_to_another_township_is_quarantined_as_wrong_recipient(gateway):
    query = await gateway.service.submit(RESIDENCE, sample_query())
    outcome = await gateway.service.receive(Delivery(query.envelope, ELSEWHERE))
    assert (outcome.result, outcome.reason) == ("quarantined", "wrong_recipient")


async def test_identical_redelivery_is_a_harmless_no_op(gateway):
    query = await gateway.service.submit(RESIDENCE, sample_query())
    first = await gateway.service.receive(Delivery(query.envelope, REGISTRATION))
    again = await gateway.service.receive(Delivery(query.envelope, REGISTRATION))
    assert (first.result, again.result) == ("stored", "duplicate")
    assert gateway.store.quarantine == []


async def test_reused_message_id_with_other_content_is_quarantined_as_replay(gateway):
    rings = {n.code: n.keyring for n in gateway.service.nodes.values()}
    first = await gateway.service.submit(RESIDENCE, sample_query())
    await gateway.service.receive(Delivery(first.envelope, REGISTRATION))
    other = sample_query()
    other["person"] = {**other["person"], "name": "李秀兰"}
    reused = seal(
        plaintext=wire.encode(parse_message(other)),
        message_id=first.message_id,
        kind="query",
        sender=rings[RESIDENCE].sender_key(),
        recipient=gateway.service.directory.recipient_key(REGISTRATION),
        created_at=T0,
    )
    outcome = await gateway.service.receive(Delivery(reused, REGISTRATION))
    assert (outcome.result, outcome.reason) == ("quarantined", "replay")


async def test_feedback_to_a_query_never_sent_is_quarantined(gateway):
    rings = {n.code: n.keyring for n in gateway.service.nodes.values()}
    feedback = parse_message({"kind": "feedback", "in_reply_to": "nosuchquery", **NOT_FOUND})
    envelope = seal(plaintext=wire.encode(feedback), message_id="f1", kind="feedback",
                    sender=rings[REGISTRATION].sender_key(),
                    recipient=gateway.service.directory.recipient_key(RESIDENCE), created_at=T0)
    outcome = await gateway.service.receive(Delivery(envelope, RESIDENCE))
    assert (outcome.result, outcome.reason) == ("quarantined", "unknown_reference")


async def test_feedback_from_a_township_that_was_not_asked_is_quarantined(gateway):
    rings = {n.code: n.keyring for n in gateway.service.nodes.values()}
    query = await gateway.service.submit(RESIDENCE, sample_query())
    feedback = parse_message({"kind": "feedback", "in_reply_to": query.message_id, **NOT_FOUND})
    envelope = seal(plaintext=wire.encode(feedback), message_id="f2", kind="feedback",
                    sender=rings[ELSEWHERE].sender_key(),
                    recipient=gateway.service.directory.recipient_key(RESIDENCE), created_at=T0)
    outcome = await gateway.service.receive(Delivery(envelope, RESIDENCE))
    assert (outcome.result, outcome.reason) == ("quarantined", "reply_from_wrong_township")


async def test_record_whose_townships_disagree_with_the_envelope_is_quarantined(gateway):
    rings = {n.code: n.keyring for n in gateway.service.nodes.values()}
    body = parse_message(sample_query(residence=ELSEWHERE))
    envelope = seal(plaintext=wire.encode(body), message_id="q9", kind="query",
                    sender=rings[RESIDENCE].sender_key(),
                    recipient=gateway.service.directory.recipient_key(REGISTRATION), created_at=T0)
    outcome = await gateway.service.receive(Delivery(envelope, REGISTRATION))
    assert (outcome.result, outcome.reason) == ("quarantined", "route_mismatch")


async def test_query_with_a_bad_check_character_is_refused_with_its_field_path(gateway):
    record = sample_query()
    record["person"] = {**record["person"], "citizen_id": "120101199005170242"}
    with pytest.raises(CodecError) as refused:
        await gateway.service.submit(RESIDENCE, record)
    assert any(e.path.endswith("person.citizen_id") and "check character" in e.reason for e in refused.value.errors)
    assert gateway.store.outbox == {}


async def test_query_to_a_township_outside_the_directory_is_refused(gateway):
    with pytest.raises(InvalidRequest) as refused:
        await gateway.service.submit(RESIDENCE, sample_query(registration="140105001"))
    assert refused.value.errors[0].path == "query.registration_township"


async def test_query_from_a_node_not_hosted_here_is_refused(gateway):
    with pytest.raises(UnknownNode):
        await gateway.service.submit("140105001", sample_query(residence="140105001"))


async def test_a_query_is_answered_once(gateway):
    query = await gateway.service.submit(RESIDENCE, sample_query())
    await gateway.relay.run_once()
    await gateway.service.answer(REGISTRATION, query.message_id, NOT_FOUND)
    with pytest.raises(AlreadyAnswered):
        await gateway.service.answer(REGISTRATION, query.message_id, FOUND)


async def test_relay_keeps_a_refused_message_and_publishes_it_later(gateway):
    gateway.broker.fail_next_publishes = 1
    query = await gateway.service.submit(RESIDENCE, sample_query())
    assert await gateway.relay.run_once() == 0
    [item] = gateway.store.outbox.values()
    assert item.attempts == 1 and item.published_at is None and "dropped" in item.last_error
    gateway.clock.advance(item.next_attempt_at - gateway.clock.now())
    assert await gateway.relay.run_once() == 1
    assert (await gateway.store.find(REGISTRATION, Direction.IN, query.message_id)) is not None


async def test_the_recipient_returns_a_signed_receipt_and_the_sender_keeps_it(gateway):
    query = await gateway.service.submit(RESIDENCE, sample_query())
    await gateway.relay.run_once()  # the query goes out, is stored, and its receipt is queued
    await gateway.relay.run_once()  # the receipt goes back
    receipted = await gateway.service.receipts.received_for([query.message_id])
    assert receipted == {query.message_id: T0}


async def test_a_redelivered_envelope_gets_the_same_receipt_again(gateway):
    query = await gateway.service.submit(RESIDENCE, sample_query())
    await gateway.relay.run_once()
    await gateway.relay.run_once()
    [(key, first)] = gateway.service.receipts.sent.items()
    await gateway.service.receive(Delivery(query.envelope, REGISTRATION))
    assert await gateway.relay.run_once() == 1  # re-queued and sent again
    assert gateway.service.receipts.sent[key] == first


async def test_a_receipt_that_does_not_match_the_envelope_is_quarantined(gateway):
    from gateway.security.receipts import make_receipt

    first = await gateway.service.submit(RESIDENCE, sample_query())
    second = await gateway.service.submit(RESIDENCE, sample_query())
    ring = gateway.service.nodes[REGISTRATION].keyring
    receipt_for_second = bytearray(make_receipt(second.envelope, ring, T0))
    # A receipt for the second envelope, relabelled as for the first: the signature no longer holds.
    forged = bytes(receipt_for_second).replace(second.message_id.encode(), first.message_id.encode())
    outcome = await gateway.service.receive(Delivery(forged, RESIDENCE))
    assert outcome.result == "quarantined" and outcome.reason == "receipt_mismatch"


async def test_receipts_signed_in_one_batch_travel_back_as_one_bundle(gateway):
    from gateway.security.receipts import split_bundle

    queries = [await gateway.service.submit(RESIDENCE, sample_query()) for _ in range(3)]
    outbox = list(gateway.store.outbox.values())
    await gateway.service.receive_batch([Delivery(o.envelope, o.routing_key) for o in outbox])
    [bundle] = [o for o in gateway.store.outbox.values() if o.kind == "receipt"]
    assert (bundle.sender, bundle.routing_key) == (REGISTRATION, RESIDENCE)
    assert len(split_bundle(bundle.envelope)) == 3

    outcome = await gateway.service.receive(Delivery(bundle.envelope, RESIDENCE))
    assert outcome.result == "receipted"
    assert set(await gateway.service.receipts.received_for([q.message_id for q in queries])) == {q.message_id for q in queries}


async def test_a_forged_receipt_in_a_bundle_is_quarantined_alone(gateway):
    from gateway.security.receipts import bundle_receipts, make_receipt

    first, second = [await gateway.service.submit(RESIDENCE, sample_query()) for _ in range(2)]
    ring = gateway.service.nodes[REGISTRATION].keyring
    good = make_receipt(first.envelope, ring, T0)
    forged = make_receipt(second.envelope, ring, T0).replace(second.message_id.encode(), first.message_id.encode())
    outcome = await gateway.service.receive(Delivery(bundle_receipts([good, forged]), RESIDENCE))

    assert outcome.result == "receipted"
    assert await gateway.service.receipts.received_for([first.message_id, second.message_id]) == {first.message_id: T0}
    [refused] = gateway.store.quarantine
    assert refused.reason == "receipt_mismatch" and refused.raw == forged


async def test_a_bundle_cut_short_is_quarantined_whole(gateway):
    from gateway.security.receipts import bundle_receipts, make_receipt

    query = await gateway.service.submit(RESIDENCE, sample_query())
    bundle = bundle_receipts([make_receipt(query.envelope, gateway.service.nodes[REGISTRATION].keyring, T0)])
    outcome = await gateway.service.receive(Delivery(bundle[:-5], RESIDENCE))
    assert (outcome.result, outcome.reason) == ("quarantined", "truncated")
    assert await gateway.service.receipts.received_for([query.message_id]) == {}


async def test_an_envelope_created_more_than_a_week_ago_is_refused_as_stale(gateway):
    query = await gateway.service.submit(RESIDENCE, sample_query())
    gateway.clock.advance(timedelta(days=8))
    outcome = await gateway.service.receive(Delivery(query.envelope, REGISTRATION))
    assert (outcome.result, outcome.reason) == ("quarantined", "stale")


async def test_an_envelope_from_the_future_is_refused(gateway):
    query = await gateway.service.submit(RESIDENCE, sample_query())
    gateway.clock.advance(-timedelta(minutes=6))
    outcome = await gateway.service.receive(Delivery(query.envelope, REGISTRATION))
    assert (outcome.result, outcome.reason) == ("quarantined", "future")
