"""Several gateways on one PostgreSQL: each relays only its own townships' outbox rows.

Three residence gateways and a registration gateway share one database and the real broker. While
queries flow, a gateway is added (its backlog goes out), one is removed and its township handed to
another (the rows it left go out from there), and for a while two gateways host the same township.
Every publish is recorded at the publisher: each message is published exactly once, by a gateway
hosting its sender, and nothing is left in the outbox.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from gateway.adapters.fake_case_store import FakeCaseStore
from gateway.adapters.sql.tables import outbox
from gateway.bootstrap import Gateway
from gateway.node_setup import init_nodes
from gateway.exchange.records import Direction
from tests.gateways import sample_query
from tests.transport.harness import eventually, settings_for, stored_incoming, transport_gateway

pytestmark = [pytest.mark.broker, pytest.mark.database]

R1, R2, R3 = "110101001", "110101002", "110101003"  # three residence townships of 东城区, Beijing
REG = "120101001"
PER_TOWNSHIP = 60


@pytest.fixture
async def province(tmp_path, run_token, amqp_url, postgres_url):
    init_nodes(settings_for(tmp_path, nodes=[R1, R2, R3, REG], token=run_token, gateway_id="init",
                            amqp_url=amqp_url, database_url=postgres_url), datetime.now(timezone.utc))
    made: list[Gateway] = []
    published: list[tuple[str, str]] = []  # (gateway, message id) per confirmed publish

    def make(gateway_id: str, nodes: list[str]) -> Gateway:
        settings = settings_for(tmp_path, nodes=nodes, token=run_token, gateway_id=gateway_id,
                                amqp_url=amqp_url, database_url=postgres_url)
        gateway = transport_gateway(settings, case_store=FakeCaseStore())
        gateway.archive = None  # the archive chain is not what this test is about
        publish_batch = gateway.broker.publish_batch  # what the relay publishes through

        async def recorded(messages):  # type: ignore[no-untyped-def]
            errors = await publish_batch(messages)
            published.extend((gateway_id, m.message_id) for m, error in zip(messages, errors) if error is None)
            return errors

        gateway.broker.publish_batch = recorded  # type: ignore[method-assign]
        made.append(gateway)
        return gateway

    ids_of: dict[str, set[str]] = {}
    yield make, published, ids_of
    for gateway in made:
        try:
            await gateway.stop()
        except Exception:
            pass
    for gateway in made:
        try:
            await gateway.broker.delete_topology()
        except Exception:
            pass


async def test_three_gateways_on_one_database_publish_each_message_once_and_leave_nothing_behind(province):
    make, published, ids_of = province
    reg = make("reg", [REG])
    g1, g2 = make("g1", [R1]), make("g2", [R2])
    g3 = make("g3", [R3])  # built, not started: R3's rows wait for a gateway that hosts R3
    await reg.start()
    await g1.start(consume=False)
    await g2.start(consume=False)

    async def send(gateway: Gateway, node: str, count: int) -> None:
        for _ in range(count):
            stored = await gateway.service.submit(node, sample_query(node, REG))
            ids_of.setdefault(node, set()).add(stored.message_id)
            await asyncio.sleep(0.005)

    third = PER_TOWNSHIP // 3
    await asyncio.gather(send(g1, R1, third), send(g2, R2, third), send(g3, R3, third))
    assert not set(m for _, m in published) & ids_of[R3], "a gateway published rows of a township it does not host"

    # Added while traffic flows: g3 starts and publishes R3's backlog; removed: g2 stops, and R2 moves
    # to a new gateway g1b that also hosts R1, alongside g1 (two relays on R1's rows).
    await g3.start(consume=False)
    g1b = make("g1b", [R1, R2])
    traffic = asyncio.gather(send(g1, R1, third), send(g2, R2, third), send(g3, R3, third))
    await asyncio.sleep(0.1)
    await g1b.start(consume=False)
    await traffic
    await g2.stop()
    await asyncio.gather(send(g1b, R1, third), send(g1b, R2, third), send(g3, R3, third))

    total = 3 * 3 * third

    async def residence_rows_out() -> bool:
        return await _unpublished(g1, [R1, R2, R3]) == 0

    assert await eventually(residence_rows_out, 60), await _unpublished(g1, [R1, R2, R3])
    assert await eventually(lambda: _arrived(reg, total), 60), await stored_incoming(reg, REG)
    sender_of = {m: node for node, ids in ids_of.items() for m in ids}
    # The registration gateway's receipts go out from its own relay, never from the residence gateways.
    assert all(gateway == "reg" for gateway, m in published if m not in sender_of)
    publishes = [(gateway, sender_of[m], m) for gateway, m in published if m in sender_of]
    counts = Counter(message_id for _, _, message_id in publishes)
    assert len(counts) == total and set(counts.values()) == {1}, f"published twice: {[m for m, c in counts.items() if c > 1]}"
    hosts = {"g1": {R1}, "g2": {R2}, "g3": {R3}, "g1b": {R1, R2}}
    assert all(sender in hosts[gateway] for gateway, sender, _ in publishes)
    # R3's rows, the backlog made while no gateway hosted R3 included, went out from g3 alone.
    assert sum(1 for g, s, _ in publishes if g == "g3" and s == R3) == 3 * third
    # R2's rows after g2 was removed went out from g1b.
    assert any(g == "g1b" and s == R2 for g, s, _ in publishes)
    rows, distinct = await stored_incoming(reg, REG)
    assert rows == distinct == total
    sent = await g1.store.list_messages(R2, Direction.OUT, limit=total)
    assert all(m.status.value == "sent" for m in sent)


async def _unpublished(gateway: Gateway, senders: list[str]) -> int:
    assert gateway.engine is not None
    async with gateway.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(outbox).where(
            outbox.c.published_at.is_(None), outbox.c.sender.in_(senders)))).scalar_one()


async def _arrived(gateway: Gateway, count: int) -> bool:
    return (await stored_incoming(gateway, REG))[0] >= count
