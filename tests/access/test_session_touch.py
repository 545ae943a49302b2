"""An authenticated request reads its credential and writes nothing, unless the last use it would record
is more than a minute old; sign-out, disabling and revocation still end a credential at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy import event, select

from gateway.access.principal import Role
from gateway.adapters.sql.access_tables import credentials
from tests.access.helpers import PASSWORD
from tests.gateways import RESIDENCE


@contextlib.contextmanager
def credential_updates(engine) -> Iterator[list[int]]:
    """The row count of every UPDATE of ``credentials`` the database ran meanwhile."""
    counts: list[int] = []

    def after(_conn, cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("UPDATE CREDENTIALS"):
            counts.append(cursor.rowcount)

    event.listen(engine.sync_engine, "after_cursor_execute", after)
    try:
        yield counts
    finally:
        event.remove(engine.sync_engine, "after_cursor_execute", after)


async def last_used(engine, token_id: int):  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        value = (await conn.execute(select(credentials.c.last_used_at).where(credentials.c.id == token_id))).scalar_one()
    return value.replace(tzinfo=None)


async def signed_in(access, name: str = "wang"):  # type: ignore[no-untyped-def]
    await access.add_user(name, Role.CLERK, RESIDENCE, PASSWORD, actor="cli")
    return await access.sign_in(name, PASSWORD, source="x")


async def test_requests_within_a_minute_of_the_recorded_use_write_nothing(access, engine, clock):
    signed = await signed_in(access)
    session_id = int(signed.principal.session_id)
    recorded = await last_used(engine, session_id)
    clock.advance(timedelta(seconds=59))
    with credential_updates(engine) as updates:
        principals = await asyncio.gather(*(access.authenticate(signed.token) for _ in range(20)))
    assert [p.username for p in principals] == ["wang"] * 20
    assert updates == []
    assert await last_used(engine, session_id) == recorded


async def test_a_stale_last_use_is_moved_once_however_many_requests_find_it_stale(access, engine, clock):
    signed = await signed_in(access)
    session_id = int(signed.principal.session_id)
    clock.advance(timedelta(minutes=5))
    with credential_updates(engine) as updates:
        principals = await asyncio.gather(*(access.authenticate(signed.token) for _ in range(12)))
    assert all(p is not None and p.username == "wang" for p in principals)
    assert sum(updates) == 1  # whichever requests found it stale tried; the database let one move it
    assert await last_used(engine, session_id) == clock.now().replace(tzinfo=None)


async def test_of_concurrent_touches_of_one_stale_credential_one_moves_it_and_all_find_it_live(access, engine, clock):
    signed = await signed_in(access)
    session_id = int(signed.principal.session_id)
    clock.advance(timedelta(minutes=5))
    with credential_updates(engine) as updates:
        live = await asyncio.gather(*(access.store.touch_credential(session_id, clock.now(), timedelta(minutes=30))
                                      for _ in range(12)))
    assert live == [True] * 12
    assert sorted(updates) == [0] * 11 + [1]
    assert await last_used(engine, session_id) == clock.now().replace(tzinfo=None)
    await access.sign_out(signed.token, signed.principal, source="x")
    clock.advance(timedelta(minutes=5))
    assert await access.store.touch_credential(session_id, clock.now(), timedelta(minutes=30)) is False


async def test_the_idle_time_out_counts_from_the_recorded_use_at_most_a_minute_behind(access, clock):
    signed = await signed_in(access)
    clock.advance(timedelta(seconds=50))
    assert await access.authenticate(signed.token) is not None  # not recorded: within the minute
    clock.advance(timedelta(minutes=29, seconds=10))  # 30 minutes after the recorded use
    assert await access.authenticate(signed.token) is None
    clock.advance(timedelta(seconds=-40))  # even a request stamped earlier finds it ended
    assert await access.authenticate(signed.token) is None


async def test_a_session_in_use_lives_past_30_minutes_because_its_use_is_recorded_each_minute(access, clock):
    signed = await signed_in(access)
    for _ in range(45):
        clock.advance(timedelta(seconds=61))
        assert await access.authenticate(signed.token) is not None
    clock.advance(timedelta(minutes=30))
    assert await access.authenticate(signed.token) is None


async def test_sign_out_disabling_and_revocation_end_a_credential_used_a_moment_ago(access, clock):
    out = await signed_in(access, "zhao")
    off = await signed_in(access, "qian")
    token_id, token = await access.issue_token("qian", 7, actor="cli")
    await access.add_user("sun", Role.CLERK, RESIDENCE, PASSWORD, actor="cli")
    revoked_id, revoked = await access.issue_token("sun", 7, actor="cli")
    for t in (out.token, off.token, token, revoked):
        assert await access.authenticate(t) is not None
    clock.advance(timedelta(seconds=1))  # the recorded uses are fresh: no request would write them
    await access.sign_out(out.token, out.principal, source="x")
    await access.set_disabled("qian", True, actor="cli")
    await access.revoke_token(revoked_id, actor="cli")
    for t in (out.token, off.token, token, revoked):
        assert await access.authenticate(t) is None


async def test_a_sign_out_racing_requests_that_found_the_session_stale_is_not_undone(access, engine, clock):
    signed = await signed_in(access)
    clock.advance(timedelta(minutes=10))  # every request below would move the last use
    results = await asyncio.gather(*(access.authenticate(signed.token) for _ in range(6)),
                                   access.sign_out(signed.token, signed.principal, source="x"),
                                   *(access.authenticate(signed.token) for _ in range(6)))
    assert all(r is None or r.username == "wang" for r in results[:6] + results[7:])
    async with engine.connect() as conn:
        revoked_at = (await conn.execute(select(credentials.c.revoked_at)
                                         .where(credentials.c.id == int(signed.principal.session_id)))).scalar_one()
    assert revoked_at is not None
    assert await access.authenticate(signed.token) is None
