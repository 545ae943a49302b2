"""Delivery under faults, on the real broker and PostgreSQL: nothing lost, nothing applied twice.

Every test ends with the same reconciliation: every message sent was applied exactly once or is held
(quarantine table or poison queue) — sent = applied + quarantined — and no message id took effect twice.
The broker-restart tests stop the shared local broker: they are marked ``faults`` and run serially.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.adapters.sql.engine import create_engine
from gateway.adapters.sql.store import SqlMessageStore
from gateway.exchange.inbox_batch import InboxBatcher
from tests.gateways import REGISTRATION, RESIDENCE, sample_query
from tests.transport import broker_control
from tests.transport.harness import (
    eventually,
    init_keys,
    quarantined,
    settings_for,
    stored_incoming,
    transport_gateway,
)

pytestmark = [pytest.mark.broker, pytest.mark.database, pytest.mark.faults]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def setup(tmp_path, run_token, amqp_url, postgres_url):
    """A factory of gateways sharing keys and one PostgreSQL database; stops and cleans them afterwards."""
    init_keys(tmp_path, run_token, amqp_url, postgres_url)
    made = []

    def make(node: str, gateway_id: str, **kwargs):
        settings = settings_for(tmp_path, nodes=[node], token=run_token, gateway_id=gateway_id,
                                amqp_url=amqp_url, database_url=postgres_url)
        gateway = transport_gateway(settings, **kwargs)
        made.append(gateway)
        return gateway

    yield make
    if not broker_control.broker_running():
        await asyncio.to_thread(broker_control.start_app)
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


async def submit_paced(gateway, count: int, pause_s: float) -> list[str]:
    sent = []
    for _ in range(count):
        sent.append((await gateway.service.submit(RESIDENCE, sample_query())).message_id)
        await asyncio.sleep(pause_s)
    return sent


async def test_broker_restart_mid_run_loses_nothing(setup):
    residence, registration = setup(RESIDENCE, "res"), setup(REGISTRATION, "reg")
    await residence.start()
    await registration.start()
    n = 300
    with broker_control.broker_back_up_afterwards():
        submitting = asyncio.create_task(submit_paced(residence, n, 0.01))

        async def some_arrived() -> bool:
            return (await stored_incoming(registration, REGISTRATION))[0] >= 50

        assert await eventually(some_arrived, 30)
        await asyncio.to_thread(broker_control.stop_app)
        during = (await stored_incoming(registration, REGISTRATION))[0]
        await asyncio.sleep(2)
        assert (await registration.health())["broker"] == "disconnected"
        await asyncio.to_thread(broker_control.start_app)
        sent = await submitting

    async def all_arrived() -> bool:
        return (await stored_incoming(registration, REGISTRATION))[0] >= n

    assert await eventually(all_arrived, 120), await stored_incoming(registration, REGISTRATION)
    await asyncio.sleep(1)  # let any redelivery land, so a double effect would show
    rows, distinct = await stored_incoming(registration, REGISTRATION)
    held = await quarantined(registration)
    assert during < n, "the broker restart came after the run, not in the middle of it"
    assert len(sent) == n == rows + held
    assert rows == distinct, "a message took effect twice"
    assert held == 0
    assert (await residence.store.outbox_backlog(residence.clock.now())).pending == 0 or await eventually(
        lambda: _backlog_empty(residence), 30)
    assert await eventually(lambda: _healthy(registration), 30)


async def _backlog_empty(gateway) -> bool:
    """Nothing of this gateway's own townships is left to publish. Since each relay publishes only its
    own townships' rows, another gateway's rows in a shared database are not its to send."""
    from sqlalchemy import func, select

    from gateway.adapters.sql.tables import outbox

    async with gateway.engine.connect() as conn:
        pending = await conn.scalar(select(func.count()).select_from(outbox).where(
            outbox.c.published_at.is_(None), outbox.c.sender.in_(sorted(gateway.service.nodes))))
    return pending == 0


async def _healthy(gateway) -> bool:
    return (await gateway.health())["status"] == "ok"


async def test_dropped_connection_resumes_consuming_and_relaying_and_health_tells_the_truth(setup):
    residence, registration = setup(RESIDENCE, "res"), setup(REGISTRATION, "reg")
    await residence.start()
    await registration.start()
    first = await submit_paced(residence, 20, 0)

    async def arrived(count: int):
        async def check() -> bool:
            return (await stored_incoming(registration, REGISTRATION))[0] >= count
        return check

    assert await eventually(await arrived(20), 30)
    # What the broker state and /health say while the connection is gone, asked from the connection's
    # close callback rather than by polling: aio-pika reconnects at once, and against a local broker
    # the outage lasts from under 10 ms to ~50 ms, so a watcher polling /health every 10 ms (plus a
    # database ping each time) missed it now and then. aio-pika clears `connected` before it runs the
    # close callbacks and reconnects only once they have returned, so within the callback the
    # connection is still down.
    during: asyncio.Future[tuple[str, dict]] = asyncio.get_running_loop().create_future()

    async def on_close(_connection, _exc) -> None:
        if during.done():
            return
        try:
            during.set_result((registration.broker.state(), await registration.health()))
        except Exception as exc:
            during.set_exception(exc)

    connection = registration.broker._connection
    assert connection is not None
    connection.close_callbacks.add(on_close)
    try:
        closed = await asyncio.to_thread(broker_control.close_connections, registration.settings.queue_name)
        closed += await asyncio.to_thread(broker_control.close_connections, residence.settings.queue_name)
        assert closed == 2
        state, health = await asyncio.wait_for(during, 30)
    finally:
        connection.close_callbacks.discard(on_close)
    assert state == "disconnected", state
    assert health["broker"] == "disconnected" and health["status"] == "degraded", \
        f"/health said {health} while the connection was gone"
    second = await submit_paced(residence, 20, 0)
    assert await eventually(await arrived(40), 60)
    rows, distinct = await stored_incoming(registration, REGISTRATION)
    assert rows == distinct == len(first) + len(second)
    assert await eventually(lambda: _healthy(registration), 30)
    assert await eventually(lambda: _healthy(residence), 30)


async def test_consumer_killed_mid_batch_loses_nothing_and_applies_nothing_twice(setup, tmp_path, run_token,
                                                                                amqp_url, postgres_url):
    residence = setup(RESIDENCE, "res")
    config = {"data_dir": str(tmp_path), "token": run_token, "amqp_url": amqp_url, "database_url": postgres_url}
    consumer = subprocess.Popen(
        [sys.executable, "-m", "tests.transport.consumer_process", json.dumps(config)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert consumer.stdout is not None
        assert (await asyncio.to_thread(consumer.stdout.readline)).strip() == "ready"
        await residence.start()
        # Enough that the kill lands mid-stream: a batch is one statement now, and a consumer that got
        # from 60 to 300 between two polls made this test see it finish before it was killed.
        n = 800
        await submit_paced(residence, n, 0)
        registration = setup(REGISTRATION, "reg")  # same queue as the subprocess, started after the kill

        async def part_arrived() -> bool:
            return (await stored_incoming(residence, REGISTRATION))[0] >= 30

        assert await eventually(part_arrived, 60, poll_s=0.05)
        consumer.send_signal(signal.SIGKILL)
        consumer.wait(10)
        at_kill = (await stored_incoming(residence, REGISTRATION))[0]
        await registration.start()

        async def all_arrived() -> bool:
            return (await stored_incoming(registration, REGISTRATION))[0] >= n

        assert await eventually(all_arrived, 90)
        await asyncio.sleep(1)
        rows, distinct = await stored_incoming(registration, REGISTRATION)
        assert at_kill < n, "the consumer finished before it was killed"
        assert rows == distinct == n
        assert await quarantined(registration) == 0
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait(10)


async def test_gateway_killed_between_commit_and_publish_sends_the_backlog_on_restart(setup):
    registration = setup(REGISTRATION, "reg")
    await registration.start(relay=False)  # one database: only the residence's relays may publish its backlog
    crashed = setup(RESIDENCE, "res")
    await crashed.start(relay=False)  # commits go through, nothing is published: the crash window
    sent = await submit_paced(crashed, 40, 0)
    now = crashed.clock.now()
    # A relay that claimed 10 rows and died before the broker confirmed them: their lease runs out.
    claimed = await crashed.store.claim_outbox(now, 10, now + timedelta(seconds=2))
    assert len(claimed) == 10
    assert (await crashed.store.outbox_backlog(now)).pending == 40
    await crashed.stop()  # nothing marked, nothing published

    restarted = setup(RESIDENCE, "res")
    await restarted.start()

    async def all_arrived() -> bool:
        return (await stored_incoming(registration, REGISTRATION))[0] >= 40

    assert await eventually(all_arrived, 60)
    rows, distinct = await stored_incoming(registration, REGISTRATION)
    assert rows == distinct == len(sent)
    assert await eventually(lambda: _backlog_empty(restarted), 30)


async def test_two_relays_never_claim_the_same_outbox_row(setup, postgres_url):
    residence = setup(RESIDENCE, "res")
    await residence.start(consume=False, relay=False)  # only the two racing relays below touch the outbox
    await submit_paced(residence, 200, 0)
    engines = [create_engine(postgres_url) for _ in range(2)]
    try:
        stores = [SqlMessageStore(e) for e in engines]
        now = residence.clock.now()
        lease = now + timedelta(minutes=5)

        async def claim_all(store) -> list[int]:
            mine = []
            while batch := await store.claim_outbox(now, 7, lease):
                mine.extend(item.id for item in batch)
            return mine

        first, second = await asyncio.gather(*(claim_all(s) for s in stores))
    finally:
        for e in engines:
            await e.dispose()
    assert set(first).isdisjoint(second)
    assert len(first) + len(second) == 200
    assert first and second, "one relay took everything: the test did not race them"


class RefusingStore(SqlMessageStore):
    """Our own storage refuses one row, every time (a constraint, a trigger, a full tablespace…)."""

    def __init__(self, engine, poison: set[str]) -> None:
        super().__init__(engine)
        self.poison = poison

    async def add_incoming_batch(self, batch, refused=()):
        if any(m.message_id in self.poison for m in batch):
            raise RuntimeError("storage refused the row (test)")
        return await super().add_incoming_batch(batch, refused)

    async def add_incoming(self, message):
        if message.message_id in self.poison:
            raise RuntimeError("storage refused the row (test)")
        return await super().add_incoming(message)


async def test_message_that_keeps_failing_lands_in_the_poison_queue_and_can_be_redriven(setup, postgres_url):
    poison: set[str] = set()
    engine = create_engine(postgres_url)
    registration = setup(REGISTRATION, "reg", store=RefusingStore(engine, poison))
    residence = setup(RESIDENCE, "res")
    ids = iter(f"{i:032x}" for i in range(1, 1000))
    residence.service.new_id = lambda: next(ids)
    poison.add(f"{5:032x}")
    await registration.start()
    await residence.start()
    n = 20
    sent = await submit_paced(residence, n, 0)

    async def settled() -> bool:
        depths = {d.queue: d for d in await registration.broker.queue_depths()}
        return (await stored_incoming(registration, REGISTRATION))[0] >= n - 1 and \
            depths[registration.broker.topology.poison_queue].messages == 1

    assert await eventually(settled, 60), "the failing message never reached the poison queue"
    rows, distinct = await stored_incoming(registration, REGISTRATION)
    depths = {d.queue: d.messages for d in await registration.broker.queue_depths()}
    in_poison = depths[registration.broker.topology.poison_queue]
    assert len(sent) == rows + in_poison == n
    assert rows == distinct
    assert depths[registration.settings.queue_name] == 0

    poison.clear()  # the operator fixed the storage problem…
    assert await registration.broker.redrive_poison() == 1  # …and moves the message back to the inbox

    async def all_applied() -> bool:
        return (await stored_incoming(registration, REGISTRATION))[0] == n

    assert await eventually(all_applied, 30)
    await engine.dispose()


async def test_database_outage_holds_deliveries_instead_of_poisoning_them():
    """While our database does not answer, a delivery is retried in place (not nacked toward the limit)."""
    calls = {"n": 0}
    healthy = {"ok": False}

    async def failing_batch(deliveries):
        raise ConnectionError("database down")

    async def one(delivery):
        calls["n"] += 1
        if not healthy["ok"]:
            raise ConnectionError("database down")
        return "stored"

    async def ping():
        if not healthy["ok"]:
            raise ConnectionError("database down")

    batcher = InboxBatcher(failing_batch, one, ping, max_wait_s=0.001, outage_pause_max_s=0.2)
    from gateway.exchange.ports import Delivery

    pending = asyncio.create_task(batcher.submit(Delivery(b"x", REGISTRATION)))
    await asyncio.sleep(1.0)
    assert not pending.done(), "the delivery was given up while the database was down"
    healthy["ok"] = True
    assert await asyncio.wait_for(pending, 5) == "stored"
    assert calls["n"] >= 2
