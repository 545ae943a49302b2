"""Drill: federation between provinces. Two separate one-node "province" brokers on loopback, their
township exchanges federated both ways as `gateway topology export --federate` describes; a township of
one province queries a township of the other and gets its answer, through links that are cut and
restored in the middle. Prints one JSON line; exits 0 only when sent = applied + quarantined, with no
duplicate effect and nothing lost. No relay of our own: the brokers' federation carries it.

    python bench/drill_federation.py --messages 100 --json

Brokers: gw5761n1@localhost (127.0.0.1:5761, TLS 5771) and gw5781n1@localhost (5781, TLS 5791),
torn down at the end, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.devtools.cluster import LocalCluster  # noqa: E402
from gateway.devtools.drill import run_federation_drill  # noqa: E402


def _both(first, second) -> None:  # type: ignore[no-untyped-def]
    """Run two blocking calls side by side; the first error (if any) is raised after both ended."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(first), pool.submit(second)]
    errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise errors[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--cut-s", type=float, default=4.0, help="how long the links stay cut")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--port", type=int, default=5761, help="AMQP port of province A (B: +20)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    with tempfile.TemporaryDirectory(prefix="drill-federation-") as tmp:
        Path(tmp).chmod(0o755)  # the brokers run as the `rabbitmq` user
        a = LocalCluster(Path(tmp) / "a", size=1, first_port=args.port)
        b = LocalCluster(Path(tmp) / "b", size=1, first_port=args.port + 20)
        try:
            if not args.json:
                print("starting two province brokers on loopback…", file=sys.stderr)
            _both(a.up, b.up)  # side by side: each broker boots in ~25 s, mostly waiting on itself
            result = run_federation_drill(a, b, Path(tmp) / "work", messages=args.messages, cut_s=args.cut_s)
        finally:
            _both(a.down, b.down)
    return result.report(args.json)


if __name__ == "__main__":
    sys.exit(main())
