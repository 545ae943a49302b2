"""One local 3-node cluster per test session (gateway/devtools/cluster.py), torn down at the end.

It lives in a fixed folder, so a session that was killed before its teardown is cleaned up by the next
one. Its ports (GATEWAY_TEST_CLUSTER_PORT, default 5701: AMQP 5701-5703, TLS 5711-5713, distribution
25701-25703) are far from the machine's default broker, which these tests never touch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.devtools.cluster import STATE_FILE, ClusterError, LocalCluster

CLUSTER_DIR = Path("/tmp/gateway-test-cluster")


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster]:
    if (CLUSTER_DIR / STATE_FILE).exists():  # left behind by a session that was killed
        LocalCluster.from_state(CLUSTER_DIR).down()
    port = int(os.environ.get("GATEWAY_TEST_CLUSTER_PORT", "5701"))
    cluster = LocalCluster(CLUSTER_DIR, first_port=port)
    try:
        cluster.up()
    except ClusterError as exc:
        cluster.down()
        pytest.fail(f"could not start the local cluster: {exc}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.down()


@pytest.fixture
def cluster(local_cluster: LocalCluster) -> LocalCluster:
    """The session's cluster with every node running (a test that stopped one has it back)."""
    for node in local_cluster.nodes:
        if not local_cluster.is_running(node.index):
            local_cluster.start_node(node.index)
    return local_cluster
