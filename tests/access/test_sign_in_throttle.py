"""The throttles in front of the account lock (gateway/access/throttle.py), on a clock the test moves."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gateway.access.throttle import SignInThrottle, ThrottleLimits, Throttled

NOW = datetime(2025, 9, 30, 23, 55, tzinfo=timezone.utc)  # the window crosses 1 October, the statistical year
ATTACKER, OFFICE = "203.0.113.7", "10.20.30.40"


def fail(throttle: SignInThrottle, address: str, name: str, now: datetime, elapsed_s: float = 0.0) -> None:
    throttle.admit(address, name, now, elapsed_s=elapsed_s).done()


def test_one_address_is_throttled_on_a_name_before_it_could_lock_the_account():
    throttle = SignInThrottle()
    for _ in range(3):  # below the account lock's 5
        fail(throttle, ATTACKER, "admin", NOW)
    with pytest.raises(Throttled) as caught:
        throttle.admit(ATTACKER, "ADMIN", NOW + timedelta(minutes=1))  # the name as typed, case ignored
    assert caught.value.scope == "address_name" and caught.value.retry_after == 14 * 60
    # The admin at the office is not affected by what the attacker's address did.
    throttle.admit(OFFICE, "admin", NOW + timedelta(minutes=1)).succeeded()


def test_the_window_ends_fifteen_minutes_after_the_oldest_failure():
    throttle = SignInThrottle()
    for minute in range(3):
        fail(throttle, ATTACKER, "admin", NOW + timedelta(minutes=minute))
    with pytest.raises(Throttled):
        throttle.admit(ATTACKER, "admin", NOW + timedelta(minutes=14, seconds=59))
    fail(throttle, ATTACKER, "admin", NOW + timedelta(minutes=15))  # the first has left the window
    with pytest.raises(Throttled):
        throttle.admit(ATTACKER, "admin", NOW + timedelta(minutes=15, seconds=1))


def test_an_unknown_name_is_throttled_exactly_like_a_known_one():
    throttle = SignInThrottle()
    outcomes = []
    for name in ("admin", "no-such-user"):
        for _ in range(3):
            fail(throttle, ATTACKER, name, NOW)
        with pytest.raises(Throttled) as caught:
            throttle.admit(ATTACKER, name, NOW)
        outcomes.append((caught.value.scope, caught.value.retry_after))
    assert outcomes[0] == outcomes[1]


def test_one_address_spraying_many_names_is_throttled_after_ten_failures():
    throttle = SignInThrottle()
    for i in range(10):
        fail(throttle, ATTACKER, f"user{i}", NOW)
    with pytest.raises(Throttled) as caught:
        throttle.admit(ATTACKER, "user99", NOW)
    assert caught.value.scope == "address"


def test_a_success_gives_its_attempt_back_and_unlocking_forgets_a_name_s_failures():
    throttle = SignInThrottle()
    fail(throttle, OFFICE, "li", NOW)
    fail(throttle, OFFICE, "li", NOW)
    for _ in range(5):
        throttle.admit(OFFICE, "li", NOW).succeeded()  # successes never add up
    fail(throttle, OFFICE, "li", NOW)  # the third failure
    with pytest.raises(Throttled):
        throttle.admit(OFFICE, "li", NOW)
    throttle.clear("li")
    throttle.admit(OFFICE, "li", NOW).succeeded()


def test_the_gateway_admits_a_bounded_rate_and_a_bounded_number_at_once():
    throttle = SignInThrottle(ThrottleLimits(global_per_second=10, global_burst=20, in_flight=4))
    tickets = [throttle.admit(f"10.0.0.{i}", "x", NOW, elapsed_s=0.0) for i in range(4)]
    with pytest.raises(Throttled) as caught:
        throttle.admit("10.0.1.1", "x", NOW, elapsed_s=0.0)
    assert (caught.value.scope, caught.value.retry_after) == ("gateway", 1)
    for ticket in tickets:
        ticket.done()
    for i in range(16):  # the burst of 20, four already spent
        fail(throttle, f"10.0.2.{i}", "x", NOW, elapsed_s=0.0)
    with pytest.raises(Throttled):
        throttle.admit("10.0.3.1", "x", NOW, elapsed_s=0.05)
    fail(throttle, "10.0.3.1", "x", NOW, elapsed_s=0.2)  # a tenth of a second refills one


def test_beyond_the_tracked_addresses_every_attempt_is_throttled_so_memory_stays_bounded():
    throttle = SignInThrottle(ThrottleLimits(tracked_keys=50, global_burst=1000, global_per_second=1000))
    for i in range(25):  # each failure is kept under its address and its address and name
        fail(throttle, f"198.51.100.{i}", "x", NOW, elapsed_s=i)
    with pytest.raises(Throttled):
        throttle.admit("198.51.100.200", "x", NOW, elapsed_s=30)
    fail(throttle, "198.51.100.200", "x", NOW + timedelta(minutes=15), elapsed_s=31)  # swept: the window ended


def test_ipv6_addresses_are_counted_by_their_slash_64():
    throttle = SignInThrottle()
    for i in range(3):  # a fresh address of the same subscriber's block each time
        fail(throttle, f"2001:db8:1:2::{i + 1:x}", "admin", NOW)
    with pytest.raises(Throttled):
        throttle.admit("2001:db8:1:2:ffff::9", "admin", NOW)
    throttle.admit("2001:db8:1:3::1", "admin", NOW).done()  # the next block is another subscriber
