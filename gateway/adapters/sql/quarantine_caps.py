"""Refusals kept within the quarantine's caps, and every refusal counted (``QuarantineCaps``).

Inside the caller's write transaction: first every refusal of the batch is counted in
``quarantine_tally`` (one upsert per hour, bucket, sender and reason, and per budget row), which on
PostgreSQL takes the row locks of the budget rows in one fixed order — a concurrent batch for the same
bucket waits there until this one commits, so the budgets read after it are exact and two consumers
cannot both take the last place (SQLite has one writer anyway). Then the budgets are read once, each
refusal is stored while its bucket's hour, its sender's hour and its bucket's size have room, and the
stored counts are written back. A bucket at its size first deletes its rows older than its keep.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.adapters.sql.engine import reader
from gateway.adapters.sql.tables import quarantine, quarantine_tally
from gateway.exchange.records import QuarantineItem
from gateway.exchange.refusals import ANY, UNSIGNED, QuarantineCaps, RefusalCount, hour_of, key_of_refusal

_Key = tuple[str, str, str, str]  # hour, bucket, sender, reason

_T = quarantine_tally.c
_ADD_STORED = (
    update(quarantine_tally)
    .where(_T.hour == bindparam("b_hour"), _T.bucket == bindparam("b_bucket"),
           _T.sender == bindparam("b_sender"), _T.reason == bindparam("b_reason"))
    .values(stored=_T.stored + bindparam("b_n"))
)
# The item's fields that are columns (``sender_known`` is not; ``redrive_started_at`` is set by a re-drive).
_QUARANTINE_COLUMNS = tuple(f.name for f in fields(QuarantineItem) if f.name != "id" and f.name in quarantine.c)


def count_statement(sqlite: bool) -> Any:
    """The upsert that counts ``b_n`` refusals of one key (and locks its row until the commit)."""
    stmt = (sqlite_insert if sqlite else pg_insert)(quarantine_tally).values(
        hour=bindparam("b_hour"), bucket=bindparam("b_bucket"), sender=bindparam("b_sender"),
        reason=bindparam("b_reason"), refused=bindparam("b_n"), stored=0,
    )
    return stmt.on_conflict_do_update(
        index_elements=[_T.hour, _T.bucket, _T.sender, _T.reason],
        set_={"refused": _T.refused + stmt.excluded.refused},
    )


def _lock_order(key: _Key) -> tuple[Any, ...]:
    # Budget rows before the rows they cover, one bucket after the other: every batch locks in this order.
    hour, bucket, sender, reason = key
    return hour, bucket, sender != ANY, sender, reason != ANY, reason


def _params(key: _Key, n: int) -> dict[str, Any]:
    return {"b_hour": key[0], "b_bucket": key[1], "b_sender": key[2], "b_reason": key[3], "b_n": n}


def _in_bucket(bucket: str) -> Any:
    # Rows kept before 0016 (NULL) were kept under the old rules: they count as signed.
    return quarantine.c.authenticated.is_(False) if bucket == UNSIGNED else quarantine.c.authenticated.is_not(False)


async def keep_within_caps(conn: AsyncConnection, items: Sequence[QuarantineItem], caps: QuarantineCaps,
                           counter: Any) -> list[QuarantineItem]:
    """Count every refusal of ``items``, store those that fit; returns the ones stored."""
    if not items:
        return []
    seen: Counter[_Key] = Counter()
    for item in items:
        hour, bucket, sender, reason = key_of_refusal(item)
        seen[(hour, bucket, ANY, ANY)] += 1
        seen[(hour, bucket, sender, ANY)] += 1
        seen[(hour, bucket, sender, reason)] += 1
    await conn.execute(counter, [_params(k, seen[k]) for k in sorted(seen, key=_lock_order)])

    hours = sorted({k[0] for k in seen})
    rows = await conn.execute(select(_T.hour, _T.bucket, _T.sender, _T.reason, _T.stored).where(_T.hour.in_(hours)))
    stored = {(r.hour, r.bucket, r.sender, r.reason): r.stored for r in rows}
    room: dict[str, int] = {}
    taken: Counter[_Key] = Counter()
    kept: list[QuarantineItem] = []
    for item in sorted(items, key=lambda i: _lock_order(key_of_refusal(i))):
        hour, bucket, sender, reason = key = key_of_refusal(item)
        whole, one = (hour, bucket, ANY, ANY), (hour, bucket, sender, ANY)
        if stored.get(whole, 0) + taken[whole] >= caps.per_hour(bucket):
            continue
        if stored.get(one, 0) + taken[one] >= caps.per_sender_per_hour(bucket):
            continue
        if bucket not in room:
            room[bucket] = await _room(conn, bucket, caps, item.received_at)
        if room[bucket] <= 0:
            continue
        room[bucket] -= 1
        taken.update((whole, one, key))
        kept.append(item)
    if taken:
        await conn.execute(_ADD_STORED, [_params(k, n) for k, n in sorted(taken.items(), key=lambda kn: _lock_order(kn[0]))])
        await conn.execute(insert(quarantine), [{c: getattr(q, c) for c in _QUARANTINE_COLUMNS} for q in kept])
    return kept


async def _room(conn: AsyncConnection, bucket: str, caps: QuarantineCaps, now: datetime) -> int:
    """Rows the bucket may still store; at its size, its rows older than its keep make room first."""
    count = select(func.count()).select_from(quarantine).where(_in_bucket(bucket))
    free = caps.rows(bucket) - (await conn.execute(count)).scalar_one()
    if free > 0:
        return free
    cutoff = now - timedelta(days=caps.keep_days(bucket))
    await conn.execute(delete(quarantine).where(_in_bucket(bucket), quarantine.c.received_at < cutoff))
    return caps.rows(bucket) - (await conn.execute(count)).scalar_one()


async def refusal_counts(engine: AsyncEngine, since: datetime, limit: int = 200) -> list[RefusalCount]:
    """The tally's rows since ``since`` (not the budget rows), newest hour first, most refused first."""
    query = (
        select(quarantine_tally)
        .where(_T.hour >= hour_of(since), _T.sender != ANY, _T.reason != ANY)
        .order_by(_T.hour.desc(), _T.refused.desc(), _T.bucket, _T.sender, _T.reason)
        .limit(limit)
    )
    async with reader(engine).connect() as conn:
        rows = (await conn.execute(query)).all()
    return [RefusalCount(r.hour, r.bucket, r.sender, r.reason, r.refused, r.stored) for r in rows]

