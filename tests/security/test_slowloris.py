"""The slowloris probe of the red-team pass (issue 24), bounded: against a real `gateway serve` on
loopback, 300 connections that each send a request head one line at a time, never finishing it.
The server keeps answering /health, holds no more connections than its cap, and closes each slow one
with a 408 once its head deadline passes; a head larger than the bound is refused at once.

The settings are made small so the probe takes seconds: a 2 s head deadline, 100 connections.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.served import served

pytestmark = [pytest.mark.broker]

SLOW = 300
CAP = 100
HEADER_TIMEOUT_S = 2.0


def slow_connection(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    return s


def what_it_got(s: socket.socket) -> bytes | None:
    """None while the server keeps the connection open and silent; else what it sent before closing."""
    s.setblocking(False)
    try:
        got = s.recv(4096)
    except BlockingIOError:
        return None
    except OSError:
        return b""
    s.settimeout(2)
    try:
        while more := s.recv(4096):
            got += more
    except OSError:
        pass
    return got


def test_slow_headers_cannot_exhaust_the_server(tmp_path: Path, amqp_url: str, run_token: str) -> None:
    # The keep-alive timeout is made long: a connection closed within the head deadline is closed by it.
    with served(tmp_path, amqp_url, run_token, http_header_timeout_s=str(HEADER_TIMEOUT_S),
                http_max_connections=str(CAP), http_keep_alive_s="60") as server:
        baseline = server.open_fds()
        slow: list[socket.socket] = []
        peak = 0
        health: list[float] = []
        try:
            with httpx.Client(base_url=server.url, timeout=5, headers={"Connection": "close"}) as http:
                for i in range(SLOW):
                    slow.append(slow_connection(server.port))
                    if i % 25 == 24:
                        started = time.perf_counter()
                        assert http.get("/health").status_code == 200
                        health.append(time.perf_counter() - started)
                        peak = max(peak, server.open_fds())
                # Each slow client goes on sending a header line every 0.5 s; the server cuts it off.
                trickle_until = time.monotonic() + HEADER_TIMEOUT_S + 2
                while time.monotonic() < trickle_until:
                    for s in slow:
                        try:
                            s.sendall(b"X-Slow: 1\r\n")
                        except OSError:
                            pass
                    assert http.get("/health").status_code == 200
                    peak = max(peak, server.open_fds())
                    time.sleep(0.5)
                answers = [what_it_got(s) for s in slow]
                assert answers.count(None) == 0, f"{answers.count(None)} slow connections still open after the deadline"
                # Those cut off by the deadline got a 408 (the earlier ones were closed to make room).
                assert sum(1 for a in answers if a and a.startswith(b"HTTP/1.1 408")) >= CAP // 2, answers[-5:]
                # An unfinished head past the size bound (h11's, GATEWAY_HTTP_MAX_HEADER_BYTES) is refused at
                # once, not buffered until the deadline.
                with socket.create_connection(("127.0.0.1", server.port), timeout=HEADER_TIMEOUT_S / 2) as big:
                    big.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Big: aaaaaaaaaaaaaaaa\r\n" * 2000)
                    assert big.recv(4096).startswith(b"HTTP/1.1 400")
                # A keep-alive connection has the same deadline for its next head: one quick request, then
                # a second head sent a line at a time is cut off.
                with socket.create_connection(("127.0.0.1", server.port), timeout=5) as again:
                    again.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    first = b""
                    for _ in range(20):  # the head and the body may come in separate reads
                        first += (chunk := again.recv(65536))
                        if b'{"status":"ok"}' in first or not chunk:
                            break
                    assert first.startswith(b"HTTP/1.1 200")
                    started = time.monotonic()
                    again.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    got, reset = b"", False
                    while time.monotonic() - started < HEADER_TIMEOUT_S + 3:
                        again.settimeout(0.5)
                        try:
                            chunk = again.recv(4096)
                        except TimeoutError:
                            try:
                                again.sendall(b"X-Slow: 1\r\n")
                            except OSError:
                                reset = True
                                break
                            continue
                        except ConnectionResetError:
                            # A line sent just as the server closed is unread there, so its kernel answers
                            # with a reset, which may discard the 408 before it is read (seen under load).
                            reset = True
                            break
                        got += chunk
                        if not chunk:
                            break
                    assert got.startswith(b"HTTP/1.1 408") or (reset and not got), got
                    assert time.monotonic() - started < HEADER_TIMEOUT_S + 2
        finally:
            for s in slow:
                s.close()
        assert peak <= baseline + CAP + 20, f"{peak} descriptors open, {baseline} before the probe"
        assert max(health) < 2.0, health
        log = (tmp_path / "serve.log").read_text()
        assert log.count("closed a connection that sent no whole request head") <= 20 + 2, "the log is not limited"
