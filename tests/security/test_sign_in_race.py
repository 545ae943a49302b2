"""The red team's lock race (issue 24): 100 concurrent `POST /auth/token` against one account, on SQLite
and PostgreSQL. The verifier counts how many passwords were really checked: at most 5 per lock window,
and the answers tell a wrong password, the right one while locked and an unknown name apart in no way.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import httpx
import pytest

from gateway.access import totp
from gateway.access.audit_files import AuditFiles
from gateway.access.principal import Role
from gateway.access.service import AccessService, SignInPolicy
from gateway.adapters.sql.account_store import SqlAccountStore
from gateway.adapters.sql.audit_store import SqlAuditTrail
from gateway.adapters.sql.engine import create_engine, create_schema
from gateway.api.app import create_app
from gateway.bootstrap import build_access
from gateway.clock import FakeClock
from gateway.settings import Settings
from tests.access.helpers import PASSWORD, counting_verifies
from tests.gateways import REGISTRATION, RESIDENCE, T0, fake_gateway, keyrings

OFFICE = "10.20.30.40"


@pytest.fixture
async def engine(database_url):
    engine = create_engine(database_url)
    await create_schema(engine)
    yield engine
    await engine.dispose()


def gateway_with(access: AccessService):
    gateway = fake_gateway(keyrings(RESIDENCE, REGISTRATION), clock=access.clock)
    gateway.access = access
    return gateway


def from_address(app, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="https://gw")


def answer(response: httpx.Response) -> tuple[int, object]:
    return response.status_code, response.json()["detail"]


async def test_a_hundred_concurrent_guesses_verify_five_passwords_and_the_right_one_then_answers_like_a_wrong_one(engine, tmp_path):
    # No throttle in front: the database's claim alone decides (as it does between several gateways).
    clock = FakeClock(T0)
    access = AccessService(SqlAccountStore(engine), SqlAuditTrail(engine, clock, AuditFiles.in_folder(tmp_path)), clock,
                           policy=SignInPolicy(throttle=None))
    await access.add_user("wang", Role.CLERK, RESIDENCE, PASSWORD, actor="cli")
    app = create_app(gateway_with(access))
    with counting_verifies() as verifier:
        async with from_address(app, "203.0.113.7") as http:
            guesses = await asyncio.gather(*(
                http.post("/auth/token", data={"username": "wang", "password": f"Guess-Number-{i}"}) for i in range(100)))
            right = await http.post("/auth/token", data={"username": "wang", "password": PASSWORD})
            unknown = await http.post("/auth/token", data={"username": "nobody", "password": PASSWORD})
    assert verifier.calls == 6  # five claims of "wang" granted, one dummy verify for the unknown name
    assert Counter(answer(r) for r in guesses) == {(401, "bad_credentials"): 100}
    assert answer(right) == answer(unknown) == (401, "bad_credentials")
    assert right.headers.get("www-authenticate") == guesses[0].headers.get("www-authenticate")


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.ADMIN])
async def test_one_address_can_neither_guess_nor_lock_out_an_admin(engine, tmp_path, role):
    clock = FakeClock(T0)
    access = build_access(engine, clock, settings=Settings(data_dir=tmp_path))  # the shipped throttles
    new = await access.add_user("root", role, "", PASSWORD, actor="cli")
    app = create_app(gateway_with(access))
    with counting_verifies() as verifier:
        async with from_address(app, "203.0.113.7") as attacker:
            guesses = await asyncio.gather(*(
                attacker.post("/auth/token", data={"username": "root", "password": f"Guess-Number-{i}"}) for i in range(100)))
    assert verifier.calls == 3  # throttled on the name before it could lock the account
    statuses = Counter(r.status_code for r in guesses)
    assert statuses == {401: 3, 429: 97}
    assert all(int(r.headers["retry-after"]) > 0 for r in guesses if r.status_code == 429)
    async with from_address(app, OFFICE) as office:
        signed = await office.post("/auth/token", data={"username": "root", "password": PASSWORD,
                                                        "otp": totp.code_at(new.user.totp_secret, clock.now())})
    assert signed.status_code == 200  # the admin at the office is not locked out


async def test_a_hundred_addresses_at_once_still_verify_at_most_five_and_a_locked_admin_gets_no_otp_prompt(engine, tmp_path):
    clock = FakeClock(T0)
    access = build_access(engine, clock, settings=Settings(data_dir=tmp_path))
    new = await access.add_user("root", Role.ADMIN, "", PASSWORD, actor="cli")
    app = create_app(gateway_with(access))
    clients = [from_address(app, f"198.51.100.{i}") for i in range(100)]
    with counting_verifies() as verifier:
        guesses = await asyncio.gather(*(
            c.post("/auth/token", data={"username": "root", "password": f"Guess-Number-{i}"}) for i, c in enumerate(clients)))
        assert verifier.calls <= 5
        answers = Counter(answer(r) if r.status_code == 401 else r.status_code for r in guesses)
        assert set(answers) <= {(401, "bad_credentials"), 429}
        for i in range(5):  # the same from more addresses, one after another: the account is locked now
            async with from_address(app, f"192.0.2.{i}") as late:
                await late.post("/auth/token", data={"username": "root", "password": f"Guess-More-{i}"})
        async with from_address(app, OFFICE) as office:
            no_code = await office.post("/auth/token", data={"username": "root", "password": PASSWORD})
            code = totp.code_at(new.user.totp_secret, clock.now())
            with_code = await office.post("/auth/token", data={"username": "root", "password": PASSWORD, "otp": code})
        assert verifier.calls <= 5
    for c in clients:
        await c.aclose()
    assert answer(no_code) == answer(with_code) == (401, "bad_credentials")  # never otp_required
    await access.unlock("root", actor="cli:root")  # the way back in, on the gateway's host
    clock.advance(timedelta(seconds=30))
    async with from_address(app, OFFICE) as office:
        signed = await office.post("/auth/token", data={"username": "root", "password": PASSWORD,
                                                        "otp": totp.code_at(new.user.totp_secret, clock.now())})
    assert signed.status_code == 200


async def test_with_admin_networks_set_no_address_outside_them_can_guess_or_lock_an_admin(engine, tmp_path):
    clock = FakeClock(T0)
    access = build_access(engine, clock, settings=Settings(data_dir=tmp_path, sign_in_admin_networks="10.20.0.0/16"))
    new = await access.add_user("root", Role.ADMIN, "", PASSWORD, actor="cli")
    await access.add_user("wang", Role.CLERK, RESIDENCE, PASSWORD, actor="cli")
    app = create_app(gateway_with(access))
    with counting_verifies() as verifier:
        for i in range(20):  # one after another, each from its own address: no throttle is reached
            async with from_address(app, f"198.51.100.{i}") as outsider:
                guess = await outsider.post("/auth/token", data={"username": "root", "password": PASSWORD if i == 7 else f"Guess-{i}"})
                assert answer(guess) == (401, "bad_credentials")  # even the right one
        assert verifier.calls == 0  # nothing checked, nothing counted
        async with from_address(app, "198.51.100.99") as outsider:  # a clerk may still sign in from anywhere
            assert (await outsider.post("/auth/token", data={"username": "wang", "password": PASSWORD})).status_code == 200
    assert (await access.store.get_user("root")).failed_attempts == 0
    async with from_address(app, OFFICE) as office:
        signed = await office.post("/auth/token", data={"username": "root", "password": PASSWORD,
                                                        "otp": totp.code_at(new.user.totp_secret, clock.now())})
    assert signed.status_code == 200
    results = [r.result async for r in access.audit.records() if r.action == "sign_in" and r.username == "root"]
    assert results.count("outside_networks") == 20 and results[-1] == "ok"
