"""The quarantine's caps on both databases: every refusal counted, stored only while its bucket, its
sender and the quarantine have room; unauthenticated junk cannot crowd out a peer's signed refusals."""

from __future__ import annotations

import asyncio
import hashlib
import os
from datetime import datetime, timedelta, timezone

import pytest

from gateway.adapters.sql.engine import create_engine, create_schema
from gateway.adapters.sql.store import SqlMessageStore
from gateway.exchange.records import QuarantineItem
from gateway.exchange.refusals import SIGNED, UNSIGNED, QuarantineCaps

pytestmark = pytest.mark.database

RESIDENCE, ELSEWHERE = "110101001", "130102001"
SENDERS = [RESIDENCE, ELSEWHERE, None]  # None: no sender, or one the directory does not know
# 23:30 on 30 September 2025 in Beijing is 15:30 UTC; the hour boundary below crosses into 1 October
# (the statistical year) in Beijing time, but the budgets are per UTC hour.
AT = datetime(2025, 9, 30, 15, 30, tzinfo=timezone.utc)
CAPS = QuarantineCaps(signed_rows=6, signed_per_hour=5, signed_per_sender_per_hour=4, signed_keep_days=90,
                      unsigned_rows=8, unsigned_per_hour=5, unsigned_per_sender_per_hour=3, unsigned_keep_days=7)


def refusal(*, signed: bool, sender: str | None = RESIDENCE, at: datetime = AT, reason: str | None = None) -> QuarantineItem:
    raw = os.urandom(40)
    return QuarantineItem(received_at=at, reason=reason or ("invalid_record" if signed else "bad_signature"),
                          detail="d", envelope_sha256=hashlib.sha256(raw).hexdigest(), raw=raw, size=len(raw),
                          message_id=raw.hex()[:32], sender=sender, recipient="120101001", kind="query",
                          authenticated=signed)


@pytest.fixture
async def store(database_url: str):
    engine = create_engine(database_url)
    await create_schema(engine)
    yield SqlMessageStore(engine, quarantine_caps=CAPS)
    await engine.dispose()


async def tally(store: SqlMessageStore, bucket: str) -> tuple[int, int]:
    counts = [c for c in await store.refusal_counts(AT - timedelta(days=30)) if c.bucket == bucket]
    return sum(c.refused for c in counts), sum(c.stored for c in counts)


async def stored(store: SqlMessageStore, *, signed: bool) -> int:
    return sum(q.authenticated is signed for q in await store.list_quarantine(1000))


async def test_junk_beyond_the_hourly_budget_is_counted_and_not_stored(store) -> None:
    await store.add_incoming_batch([], [refusal(signed=False, sender=SENDERS[i % 3]) for i in range(30)])
    assert await stored(store, signed=False) == CAPS.unsigned_per_hour
    assert await tally(store, UNSIGNED) == (30, CAPS.unsigned_per_hour)


async def test_one_claimed_sender_cannot_use_up_the_budget_of_the_others(store) -> None:
    await store.add_incoming_batch([], [refusal(signed=False, sender=RESIDENCE) for _ in range(10)])
    await store.add_quarantine(refusal(signed=False, sender=ELSEWHERE))
    kept = await store.list_quarantine(100)
    assert sum(q.sender == RESIDENCE for q in kept) == CAPS.unsigned_per_sender_per_hour
    assert sum(q.sender == ELSEWHERE for q in kept) == 1
    by_sender = {c.sender: (c.refused, c.stored) for c in await store.refusal_counts(AT - timedelta(hours=1))}
    assert by_sender == {RESIDENCE: (10, CAPS.unsigned_per_sender_per_hour), ELSEWHERE: (1, 1)}


async def test_a_peers_signed_refusals_are_stored_when_junk_has_used_up_its_bucket(store) -> None:
    await store.add_incoming_batch([], [refusal(signed=False, sender=None) for _ in range(20)])
    await store.add_incoming_batch([], [refusal(signed=True), refusal(signed=True, sender=ELSEWHERE)])
    assert await stored(store, signed=True) == 2
    assert await tally(store, SIGNED) == (2, 2)


async def test_the_budgets_are_per_utc_hour_and_the_bucket_size_holds_across_hours(store) -> None:
    for hour in range(3):  # 15:30, 16:30 (00:30 on 1 October in Beijing), 17:30 UTC
        at = AT + timedelta(hours=hour)
        await store.add_incoming_batch([], [refusal(signed=False, sender=SENDERS[i % 3], at=at) for i in range(6)])
    # 5 in the first hour, 3 in the second (the bucket holds 8), none in the third.
    assert await stored(store, signed=False) == CAPS.unsigned_rows
    hours: dict[str, int] = {}
    for c in await store.refusal_counts(AT - timedelta(hours=1)):
        hours[c.hour] = hours.get(c.hour, 0) + c.stored
    assert hours == {"2025-09-30T15": 5, "2025-09-30T16": 3, "2025-09-30T17": 0}


async def test_a_full_bucket_deletes_its_rows_older_than_its_keep_and_never_the_signed_ones(store) -> None:
    old = AT - timedelta(days=8)
    for day in range(2):  # 8 rows of old junk, kept within the budgets of two hours
        at = old + timedelta(hours=day)
        await store.add_incoming_batch([], [refusal(signed=False, sender=SENDERS[i % 3], at=at) for i in range(4)])
    await store.add_quarantine(refusal(signed=True, at=old))
    assert await stored(store, signed=False) == CAPS.unsigned_rows

    await store.add_incoming_batch([], [refusal(signed=False, sender=None) for _ in range(2)])

    kept = await store.list_quarantine(100)
    assert sorted(q.received_at for q in kept if q.authenticated is False) == [AT, AT]
    assert [q.received_at for q in kept if q.authenticated] == [old]  # signed: kept 90 days


async def test_concurrent_floods_through_two_stores_never_store_more_than_the_cap(store, database_url) -> None:
    other_engine = create_engine(database_url)
    other = SqlMessageStore(other_engine, quarantine_caps=CAPS)
    try:
        batches = [[refusal(signed=False, sender=s) for _ in range(4)] for s in [RESIDENCE, ELSEWHERE, None] * 4]
        await asyncio.gather(*((store if i % 2 else other).add_incoming_batch([], b) for i, b in enumerate(batches)))
    finally:
        await other_engine.dispose()
    assert await stored(store, signed=False) == CAPS.unsigned_per_hour
    assert await tally(store, UNSIGNED) == (48, CAPS.unsigned_per_hour)


def test_every_reason_the_gateway_refuses_with_is_one_a_page_may_name() -> None:
    """The codes in the sources (EnvelopeError, the service's own) are all in REFUSAL_REASONS."""
    import re
    from pathlib import Path

    from gateway.exchange.refusals import REFUSAL_REASONS

    source = "\n".join(p.read_text() for p in (Path(__file__).resolve().parents[2] / "gateway").rglob("*.py"))
    given = set(re.findall(r"(?:EnvelopeError|_Inconsistent)\(\s*\"([a-z_]+)\"", source)) | {"invalid_record", "replay"}
    assert given <= REFUSAL_REASONS, given - REFUSAL_REASONS
