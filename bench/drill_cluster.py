"""Drill: a broker node lost. Starts a local 3-node cluster and two gateways, runs N query → feedback
round trips, and disturbs them in the middle; prints one JSON line and exits 0 only when
sent = applied + quarantined, with no duplicate effect and nothing lost.

    python bench/drill_cluster.py --messages 300 --json                       # the leader node killed
    python bench/drill_cluster.py --messages 300 --json --scenario node-back  # killed, then back
    python bench/drill_cluster.py --messages 300 --json --scenario gateway-killed

The cluster (gateway/devtools/cluster.py: nodes gw5701n1..3@localhost on 127.0.0.1:5701-5703, TLS
5711-5713) is torn down at the end, also on failure or Ctrl-C; ``--cluster-dir`` uses one already
started with ``python -m gateway.devtools.cluster up`` instead (and leaves it running).
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.devtools.cluster import LocalCluster  # noqa: E402
from gateway.devtools.drill import SCENARIOS, run_drill  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--scenario", choices=SCENARIOS, default="node-lost")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--cluster-dir", type=Path, help="use this running cluster (from `cluster up`)")
    parser.add_argument("--port", type=int, default=5701, help="AMQP port of the first node it starts")
    args = parser.parse_args()
    # SIGTERM tears the cluster down like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    with tempfile.TemporaryDirectory(prefix="drill-cluster-") as tmp:
        Path(tmp).chmod(0o755)  # the nodes run as the `rabbitmq` user and must reach their folders
        work = Path(tmp) / "work"
        if args.cluster_dir is not None:
            result = run_drill(LocalCluster.from_state(args.cluster_dir), work, scenario=args.scenario,
                               messages=args.messages)
        else:
            if not args.json:
                print("starting a 3-node cluster on loopback (about a minute)…", file=sys.stderr)
            with LocalCluster(Path(tmp) / "cluster", first_port=args.port) as cluster:
                result = run_drill(cluster, work, scenario=args.scenario, messages=args.messages, restore=False)
    return result.report(args.json)


if __name__ == "__main__":
    sys.exit(main())
