"""Replay rules: one acceptance per (sender, message id), within the time window; redelivery is a no-op."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.security.errors import EnvelopeError
from gateway.security.intake import receive
from gateway.security.replay import (
    InMemorySecurityEvents,
    InMemorySeenMessages,
    ReplayPolicy,
    Verdict,
    check_window,
    judge,
)

from .conftest import NOW, SENDER, World


async def take(world: World, data: bytes, seen, events, now=NOW, policy=ReplayPolicy()):
    return await receive(data, keyring=world.recipient, directory=world.directory, seen=seen, events=events, now=now, policy=policy)


async def test_first_delivery_is_new_and_opened(world: World) -> None:
    result = await take(world, world.seal(b"first"), InMemorySeenMessages(), InMemorySecurityEvents())
    assert result.verdict is Verdict.NEW and result.opened is not None and result.opened.plaintext == b"first"


async def test_identical_redelivery_is_a_harmless_duplicate(world: World) -> None:
    seen, events, data = InMemorySeenMessages(), InMemorySecurityEvents(), world.seal()
    await take(world, data, seen, events)
    again = await take(world, data, seen, events)
    assert again.verdict is Verdict.DUPLICATE and again.opened is None
    assert events.events == []


async def test_reused_message_id_with_other_content_is_refused_as_replay_and_recorded(world: World) -> None:
    seen, events = InMemorySeenMessages(), InMemorySecurityEvents()
    await take(world, world.seal(b"one", message_id="m-7"), seen, events)
    with pytest.raises(EnvelopeError) as caught:
        await take(world, world.seal(b"two", message_id="m-7"), seen, events)
    assert caught.value.reason == "replay"
    assert events.reasons() == ["replay"] and events.events[0].sender == SENDER and events.events[0].message_id == "m-7"


async def test_message_ids_are_unique_per_sender_not_globally(world: World) -> None:
    seen, events = InMemorySeenMessages(), InMemorySecurityEvents()
    await take(world, world.seal(message_id="shared"), seen, events)
    await seen.claim("999999999", "other", "ab" * 32, NOW)
    assert await seen.lookup("999999999", "shared") is None


async def test_envelope_older_than_the_window_is_refused_as_stale(world: World) -> None:
    events = InMemorySecurityEvents()
    old = world.seal(created_at=NOW - timedelta(days=8))
    with pytest.raises(EnvelopeError) as caught:
        await take(world, old, InMemorySeenMessages(), events)
    assert caught.value.reason == "stale" and events.reasons() == ["stale"]


async def test_envelope_from_the_future_is_refused(world: World) -> None:
    events = InMemorySecurityEvents()
    ahead = world.seal(created_at=NOW + timedelta(minutes=6))
    with pytest.raises(EnvelopeError) as caught:
        await take(world, ahead, InMemorySeenMessages(), events)
    assert caught.value.reason == "future" and events.reasons() == ["future"]


async def test_a_forged_envelope_does_not_burn_the_senders_message_id(world: World) -> None:
    seen, events = InMemorySeenMessages(), InMemorySecurityEvents()
    genuine = world.seal(message_id="m-9")
    forged = genuine[:-3] + bytes([genuine[-3] ^ 1]) + genuine[-2:]
    with pytest.raises(EnvelopeError):
        await take(world, forged, seen, events)
    assert (await take(world, genuine, seen, events)).verdict is Verdict.NEW


async def test_every_refusal_is_recorded_with_the_envelope_hash(world: World) -> None:
    events = InMemorySecurityEvents()
    with pytest.raises(EnvelopeError):
        await take(world, b"TXG1 garbage", InMemorySeenMessages(), events)
    assert len(events.events) == 1 and len(events.events[0].envelope_sha256 or "") == 64


def test_window_edges_are_inclusive_and_configurable() -> None:
    policy = ReplayPolicy(max_past=timedelta(days=1), max_future=timedelta(seconds=30))
    check_window(NOW - timedelta(days=1), NOW, policy)
    check_window(NOW + timedelta(seconds=30), NOW, policy)
    with pytest.raises(EnvelopeError):
        check_window(NOW - timedelta(days=1, microseconds=1), NOW, policy)
    assert policy.retention == timedelta(days=1, seconds=30)


def test_judging_compares_the_recorded_hash() -> None:
    assert judge("aa", None) is Verdict.NEW
    assert judge("aa", "aa") is Verdict.DUPLICATE
    with pytest.raises(EnvelopeError):
        judge("aa", "bb")


async def test_concurrent_claims_of_one_id_let_only_one_through() -> None:
    seen = InMemorySeenMessages()
    assert await seen.claim(SENDER, "m", "aa", NOW) is None
    assert await seen.claim(SENDER, "m", "bb", NOW) == "aa"
