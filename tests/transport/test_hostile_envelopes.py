"""Broker-side bounds on the real broker: hostile envelopes published straight to the exchange end in the
quarantine as size, SHA-256 and a bounded prefix, with a reason of their own, and the consumer goes on."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import aio_pika
import pytest

from gateway.codec import wire
from gateway.codec.errors import CodecError
from gateway.exchange.ports import Delivery
from gateway.exchange.redrive import RedriveRefused, redrive_quarantined
from gateway.exchange.records import Direction
from gateway.exchange.refusals import DEFAULT_PREFIX_BYTES
from gateway.security.directory import KeyDirectory
from gateway.security.envelope import MAGIC, PROTOCOL_VERSION, Envelope, EnvelopeHeader, seal
from tests.gateways import REGISTRATION, RESIDENCE, keyrings, real_gateway, running, sample_query
from tests.waiting import eventually

pytestmark = [pytest.mark.broker, pytest.mark.database]


def forged(**fields: str) -> bytes:
    """A well-framed envelope in canonical form whose header carries the given (hostile) fields."""
    values = {"suite": "x25519-hkdf-sha256-aes256gcm-ed25519", "message_id": "m" * 32, "kind": "query",
              "sender": RESIDENCE, "recipient": REGISTRATION, "created_at": "2026-03-10T02:00:00.000000Z",
              "sender_kid": "a" * 16, "recipient_kid": "b" * 16, "epk": "c" * 43, **fields}
    header = EnvelopeHeader(v=PROTOCOL_VERSION, **values)
    return Envelope(header, header.to_bytes(), os.urandom(200), os.urandom(64)).to_bytes()


@pytest.fixture
async def gateways(database_url, amqp_url, run_token, tmp_path: Path):
    rings = keyrings(RESIDENCE, REGISTRATION)
    directory = KeyDirectory.from_keyrings(rings.values())
    residence = real_gateway([rings[RESIDENCE]], directory, amqp_url=amqp_url, database_url=database_url,
                             token=run_token, gateway_id="res", data_dir=tmp_path)
    registration = real_gateway([rings[REGISTRATION]], directory, amqp_url=amqp_url, database_url=database_url,
                                token=run_token, gateway_id="reg", data_dir=tmp_path)
    async with running(residence, registration):
        yield residence, registration


async def publish_raw(amqp_url: str, token: str, bodies: list[bytes]) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(f"test-{token}.exchange")
        for body in bodies:
            await exchange.publish(aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                                   routing_key=REGISTRATION)


async def test_oversized_and_over_long_header_envelopes_are_quarantined_bounded_and_the_consumer_goes_on(
    gateways, amqp_url, run_token
):
    residence, registration = gateways
    oversized = MAGIC + os.urandom(3 * 1024 * 1024)
    hostile = {
        "message_id": forged(message_id="x" * 5000),
        "sender": forged(sender="1" * 300),
        "sender_kid": forged(sender_kid="k" * 1000),
        "kind": forged(kind="query" * 40),
    }
    await publish_raw(amqp_url, run_token, [oversized, *hostile.values()])

    async def all_quarantined():
        items = await registration.store.list_quarantine()
        return items if len(items) == 1 + len(hostile) else None

    items = await eventually(all_quarantined)
    assert items, "the hostile envelopes never all reached the quarantine"
    by_sha = {q.envelope_sha256: q for q in items}

    big = by_sha[hashlib.sha256(oversized).hexdigest()]
    assert big.reason == "oversized"
    assert big.whole_size == len(oversized) and big.truncated
    assert len(big.raw) <= DEFAULT_PREFIX_BYTES and big.raw == oversized[: len(big.raw)]

    for field, body in hostile.items():
        item = by_sha[hashlib.sha256(body).hexdigest()]
        assert item.reason == "malformed_header", (field, item.reason, item.detail)
        assert f"header.{field}" in item.detail
        assert item.whole_size == len(body) and len(item.raw) <= DEFAULT_PREFIX_BYTES
        # Nothing over-long is stored in the record's columns: a field that does not fit is left out.
        assert all(v is None or len(v) <= 64 for v in (item.message_id, item.sender, item.recipient, item.kind))

    with pytest.raises(RedriveRefused, match="only its first .* bytes were kept"):
        await redrive_quarantined(registration.service, registration.store, registration.clock, big.id)

    # The consumer is still consuming: a real query goes through after them.
    query = await residence.service.submit(RESIDENCE, sample_query())

    async def delivered():
        return await registration.store.find(REGISTRATION, Direction.IN, query.message_id)

    assert await eventually(delivered), "the consumer stopped after the hostile envelopes"
    depths = {d.queue: d.messages for d in await registration.broker.queue_depths()}
    assert depths[registration.broker.topology.poison_queue] == 0


@pytest.mark.parametrize("person, path", [
    ({"citizen_id": "120101199005170249"}, "query.person.citizen_id"),  # wrong check character '9', expected '5'
    ({"birth_date": "1990-05-18"}, "query.person.birth_date"),  # does not agree with the citizen ID (1990-05-17)
])
async def test_a_quarantined_record_keeps_paths_and_rules_not_personal_values(gateways, person, path):
    """A record that fails the codec after decryption: the detail names the field and the rule only."""
    residence, registration = gateways
    record = sample_query()
    record["person"] = {**record["person"], **person}
    plaintext = json.dumps({"v": 1, "body": record}, ensure_ascii=False).encode()
    with pytest.raises(CodecError) as refused:
        wire.decode(plaintext)
    assert "'9'" in str(refused.value) or "1990-05-17" in str(refused.value)  # the codec's own words quote values
    ring = residence.service.node(RESIDENCE).keyring
    envelope = seal(plaintext=plaintext, message_id="q-personal", kind="query", sender=ring.sender_key(),
                    recipient=registration.service.directory.recipient_key(REGISTRATION),
                    created_at=registration.clock.now())

    outcome = await registration.service.receive(Delivery(envelope, REGISTRATION))

    assert outcome.result == "quarantined" and outcome.reason == "invalid_record"
    [item] = [q for q in await registration.store.list_quarantine() if q.message_id == "q-personal"]
    assert item.detail.startswith(f"{path}: ")
    for personal in ("120101199005170249", "19900517", "1990-05-18", "1990-05-17", "王秀英", "'9'", "'5'"):
        assert personal not in item.detail, item.detail
