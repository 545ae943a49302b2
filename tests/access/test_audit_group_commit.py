"""The audit trail's group commit: appends that arrive while one is under way share the next
transaction (one head read, one multi-row INSERT), each caller gets its own records, and the chain
stays one gap-free sequence, also with several gateways appending to one PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from gateway.access.audit import Action, AuditEntry
from gateway.adapters.sql.audit_store import SqlAuditTrail
from gateway.adapters.sql.engine import create_engine
from tests.gateways import RESIDENCE
from tests.statements import statements_run


def entry(i: int, user: str = "wang") -> AuditEntry:
    return AuditEntry(Action.READ_RECORD, user, "clerk", "10.0.0.9", object_id=f"m{i}", township=RESIDENCE)


@contextlib.contextmanager
def audit_statements(engine, on_insert=None) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """The statements reading or writing ``audit_log`` meanwhile; ``on_insert`` runs at each INSERT."""
    seen: list[str] = []

    def before(statement: str) -> None:
        if "audit_log" in statement:
            seen.append(statement.lstrip().split(None, 1)[0].upper())
            if seen[-1] == "INSERT" and on_insert is not None:
                on_insert()

    with statements_run(engine, before):
        yield seen


async def test_appends_arriving_while_one_is_under_way_go_together_into_the_next_transaction(access, engine):
    trail = access.audit
    loop = asyncio.get_running_loop()
    late: list[asyncio.Task] = []

    def while_the_first_writes() -> None:
        if not late:  # the first group's INSERT is running: its commit has not happened yet
            late.extend(loop.create_task(trail.record(entry(100 + i))) for i in range(20))
            late.extend(loop.create_task(trail.record_many([entry(200 + i), entry(300 + i)])) for i in range(5))

    before = trail.appends
    with audit_statements(engine, while_the_first_writes) as statements:
        first = await asyncio.gather(*(trail.record(entry(i)) for i in range(10)))
        await asyncio.gather(*late)
    assert trail.appends - before == 2  # the ten together, then the thirty that came during their write
    if engine.url.get_backend_name() == "postgresql":
        # the head, one INSERT; then one INSERT on the head the trail wrote (it has not moved)
        assert statements == ["SELECT", "INSERT", "INSERT"]
    else:
        assert statements == ["SELECT", "INSERT", "SELECT", "INSERT"]  # per transaction: the head, then one INSERT
    assert [r.object_id for r in first] == [f"m{i}" for i in range(10)]  # each caller gets its own record
    assert [t.result().object_id for t in late[:20]] == [f"m{100 + i}" for i in range(20)]
    records = [r async for r in trail.records()]
    assert [r.seq for r in records] == list(range(1, 41))
    assert await trail.verify() == (40, None)


async def test_many_concurrent_callers_make_one_gap_free_chain_in_fewer_transactions(access):
    trail = access.audit
    before = trail.appends
    waves = [asyncio.gather(*(trail.record(entry(100 * w + i)) for i in range(30)),
                            *(trail.record_many([entry(100 * w + 50 + i), entry(100 * w + 70 + i)]) for i in range(5)))
             for w in range(4)]
    for wave in waves:
        await wave
    assert trail.appends - before < 4 * 35
    assert [r.seq async for r in trail.records()] == list(range(1, 4 * 40 + 1))
    assert await trail.verify() == (160, None)


async def test_a_refused_entry_fails_only_its_own_caller(access):
    trail = access.audit
    bad = AuditEntry(Action.READ_RECORD, "wang", "clerk", "10.0.0.9", object_id="m-bad", township=RESIDENCE,
                     detail=None)  # type: ignore[arg-type]  # not text: chaining it fails
    results = await asyncio.gather(*(trail.record(entry(i)) for i in range(5)), trail.record(bad),
                                   *(trail.record(entry(10 + i)) for i in range(5)), return_exceptions=True)
    assert [isinstance(r, Exception) for r in results] == [False] * 5 + [True] + [False] * 5
    assert [r.seq async for r in trail.records()] == list(range(1, 11))
    assert await trail.verify() == (10, None)


async def test_several_gateways_on_one_postgresql_append_one_gap_free_chain(postgres_url, clock, audit_files):
    from gateway.adapters.sql.engine import create_schema

    engines = [create_engine(postgres_url) for _ in range(3)]
    try:
        await create_schema(engines[0])
        trails = [SqlAuditTrail(e, clock, audit_files) for e in engines]  # three gateways, each its own pool and writer
        await asyncio.gather(*(trail.record(entry(1000 * g + i, user=f"gw{g}"))
                               for i in range(40) for g, trail in enumerate(trails)),
                             *(trail.record_many([entry(1000 * g + 500 + i), entry(1000 * g + 600 + i)])
                               for i in range(10) for g, trail in enumerate(trails)))
        records = [r async for r in trails[1].records()]
        assert [r.seq for r in records] == list(range(1, 3 * 60 + 1))
        assert {r.username for r in records} == {"gw0", "gw1", "gw2", "wang"}
        assert await trails[2].verify() == (180, None)
        assert sum(t.appends for t in trails) < 3 * 50  # grouped within each gateway
    finally:
        for e in engines:
            await e.dispose()


async def test_on_postgresql_a_trail_appends_on_the_head_it_wrote_in_one_statement(postgres_url, clock, audit_files):
    """BEGIN, the lock, the head, the INSERT and COMMIT were five round trips for every append; on the
    head this trail wrote last, an append is one INSERT that the database makes only if the head is
    still that one."""
    from gateway.adapters.sql.engine import create_schema

    engine = create_engine(postgres_url)
    try:
        await create_schema(engine)
        trail = SqlAuditTrail(engine, clock, audit_files)
        with audit_statements(engine) as first:
            await trail.record(entry(1))
        with audit_statements(engine) as then:
            await trail.record(entry(2))
            await trail.record_many([entry(3), entry(4)])
        assert first == ["SELECT", "INSERT"] and then == ["INSERT", "INSERT"]
        assert trail.fast_appends == 2
        assert await trail.verify() == (4, None)
    finally:
        await engine.dispose()


async def test_a_trail_whose_head_another_gateway_moved_appends_the_locked_way(postgres_url, clock, audit_files):
    from gateway.adapters.sql.engine import create_schema

    engines = [create_engine(postgres_url) for _ in range(2)]
    try:
        await create_schema(engines[0])
        mine, other = (SqlAuditTrail(e, clock, audit_files) for e in engines)
        await mine.record(entry(1))
        await other.record(entry(2, user="gw1"))  # the head mine knows is no longer the head
        with audit_statements(engines[0]) as statements:
            record = await mine.record(entry(3))
        assert statements == ["INSERT", "SELECT", "INSERT"]  # nothing inserted on the old head; locked, read, written
        assert record.seq == 3 and mine.fast_appends == 0
        await mine.record(entry(4))  # and from the head it wrote then, one statement again
        assert mine.fast_appends == 1
        assert [r.seq async for r in mine.records()] == [1, 2, 3, 4]
        assert await other.verify() == (4, None)
    finally:
        for e in engines:
            await e.dispose()
