"""The drills of issue 15 in their short form, on the session's local cluster (marker ``cluster``).

Each runs two gateways in their own processes over TLS, with a broker user of their own, and ends
with the reconciliation: sent = applied + quarantined, no duplicate effect, nothing lost.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.devtools.cluster import LocalCluster
from gateway.devtools.drill import run_drill

pytestmark = [pytest.mark.cluster, pytest.mark.broker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 60


def test_the_cluster_has_three_nodes_of_its_own_on_loopback_and_no_guest(cluster: LocalCluster) -> None:
    status = json.loads(cluster.ctl(1, "cluster_status", "--formatter", "json"))
    assert sorted(status["running_nodes"]) == [n.name for n in cluster.nodes]
    assert all(not n.name.startswith("rabbit@") for n in cluster.nodes)
    listeners = [(entry["interface"], entry["port"]) for entry in status["listeners"][cluster.nodes[0].name]]
    assert ("127.0.0.1", cluster.nodes[0].amqp_port) in listeners and ("127.0.0.1", cluster.nodes[0].tls_port) in listeners
    assert all(interface == "127.0.0.1" for interface, _ in listeners), listeners
    assert "guest" not in cluster.users()
    # The machine's own broker is not a member, and does not know ours.
    default = subprocess.run(["rabbitmqctl", "-q", "cluster_status", "--formatter", "json"],
                             capture_output=True, text=True, timeout=60)
    if default.returncode == 0:
        assert not {n.name for n in cluster.nodes} & set(json.loads(default.stdout)["running_nodes"])


def test_a_killed_gateway_restarted_loses_nothing_and_the_drill_prints_one_json_line(cluster: LocalCluster) -> None:
    done = subprocess.run(
        [sys.executable, "bench/drill_cluster.py", "--messages", str(MESSAGES), "--json", "--scenario", "gateway-killed",
         "--cluster-dir", str(cluster.base_dir)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert {"sent", "applied", "quarantined", "duplicates", "lost", "elapsed_s"} <= result.keys()
    assert result["sent"] == MESSAGES == result["applied"] + result["quarantined"]
    assert result["lost"] == result["duplicates"] == 0 and result["ok"] and not result["notes"], result
    assert "SIGKILLed the registration gateway" in result["disturbed"]


def test_a_lost_node_brought_back_rejoins_and_nothing_is_lost(cluster: LocalCluster, tmp_path: Path) -> None:
    result = run_drill(cluster, tmp_path, scenario="node-back", messages=MESSAGES)
    assert result.ok, result
    assert not result.notes, result
    status = json.loads(cluster.ctl(1, "cluster_status", "--formatter", "json"))
    assert len(status["running_nodes"]) == 3


def test_a_lost_leader_node_loses_nothing_and_the_queues_are_replicated_on_all_three(
        cluster: LocalCluster, tmp_path: Path) -> None:
    # Last of the session: the node stays down (the session ends with the cluster anyway).
    result = run_drill(cluster, tmp_path, scenario="node-lost", messages=MESSAGES, restore=False)
    assert result.ok, result
    assert "killed broker node" in result.disturbed and not result.notes, result
    assert result.replicas == 3
    assert (result.sent, result.applied + result.quarantined, result.duplicates, result.lost) == (MESSAGES, MESSAGES, 0, 0)
