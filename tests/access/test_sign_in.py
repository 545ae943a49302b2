"""Sign-in on the real databases: passwords, lock-out, idle expiry, the second factor, API tokens."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from gateway.access import totp
from gateway.access.principal import Role
from gateway.access.service import InvalidAccount, NoSuchUser, SignInRefused
from gateway.adapters.sql.access_tables import users
from tests.access.helpers import PASSWORD
from tests.gateways import RESIDENCE


async def refused(access, username, password, otp="") -> str:
    with pytest.raises(SignInRefused) as caught:
        await access.sign_in(username, password, otp, source="10.0.0.9")
    return caught.value.code


async def actions(access) -> list[tuple[str, str, str]]:
    return [(r.action, r.username, r.result) async for r in access.audit.records()]


def test_production_passwords_use_argon2id_with_the_rfc_9106_parameters():
    from argon2 import Type

    from gateway.access.passwords import PRODUCTION_HASHER

    assert PRODUCTION_HASHER.type is Type.ID
    assert (PRODUCTION_HASHER.memory_cost, PRODUCTION_HASHER.time_cost, PRODUCTION_HASHER.parallelism) == (65536, 3, 4)


async def test_passwords_are_stored_as_argon2id_and_the_right_one_signs_in(access, engine):
    await access.add_user("wang", Role.CLERK, RESIDENCE, PASSWORD, actor="cli")
    async with engine.connect() as conn:
        stored = (await conn.execute(select(users.c.password_hash))).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    signed = await access.sign_in("wang", PASSWORD, source="10.0.0.9")
    principal = await access.authenticate(signed.token)
    assert (principal.username, principal.role, principal.scope) == ("wang", Role.CLERK, RESIDENCE)
    assert signed.expires_in == 30 * 60
    assert await refused(access, "wang", "Wrong-Password-1") == "bad_credentials"
    assert await refused(access, "nobody", PASSWORD) == "bad_credentials"  # same answer for an unknown name
    assert ("sign_in", "wang", "ok") in await actions(access)
    assert ("sign_in", "nobody", "bad_credentials") in await actions(access)


@pytest.mark.parametrize("password, reason", [
    ("Short-1a", "at least 10 characters"),
    ("alllowercaseletters", "three of"),
    ("lowercase-and-symbols", "three of"),
])
async def test_a_weak_password_is_refused_with_the_rule_it_breaks(access, password, reason):
    with pytest.raises(InvalidAccount, match=reason):
        await access.add_user("li", Role.CLERK, RESIDENCE, password, actor="cli")


async def test_scopes_must_fit_the_role_and_a_clerk_s_township_must_be_hosted(access):
    with pytest.raises(InvalidAccount, match="9-digit"):
        await access.add_user("a", Role.CLERK, "1101", PASSWORD, actor="cli")
    with pytest.raises(InvalidAccount, match="not hosted"):
        await access.add_user("b", Role.CLERK, "440305001", PASSWORD, actor="cli")
    with pytest.raises(InvalidAccount, match="2-digit"):
        await access.add_user("c", Role.SUPERVISOR, "110101001", PASSWORD, actor="cli")
    with pytest.raises(InvalidAccount, match="no --scope"):
        await access.add_user("d", Role.OPERATOR, "11", PASSWORD, actor="cli")


async def test_five_attempts_without_a_sign_in_lock_the_account_for_15_minutes_answering_as_a_wrong_password(unthrottled, clock):
    access = unthrottled
    await access.add_user("zhao", Role.CLERK, RESIDENCE, PASSWORD, actor="cli")
    codes = [await refused(access, "zhao", f"Wrong-Pass-{i}") for i in range(5)]
    assert codes == ["bad_credentials"] * 5  # the fifth locks, and says so to nobody but the trail
    assert await refused(access, "zhao", PASSWORD) == "bad_credentials"  # the right one, like a wrong one
    assert await refused(access, "nobody", PASSWORD) == "bad_credentials"  # as an unknown name answers
    clock.advance(timedelta(minutes=14, seconds=59))
    assert await refused(access, "zhao", PASSWORD) == "bad_credentials"
    clock.advance(timedelta(seconds=2))
    assert (await access.sign_in("zhao", PASSWORD, source="x")).principal.username == "zhao"
    trail = await actions(access)
    assert [a for a in trail if a[0] == "account_locked"] == [("account_locked", "zhao", "locked")]
    assert trail.count(("sign_in", "zhao", "locked")) == 2  # the refusals while locked, as they were


async def test_a_success_resets_the_count_of_attempts(unthrottled):
    access = unthrottled
    await access.add_user("qian", Role.CLERK, RESIDENCE, PASSWORD, actor="cli")
    for _ in range(4):
        await refused(access, "qian", "Wrong-Pass-1")
    await access.sign_in("qian", PASSWORD, source="x")
    for _ in range(4):
        assert await refused(access, "qian", "Wrong-Pass-1") == "bad_credentials"
    assert (await access.store.get_user("qian")).locked_until is None


async def test_the_fifth_attempt_is_still_checked_and_signs_in_when_it_is_right(unthrottled):
    access = unthrottled
    await access.add_user("chen", Role.CLERK, RESIDENCE, PASSWORD, actor="cli")
    for _ in range(4):
        await refused(access, "chen", "Wrong-Pass-1")
    assert (await access.sign_in("chen", PASSWORD, source="x")).principal.username == "chen"
    user = await access.store.get_user("chen")
    assert (user.failed_attempts, user.locked_until) == (0, None)  # its own claim's lock lifted with the count
    assert not [a for a in await actions(access) if a[0] == "account_locked"]


async def test_concurrent_attempts_are_claimed_before_their_password_is_checked(unthrottled, counting_hasher):
    """The lock race: 100 attempts at once; the database grants 5 claims, so 5 passwords are verified."""
    access = unthrottled
    await access.add_user("sun", Role.CLERK, RESIDENCE, PASSWORD, actor="cli")
    counting_hasher.calls = 0
    codes = await asyncio.gather(*(refused(access, "sun", f"Wrong-Pass-{i}") for i in range(100)))
    assert counting_hasher.calls == 5
    assert set(codes) == {"bad_credentials"}
    assert await refused(access, "sun", PASSWORD) == "bad_credentials"
    assert counting_hasher.calls == 5  # the right password, while locked, is not even checked
    assert [a for a in await actions(access) if a[0] == "account_locked"] == [("account_locked", "sun", "locked")]


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.ADMIN])
async def test_the_right_password_of_a_locked_admin_does_not_ask_for_the_one_time_code(unthrottled, clock, role):
    access = unthrottled
    new = await access.add_user("root", role, "", PASSWORD, actor="cli")
    for _ in range(5):
        await refused(access, "root", "Wrong-Pass-1")
    assert await refused(access, "root", PASSWORD) == "bad_credentials"  # not otp_required
    code = totp.code_at(new.user.totp_secret, clock.now())
    assert await refused(access, "root", PASSWORD, code) == "bad_credentials"


async def test_unlocking_lifts_the_lock_at_once_and_is_audited(unthrottled):
    access = unthrottled
    await access.add_user("boss", Role.CLERK, RESIDENCE, PASSWORD, actor="cli")
    for _ in range(5):
        await refused(access, "boss", "Wrong-Pass-1")
    assert await refused(access, "boss", PASSWORD) == "bad_credentials"
    await access.unlock("boss", actor="cli:root")
    assert (await access.sign_in("boss", PASSWORD, source="x")).principal.username == "boss"
    assert ("user_unlock", "cli:root", "ok") in await actions(access)
    with pytest.raises(NoSuchUser):
        await access.unlock("nobody", actor="cli:root")


async def test_a_session_ends_after_30_idle_minutes_and_a_late_request_cannot_revive_it(access, clock):
    await access.add_user("zhou", Role.CLERK, RESIDENCE, PASSWORD, actor="cli")
    token = (await access.sign_in("zhou", PASSWORD, source="x")).token
    for _ in range(3):  # in use: every request moves the idle clock
        clock.advance(timedelta(minutes=29))
        assert await access.authenticate(token) is not None
    clock.advance(timedelta(minutes=30, seconds=1))
    results = await asyncio.gather(*(access.authenticate(token) for _ in range(5)))
    assert results == [None] * 5
    clock.set(clock.now() - timedelta(minutes=2))  # even a request stamped earlier finds it ended
    assert await access.authenticate(token) is None


async def test_signing_out_revokes_the_token(access):
    await access.add_user("wu", Role.CLERK, RESIDENCE, PASSWORD, actor="cli")
    signed = await access.sign_in("wu", PASSWORD, source="x")
    await access.sign_out(signed.token, signed.principal, source="x")
    assert await access.authenticate(signed.token) is None
    assert ("sign_out", "wu", "ok") in await actions(access)


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.AUDITOR, Role.ADMIN])
async def test_operators_auditors_and_admins_need_a_one_time_code_used_once(unthrottled, clock, role):
    access = unthrottled
    new = await access.add_user("ops", role, "", PASSWORD, actor="cli")
    assert new.otpauth_uri.startswith("otpauth://totp/") and "secret=" in new.otpauth_uri
    secret = new.user.totp_secret
    assert await refused(access, "ops", PASSWORD) == "otp_required"
    assert await refused(access, "ops", PASSWORD, "000000" if totp.code_at(secret, clock.now()) != "000000" else "111111") == "otp_wrong"
    code = totp.code_at(secret, clock.now())
    assert (await access.sign_in("ops", PASSWORD, code, source="x")).principal.role is role
    assert await refused(access, "ops", PASSWORD, code) == "otp_wrong"  # replayed
    clock.advance(timedelta(seconds=30))
    assert await access.sign_in("ops", PASSWORD, totp.code_at(secret, clock.now()), source="x")
    assert await refused(access, "ops", "Wrong-Pass-1", totp.code_at(secret, clock.now())) == "bad_credentials"


async def test_clerks_and_supervisors_sign_in_without_a_second_factor(access):
    clerk = await access.add_user("c1", Role.CLERK, RESIDENCE, PASSWORD, actor="cli")
    supervisor = await access.add_user("s1", Role.SUPERVISOR, RESIDENCE[:4], PASSWORD, actor="cli")
    assert clerk.otpauth_uri is None and supervisor.otpauth_uri is None
    assert await access.sign_in("s1", PASSWORD, source="x")


async def test_a_disabled_account_is_refused_and_its_sessions_end(access):
    await access.add_user("zheng", Role.CLERK, RESIDENCE, PASSWORD, actor="cli")
    token = (await access.sign_in("zheng", PASSWORD, source="x")).token
    await access.set_disabled("zheng", True, actor="cli")
    assert await access.authenticate(token) is None
    assert await refused(access, "zheng", PASSWORD) == "disabled"
    await access.set_disabled("zheng", False, actor="cli")
    assert await access.authenticate(token) is None  # enabling does not bring old sessions back
    assert await access.sign_in("zheng", PASSWORD, source="x")


async def test_resetting_a_password_clears_the_lock_and_ends_sessions(unthrottled):
    access = unthrottled
    await access.add_user("feng", Role.CLERK, RESIDENCE, PASSWORD, actor="cli")
    token = (await access.sign_in("feng", PASSWORD, source="x")).token
    for _ in range(5):
        await refused(access, "feng", "Wrong-Pass-1")
    await access.reset_password("feng", "New-Password-77", actor="cli")
    assert await access.authenticate(token) is None
    assert await access.sign_in("feng", "New-Password-77", source="x")


async def test_api_tokens_outlive_idleness_expire_on_their_day_and_can_be_revoked(access, engine, clock):
    await access.add_user("system", Role.CLERK, RESIDENCE, PASSWORD, actor="cli")
    token_id, token = await access.issue_token("system", 7, actor="cli")
    async with engine.connect() as conn:
        from gateway.adapters.sql.access_tables import credentials

        stored = (await conn.execute(select(credentials.c.token_sha256).where(credentials.c.id == token_id))).scalar_one()
    assert token not in stored and len(stored) == 64  # kept as its SHA-256 only
    clock.advance(timedelta(days=3))
    assert (await access.authenticate(token)).username == "system"
    clock.advance(timedelta(days=4, seconds=1))
    assert await access.authenticate(token) is None
    other_id, other = await access.issue_token("system", 30, actor="cli")
    assert await access.authenticate(other) is not None
    await access.revoke_token(other_id, actor="cli")
    assert await access.authenticate(other) is None
    assert [t.id for t in await access.list_tokens("system") if t.revoked_at] == [other_id]
