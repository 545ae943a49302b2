"""A gateway killed (SIGKILL) between an answer's commit and its tracking: started again, it tracks
the answer at start-up and delivers it, on SQLite and PostgreSQL, over the real RabbitMQ."""

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

from gateway.adapters.sql.engine import create_engine, create_schema
from gateway.adapters.sql.direct_pg import dispose
from gateway.exchange.records import Direction
from tests.gateways import REGISTRATION, RESIDENCE
from tests.transport.harness import eventually, init_keys, settings_for, transport_gateway

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

        assert await eventually(reply_delivered, 30)  # and the residence township has its answer
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        if restarted is not None:
            await restarted.stop()
            await restarted.broker.delete_topology()
