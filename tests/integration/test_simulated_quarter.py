"""A small simulated quarter (bench/simulate_quarter.py) on the real broker: every figure the gateways
stored at the quarter close equals the generator's own count of what it sent and answered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "simulate_quarter.py"

pytestmark = [pytest.mark.slow, pytest.mark.broker]


def simulate(amqp_url: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--json", "--amqp-url", amqp_url, *args],
        capture_output=True, text=True, timeout=240,
    )
    assert done.stdout.strip(), done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (done.returncode == 0) == result["ok"], done.stderr[-3000:]
    return result


def test_closed_quarter_figures_equal_what_the_generator_did(amqp_url: str) -> None:
    result = simulate(amqp_url, "--townships", "30", "--queries", "150", "--chains", "4")

    assert result["mismatches"] == [], result["mismatches"]
    assert result["lost"] == 0 and result["quarantined"] == 0 and result["refused"] == 0, result
    # Each gateway's first tick (21 March) closes the month before it (quiet: nothing to wait for) and so
    # 2026Q1; June closes, with the quarter, once every deadline of its cases has passed (issue 23).
    assert result["closed"] == ["2026-03", "2026-04", "2026-05", "2026-06", "2026Q1", "2026Q2"]
    assert result["ok"] is True
    figures = result["figures"]
    # The quarter exercised every rule it checks: late and missing answers, 查无此人, 漏管, corrections.
    assert figures["late"] > 0 and figures["overdue"] > 0 and figures["no_such_person"] > 0, figures
    assert figures["missed_management"] >= 2, figures
    assert figures["notifications_received"] > 0, figures
    assert result["sender_figures"]["reverifications_done"] > 0, result["sender_figures"]
    assert result["figures_compared"] > 30 * 14


@pytest.mark.database
def test_closed_quarter_figures_equal_what_the_generator_did_on_postgresql(amqp_url: str, postgres_server_url: str) -> None:
    result = simulate(amqp_url, "--townships", "30", "--queries", "80", "--chains", "3",
                      "--database", "postgresql", "--postgres-server", postgres_server_url)

    assert result["mismatches"] == [], result["mismatches"]
    assert result["lost"] == 0 and result["refused"] == 0, result
    assert result["figures"]["missed_management"] >= 2, result["figures"]
    assert result["ok"] is True
