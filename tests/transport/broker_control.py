"""Faults on the real broker: restart it, drop a gateway's connections. Needs `rabbitmqctl` (root here).

A restart affects every client of the local broker, so the tests that use it are marked ``faults``
and run serially; ``restarted_broker`` brings the broker back even when the test fails.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager


def rabbitmqctl(*args: str, timeout: float = 60) -> str:
    if shutil.which("rabbitmqctl") is None:
        raise RuntimeError("rabbitmqctl not found: fault tests need the broker's CLI")
    done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def broker_running() -> bool:
    try:
        subprocess.run(["rabbitmq-diagnostics", "-q", "check_running"], capture_output=True, timeout=20, check=True)
        return True
    except Exception:
        return False


def stop_app() -> None:
    rabbitmqctl("stop_app")


def start_app() -> None:
    rabbitmqctl("start_app", timeout=120)
    rabbitmqctl("await_startup", timeout=120)


@contextmanager
def broker_back_up_afterwards() -> Iterator[None]:
    """Whatever happens in the block, leave the broker running for the next test."""
    try:
        yield
    finally:
        if not broker_running():
            start_app()


def close_connections(name_prefix: str) -> int:
    """Drop the AMQP connections whose client-given name starts with ``name_prefix``; return how many."""
    closed = 0
    for line in rabbitmqctl("list_connections", "pid", "client_properties", "--no-table-headers").splitlines():
        pid, _, props = line.partition("\t")
        if name_prefix in props:
            rabbitmqctl("close_connection", pid.strip(), "fault test: dropped connection")
            closed += 1
    return closed


def wait_until(predicate, timeout_s: float, poll_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return False
