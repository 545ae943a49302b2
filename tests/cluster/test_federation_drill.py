"""The federation drill in its short form: two province brokers of its own (5761 and 5781, never the
default broker), a query answered across them through links cut and restored mid-run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.broker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_a_query_is_answered_across_federated_provinces_through_a_cut_link() -> None:
    done = subprocess.run([sys.executable, "bench/drill_federation.py", "--messages", "40", "--json"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["sent"] == 40 == result["applied"] + result["quarantined"]
    assert result["duplicates"] == result["lost"] == 0
    assert "cut both federation links" in result["disturbed"] and not result["notes"], result
