"""The red team's audit tampering, replayed with raw SQL as someone holding the database but not the
audit key would do it, past the database's own guard (as its owner or a superuser): every one is
caught by `gateway audit verify`. And the guard itself: the database refuses UPDATE and DELETE on the
trail outside the sanctioned prune, on SQLite and PostgreSQL, and a gateway role that is not the owner
cannot even switch the guard off."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from gateway.access.audit import GENESIS_HASH, Action, AuditEntry, AuditKey
from gateway.access.audit_files import AuditFiles
from gateway.adapters.sql.audit_store import AuditBroken, AuditKeyMissing, SqlAuditTrail
from gateway.adapters.sql.engine import create_engine, create_schema
from gateway.adapters.sql.migrate import alembic_config
from gateway.clock import FakeClock
from gateway.scenarios.scratch import created_database
from gateway.security.archive import record_hash
from tests.gateways import RESIDENCE, T0
from tests.security.attacker import past_the_guard, tamper

HASHED = ("seq", "at", "username", "role", "source", "action", "object_id", "township", "result", "detail")


def entry(i: int, user: str = "wang") -> AuditEntry:
    return AuditEntry(Action.READ_RECORD, user, "clerk", "10.0.0.9", object_id=f"m{i}", township=RESIDENCE)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0.replace(year=2024))  # so that what a test prunes is past the retention by the database's clock too


@pytest.fixture
def files(tmp_path) -> AuditFiles:
    files = AuditFiles.in_folder(tmp_path / "var")
    files.create_key()
    return files


@pytest.fixture(scope="module")
def shared_postgres_url(postgres_server_url):
    """One PostgreSQL database for the module (its audit tables emptied before each test): a database
    made and dropped per test took most of the module's time."""
    with created_database(postgres_server_url, f"gw_test_{uuid.uuid4().hex[:12]}") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    return request.getfixturevalue("shared_postgres_url")


@pytest.fixture
async def engine(database_url):
    engine = create_engine(database_url)
    await create_schema(engine)
    async with past_the_guard(engine) as conn:
        await conn.execute(text("DELETE FROM audit_log"))
        await conn.execute(text("DELETE FROM audit_anchor"))
    yield engine
    await engine.dispose()


@pytest.fixture
def trail(engine, clock, files) -> SqlAuditTrail:
    return SqlAuditTrail(engine, clock, files)


async def rows(engine) -> list[dict]:
    async with engine.connect() as conn:
        result = await conn.execute(text("SELECT * FROM audit_log ORDER BY seq"))
        return [dict(row._mapping) for row in result]


async def rewrite_chain(engine, edit, *, key: AuditKey | None = None, version: int | None = None) -> None:
    """The attacker's rewrite: ``edit`` each row, then every hash recomputed from the anchor on, with
    plain SHA-256 (or a key of the attacker's own), as the trail's code does it."""
    async with engine.connect() as conn:
        anchor = (await conn.execute(text("SELECT prev_hash FROM audit_anchor"))).scalar()
    prev = anchor or GENESIS_HASH
    async with past_the_guard(engine) as conn:
        for row in await rows(engine):
            edit(row)
            fields = {name: row[name] for name in HASHED}
            row["hash_version"] = row["hash_version"] if version is None else version
            row["prev_hash"] = prev
            row["record_hash"] = prev = key.record_mac(prev, fields) if key else record_hash(prev, fields)
            await conn.execute(text("UPDATE audit_log SET username = :username, prev_hash = :prev_hash, "
                                    "record_hash = :record_hash, hash_version = :hash_version WHERE seq = :seq"), row)


def as_admin(row: dict) -> None:
    if row["username"] == "wang":
        row["username"] = "admin"


async def test_update_delete_and_truncate_of_the_trail_are_refused_by_the_database(trail, engine, clock):
    for i in range(3):
        await trail.record(entry(i))
    refused = ["UPDATE audit_log SET username = 'admin' WHERE seq = 2", "DELETE FROM audit_log WHERE seq = 3",
               "DELETE FROM audit_log",
               "INSERT INTO audit_anchor (id, first_seq, prev_hash) VALUES (1, 2, '" + "0" * 64 + "')"]
    if engine.dialect.name == "postgresql":
        refused.append("TRUNCATE audit_log")
    for statement in refused:
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(text(statement))
    assert [r["username"] for r in await rows(engine)] == ["wang"] * 3
    # The sanctioned way still deletes what is older than the retention, and only that.
    clock.advance(timedelta(days=200))
    await trail.record(entry(3))
    assert await trail.prune(timedelta(days=180), username="cli:root", role="") == 3
    assert [r["seq"] for r in await rows(engine)] == [4, 5]
    assert await trail.verify() == (2, None)
    for statement in ("UPDATE audit_anchor SET first_seq = 5", "DELETE FROM audit_anchor"):  # the anchor it left
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(text(statement))


async def test_the_database_refuses_to_delete_records_younger_than_the_retention_even_in_the_prune(trail, engine, clock):
    clock.set(clock.now().replace(year=2999))  # a gateway whose clock runs far ahead of the database's
    for i in range(3):
        await trail.record(entry(i))
    clock.advance(timedelta(days=200))
    with pytest.raises(DBAPIError, match="append-only"):
        await trail.prune(timedelta(days=180), username="cli:root", role="")
    assert len(await rows(engine)) == 3
    assert await trail.verify() == (3, None)


async def test_an_edited_username_with_the_chain_recomputed_without_the_key_is_caught(trail, engine):
    for i in range(6):
        await trail.record(entry(i, user="wang" if i == 2 else "li"))
    assert await trail.verify() == (6, None)
    await rewrite_chain(engine, as_admin)  # SHA-256, as the chain was before the key
    count, broken = await trail.verify()
    assert (count, broken.seq, broken.reason) == (6, 1, "record_hash")
    await rewrite_chain(engine, as_admin, key=AuditKey(secrets.token_bytes(32)))  # a key of the attacker's own
    _, broken = await trail.verify()
    assert (broken.seq, broken.reason) == (1, "record_hash")


async def test_a_chain_recomputed_as_if_made_before_the_key_is_caught_by_the_checkpoint(trail, engine):
    for i in range(4):
        await trail.record(entry(i))
    await trail.flush_checkpoint()
    await rewrite_chain(engine, as_admin, version=0)  # every record "made before the key", hashes that check
    _, broken = await trail.verify()
    assert (broken.seq, broken.reason) == (4, "head")
    await trail.record(entry(9))  # records after the checkpoint are keyed: lowering them is caught by itself
    await rewrite_chain(engine, as_admin, version=0)
    _, broken = await trail.verify()
    assert broken.reason == "head"


async def test_a_head_cut_is_caught_by_the_checkpoint_kept_outside_the_database(trail, engine, files, monkeypatch, tmp_path):
    for i in range(10):
        await trail.record(entry(i))
    assert await trail.verify() == (10, None)
    await tamper(engine, "DELETE FROM audit_log WHERE seq > 7")
    count, broken = await trail.verify()
    assert (count, broken.seq, broken.reason) == (7, 7, "head")
    assert "seq 10" in broken.detail
    # The operator's command says so too, exit 1 (a fresh process: it reads the checkpoint file).
    monkeypatch.setenv("GATEWAY_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(files.key_path.parent))
    from gateway.cli.access_cmds import audit_app

    result = await asyncio.to_thread(CliRunner().invoke, audit_app, ["verify"])
    assert result.exit_code == 1 and result.output.startswith("broken: seq 7: head"), result.output


async def test_a_head_cut_of_every_record_is_caught(trail, engine):
    for i in range(3):
        await trail.record(entry(i))
    await trail.flush_checkpoint()
    await tamper(engine, "DELETE FROM audit_log")
    count, broken = await trail.verify()
    assert (count, broken.reason) == (0, "head")


async def test_a_tail_cut_is_caught_with_or_without_a_made_up_anchor(trail, engine):
    for i in range(6):
        await trail.record(entry(i))
    kept = (await rows(engine))[3]
    await tamper(engine, "DELETE FROM audit_log WHERE seq < 4")
    _, broken = await trail.verify()
    assert (broken.seq, broken.reason) == (1, "seq")
    # An anchor pointing where the cut left the chain: no prune record names it, and it has no valid MAC.
    await tamper(engine, "INSERT INTO audit_anchor (id, first_seq, prev_hash) VALUES (1, 4, :h)", h=kept["prev_hash"])
    _, broken = await trail.verify()
    assert (broken.seq, broken.reason) == (4, "anchor")
    await tamper(engine, "UPDATE audit_anchor SET mac = :m", m=secrets.token_hex(32))
    _, broken = await trail.verify()
    assert (broken.seq, broken.reason, broken.detail) == (4, "anchor", "the anchor was not made with the audit key (forged)")


async def test_a_prune_refuses_a_trail_that_does_not_verify_rather_than_sign_its_forged_anchor(trail, engine, clock):
    for i in range(4):
        await trail.record(entry(i))
    kept = (await rows(engine))[2]
    await tamper(engine, "DELETE FROM audit_log WHERE seq < 3",
                 "INSERT INTO audit_anchor (id, first_seq, prev_hash) VALUES (1, 3, :h)", h=kept["prev_hash"])
    clock.advance(timedelta(days=1))
    with pytest.raises(AuditBroken, match="seq 3: anchor"):
        await trail.prune(timedelta(days=180), username="cli:root", role="")
    _, broken = await trail.verify()
    assert (broken.seq, broken.reason) == (3, "anchor")  # still caught: the prune did not launder it


async def test_a_forged_anchor_after_a_real_prune_fails_its_hmac_and_its_prune_record(trail, engine, clock):
    for i in range(4):
        await trail.record(entry(i))
    clock.advance(timedelta(days=100))
    for i in range(4, 8):
        await trail.record(entry(i))
    clock.advance(timedelta(days=100))
    assert await trail.prune(timedelta(days=180), username="cli:root", role="") == 4
    assert await trail.verify() == (5, None)
    prune_record = (await rows(engine))[-1]
    assert prune_record["action"] == "audit_prune" and "anchor 5 " in prune_record["detail"]
    # Cut four more, and move the anchor past them, keeping the real anchor's MAC: it was not made for this one.
    after = (await rows(engine))[3]
    await tamper(engine, "DELETE FROM audit_log WHERE seq < 9",
                 "UPDATE audit_anchor SET first_seq = 9, prev_hash = :h", h=after["record_hash"])
    _, broken = await trail.verify()
    assert (broken.seq, broken.reason) == (9, "anchor")


async def test_an_old_anchor_put_back_with_its_records_is_refused_by_the_last_prune_record(trail, engine, clock):
    for i in range(3):
        await trail.record(entry(i))
    clock.advance(timedelta(days=100))
    assert await trail.prune(timedelta(days=180), username="cli:root", role="") == 0  # anchors at 1, with its MAC
    clock.advance(timedelta(days=1))
    for i in range(3, 5):
        await trail.record(entry(i))
    kept = await rows(engine)
    async with engine.connect() as conn:
        saved = dict((await conn.execute(text("SELECT * FROM audit_anchor"))).one()._mapping)
    assert saved["first_seq"] == 1 and saved["mac"] is not None
    clock.advance(timedelta(days=300))
    assert await trail.prune(timedelta(days=180), username="cli:root", role="") == 6
    # The attacker puts back the pruned rows (copied before) and the old anchor, MAC and all.
    columns = ", ".join(kept[0])
    async with past_the_guard(engine) as conn:
        for row in kept:
            await conn.execute(text(f"INSERT INTO audit_log ({columns}) VALUES ({', '.join(':' + c for c in kept[0])})"), row)
        await conn.execute(text("DELETE FROM audit_anchor"))
        await conn.execute(text("INSERT INTO audit_anchor (id, first_seq, prev_hash, mac) VALUES (1, 1, :h, :m)"),
                           {"h": saved["prev_hash"], "m": saved["mac"]})
    _, broken = await trail.verify()
    assert (broken.seq, broken.reason) == (1, "anchor")
    assert "the last prune left the anchor at seq 7" in broken.detail


async def test_without_the_key_nothing_keyed_checks_and_nothing_new_is_recorded(trail, engine, clock, files):
    await trail.record(entry(1))
    files.key_path.unlink()
    fresh = SqlAuditTrail(engine, clock, files)
    with pytest.raises(AuditKeyMissing, match="restore the file from its backup"):
        await fresh.record(entry(2))
    assert not files.key_path.exists()  # no new key made beside the records of the old one
    _, broken = await fresh.verify()
    assert broken.reason == "key"


async def test_a_gateway_whose_audit_key_is_gone_refuses_to_start(trail, engine, tmp_path):
    from gateway.security.directory import KeyDirectory
    from tests.gateways import keyrings, real_gateway

    await trail.record(entry(1))
    rings = keyrings(RESIDENCE)
    gateway = real_gateway(list(rings.values()), KeyDirectory.from_keyrings(rings.values()), amqp_url="amqp://nowhere:1/",
                           database_url=engine.url.render_as_string(hide_password=False), token="t", gateway_id="gw",
                           data_dir=tmp_path / "elsewhere")  # another host's data dir: no key there
    try:
        with pytest.raises(AuditKeyMissing, match="restore the file from its backup"):
            await gateway.start()  # before the broker is even tried
    finally:
        await gateway.stop()
    assert not (tmp_path / "elsewhere" / "audit.key").exists()


async def test_the_verify_route_keeps_its_keys_and_adds_where_the_chain_was_checked(engine, clock, files):
    from gateway.access.principal import Role
    from gateway.bootstrap import build_access
    from tests.access.helpers import signed_in_client
    from tests.gateways import REGISTRATION, fake_gateway, keyrings

    gw = fake_gateway(keyrings(RESIDENCE, REGISTRATION), clock=clock)
    gw.access = build_access(engine, clock, frozenset({RESIDENCE, REGISTRATION}), audit_files=files)
    for i in range(3):
        await gw.access.audit.record(entry(i))
    async with signed_in_client(gw, Role.AUDITOR) as auditor:  # signing in adds records of its own
        ok = (await auditor.get("/audit/verify")).json()
        head = ok["head_seq"]
        assert ok == {"ok": True, "records": head, "broken": None, "reason": None, "first_seq": 1, "head_seq": head,
                      "checkpoint_seq": head}
        await tamper(engine, "DELETE FROM audit_log WHERE seq = :s", s=head)
        cut = (await auditor.get("/audit/verify")).json()
    assert (cut["ok"], cut["reason"], cut["head_seq"], cut["checkpoint_seq"]) == (False, "head", head - 1, head)
    assert cut["broken"].startswith(f"seq {head - 1}: head")


LEGACY_ROWS = 4


async def legacy_database(url: str) -> None:
    """A database at revision 0010 with an audit trail made before the key (plain SHA-256)."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: __import__("alembic.command", fromlist=["upgrade"]).upgrade(
                alembic_config(sync), "0010"))
            prev = GENESIS_HASH
            for seq in range(1, LEGACY_ROWS + 1):
                fields = {"seq": seq, "at": f"2026-01-0{seq}T00:00:00.000000Z", "username": "wang", "role": "clerk",
                          "source": "10.0.0.9", "action": "read_record", "object_id": f"m{seq}", "township": RESIDENCE,
                          "result": "ok", "detail": ""}
                digest = record_hash(prev, fields)
                await conn.execute(text("INSERT INTO audit_log (seq, at, username, role, source, action, object_id, "
                                        "township, result, detail, prev_hash, record_hash) VALUES (:seq, :at, :username, "
                                        ":role, :source, :action, :object_id, :township, :result, :detail, :p, :h)"),
                                   {**fields, "p": prev, "h": digest})
                prev = digest
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def legacy_url(request, tmp_path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    asyncio.run(legacy_database(url))
    return url


async def test_records_made_before_the_key_stay_verifiable_and_are_pinned_by_the_cut_over(legacy_url, clock, files):
    engine = create_engine(legacy_url)
    try:
        await create_schema(engine)  # 0015: the column, the guard
        trail = SqlAuditTrail(engine, clock, files)
        assert await trail.verify() == (LEGACY_ROWS, None)  # all before the key: checked as they were
        await trail.record(entry(9))
        stored = await rows(engine)
        assert [(r["seq"], r["hash_version"], r["action"]) for r in stored[-2:]] == [
            (5, 1, "audit_keyed"), (6, 1, "read_record")]
        assert await trail.verify() == (6, None)
        with pytest.raises(DBAPIError, match="append-only"):  # the migration put the guard on the old table
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE audit_log SET username = 'admin' WHERE seq = 2"))
        # A record from before the key, edited and the old part of the chain recomputed: the keyed cut-over
        # still points at the old hash.
        async with past_the_guard(engine) as conn:
            prev = GENESIS_HASH
            for row in stored[:LEGACY_ROWS]:
                fields = {name: row[name] for name in HASHED}
                fields["username"] = "admin" if row["seq"] == 2 else row["username"]
                prev_row, prev = prev, record_hash(prev, fields)
                await conn.execute(text("UPDATE audit_log SET username = :u, prev_hash = :p, record_hash = :h WHERE seq = :s"),
                                   {"u": fields["username"], "p": prev_row, "h": prev, "s": row["seq"]})
        _, broken = await trail.verify()
        assert (broken.seq, broken.reason) == (5, "prev_hash")
    finally:
        await engine.dispose()


def test_a_pruned_trail_from_before_the_key_checks_as_it_did_and_its_anchor_only_as_the_cut_over_names_it():
    from gateway.access.audit import Anchor, AuditRecord, HASH_SHA256, chain_append, cut_over_entry, verify_audit

    def legacy(seq: int, prev: str) -> AuditRecord:
        fields = {"seq": seq, "at": "2025-01-01T00:00:00.000000Z", "username": "wang", "role": "clerk", "source": "cli",
                  "action": "read_record", "object_id": f"m{seq}", "township": RESIDENCE, "result": "ok", "detail": ""}
        return AuditRecord(**fields, prev_hash=prev, record_hash=record_hash(prev, fields), hash_version=HASH_SHA256)

    old_anchor = Anchor(3, "ab" * 32)  # left by a prune of the release before the key: no MAC
    records = [legacy(3, old_anchor.prev_hash)]
    records.append(legacy(4, records[-1].record_hash))
    assert verify_audit(records, old_anchor) is None
    key = AuditKey(secrets.token_bytes(32))
    cut_over = chain_append(4, records[-1].record_hash, cut_over_entry(old_anchor), T0, key)
    assert verify_audit([*records, cut_over], old_anchor, key=key) is None
    moved = Anchor(4, records[0].record_hash)  # the oldest of them cut, the anchor moved past it
    broken = verify_audit([*records[1:], cut_over], moved, key=key)
    assert (broken.seq, broken.reason) == (4, "anchor")


@pytest.fixture
async def runtime_role_url(shared_postgres_url, postgres_server_url):
    """A login role that is a member of gateway_runtime only, on a migrated database."""
    owner = create_engine(shared_postgres_url)
    await create_schema(owner)
    async with past_the_guard(owner) as conn:
        await conn.execute(text("DELETE FROM audit_log"))
        await conn.execute(text("DELETE FROM audit_anchor"))
    await owner.dispose()
    name = f"gw_rt_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_server_url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE ROLE "{name}" LOGIN IN ROLE gateway_runtime'))
    try:
        yield make_url(shared_postgres_url).set(username=name, password=None).render_as_string(hide_password=False)
    finally:
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
        await admin.dispose()


async def test_a_gateway_role_that_is_not_the_owner_may_insert_and_select_and_prune_and_nothing_else(
        runtime_role_url, clock, files):
    engine = create_engine(runtime_role_url)
    try:
        await create_schema(engine)  # at head already: nothing the role may not do
        trail = SqlAuditTrail(engine, clock, files)
        for i in range(3):
            await trail.record(entry(i))
        for statement in ("UPDATE audit_log SET username = 'admin'", "DELETE FROM audit_log", "TRUNCATE audit_log",
                          "ALTER TABLE audit_log DISABLE TRIGGER USER", "DROP TRIGGER audit_log_append_only ON audit_log",
                          "SET session_replication_role = replica", "DELETE FROM audit_anchor"):
            with pytest.raises(DBAPIError, match="permission denied|must be owner|must be superuser"):
                async with engine.begin() as conn:
                    await conn.execute(text(statement))
        clock.advance(timedelta(days=200))
        await trail.record(entry(3))
        assert await trail.prune(timedelta(days=180), username="cli:root", role="") == 3
        assert await trail.verify() == (2, None)
    finally:
        await engine.dispose()


def test_the_checkpoint_never_moves_back_and_is_the_operator_s_own(files):
    from gateway.access.audit import Checkpoint

    files.write_checkpoint(Checkpoint(10, "a" * 64))
    files.write_checkpoint(Checkpoint(7, "b" * 64))  # a host that appended less recently
    assert files.checkpoint() == Checkpoint(10, "a" * 64)
    assert json.loads(files.head_path.read_text()) == {"seq": 10, "record_hash": "a" * 64}
    assert files.head_path.stat().st_mode & 0o777 == 0o600
    assert files.key_path.stat().st_mode & 0o777 == 0o600


def test_gateway_init_makes_the_audit_key_0600_and_keeps_it_on_a_second_run(tmp_path):
    from gateway.cli import app

    env = {"GATEWAY_NODES": RESIDENCE, "GATEWAY_DATA_DIR": str(tmp_path / "var"), "GATEWAY_KEY_PASSPHRASE": "pass-123"}
    first = CliRunner().invoke(app, ["init"], env=env)
    assert first.exit_code == 0, first.output
    key_file = tmp_path / "var" / "audit.key"
    assert f"audit key: {key_file}" in first.output
    assert key_file.stat().st_mode & 0o777 == 0o600 and len(bytes.fromhex(key_file.read_text().strip())) == 32
    made = key_file.read_text()
    assert CliRunner().invoke(app, ["init"], env=env).exit_code == 0
    assert key_file.read_text() == made  # a new key would leave the records of the old one uncheckable
