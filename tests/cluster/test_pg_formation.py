"""The failover formation (gateway/devtools/pg_formation.py) and the gateway on it (marker ``cluster``).

A pg_auto_failover monitor and two nodes of this module's own, on 127.0.0.1:5451-5453
(GATEWAY_TEST_PG_FORMATION_PORT moves them), in a fixed folder so that a session killed before its
teardown is cleaned up by the next one; never the machine's own PostgreSQL on 5432.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from gateway.access.principal import Role
from gateway.adapters.sql.account_store import SqlAccountStore
from gateway.adapters.sql.engine import create_engine
from gateway.adapters.sql.migrate import head_revision
from gateway.adapters.sql.pg_connect import PER_HOST_TIMEOUT_S
from gateway.cli import app
from gateway.devtools.pg_formation import STATE_FILE, FormationError, PgFormation

pytestmark = [pytest.mark.cluster, pytest.mark.database, pytest.mark.slow]

FORMATION_DIR = Path("/tmp/gateway-test-pg-formation")
NOW = datetime(2026, 9, 30, 23, 50, tzinfo=timezone.utc)  # the last minutes of a quarter


@pytest.fixture(scope="module")
def formation() -> Iterator[PgFormation]:
    if shutil.which("pg_autoctl") is None:
        pytest.fail("pg_autoctl missing: apt-get install postgresql-15-auto-failover pg-auto-failover-cli "
                    "(.ci/run installs them)", pytrace=False)
    if (FORMATION_DIR / STATE_FILE).exists():  # left behind by a session that was killed
        PgFormation.from_state(FORMATION_DIR).down()
    port = int(os.environ.get("GATEWAY_TEST_PG_FORMATION_PORT", "5451"))
    built = PgFormation(FORMATION_DIR, monitor_port=port, node_ports=(port + 1, port + 2))
    try:
        built.up()
    except FormationError as exc:
        built.down()
        pytest.fail(f"could not build the formation: {exc}", pytrace=False)
    try:
        yield built
    finally:
        built.down()


async def _scalar(url: str, sql: str) -> object:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql))).scalar_one()
    finally:
        await engine.dispose()


def test_the_formation_has_a_primary_and_a_synchronous_secondary_listening_on_loopback_only(
        formation: PgFormation) -> None:
    status = formation.status()
    assert sorted(node["role"] for node in status["nodes"]) == ["primary", "secondary"]
    assert status["synchronous"] is True and status["monitor"]["answers"] is True
    assert 5432 not in {formation.monitor_port, *formation.node_ports}
    for name in formation.node_names:
        assert asyncio.run(_scalar(formation.node_url(name), "show listen_addresses")) == "127.0.0.1"
    primary = formation.primary()
    assert asyncio.run(_scalar(formation.node_url(primary.name), "show synchronous_standby_names")).startswith("ANY 1")
    assert status["url"] == (f"postgresql+asyncpg://postgres@/postgres?host=127.0.0.1:{formation.node_ports[0]}"
                             f"&host=127.0.0.1:{formation.node_ports[1]}&target_session_attrs=read-write")


def test_a_row_written_before_a_switchover_is_read_through_the_same_url_from_the_new_primary(
        formation: PgFormation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no gateway.env of the developer's
    url = formation.url()
    upgraded = CliRunner().invoke(app, ["db", "upgrade"], env={"GATEWAY_DATABASE_URL": url})
    assert upgraded.exit_code == 0, upgraded.output
    assert upgraded.output.splitlines()[-1] == f"database at {head_revision()} (head)"

    async def write() -> int:
        engine = create_engine(url)
        try:
            await SqlAccountStore(engine).add_user("li-before", Role.CLERK, "110101001", "hash-1", None, NOW)
            async with engine.connect() as conn:
                return int((await conn.execute(text("select inet_server_port()"))).scalar_one())
        finally:
            await engine.dispose()

    old_port = asyncio.run(write())
    old_primary = formation.primary()
    assert old_port == old_primary.port

    new_primary = formation.switchover()
    assert new_primary.name != old_primary.name

    async def read_and_write_again() -> tuple[object, object, int]:
        engine = create_engine(url)  # the same URL: the driver finds the node that now takes writes
        try:
            store = SqlAccountStore(engine)
            before = await store.get_user("li-before")
            await store.add_user("li-after", Role.CLERK, "110101001", "hash-2", None, NOW)
            async with engine.connect() as conn:
                port = int((await conn.execute(text("select inet_server_port()"))).scalar_one())
            return before, await store.get_user("li-after"), port
        finally:
            await engine.dispose()

    before, after, port = asyncio.run(read_and_write_again())
    assert port == new_primary.port != old_port
    assert before is not None and before.username == "li-before" and before.scope == "110101001"
    assert after is not None and after.username == "li-after"
    # Replication is synchronous: the old primary, now the secondary, has both rows and takes no writes.
    assert asyncio.run(_scalar(formation.node_url(old_primary.name), "select pg_is_in_recovery()")) is True
    # (A synchronous commit is flushed on the standby, its replay may follow a moment later.)
    on_secondary = 0
    for _ in range(50):
        on_secondary = asyncio.run(_scalar(formation.node_url(old_primary.name),
                                           "select count(*) from users where username in ('li-before', 'li-after')"))
        if on_secondary == 2:
            break
        time.sleep(0.1)
    assert on_secondary == 2


def test_a_hung_primary_is_passed_over_through_the_same_url_once_the_secondary_takes_writes(
        formation: PgFormation) -> None:
    first, second = formation.node_names
    if formation.primary().name != first:
        formation.switchover()  # the hung host must be the URL's first, the one asyncpg alone would wait on
    assert formation.hang_node() == first
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            states = {node.name: node.reported for node in formation.state()}
            if states.get(second) in ("wait_primary", "primary"):
                break
            time.sleep(1)
        assert states.get(second) in ("wait_primary", "primary"), states

        async def write_through_the_url() -> int:
            engine = create_engine(formation.url())
            try:
                await SqlAccountStore(engine).add_user("li-during-hang", Role.CLERK, "110101001", "hash-3", None, NOW)
                async with engine.connect() as conn:
                    return int((await conn.execute(text("select inet_server_port()"))).scalar_one())
            finally:
                await engine.dispose()

        started = time.monotonic()
        port = asyncio.run(write_through_the_url())
        elapsed = time.monotonic() - started
        assert port == formation.port_of(second)
        # One short timeout on the hung host, then the new primary (asyncpg alone: 60 s, then an error).
        assert elapsed < PER_HOST_TIMEOUT_S + 6, elapsed
    finally:
        formation.resume()
    formation.await_ready(timeout_s=150)
    assert asyncio.run(_scalar(formation.url(), "select count(*) from users where username = 'li-during-hang'")) == 1
