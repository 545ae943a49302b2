"""One connect function for every PostgreSQL pool (gateway/adapters/sql/pg_connect.py), on the real
PostgreSQL with a hung host in front of it: a socket that completes the TCP handshake (the kernel does)
and never answers, as a primary whose processes are stopped."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from gateway.adapters.sql.direct_pg import direct, dispose
from gateway.adapters.sql.engine import create_engine
from gateway.adapters.sql.pg_connect import PER_HOST_TIMEOUT_S, WritableConnector, hosts_of

pytestmark = [pytest.mark.database]


@pytest.fixture
def hung_port() -> Iterator[int]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # never accepted: connects complete, nothing is ever read or written
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def _formation_url(postgres_url: str, *hosts: str) -> str:
    url = make_url(postgres_url)
    return url.set(host=None, port=None, query={"host": list(hosts), "target_session_attrs": "read-write"}) \
        .render_as_string(hide_password=False)


def _live(postgres_url: str) -> str:
    url = make_url(postgres_url)
    return f"{url.host or '127.0.0.1'}:{url.port or 5432}"


def test_hosts_pair_with_their_ports_and_one_port_serves_every_host() -> None:
    assert hosts_of({"host": ["a", "b"], "port": [5442, 5443]}) == [("a", 5442), ("b", 5443)]
    assert hosts_of({"host": ["a", "b"], "port": 5432}) == [("a", 5432), ("b", 5432)]
    assert hosts_of({"host": "a", "port": None}) == [("a", None)]
    with pytest.raises(ValueError, match="2 hosts but 3 ports"):
        hosts_of({"host": ["a", "b"], "port": [1, 2, 3]})


async def test_a_hung_first_host_costs_one_short_timeout_and_both_pools_reach_the_live_host(
        postgres_url: str, hung_port: int, caplog: pytest.LogCaptureFixture) -> None:
    live = _live(postgres_url)
    url = _formation_url(postgres_url, f"127.0.0.1:{hung_port}", live)
    engine = create_engine(url)
    caplog.set_level(logging.WARNING, logger="gateway.adapters.sql.pg_connect")
    try:
        started = time.monotonic()
        async with engine.connect() as conn:
            port = (await conn.execute(text("select inet_server_port()"))).scalar_one()
        first = time.monotonic() - started
        assert port == int(live.rsplit(":", 1)[1])
        assert PER_HOST_TIMEOUT_S - 0.5 <= first < PER_HOST_TIMEOUT_S + 5, first  # asyncpg alone: 60 s, then fails
        assert f"database host 127.0.0.1:{hung_port} not used (TimeoutError)" in caplog.text

        # The one-shot pool connects the same way; the host that answered last is tried first.
        started = time.monotonic()
        async with direct(engine).connect() as conn:
            row = (await conn.execute(select(text("1 as one")))).one()
        assert row.one == 1
        assert time.monotonic() - started < PER_HOST_TIMEOUT_S - 0.5
    finally:
        await dispose(engine)


async def test_a_standby_or_a_dead_host_is_passed_over_and_when_none_takes_writes_the_last_error_is_raised(
        postgres_url: str, hung_port: int) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused = closed.getsockname()[1]
    closed.close()  # nothing listens there: connection refused at once
    connector = WritableConnector.for_url(_formation_url(postgres_url, f"127.0.0.1:{refused}", f"127.0.0.1:{hung_port}"))
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await connector()
    assert time.monotonic() - started < PER_HOST_TIMEOUT_S + 5

    # The URL asks for a standby: the live primary does not match, and is refused after its check.
    standby_only = _formation_url(postgres_url, f"127.0.0.1:{refused}", _live(postgres_url)).replace(
        "target_session_attrs=read-write", "target_session_attrs=standby")
    import asyncpg

    with pytest.raises(asyncpg.TargetServerAttributeNotMatched):
        await WritableConnector.for_url(standby_only)()


def test_a_url_with_one_host_connects_as_asyncpg_always_did(postgres_url: str) -> None:
    connector = WritableConnector.for_url(postgres_url)
    assert not connector.several_hosts

    async def go() -> int:
        conn = await connector()
        try:
            return int(await conn.fetchval("select 1"))
        finally:
            await conn.close()

    assert asyncio.run(go()) == 1
