"""A real `gateway serve` in a process of its own, on a free loopback port, for the tests of the HTTP
edge: what uvicorn is told (timeouts, connection cap, proxies believed) only shows in the real server."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


GATEWAY = Path(sys.executable).with_name("gateway")
NODE = "110101001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    def __init__(self, process: subprocess.Popen[bytes], port: int, env: dict[str, str], data_dir: Path) -> None:
        self.process, self.port, self.env, self.data_dir = process, port, env, data_dir
        self.url = f"http://127.0.0.1:{port}"

    def gateway(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Another `gateway` command on the same data (users, audit)."""
        return subprocess.run([str(GATEWAY), *args], env=self.env, cwd=self.data_dir, input=stdin,
                              capture_output=True, text=True, timeout=120)

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def descendants(self) -> set[int]:
        """Every process below the server (its import worker, multiprocessing's resource tracker)."""
        found: set[int] = set()
        frontier = [self.process.pid]
        while frontier:
            pid = frontier.pop()
            for task in Path(f"/proc/{pid}/task").glob("*"):
                try:
                    children = (task / "children").read_text().split()
                except OSError:
                    continue
                for child in map(int, children):
                    if child not in found:
                        found.add(child)
                        frontier.append(child)
        return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@contextmanager
def served(tmp_path: Path, amqp_url: str, token: str, **settings: str) -> Iterator[Served]:
    """`gateway serve` for one township on SQLite and the real broker, with extra GATEWAY_* settings."""
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
           "GATEWAY_NODES": NODE, "GATEWAY_DATA_DIR": str(tmp_path / "var"), "GATEWAY_AMQP_URL": amqp_url,
           "GATEWAY_GATEWAY_ID": f"edge-{token}", "GATEWAY_EXCHANGE": f"edge-{token}.exchange",
           "GATEWAY_TICK_INTERVAL_S": "0", "GATEWAY_ALLOW_PLAINTEXT_KEYS": "1",  # a trial: keys in clear
           **{f"GATEWAY_{k.upper()}": v for k, v in settings.items()}}
    subprocess.run([str(GATEWAY), "init"], env=env, cwd=tmp_path, check=True, capture_output=True, timeout=120)
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen([str(GATEWAY), "serve", "--port", str(port)], env=env, cwd=tmp_path,
                               stdout=log, stderr=subprocess.STDOUT)
    server = Served(process, port, env, tmp_path)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "gateway serve did not answer /health"
            try:
                if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
        from gateway.adapters.amqp import AmqpBroker
        from gateway.adapters.topology import Topology

        asyncio.run(AmqpBroker(amqp_url, Topology(f"edge-{token}.exchange", f"gateway.edge-{token}.inbox")).delete_topology())
