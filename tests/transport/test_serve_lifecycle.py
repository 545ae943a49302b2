"""`gateway serve` starts its import worker with the server and stops it with the server (issue 24, Low):
after SIGTERM no process it started is left running, the multiprocessing resource tracker included."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.served import alive, served

pytestmark = [pytest.mark.broker]


def _kind(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return "gone"
    return "tracker" if "resource_tracker" in command else "worker" if "spawn_main" in command else "other"


def test_after_sigterm_no_child_of_serve_remains(tmp_path: Path, amqp_url: str, run_token: str) -> None:
    with served(tmp_path, amqp_url, run_token) as server:
        # The import worker (the first one runs a no-op and is replaced by one that loads the codec) and
        # the resource tracker its pool needs: taken once they have settled.
        deadline = time.monotonic() + 30
        children: set[int] = set()
        while time.monotonic() < deadline:
            time.sleep(1.0)
            now = server.descendants()
            kinds = {_kind(pid) for pid in now}
            if now == children and {"worker", "tracker"} <= kinds:
                break
            children = now
        assert {"worker", "tracker"} <= {_kind(pid) for pid in children}, children
        assert httpx.get(f"{server.url}/health").status_code == 200
        server.process.terminate()
        server.process.wait(timeout=60)
        log = (tmp_path / "serve.log").read_text()
        assert "Traceback" not in log, log[-3000:]
        deadline = time.monotonic() + 10
        while (left := {pid for pid in children if alive(pid)}) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert left == set(), f"still running after serve stopped: {left}"
