"""The walking skeleton end to end: two gateways, real RabbitMQ, a real database, HTTP to HTTP.

The residence township's gateway and the registration township's gateway are separate (own database,
own queue); they share only the broker and the key directory, as two counties would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest

from gateway.access.principal import Role
from gateway.bootstrap import Gateway
from gateway.exchange.records import Direction
from gateway.security.directory import KeyDirectory
from gateway.exchange.receipting import is_receipt
from gateway.security.envelope import open_envelope, parse_envelope
from gateway.security.receipts import parse_receipt, split_bundle, verify_receipt
from gateway.security.suites import SUITES
from tests.access.helpers import signed_in_client
from tests.gateways import FOUND, REGISTRATION, RESIDENCE, keyrings, real_gateway, running, sample_query

pytestmark = [pytest.mark.broker]

CITIZEN_ID = sample_query()["person"]["citizen_id"]
NAME = sample_query()["person"]["name"]


async def eventually(check, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.05)


@pytest.fixture
async def two_gateways(database_url, amqp_url, run_token, tmp_path: Path) -> AsyncIterator[tuple[Gateway, Gateway, dict]]:
    rings = keyrings(RESIDENCE, REGISTRATION)
    directory = KeyDirectory.from_keyrings(rings.values())
    # Two gateways on one database is fine: every row is keyed by the node that owns it.
    urls = {"residence": database_url, "registration": database_url}
    residence = real_gateway([rings[RESIDENCE]], directory, amqp_url=amqp_url, database_url=urls["residence"],
                             token=run_token, gateway_id="res", data_dir=tmp_path)
    registration = real_gateway([rings[REGISTRATION]], directory, amqp_url=amqp_url,
                                database_url=urls["registration"], token=run_token, gateway_id="reg",
                                data_dir=tmp_path)
    async with running(residence, registration):
        yield residence, registration, rings


@pytest.fixture
async def witness(amqp_url, run_token) -> AsyncIterator[list[bytes]]:
    """A queue bound to the gateways' exchange for both townships: every raw AMQP body, as the broker sees it."""
    seen: list[bytes] = []
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(f"test-{run_token}.exchange", aio_pika.ExchangeType.DIRECT, durable=True)
    queue = await channel.declare_queue(exclusive=True)
    for code in (RESIDENCE, REGISTRATION):
        await queue.bind(exchange, routing_key=code)

    async def keep(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        seen.append(message.body)
        await message.ack()

    await queue.consume(keep)
    yield seen
    await connection.close()


async def test_query_and_feedback_round_trip_over_rabbitmq_from_http_to_http(two_gateways, witness):
    residence, registration, rings = two_gateways
    res_http = signed_in_client(residence, Role.CLERK, RESIDENCE, base_url="http://res")
    reg_http = signed_in_client(registration, Role.CLERK, REGISTRATION, base_url="http://reg")
    async with res_http as res_http, reg_http as reg_http:
        posted = await res_http.post(f"/nodes/{RESIDENCE}/queries", json=sample_query())
        assert posted.status_code == 202, posted.text
        query_id = posted.json()["message_id"]

        async def in_inbox():
            inbox = (await reg_http.get(f"/nodes/{REGISTRATION}/inbox")).json()
            return [m for m in inbox if m["message_id"] == query_id]

        [received] = await eventually(in_inbox)
        assert received["sender"] == RESIDENCE
        assert received["body"]["person"]["citizen_id"] == CITIZEN_ID
        assert received["body"]["person"]["name"] == NAME

        answered = await reg_http.post(f"/nodes/{REGISTRATION}/inbox/{query_id}/feedback", json=FOUND)
        assert answered.status_code == 202, answered.text
        feedback_id = answered.json()["message_id"]

        async def linked():
            detail = (await res_http.get(f"/nodes/{RESIDENCE}/messages/{query_id}")).json()
            return detail if detail["status"] == "answered" else None

        detail = await eventually(linked)
        assert detail, "the feedback never reached the residence township"
        assert detail["answered_by"] == feedback_id
        assert detail["feedback"]["in_reply_to"] == query_id
        assert detail["feedback"]["body"]["result"] == "found"
        assert detail["feedback"]["body"]["husband_name"] == FOUND["husband_name"]

        async def receipted():
            detail = (await res_http.get(f"/nodes/{RESIDENCE}/messages/{query_id}")).json()
            return detail if detail["receipted_at"] else None

        assert await eventually(receipted), "no signed delivery receipt came back"

    # The workflow is driven by what crossed the broker: the registration township's case is answered.
    case = await registration.tracker.store.get_case(query_id)
    assert case is not None and case.state.value == "answered_on_time"
    assert case.residence_township == RESIDENCE and case.registration_township == REGISTRATION

    async def both_legs_and_receipts_seen():
        return sum(is_receipt(b) for b in witness) >= 2 and sum(not is_receipt(b) for b in witness) >= 2

    assert await eventually(both_legs_and_receipts_seen)
    directory = KeyDirectory.from_keyrings(rings.values())
    envelopes = {parse_envelope(b).header.message_id: b for b in witness if not is_receipt(b)}
    assert set(envelopes) == {query_id, feedback_id}
    for body in witness:
        # Nothing personal crosses the broker in clear…
        assert CITIZEN_ID.encode() not in body
        assert NAME.encode() not in body
        assert FOUND["husband_name"].encode() not in body
        if is_receipt(body):
            # …every receipt (they travel in bundles) is signed by the recipient over the exact envelope bytes…
            for one in split_bundle(body):
                receipt, _, _ = parse_receipt(one)
                verify_receipt(one, envelopes[receipt.message_id], directory)
            continue
        # …and every message carries a signature that verifies with its sender's key.
        envelope = parse_envelope(body)
        sender_key = directory.verify_key(envelope.header.sender, envelope.header.sender_kid, at=envelope.header.created)
        SUITES[envelope.header.suite].verify(sender_key, envelope.signature, envelope.signed_bytes())
        opened = open_envelope(envelope, keyring=rings[envelope.header.recipient], directory=directory)
        assert opened.header.message_id in (query_id, feedback_id)


async def test_malformed_query_gets_422_with_field_level_reasons(two_gateways):
    residence, _, _ = two_gateways
    bad_id, bad_fields = sample_query(), sample_query()
    bad_id["person"] = {**bad_id["person"], "citizen_id": "120101199005170242"}
    bad_fields["person"] = {**bad_fields["person"], "name": ""}
    bad_fields["about_birth"] = "yes"
    async with signed_in_client(residence, Role.CLERK, RESIDENCE, base_url="http://res") as http:
        refused_id = await http.post(f"/nodes/{RESIDENCE}/queries", json=bad_id)
        refused_fields = await http.post(f"/nodes/{RESIDENCE}/queries", json=bad_fields)
    assert (refused_id.status_code, refused_fields.status_code) == (422, 422)
    id_reasons = {".".join(d["loc"]): d["msg"] for d in refused_id.json()["detail"]}
    assert "expected '5'" in id_reasons["body.query.person.citizen_id"]
    field_reasons = {".".join(d["loc"]): d["msg"] for d in refused_fields.json()["detail"]}
    assert {"body.query.person.name", "body.query.about_birth"} <= set(field_reasons)


async def test_forged_envelope_on_the_wire_is_quarantined_and_listed_for_the_operator(two_gateways, amqp_url, run_token):
    residence, registration, _ = two_gateways
    async with signed_in_client(residence, Role.CLERK, RESIDENCE, base_url="http://res") as http:
        query_id = (await http.post(f"/nodes/{RESIDENCE}/queries", json=sample_query())).json()["message_id"]
    sent = await residence.store.find(RESIDENCE, Direction.OUT, query_id)
    forged = bytearray(sent.envelope)
    forged[-80] ^= 0x01
    await residence.broker.publish(REGISTRATION, bytes(forged), message_id="forged", kind="query")

    async with signed_in_client(registration, Role.OPERATOR, base_url="http://reg") as http:
        async def listed():
            return (await http.get("/quarantine")).json()

        [item] = await eventually(listed)
        assert item["reason"] == "bad_signature"
        assert item["message_id"] == query_id
        health = (await http.get("/operator/health")).json()
        public = (await http.get("/health")).json()
    assert health == {"status": "ok", "database": "ok", "broker": "ok"}
    assert public == {"status": "ok"}  # the public route says no more than that
