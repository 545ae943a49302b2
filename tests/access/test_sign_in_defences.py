"""Issue 24's findings on sign-in, each a rule: control characters in a username, common passwords,
the absolute session lifetime, TOTP secrets sealed at rest, the way back in for a locked admin."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from gateway.access import totp
from gateway.access.principal import Role
from gateway.access.service import InvalidAccount, SignInRefused
from gateway.access.totp_sealing import SealError, TotpSealer
from gateway.adapters.sql.access_tables import users
from gateway.api.app import create_app
from gateway.bootstrap import build_access
from gateway.settings import Settings
from tests.access.helpers import PASSWORD, login_csrf
from tests.gateways import RESIDENCE, running_gateway

FORGED = "x\n     99 2026-03-10T02:00:00Z admin admin 10.0.0.1 sign_in 7 - ok"


@pytest.fixture
async def gateway(access):
    async with running_gateway(clock=access.clock, access=access, start=False) as gw:
        yield gw


def http_client(gateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(gateway)), base_url="https://gw")


async def trail(access) -> list:
    return [r async for r in access.audit.records()]


# -- control characters in a failed sign-in's username -------------------------------------------

@pytest.mark.parametrize("username", [FORGED, "admin\x00", "admin\x1b[2K", "adm\u202ein"])
async def test_a_username_with_control_characters_is_refused_before_any_lookup_and_never_recorded(gateway, access, username):
    async with http_client(gateway) as http:
        token = await http.post("/auth/token", data={"username": username, "password": PASSWORD})
        form = await http.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": login_csrf(http)})
    assert token.status_code == 422 and "control characters" in token.json()["detail"]
    assert form.status_code == 303 and "error=bad_credentials" in form.headers["location"]
    assert await trail(access) == []


async def test_a_nul_in_the_password_or_the_code_is_refused_too(gateway, access):
    async with http_client(gateway) as http:
        password = await http.post("/auth/token", data={"username": "wang", "password": "Pass\x00word-1"})
        code = await http.post("/auth/token", data={"username": "wang", "password": PASSWORD, "otp": "12\x0034"})
    assert (password.status_code, code.status_code) == (422, 422)
    assert await trail(access) == []


async def test_a_failed_sign_in_reaching_the_service_is_recorded_with_its_controls_escaped(access):
    with pytest.raises(SignInRefused):
        await access.sign_in(FORGED, "Wrong-Pass-1", source="10.0.0.9")
    (record,) = await trail(access)
    assert record.username.startswith("x\\x0a ") and "\n" not in record.username
    assert all(c.isprintable() for c in record.username) and len(record.username) <= 64
    assert record.result == "bad_credentials"


# -- common passwords ------------------------------------------------------------------------------

@pytest.mark.parametrize("password", ["Password123", "Password123!", "Sunshine!2024", "Qwerty12345", "Iloveyou-1234"])
async def test_a_common_password_is_refused_with_a_chinese_reason(access, password):
    with pytest.raises(InvalidAccount, match="常见密码"):
        await access.add_user("li", Role.CLERK, RESIDENCE, password, actor="cli")
    await access.add_user("li", Role.CLERK, RESIDENCE, PASSWORD, actor="cli")
    with pytest.raises(InvalidAccount, match="常见密码"):
        await access.reset_password("li", password, actor="cli")


def test_gateway_users_add_refuses_password123_in_chinese(database_url, monkeypatch, tmp_path):
    from gateway.cli.access_cmds import users_app

    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(users_app, ["add", "li", "--role", "supervisor", "--scope", "11", "--password-stdin"],
                                input="Password123\n")
    assert result.exit_code == 1 and "常见密码" in result.output


# -- the absolute session lifetime -----------------------------------------------------------------

async def test_a_session_used_every_few_minutes_still_ends_twelve_hours_after_sign_in(access, clock):
    await access.add_user("zhou", Role.CLERK, RESIDENCE, PASSWORD, actor="cli")
    token = (await access.sign_in("zhou", PASSWORD, source="10.0.0.9")).token
    signed_at = clock.now()
    while clock.now() < signed_at + timedelta(hours=12) - timedelta(minutes=5):
        clock.advance(timedelta(minutes=5))
        assert await access.authenticate(token) is not None
    clock.set(signed_at + timedelta(hours=12))
    assert await access.authenticate(token) is None
    clock.set(signed_at + timedelta(hours=11))  # ended for good: an earlier-stamped request finds it ended
    assert await access.authenticate(token) is None


async def test_the_lifetime_is_a_setting_and_api_tokens_keep_their_own_expiry(engine, clock, tmp_path):
    access = build_access(engine, clock, settings=Settings(data_dir=tmp_path, session_max_hours=1))
    await access.add_user("wu", Role.CLERK, RESIDENCE, PASSWORD, actor="cli")
    session = (await access.sign_in("wu", PASSWORD, source="10.0.0.9")).token
    _, api = await access.issue_token("wu", 2, actor="cli")
    for minutes in (20, 20, 19):  # in use, never idle for 30 minutes
        clock.advance(timedelta(minutes=minutes))
        assert await access.authenticate(session) is not None
    clock.advance(timedelta(minutes=1))
    assert await access.authenticate(session) is None
    assert await access.authenticate(api) is not None  # a day later too: its expiry is its own
    clock.advance(timedelta(days=1))
    assert await access.authenticate(api) is not None


# -- TOTP secrets sealed at rest -------------------------------------------------------------------

async def stored_secret(engine, username: str) -> str:
    async with engine.connect() as conn:
        return (await conn.execute(select(users.c.totp_secret).where(users.c.username == username))).scalar_one()


@pytest.mark.parametrize("passphrase", [None, "node-keys-passphrase"])
async def test_the_totp_column_holds_no_clear_secret_and_the_code_still_signs_in(engine, clock, tmp_path, passphrase):
    access = build_access(engine, clock, settings=Settings(data_dir=tmp_path, key_passphrase=passphrase))
    new = await access.add_user("ops", Role.OPERATOR, "", PASSWORD, actor="cli")
    secret = new.user.totp_secret
    stored = await stored_secret(engine, "ops")
    assert secret not in stored and stored.startswith("v1p$" if passphrase else "v1k$")
    assert f"secret={secret}" in new.otpauth_uri  # shown once, to the one who made the account
    signed = await access.sign_in("ops", PASSWORD, totp.code_at(secret, clock.now()), source="10.0.0.9")
    assert signed.principal.role is Role.OPERATOR
    assert (tmp_path / "keys" / "totp.key").exists() is (passphrase is None)


async def test_a_secret_stored_in_clear_by_an_earlier_release_is_sealed_and_keeps_working(engine, clock, tmp_path):
    access = build_access(engine, clock, settings=Settings(data_dir=tmp_path, key_passphrase="pass-1"))
    new = await access.add_user("old", Role.ADMIN, "", PASSWORD, actor="cli")
    secret = new.user.totp_secret
    async with engine.begin() as conn:  # what release 0010 left
        await conn.execute(update(users).where(users.c.username == "old").values(totp_secret=secret))
    assert await access.sign_in("old", PASSWORD, totp.code_at(secret, clock.now()), source="10.0.0.9")
    assert await access.seal_clear_totp_secrets() == 1
    assert secret not in await stored_secret(engine, "old")
    assert await access.seal_clear_totp_secrets() == 0
    clock.advance(timedelta(seconds=30))
    assert await access.sign_in("old", PASSWORD, totp.code_at(secret, clock.now()), source="10.0.0.9")


def test_a_sealed_secret_opens_only_with_its_key_and_only_on_its_own_account(tmp_path):
    sealer = TotpSealer(passphrase=b"pass-1")
    sealed = sealer.seal("JBSWY3DPEHPK3PXP", "ops")
    assert TotpSealer(passphrase=b"pass-1").open(sealed, "ops") == "JBSWY3DPEHPK3PXP"  # another process
    with pytest.raises(SealError):
        TotpSealer(passphrase=b"pass-2").open(sealed, "ops")
    with pytest.raises(SealError):
        sealer.open(sealed, "admin")  # copied onto another row
    with pytest.raises(SealError):
        TotpSealer(key_file=tmp_path / "totp.key").open(sealed, "ops")  # the passphrase is needed


# -- the way back in for a locked admin ------------------------------------------------------------

def test_gateway_users_unlock_lets_a_locked_admin_back_in_and_is_audited(database_url, monkeypatch, tmp_path):
    import asyncio
    import json

    from gateway.adapters.sql.engine import create_engine
    from gateway.cli.access_cmds import audit_app, users_app

    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    assert runner.invoke(users_app, ["add", "root", "--role", "admin", "--password-stdin"],
                         input=f"{PASSWORD}\n").exit_code == 0

    async def lock_then_sign_in(unlock: bool) -> str:
        from gateway.clock import SystemClock

        engine = create_engine(database_url)
        try:
            access = build_access(engine, SystemClock(), settings=Settings())
            if not unlock:
                for i in range(5):
                    with pytest.raises(SignInRefused):
                        await access.sign_in("root", "Wrong-Pass-1", source=f"203.0.113.{i}")
            with pytest.raises(SignInRefused) as caught:
                await access.sign_in("root", PASSWORD, "", source="10.0.0.9")
            return caught.value.code
        finally:
            await engine.dispose()

    assert asyncio.run(lock_then_sign_in(False)) == "bad_credentials"  # locked: the right password is not even checked
    unlocked = runner.invoke(users_app, ["unlock", "root"])
    assert (unlocked.exit_code, unlocked.output.strip()) == (0, "unlocked root")
    assert asyncio.run(lock_then_sign_in(True)) == "otp_required"  # the password is checked again
    rows = [json.loads(line) for line in runner.invoke(audit_app, ["list", "--json"]).output.splitlines()]
    assert ("user_unlock", "root") in [(r["action"], r["object_id"]) for r in rows]
    assert runner.invoke(users_app, ["unlock", "nobody"]).exit_code == 1


async def test_a_secret_sealed_under_another_passphrase_refuses_the_code_and_says_why_in_the_trail(engine, clock, tmp_path):
    before = build_access(engine, clock, settings=Settings(data_dir=tmp_path, key_passphrase="old-pass"))
    new = await before.add_user("ops", Role.OPERATOR, "", PASSWORD, actor="cli")
    after = build_access(engine, clock, settings=Settings(data_dir=tmp_path, key_passphrase="new-pass"))
    with pytest.raises(SignInRefused) as caught:
        await after.sign_in("ops", PASSWORD, totp.code_at(new.user.totp_secret, clock.now()), source="10.0.0.9")
    assert caught.value.code == "otp_wrong"
    (refusal,) = [r for r in await trail(after) if r.action == "sign_in"]
    assert refusal.result == "otp_wrong" and "does not open" in refusal.detail


def test_gateway_audit_list_prints_one_line_for_a_failed_sign_in_whose_name_forges_another(database_url, monkeypatch, tmp_path):
    """The red team's probe: a username holding a newline and a fake "admin sign_in ok" record."""
    import asyncio

    from gateway.adapters.sql.engine import create_engine, create_schema
    from gateway.cli.access_cmds import audit_app
    from gateway.clock import SystemClock

    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))

    async def fail_once() -> None:
        engine = create_engine(database_url)
        try:
            await create_schema(engine)
            with pytest.raises(SignInRefused):
                await build_access(engine, SystemClock(), settings=Settings()).sign_in(FORGED, "Wrong-Pass-1", source="10.0.0.9")
        finally:
            await engine.dispose()

    asyncio.run(fail_once())
    listed = CliRunner().invoke(audit_app, ["list"])
    assert listed.exit_code == 0
    (line,) = listed.output.splitlines()
    # The name was stored with its newline escaped (`x\x0a`); the listing escapes that backslash in turn, so
    # what it prints can never be read as a character the name held.
    assert " sign_in " in line and line.rstrip().endswith("bad_credentials") and "x\\\\x0a" in line
