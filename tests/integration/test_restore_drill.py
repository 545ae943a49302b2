"""The restore drill: a gateway with real traffic is backed up while it runs, restored into a fresh
database and a fresh data dir, and a gateway started on what was restored finds everything that was
there, passes `gateway archive verify` and `gateway audit verify`, and exchanges again with its keys.

The commands run as an operator runs them: the installed `gateway` in a process of its own.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.access.principal import Role
from gateway.adapters.sql.access_tables import audit_log
from gateway.adapters.sql.engine import create_engine, is_sqlite
from gateway.adapters.sql.security_tables import archive, receipts
from gateway.adapters.sql.tables import messages
from gateway.adapters.sql.workflow_tables import cases
from gateway.bootstrap import Gateway, build_gateway
from gateway.node_setup import init_nodes
from gateway.scenarios.scratch import created_database
from gateway.settings import Settings
from tests.access.helpers import signed_in_client
from tests.gateways import FOUND, REGISTRATION, RESIDENCE, TEST_HOSTS, sample_query
from tests.waiting import eventually

pytestmark = [pytest.mark.broker, pytest.mark.slow]

GATEWAY = Path(sys.executable).with_name("gateway")
PASSPHRASE = "drill-passphrase-7"


@dataclass(frozen=True)
class Place:
    """Where one gateway keeps its data: the GATEWAY_* variables of its commands."""

    data_dir: Path
    database_url: str | None  # None: SQLite in the data dir, the default layout

    @property
    def url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'gateway.db').resolve()}"

    def env(self, amqp_url: str, token: str) -> dict[str, str]:
        env = {"GATEWAY_DATA_DIR": str(self.data_dir), "GATEWAY_NODES": f"{RESIDENCE},{REGISTRATION}",
               "GATEWAY_KEY_PASSPHRASE": PASSPHRASE, "GATEWAY_AMQP_URL": amqp_url,
               "GATEWAY_GATEWAY_ID": f"drill-{token}", "GATEWAY_EXCHANGE": f"test-{token}.exchange"}
        if self.database_url:
            env["GATEWAY_DATABASE_URL"] = self.database_url
        return env

    def settings(self, amqp_url: str, token: str) -> Settings:
        return Settings(gateway_id=f"drill-{token}", exchange=f"test-{token}.exchange", nodes=[RESIDENCE, REGISTRATION],
                        data_dir=self.data_dir, database_url=self.database_url, amqp_url=amqp_url,
                        key_passphrase=PASSPHRASE, allowed_hosts=TEST_HOSTS)


def gateway_command(place: Place, amqp_url: str, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    place.data_dir.parent.mkdir(parents=True, exist_ok=True)  # the folder it runs in; the data dir may not be there
    return subprocess.run([str(GATEWAY), *args], capture_output=True, text=True, timeout=180,
                          env={**clean, **place.env(amqp_url, token)}, cwd=place.data_dir.parent)


async def run_gateway_command(place: Place, amqp_url: str, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    # In a thread: the gateway of the test keeps running (and consuming) while the command does.
    return await asyncio.to_thread(gateway_command, place, amqp_url, token, *args)


@pytest.fixture
def places(database_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Place, Place]]:
    """The gateway backed up, and the fresh data dir and database it is restored into."""
    if is_sqlite(database_url):
        yield Place(tmp_path / "source" / "var", None), Place(tmp_path / "restored" / "var", None)
        return
    server = request.getfixturevalue("postgres_server_url")
    with created_database(server, f"gw_restore_{uuid.uuid4().hex[:12]}") as fresh:
        yield Place(tmp_path / "source" / "var", database_url), Place(tmp_path / "restored" / "var", fresh)


@dataclass(frozen=True)
class Contents:
    messages: set[tuple[str, str, str, str, str]]  # node, direction, message id, kind, status
    cases: set[tuple[str, str]]  # case id, state
    receipts: int
    archive: int
    audit: int


async def contents(url: str) -> Contents:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(messages.c.node, messages.c.direction, messages.c.message_id,
                                              messages.c.kind, messages.c.status))).all()
            case_rows = (await conn.execute(select(cases.c.case_id, cases.c.state))).all()

            async def count(table) -> int:  # type: ignore[no-untyped-def]
                return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())

            return Contents({tuple(r) for r in rows}, {tuple(r) for r in case_rows},  # type: ignore[misc]
                            await count(receipts), await count(archive), await count(audit_log))
    finally:
        await engine.dispose()


@pytest.fixture
async def running(places, amqp_url, run_token) -> AsyncIterator[Gateway]:
    """The gateway to back up, from keys `gateway init` made on disk (encrypted with the passphrase)."""
    source, _ = places
    settings = source.settings(amqp_url, run_token)
    init_nodes(settings, datetime.now(timezone.utc))
    gateway = build_gateway(settings)
    await gateway.start()
    try:
        yield gateway
    finally:
        if gateway not in _STOPPED:
            await gateway.stop()


_STOPPED: list[Gateway] = []


async def lose(gateway: Gateway) -> None:
    """The machine is lost: the gateway stops (once) and its queue waits for the one restored."""
    await gateway.stop()
    _STOPPED.append(gateway)


async def exchange_traffic(gateway: Gateway) -> tuple[list[str], list[str]]:
    """Three queries from the residence township; two answered, one left open. (answered, open) ids."""
    async with (signed_in_client(gateway, Role.CLERK, RESIDENCE, base_url="http://res") as res_http,
                signed_in_client(gateway, Role.CLERK, REGISTRATION, base_url="http://reg") as reg_http):
        sent = []
        for _ in range(3):
            posted = await res_http.post(f"/nodes/{RESIDENCE}/queries", json=sample_query())
            assert posted.status_code == 202, posted.text
            sent.append(posted.json()["message_id"])

        async def all_arrived() -> bool:
            inbox = (await reg_http.get(f"/nodes/{REGISTRATION}/inbox")).json()
            return set(sent) <= {m["message_id"] for m in inbox}

        assert await eventually(all_arrived), "the queries never reached the registration township"
        for query_id in sent[:2]:
            answered = await reg_http.post(f"/nodes/{REGISTRATION}/inbox/{query_id}/feedback", json=FOUND)
            assert answered.status_code == 202, answered.text

        async def answered_and_receipted() -> bool:
            for query_id in sent[:2]:
                detail = (await res_http.get(f"/nodes/{RESIDENCE}/messages/{query_id}")).json()
                if detail["status"] != "answered" or not detail["receipted_at"]:
                    return False
            return True

        assert await eventually(answered_and_receipted), "the answers never came back receipted"
    return sent[:2], sent[2:]


async def settled(url: str) -> Contents:
    """The database once every message and receipt is chained into the archive."""
    async def archived() -> Contents | None:
        now = await contents(url)
        return now if now.receipts and now.archive == len(now.messages) + now.receipts else None

    found = await eventually(archived)
    assert found, "the archive never caught up with the messages and receipts"
    return found


async def test_a_running_gateway_backed_up_and_restored_comes_back_with_every_message_case_and_record(
    running, places, amqp_url, run_token, tmp_path
):
    source, target = places
    answered, still_open = await exchange_traffic(running)
    before = await settled(source.url)
    assert {case_id for case_id, _ in before.cases} >= set(answered + still_open)
    assert before.audit > 0

    backup_file = tmp_path / "backups" / "gateway.backup"
    made = await run_gateway_command(source, amqp_url, run_token, "backup", str(backup_file))
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith(f"backup: {backup_file}"), made.stdout
    assert backup_file.stat().st_mode & 0o777 == 0o600

    await lose(running)  # the same gateway comes back elsewhere
    restored = await run_gateway_command(target, amqp_url, run_token, "restore", str(backup_file))
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.splitlines()[-1].endswith("(head)"), restored.stdout
    assert (await run_gateway_command(target, amqp_url, run_token, "db", "current")).returncode == 0

    after = await contents(target.url)
    assert after.messages == before.messages
    assert after.cases == before.cases
    assert (after.receipts, after.archive, after.audit) == (before.receipts, before.archive, before.audit)
    # The keys came back encrypted as they were: the passphrase opens them, and nothing is in clear.
    assert b"ENCRYPTED" in next((target.data_dir / "keys" / RESIDENCE).glob("*.pem")).read_bytes()

    gateway = build_gateway(target.settings(amqp_url, run_token))
    await gateway.start()
    try:
        archive_ok = await run_gateway_command(target, amqp_url, run_token, "archive", "verify")
        assert archive_ok.returncode == 0, archive_ok.stdout + archive_ok.stderr
        assert archive_ok.stdout.startswith(f"ok: {before.archive} records"), archive_ok.stdout
        audit_ok = await run_gateway_command(target, amqp_url, run_token, "audit", "verify")
        assert audit_ok.returncode == 0, audit_ok.stdout + audit_ok.stderr
        assert audit_ok.stdout.startswith("ok: "), audit_ok.stdout
        assert int(audit_ok.stdout.split()[1]) >= before.audit

        # The open case is answered from the restored gateway: its keys sign, seal and open again.
        async with (signed_in_client(gateway, Role.CLERK, REGISTRATION, base_url="http://reg") as reg_http,
                    signed_in_client(gateway, Role.CLERK, RESIDENCE, base_url="http://res") as res_http):
            [query_id] = still_open
            late = await reg_http.post(f"/nodes/{REGISTRATION}/inbox/{query_id}/feedback", json=FOUND)
            assert late.status_code == 202, late.text

            async def linked() -> bool:
                detail = (await res_http.get(f"/nodes/{RESIDENCE}/messages/{query_id}")).json()
                return detail["status"] == "answered"

            assert await eventually(linked), "the restored gateway's answer never reached the residence township"
    finally:
        await gateway.stop()
        await gateway.broker.delete_topology()
