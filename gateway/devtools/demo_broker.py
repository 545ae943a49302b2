"""`make demo` on a fresh machine: find a broker, or start one, say which, then run `gateway demo`.

In this order:
1. GATEWAY_AMQP_URL is set, or a broker answers on 127.0.0.1:5672: use it (nothing is started);
2. Debian's `rabbitmq-server` is installed: start a one-node broker of our own on 127.0.0.1:5799
   (gateway/devtools/cluster.py: its own node name and folder, never the machine's default node),
   and stop it and remove its folder afterwards;
3. a Docker engine answers: `docker compose --profile demo up -d demo-broker` (127.0.0.1:5672 only,
   a random password for this run), and `docker compose … down` afterwards;
4. otherwise: say how to get one, exit 3.

    python -m gateway.devtools.demo_broker [gateway demo options…]
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO_PORT = 5799
DEMO_DIR = Path("/tmp/gateway-demo-broker")
# Where the machine's broker is looked for; a test points it at a closed port to act as a fresh machine.
PROBE_PORT = int(os.environ.get("GATEWAY_DEMO_PROBE_PORT", "5672"))


def _answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _docker_engine() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _gateway(args: list[str], amqp_url: str | None) -> int:
    env = dict(os.environ)
    if amqp_url:
        env["GATEWAY_AMQP_URL"] = amqp_url
    command = [str(Path(sys.executable).with_name("gateway")), "demo", *args]
    return subprocess.run(command, env=env).returncode


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if os.environ.get("GATEWAY_AMQP_URL"):
        print("broker: GATEWAY_AMQP_URL (as configured)", flush=True)
        return _gateway(args, None)
    if _answers(PROBE_PORT):
        print(f"broker: the one already answering on 127.0.0.1:{PROBE_PORT}", flush=True)
        return _gateway(args, None)
    if shutil.which("rabbitmq-server"):
        from gateway.devtools.cluster import STATE_FILE, LocalCluster

        if (DEMO_DIR / STATE_FILE).exists():
            LocalCluster.from_state(DEMO_DIR).down()
        print(f"broker: none on 127.0.0.1:{PROBE_PORT}; starting the local rabbitmq-server as a node of our own on "
              f"127.0.0.1:{DEMO_PORT} (stopped afterwards)…", flush=True)
        with LocalCluster(DEMO_DIR, size=1, first_port=DEMO_PORT, plugins=()) as broker:
            return _gateway(args, broker.admin_urls()[0])
    if _docker_engine():
        password = secrets.token_urlsafe(16)
        env = {**os.environ, "DEMO_BROKER_PASSWORD": password}
        compose = ["docker", "compose", "--profile", "demo"]
        print("broker: none on 127.0.0.1:5672; starting docker compose service demo-broker (stopped afterwards)…",
              flush=True)
        subprocess.run([*compose, "up", "-d", "demo-broker"], cwd=ROOT, env=env, check=True)
        try:
            deadline = time.monotonic() + 120
            while not _answers(5672) and time.monotonic() < deadline:
                time.sleep(1)
            time.sleep(5)  # the port opens a moment before the broker accepts logins
            return _gateway(args, f"amqp://demo:{password}@127.0.0.1:5672/")
        finally:
            subprocess.run([*compose, "down"], cwd=ROOT, env=env)
    print("no broker on 127.0.0.1:5672, no rabbitmq-server and no Docker engine: install Debian's "
          "rabbitmq-server (`apt-get install rabbitmq-server`) or Docker, or set GATEWAY_AMQP_URL", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main())
