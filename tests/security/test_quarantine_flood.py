"""The red-team's quarantine flood, on the real broker: any broker user can publish to a gateway's inbox,
so 1,000 × 70 KiB of unsigned junk must not become 1,000 stored rows. The quarantine stores up to its
caps, counts every refusal, and the real traffic published at the same time all arrives."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from pathlib import Path

import aio_pika
import pytest

from gateway.access.principal import Role
from gateway.bootstrap import build_gateway
from gateway.exchange.nodes import HostedNode
from gateway.exchange.records import Direction
from gateway.exchange.refusals import UNSIGNED
from gateway.security.directory import KeyDirectory
from gateway.security.envelope import MAGIC, PROTOCOL_VERSION, Envelope, EnvelopeHeader
from gateway.settings import Settings
from tests.access.helpers import signed_in_client
from tests.gateways import REGISTRATION, RESIDENCE, TEST_HOSTS, keyrings, running, sample_query

pytestmark = [pytest.mark.broker, pytest.mark.database]

JUNK = 1_000
JUNK_BYTES = 70 * 1024
UNSIGNED_ROWS = 50  # the size of the unauthenticated bucket in this test (default 1,000)
VALID = 20


def _gateway(ring, directory, *, gateway_id: str, database_url: str, amqp_url: str, token: str, data_dir: Path):
    settings = Settings(
        gateway_id=f"{gateway_id}-{token}", exchange=f"test-{token}.exchange", nodes=[ring.township],
        data_dir=data_dir, database_url=database_url, amqp_url=amqp_url, allowed_hosts=TEST_HOSTS,
        quarantine_unsigned_rows=UNSIGNED_ROWS, quarantine_unsigned_per_hour=10 * JUNK,
        quarantine_unsigned_per_sender_per_hour=10 * JUNK,
    )
    return build_gateway(settings, nodes={ring.township: HostedNode(ring)}, directory=directory)


def forged_from(sender: str, size: int) -> bytes:
    """A well-framed envelope claiming ``sender``, with a signature nobody made."""
    header = EnvelopeHeader(v=PROTOCOL_VERSION, suite="x25519-hkdf-sha256-aes256gcm-ed25519",
                            message_id=os.urandom(16).hex(), kind="query", sender=sender, recipient=REGISTRATION,
                            created_at="2026-03-10T02:00:00.000000Z", sender_kid="a" * 16, recipient_kid="b" * 16,
                            epk="c" * 43)
    return Envelope(header, header.to_bytes(), os.urandom(size), os.urandom(64)).to_bytes()


@pytest.fixture
async def gateways(database_url, amqp_url, run_token, tmp_path: Path):
    rings = keyrings(RESIDENCE, REGISTRATION)
    directory = KeyDirectory.from_keyrings(rings.values())
    common = {"database_url": database_url, "amqp_url": amqp_url, "token": run_token, "data_dir": tmp_path}
    residence = _gateway(rings[RESIDENCE], directory, gateway_id="res", **common)
    registration = _gateway(rings[REGISTRATION], directory, gateway_id="reg", **common)
    async with running(residence, registration):
        yield residence, registration


async def publish_junk(amqp_url: str, token: str, bodies: list[bytes]) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(f"test-{token}.exchange")
        for body in bodies:
            await exchange.publish(aio_pika.Message(body), routing_key=REGISTRATION)


async def test_a_flood_of_unsigned_junk_is_stored_up_to_the_cap_counted_in_full_and_real_traffic_arrives(
    gateways, amqp_url, run_token
):
    residence, registration = gateways
    # Raw junk, envelopes claiming a real township, and envelopes claiming one nobody knows.
    junk = [MAGIC + os.urandom(JUNK_BYTES) if i % 3 == 0
            else forged_from(RESIDENCE if i % 3 == 1 else "999999999", JUNK_BYTES) for i in range(JUNK)]
    started = time.monotonic()

    async def real_traffic() -> list[str]:
        sent = []
        for _ in range(VALID):
            sent.append((await residence.service.submit(RESIDENCE, sample_query())).message_id)
            await asyncio.sleep(0)
        return sent

    sent, _ = await asyncio.gather(real_traffic(), publish_junk(amqp_url, run_token, junk))

    since = registration.clock.now() - timedelta(hours=2)

    async def all_counted() -> int:
        return sum(c.refused for c in await registration.store.refusal_counts(since) if c.bucket == UNSIGNED)

    deadline = time.monotonic() + 60
    while await all_counted() < JUNK and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    counts = [c for c in await registration.store.refusal_counts(since) if c.bucket == UNSIGNED]
    assert sum(c.refused for c in counts) == JUNK
    stored = await registration.store.list_quarantine(10 * JUNK)
    assert len(stored) == UNSIGNED_ROWS == sum(c.stored for c in counts)
    assert all(q.authenticated is False for q in stored)
    # Keyed by the sender it claims only when the directory knows it; a made-up one is "no sender".
    assert {c.sender for c in counts} == {"", RESIDENCE}
    assert time.monotonic() - started < 60
    async with signed_in_client(registration, Role.OPERATOR) as http:
        shown = (await http.get("/operator/quarantine/counts", params={"hours": 2})).json()
    assert sum(c["refused"] for c in shown if c["bucket"] == UNSIGNED) == JUNK
    assert sum(c["counted_only"] for c in shown) == JUNK - UNSIGNED_ROWS

    async def arrived() -> int:
        return sum([await registration.store.find(REGISTRATION, Direction.IN, m) is not None for m in sent])

    deadline = time.monotonic() + 30
    while await arrived() < VALID and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert await arrived() == VALID, "real traffic published during the flood was lost"
    depths = {d.queue: d.messages for d in await registration.broker.queue_depths()}
    assert depths[registration.broker.topology.poison_queue] == 0
