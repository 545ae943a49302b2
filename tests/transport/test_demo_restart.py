"""`gateway demo` rides out a broker restart in the middle of its run and still reconciles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.transport import broker_control

pytestmark = [pytest.mark.broker, pytest.mark.faults, pytest.mark.slow]


def test_demo_survives_a_broker_restart_mid_run_and_reconciles(amqp_url, tmp_path: Path):
    gateway_cli = Path(sys.executable).with_name("gateway")
    demo = subprocess.Popen(
        [str(gateway_cli), "demo", "--townships", "6", "--messages", "300", "--json"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "GATEWAY_AMQP_URL": amqp_url},
    )
    try:
        with broker_control.broker_back_up_afterwards():
            time.sleep(4)  # the demo is exchanging by now (it takes ~12 s for 300 round trips here)
            assert demo.poll() is None, "the demo finished before the broker restart"
            broker_control.stop_app()
            time.sleep(2)
            broker_control.start_app()
        out, err = demo.communicate(timeout=180)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
    assert demo.returncode == 0, f"demo failed: {out}\n{err[-2000:]}"
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["lost"] == 0
    assert summary["sent"] == summary["delivered"] + summary["quarantined"] == 300
    assert summary["answered"] == 300
