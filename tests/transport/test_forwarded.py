"""Behind a proxy (issue 24, item 4): `X-Forwarded-For/-Proto` are believed from the addresses in
GATEWAY_FORWARDED_ALLOW_IPS and from nowhere else. Through the trusted proxy the session cookie is
`Secure`, HSTS is sent and the audit trail records the client's own address; a client that connects
directly and claims the same headers gets none of it.

The proxy is a few lines of asyncio on loopback: it connects to the gateway from 127.0.0.2 (all of
127/8 is loopback), the one address the gateway is told to trust, and adds the headers nginx adds.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.access.helpers import PASSWORD
from tests.served import NODE, Served, free_port, served

pytestmark = [pytest.mark.broker]

PROXY_SOURCE = "127.0.0.2"
CLIENT = "203.0.113.7"  # the clerk's address as the proxy saw it (TEST-NET-3)


class ForwardingProxy:
    """One request per connection: the request head gets X-Forwarded-For/-Proto, the rest is piped."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port, self.port = upstream_port, free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self.ready.set()
        self.loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        forwarded = (f"X-Forwarded-For: {CLIENT}\r\nX-Forwarded-Proto: https\r\n").encode()
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port,
                                                             local_addr=(PROXY_SOURCE, 0))
        up_writer.write(head[:-2] + forwarded + b"\r\n")

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    def __enter__(self) -> ForwardingProxy:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def gateway_behind_proxy(tmp_path_factory: pytest.TempPathFactory, amqp_url: str) -> Iterator[tuple[Served, ForwardingProxy]]:
    import secrets

    tmp = tmp_path_factory.mktemp("forwarded")
    with served(tmp, amqp_url, secrets.token_hex(4), forwarded_allow_ips=PROXY_SOURCE) as server:
        added = server.gateway("users", "add", "clerk1", "--role", "clerk", "--scope", NODE, "--password-stdin",
                               stdin=PASSWORD + "\n")
        assert added.returncode == 0, added.stderr
        with ForwardingProxy(server.port) as proxy:
            yield server, proxy


def sign_in(base_url: str, **headers: str) -> httpx.Response:
    # One connection per request ("Connection: close"), as the proxy serves one request per connection.
    with httpx.Client(base_url=base_url, headers={"Connection": "close", **headers}) as http:
        page = http.get("/login")
        assert page.status_code == 200, page.text
        token = page.cookies.get("gw_login_csrf") or http.cookies.get("gw_login_csrf")
        assert token, page.headers
        return http.post("/login", data={"username": "clerk1", "password": PASSWORD, "otp": "", "csrf_token": token,
                                         "next": "/"}, headers={"Cookie": f"gw_login_csrf={token}"})


def session_cookie(response: httpx.Response) -> str:
    assert response.status_code == 303 and response.headers["location"] == "/", response.headers
    cookies = [c for c in response.headers.get_list("set-cookie") if c.startswith("gw_session=")]
    assert len(cookies) == 1, response.headers
    return cookies[0]


def sign_in_sources(server: Served) -> list[str]:
    listed = server.gateway("audit", "list", "--json", "--user", "clerk1")
    assert listed.returncode == 0, listed.stderr
    return [r["source"] for r in map(json.loads, listed.stdout.splitlines()) if r["action"] == "sign_in"]


def test_through_the_trusted_proxy_the_cookie_is_secure_hsts_is_sent_and_the_client_is_audited(
    gateway_behind_proxy: tuple[Served, ForwardingProxy],
) -> None:
    server, proxy = gateway_behind_proxy
    before = len(sign_in_sources(server))
    response = sign_in(f"http://127.0.0.1:{proxy.port}")
    assert "; secure" in session_cookie(response).lower()
    assert response.headers["strict-transport-security"].startswith("max-age=")
    assert sign_in_sources(server)[before:] == [CLIENT]


def test_a_client_claiming_the_headers_itself_is_not_believed(gateway_behind_proxy: tuple[Served, ForwardingProxy]) -> None:
    server, _ = gateway_behind_proxy
    before = len(sign_in_sources(server))
    response = sign_in(server.url, **{"X-Forwarded-For": "198.51.100.9", "X-Forwarded-Proto": "https"})
    assert "secure" not in session_cookie(response).lower()
    assert "strict-transport-security" not in response.headers
    assert sign_in_sources(server)[before:] == ["127.0.0.1"]
