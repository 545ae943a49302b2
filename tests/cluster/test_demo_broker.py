"""`make demo` on a machine where no broker answers: it starts the local rabbitmq-server as a node of
its own (never the default node), says so, runs the demo and stops the node afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.devtools.local_nodes import port_open
from gateway.devtools.demo_broker import DEMO_DIR, DEMO_PORT

pytestmark = [pytest.mark.cluster, pytest.mark.broker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_demo_starts_a_broker_of_its_own_when_none_answers_and_says_which() -> None:
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_AMQP_URL"}
    env["GATEWAY_DEMO_PROBE_PORT"] = "5698"  # nothing listens there: a fresh machine, as far as the demo sees
    done = subprocess.run([sys.executable, "-m", "gateway.devtools.demo_broker", "--json", "--tamper", "1"],
                          capture_output=True, text=True, timeout=400, cwd=ROOT, env=env)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    said, summary = done.stdout.strip().splitlines()[0], json.loads(done.stdout.strip().splitlines()[-1])
    assert said.startswith("broker: none on 127.0.0.1:5698; starting the local rabbitmq-server")
    assert summary["ok"] and summary["lost"] == 0 and summary["quarantined"] == 1
    assert not port_open(DEMO_PORT) and not DEMO_DIR.exists()  # stopped and removed afterwards
