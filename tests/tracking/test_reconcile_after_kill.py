"""A gateway killed (SIGKILL) between an answer's commit and its tracking: started again, it tracks
the answer at start-up and delivers it, over the real RabbitMQ. On SQLite and PostgreSQL a gateway
process whose case store stops answering (the test's composition, tests/tracking/killed_gateway.py);
on PostgreSQL also the real `gateway serve`, with its table of cases locked from outside."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from gateway.access.principal import Role
from gateway.adapters.amqp import AmqpBroker
from gateway.adapters.sql.case_store import SqlCaseStore
from gateway.adapters.sql.direct_pg import dispose
from gateway.adapters.sql.engine import create_engine, create_schema
from gateway.adapters.sql.store import SqlMessageStore
from gateway.adapters.topology import Topology
from gateway.bootstrap import build_access
from gateway.clock import SystemClock
from gateway.exchange.records import Direction
from gateway.node_setup import init_nodes
from gateway.settings import Settings
from tests.access.helpers import PASSWORD
from tests.gateways import FOUND, REGISTRATION, RESIDENCE, sample_query
from tests.transport.harness import eventually, init_keys, settings_for, transport_gateway
from tests.web.live_server import free_port

pytestmark = [pytest.mark.broker, pytest.mark.database]

ROOT = Path(__file__).resolve().parents[2]


async def readline(process: subprocess.Popen, timeout_s: float) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), timeout_s)).strip()


async def test_answer_committed_before_its_case_is_healed_at_start_up_after_the_process_is_killed(
        tmp_path, run_token, amqp_url, database_url):
    init_keys(tmp_path, run_token, amqp_url, database_url)
    engine = create_engine(database_url)
    await create_schema(engine)
    await dispose(engine)
    config = {"data_dir": str(tmp_path), "token": run_token, "amqp_url": amqp_url, "database_url": database_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.tracking.killed_gateway", json.dumps(config)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    restarted = None
    try:
        words = (await readline(process, 60)).split()
        assert words[0] == "received", words
        query_id = words[1]
        assert (await readline(process, 30)).split() == ["tracking", query_id]
        process.send_signal(signal.SIGKILL)
        assert process.wait(10) == -signal.SIGKILL

        settings = settings_for(tmp_path, nodes=[RESIDENCE, REGISTRATION], token=run_token, gateway_id="both",
                                amqp_url=amqp_url, database_url=database_url)
        restarted = transport_gateway(settings)
        # What the killed process left: the answer committed, the query claimed by it, its case open.
        answered = await restarted.store.find(REGISTRATION, Direction.IN, query_id)
        assert answered is not None and answered.answered_by is not None
        reply = await restarted.store.find(REGISTRATION, Direction.OUT, answered.answered_by)
        assert reply is not None and reply.in_reply_to == query_id
        assert (await restarted.tracker.store.get_case(query_id)).is_open

        await restarted.start()

        case = await restarted.tracker.store.get_case(query_id)
        assert not case.is_open and case.feedback.message_id == reply.message_id
        assert case.feedback.answered_at == reply.accepted_at
        later = reply.accepted_at + timedelta(days=30)  # past its deadline: not overdue, nothing open
        assert await restarted.tracker.store.overdue_cases(REGISTRATION[:6], case.reporting_month, later) == []
        assert await restarted.tracker.store.open_cases(REGISTRATION) == []

        async def reply_delivered() -> bool:
            return await restarted.store.find(RESIDENCE, Direction.IN, reply.message_id) is not None

        # And the residence township has its answer. The killed process's relay may have claimed the
        # reply's outbox row just before the kill: then the row falls due again when its lease (the
        # relay's 60 s) runs out, so the wait covers the lease (at 30 s this failed 2 runs of 5).
        assert await eventually(reply_delivered, 90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        if restarted is not None:
            await restarted.stop()
            await restarted.broker.delete_topology()


def _serve(env: dict[str, str], port: int, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([str(Path(sys.executable).with_name("gateway")), "serve", "--port", str(port)],
                            env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _healthy(http: httpx.AsyncClient, server: subprocess.Popen) -> bool:
    async def answers() -> bool:
        if server.poll() is not None:
            raise AssertionError(f"gateway serve exited with {server.returncode}")
        try:
            return (await http.get("/health")).status_code == 200
        except httpx.TransportError:
            return False

    return await eventually(answers, 60, poll_s=0.3)


async def test_gateway_serve_killed_while_its_case_store_is_locked_tracks_the_answer_when_it_serves_again(
        tmp_path, run_token, amqp_url, postgres_url):
    """The real `gateway serve`, its clerk's answer over HTTP. The fault is outside the process: the
    table of cases is locked (ACCESS EXCLUSIVE) from another connection, so the answer commits — it
    writes only messages and outbox — and the tracker then waits on the lock; the process is killed
    there. Served again, it has tracked the answer before it answers HTTP."""
    init_nodes(Settings(nodes=[RESIDENCE, REGISTRATION], data_dir=tmp_path, key_passphrase=None),
               datetime.now(timezone.utc))
    engine = create_engine(postgres_url)
    await create_schema(engine)
    # The users' audit records are keyed with the key `gateway serve` finds in its data dir.
    access = build_access(engine, SystemClock(), frozenset({RESIDENCE, REGISTRATION}),
                          settings=Settings(nodes=[RESIDENCE, REGISTRATION], data_dir=tmp_path, key_passphrase=None))
    tokens = {}
    for township in (RESIDENCE, REGISTRATION):
        await access.add_user(f"clerk{township}", Role.CLERK, township, PASSWORD, actor="test")
        tokens[township] = (await access.issue_token(f"clerk{township}", 1, actor="test"))[1]
    store, cases_store = SqlMessageStore(engine), SqlCaseStore(engine)
    env = {**os.environ, "GATEWAY_NODES": f"{RESIDENCE},{REGISTRATION}", "GATEWAY_DATA_DIR": str(tmp_path),
           "GATEWAY_DATABASE_URL": postgres_url, "GATEWAY_AMQP_URL": amqp_url,
           "GATEWAY_GATEWAY_ID": f"killed-{run_token}", "GATEWAY_EXCHANGE": f"killed-{run_token}.exchange",
           "GATEWAY_TICK_INTERVAL_S": "0", "GATEWAY_ALLOW_PLAINTEXT_KEYS": "1"}
    port = free_port()
    server = _serve(env, port, tmp_path)
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def clerk(township: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[township]}"}

    lock = None
    try:
        assert await _healthy(http, server)
        submitted = await http.post(f"/nodes/{RESIDENCE}/queries", json=sample_query(), headers=clerk(RESIDENCE))
        assert submitted.status_code == 202, submitted.text
        query_id = submitted.json()["message_id"]

        async def case_opened() -> bool:
            return await cases_store.get_case(query_id) is not None

        assert await eventually(case_opened, 30)

        lock = await engine.connect()
        await lock.begin()
        await lock.execute(text("LOCK TABLE cases IN ACCESS EXCLUSIVE MODE"))
        answering = asyncio.create_task(http.post(f"/nodes/{REGISTRATION}/inbox/{query_id}/feedback", json=FOUND,
                                                  headers=clerk(REGISTRATION), timeout=120))

        async def committed_and_waiting() -> bool:
            original = await store.find(REGISTRATION, Direction.IN, query_id)
            if original is None or original.answered_by is None:
                return False
            async with engine.connect() as conn:  # the tracker's read, waiting for the lock
                waiting = await conn.execute(text(
                    "SELECT count(*) FROM pg_locks WHERE relation = 'cases'::regclass AND NOT granted"))
                return waiting.scalar_one() > 0

        assert await eventually(committed_and_waiting, 30)
        server.send_signal(signal.SIGKILL)
        assert server.wait(10) == -signal.SIGKILL
        answering.cancel()
        await lock.rollback()
        await lock.close()
        lock = None
        reply_id = (await store.find(REGISTRATION, Direction.IN, query_id)).answered_by
        reply = await store.find(REGISTRATION, Direction.OUT, reply_id)
        assert (await cases_store.get_case(query_id)).is_open  # what the kill left

        server = _serve(env, port, tmp_path)
        assert await _healthy(http, server)

        open_now = await http.get(f"/nodes/{REGISTRATION}/cases", headers=clerk(REGISTRATION))
        assert open_now.status_code == 200 and open_now.json() == []
        case = await cases_store.get_case(query_id)
        assert case.feedback.message_id == reply_id and case.feedback.answered_at == reply.accepted_at

        async def reply_delivered() -> bool:
            return await store.find(RESIDENCE, Direction.IN, reply_id) is not None

        assert await eventually(reply_delivered, 90)  # the lease, as above
    finally:
        if lock is not None:
            await lock.close()
        await http.aclose()
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
        await dispose(engine)
        await AmqpBroker(amqp_url, Topology(f"killed-{run_token}.exchange",
                                            f"gateway.killed-{run_token}.inbox")).delete_topology()
