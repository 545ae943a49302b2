"""The audit trail on the real databases: one record per event, chained, verified, pruned only past
the retention, and the prune recorded; the auditor reads it over HTTP and on the command line."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import delete, update
from typer.testing import CliRunner

from gateway.access.audit import Action, AuditEntry
from gateway.access.principal import Role
from gateway.adapters.sql.access_tables import audit_log
from gateway.exchange.records import Direction
from gateway.cli.access_cmds import audit_app, users_app
from tests.access.helpers import PASSWORD, signed_in_client
from tests.gateways import REGISTRATION, RESIDENCE, fake_gateway, keyrings, sample_query


def entry(i: int, user: str = "wang") -> AuditEntry:
    return AuditEntry(Action.READ_RECORD, user, "clerk", "10.0.0.9", object_id=f"m{i}", township=RESIDENCE)


async def test_records_chain_and_verify_and_a_changed_record_breaks_the_chain_where_it_was_changed(access, engine):
    for i in range(5):
        await access.audit.record(entry(i))
    assert await access.audit.verify() == (5, None)
    async with engine.begin() as conn:
        await conn.execute(update(audit_log).where(audit_log.c.seq == 3).values(result="denied"))
    count, broken = await access.audit.verify()
    assert (count, broken.seq, broken.reason) == (5, 3, "record_hash")


async def test_a_deleted_record_breaks_the_chain(access, engine):
    for i in range(4):
        await access.audit.record(entry(i))
    async with engine.begin() as conn:
        await conn.execute(delete(audit_log).where(audit_log.c.seq == 2))
    _, broken = await access.audit.verify()
    assert (broken.seq, broken.reason) == (2, "seq")


async def test_concurrent_appends_make_one_gap_free_chain(access):
    await asyncio.gather(*(access.audit.record(entry(i)) for i in range(20)),
                         *(access.audit.record_many([entry(100 + i), entry(200 + i)]) for i in range(5)))
    records = [r async for r in access.audit.records()]
    assert [r.seq for r in records] == list(range(1, 31))
    assert await access.audit.verify() == (30, None)


async def test_pruning_deletes_only_what_is_older_than_the_retention_and_is_recorded(access, clock):
    for i in range(3):
        await access.audit.record(entry(i))
    clock.advance(timedelta(days=100))
    await access.audit.record(entry(3))
    clock.advance(timedelta(days=100))  # the first three are 200 days old, the fourth 100
    with pytest.raises(ValueError, match="at least 180 days"):
        await access.audit.prune(timedelta(days=179), username="cli:root", role="")
    assert await access.audit.prune(timedelta(days=180), username="cli:root", role="") == 3
    records = [r async for r in access.audit.records()]
    assert [(r.seq, r.action) for r in records] == [(4, "read_record"), (5, "audit_prune")]
    assert "deleted 3 records" in records[-1].detail
    assert await access.audit.verify() == (2, None)  # the chain checks from the anchor the prune left
    await access.audit.record(entry(9))
    assert await access.audit.verify() == (3, None)


async def test_sign_ins_failures_account_changes_and_tokens_are_audited_with_who_and_where(access):
    await access.add_user("wang", Role.CLERK, RESIDENCE, PASSWORD, actor="cli:root")
    with pytest.raises(Exception):
        await access.sign_in("wang", "Wrong-Pass-1", source="10.1.2.3")
    await access.sign_in("wang", PASSWORD, source="10.1.2.3")
    token_id, _ = await access.issue_token("wang", 5, actor="cli:root")
    await access.revoke_token(token_id, actor="cli:root")
    await access.set_disabled("wang", True, actor="cli:root")
    seen = [(r.username, r.action, r.object_id if r.action.startswith(("user", "token")) else "", r.source, r.result)
            async for r in access.audit.records()]
    assert seen == [
        ("cli:root", "user_add", "wang", "cli", "ok"),
        ("wang", "sign_in", "", "10.1.2.3", "bad_credentials"),
        ("wang", "sign_in", "", "10.1.2.3", "ok"),
        ("cli:root", "token_issue", "wang", "cli", "ok"),
        ("cli:root", "token_revoke", "wang", "cli", "ok"),
        ("cli:root", "user_disable", "wang", "cli", "ok"),
    ]


async def test_every_decrypted_record_read_and_every_submission_and_answer_is_one_audit_record(access):
    gw = fake_gateway(keyrings(RESIDENCE, REGISTRATION), clock=access.clock)
    gw.access = access
    await gw.start()
    try:
        async with signed_in_client(gw, Role.CLERK, RESIDENCE) as residence:
            ids = [(await residence.post(f"/nodes/{RESIDENCE}/queries", json=sample_query())).json()["message_id"]
                   for _ in range(3)]
            refused = await residence.post(f"/nodes/{RESIDENCE}/queries", json={"kind": "query"})
            assert refused.status_code == 422
        for _ in range(100):
            if len(await gw.store.list_messages(REGISTRATION, Direction.IN)) == 3:
                break
            await asyncio.sleep(0.02)
        async with signed_in_client(gw, Role.CLERK, REGISTRATION) as registration:
            inbox = (await registration.get(f"/nodes/{REGISTRATION}/inbox")).json()
            one = await registration.get(f"/nodes/{REGISTRATION}/messages/{ids[0]}")
            assert one.status_code == 200
    finally:
        await gw.stop()
    assert len(inbox) == 3
    records = [r async for r in access.audit.records()]
    submits = [(r.object_id, r.township, r.result) for r in records if r.action == "submit"]
    assert submits[:3] == [(i, RESIDENCE, "ok") for i in ids]
    assert submits[3][2] == "refused"
    reads = [r.object_id for r in records if r.action == "read_record" and r.township == REGISTRATION]
    assert sorted(reads) == sorted([*ids, ids[0]])  # three from the inbox page, one from the message view
    assert all(r.username.startswith("clerk") and r.role == "clerk" for r in records if r.action == "read_record")


async def test_the_auditor_reads_the_trail_over_http_and_nobody_else_does(access):
    gw = fake_gateway(keyrings(RESIDENCE, REGISTRATION), clock=access.clock)
    gw.access = access
    await access.audit.record(entry(1, user="wang"))
    async with signed_in_client(gw, Role.AUDITOR) as auditor:
        listed = (await auditor.get("/audit", params={"user": "wang"})).json()
        verified = (await auditor.get("/audit/verify")).json()
    async with signed_in_client(gw, Role.ADMIN) as admin:
        assert (await admin.get("/audit")).status_code == 403  # separated duties
    assert [r["object_id"] for r in listed] == ["m1"]
    assert verified["ok"] is True and verified["broken"] is None
    assert "audit_read" in [r.action async for r in access.audit.records()]


def test_the_first_admin_is_made_on_an_empty_database_and_the_audit_commands_list_and_verify(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))  # the TOTP key file goes beside the node keys
    monkeypatch.setenv("GATEWAY_NODES", RESIDENCE)
    runner = CliRunner()
    added = runner.invoke(users_app, ["add", "admin", "--role", "admin", "--password-stdin"], input="Admin-Pass-2026\n")
    assert added.exit_code == 0, added.output
    assert "otpauth://totp/" in added.output
    clerk = runner.invoke(users_app, ["add", "wang", "--role", "clerk", "--scope", RESIDENCE, "--password-stdin"],
                          input="Clerk-Pass-2026\n")
    assert clerk.exit_code == 0, clerk.output
    weak = runner.invoke(users_app, ["add", "li", "--role", "clerk", "--scope", RESIDENCE, "--password-stdin"], input="weak\n")
    assert weak.exit_code == 1 and "at least 10 characters" in weak.output
    listed = runner.invoke(users_app, ["list"])
    assert "admin" in listed.output and "wang" in listed.output and RESIDENCE in listed.output
    assert runner.invoke(users_app, ["disable", "wang"]).exit_code == 0
    assert "disabled" in runner.invoke(users_app, ["list"]).output

    lines = runner.invoke(audit_app, ["list", "--json"]).output.splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["action"] for r in rows] == ["user_add", "user_add", "user_disable"]
    assert {"seq", "at", "username", "role", "source", "action", "object_id", "township", "result"} <= set(rows[0])
    assert runner.invoke(audit_app, ["list", "--json", "--since", "2999-01-01"]).output == ""
    ok = runner.invoke(audit_app, ["verify"])
    assert (ok.exit_code, ok.output.strip()) == (0, "ok: 3 records")


def test_audit_verify_exits_1_with_the_first_broken_link(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    assert runner.invoke(users_app, ["add", "admin", "--role", "admin", "--password-stdin"], input="Admin-Pass-2026\n").exit_code == 0
    assert runner.invoke(users_app, ["remove", "admin"]).exit_code == 0

    async def tamper() -> None:
        from gateway.adapters.sql.engine import create_engine

        engine = create_engine(database_url)
        async with engine.begin() as conn:
            await conn.execute(update(audit_log).where(audit_log.c.seq == 1).values(object_id="someone-else"))
        await engine.dispose()

    asyncio.run(tamper())
    broken = runner.invoke(audit_app, ["verify"])
    assert broken.exit_code == 1 and broken.output.startswith("broken: seq 1: record_hash")


def test_key_changes_are_audited_where_the_gateway_s_database_is(database_url, tmp_path, monkeypatch):
    from gateway.cli.keys_cmds import app as keys_app

    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    env = {"GATEWAY_KEYS_DIR": str(tmp_path / "keys"), "GATEWAY_DIRECTORY_PATH": str(tmp_path / "dir.json"),
           "GATEWAY_KEY_PASSPHRASE": "pass-123"}
    runner = CliRunner()
    assert runner.invoke(keys_app, ["init", RESIDENCE, "--no-sm2"], env=env).exit_code == 0
    assert runner.invoke(keys_app, ["rotate", RESIDENCE], env=env).exit_code == 0
    rows = [json.loads(line) for line in runner.invoke(audit_app, ["list", "--json"]).output.splitlines()]
    assert [(r["action"], r["township"], r["detail"].split(",")[0]) for r in rows] == [
        ("key_change", RESIDENCE, "init"), ("key_change", RESIDENCE, "rotate")]
