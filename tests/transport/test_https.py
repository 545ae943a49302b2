"""`gateway serve` over HTTPS (GATEWAY_HTTP_TLS_CERT / _KEY): a client that checks the certificate
gets its answer; plain HTTP on that port gets none."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from gateway.devtools.cluster import make_certificates
from gateway.node_setup import init_nodes
from gateway.settings import Settings

pytestmark = [pytest.mark.broker]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_speaks_https_with_the_configured_certificate(tmp_path: Path, amqp_url: str, run_token: str) -> None:
    make_certificates(tmp_path / "tls")
    port = _free_port()
    env = {**os.environ, "GATEWAY_NODES": "110101001", "GATEWAY_DATA_DIR": str(tmp_path),
           "GATEWAY_AMQP_URL": amqp_url, "GATEWAY_GATEWAY_ID": f"https-{run_token}",
           "GATEWAY_EXCHANGE": f"https-{run_token}.exchange", "GATEWAY_TICK_INTERVAL_S": "0",
           "GATEWAY_HTTP_TLS_CERT": str(tmp_path / "tls" / "server.pem"),
           "GATEWAY_HTTP_TLS_KEY": str(tmp_path / "tls" / "server.key"),
           "GATEWAY_ALLOW_PLAINTEXT_KEYS": "1"}  # a trial: keys made without a passphrase
    init_nodes(Settings(nodes=["110101001"], data_dir=tmp_path, key_passphrase=None), datetime.now(timezone.utc))
    server = subprocess.Popen([str(Path(sys.executable).with_name("gateway")), "serve", "--port", str(port)],
                              env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        trusted = ssl.create_default_context(cafile=str(tmp_path / "tls" / "ca.pem"))
        deadline = time.monotonic() + 60
        response = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                response = httpx.get(f"https://localhost:{port}/health", verify=trusted)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        assert response is not None, server.stderr.read().decode()[-2000:] if server.poll() is not None else "no answer"
        assert response.status_code == 200
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://localhost:{port}/health", timeout=5).raise_for_status()
        with pytest.raises(httpx.ConnectError):  # a client that trusts another CA refuses the certificate
            httpx.get(f"https://localhost:{port}/health", verify=True)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        from gateway.adapters.amqp import AmqpBroker
        from gateway.adapters.topology import Topology
        import asyncio

        asyncio.run(AmqpBroker(amqp_url, Topology(f"https-{run_token}.exchange",
                                                  f"gateway.https-{run_token}.inbox")).delete_topology())
