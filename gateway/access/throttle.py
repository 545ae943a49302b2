"""Sign-in throttling in front of the account lock: per source address, per address and name, and for
the whole gateway. Pure bookkeeping on the caller's clock (no I/O), kept in the process's memory.

Why three limits (docs/access.md, "Sign-in under attack"):

- **address and name** (default 3 failures in 15 minutes): fewer than the account lock's 5, so one
  address is throttled on a name before it can lock that account: an outsider at one address can
  neither lock the admin out nor make more than 3 guesses a quarter of an hour.
- **address** (default 10 failures in 15 minutes, whatever the names): one address cannot spray
  guesses over many names, or lock many accounts.
- **gateway** (default 20 attempts a second, at most 8 at once): a flood of sign-ins from many
  addresses cannot take the CPU from everyone else (each attempt costs an Argon2 verify).

An attempt is counted as a failure when it is admitted, before its password is checked (so
concurrent attempts cannot all pass the check), and given back when it succeeds. Names are counted
as typed (case-folded), known or not: the answer never tells whether an account exists.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from math import ceil


@dataclass(frozen=True)
class ThrottleLimits:
    window: timedelta = timedelta(minutes=15)
    address_name_failures: int = 3
    address_failures: int = 10
    global_per_second: float = 20.0
    global_burst: int = 40
    in_flight: int = 8
    tracked_keys: int = 100_000  # beyond this many addresses and names in the window: all throttled


class Throttled(Exception):
    """Too many attempts; ``retry_after`` seconds until the next one is admitted (the Retry-After)."""

    def __init__(self, retry_after: int, scope: str) -> None:
        super().__init__(f"sign-in throttled ({scope}); retry after {retry_after} s")
        self.retry_after = max(1, retry_after)
        self.scope = scope  # "address_name", "address" or "gateway": for the log and the audit trail


@dataclass
class Ticket:
    """One admitted attempt: call ``succeeded`` or ``done`` exactly once."""

    keys: tuple[str, str]
    at: datetime
    throttle: SignInThrottle
    finished: bool = field(default=False)

    def succeeded(self) -> None:
        if not self.finished:
            self.finished = True
            self.throttle.give_back(self)

    def done(self) -> None:
        if not self.finished:
            self.finished = True
            self.throttle.release(self)


def name_key(username: str) -> str:
    return username.casefold()[:64]


def address_key(source: str) -> str:
    """An IPv4 address as it is; an IPv6 address by its /64, the block one subscriber usually holds
    (one attacker could otherwise take a fresh address for every attempt)."""
    try:
        address = ipaddress.ip_address(source)
    except ValueError:
        return source[:64]
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class SignInThrottle:
    def __init__(self, limits: ThrottleLimits | None = None) -> None:
        self.limits = limits or ThrottleLimits()
        self._failures: dict[str, deque[datetime]] = {}
        self._tokens = float(self.limits.global_burst)
        self._refilled: float | None = None
        self._swept: float | None = None
        self._in_flight = 0

    def admit(self, address: str, username: str, now: datetime, *, elapsed_s: float | None = None) -> Ticket:
        """Admit one attempt or raise ``Throttled``. Synchronous on purpose: on the event loop nothing
        runs between the check and the count, so concurrent attempts are each counted.

        ``now`` (the gateway's clock) dates the failures; ``elapsed_s`` (a monotonic reading, seconds)
        refills the gateway-wide rate, which is about CPU time, not the calendar."""
        limits = self.limits
        reading = elapsed_s if elapsed_s is not None else now.timestamp()
        self._refill(reading)
        if self._in_flight >= limits.in_flight or self._tokens < 1:
            raise Throttled(1, "gateway")
        address = address_key(address)
        pair = f"{address}\x00{name_key(username)}"
        for key, limit, scope in ((pair, limits.address_name_failures, "address_name"),
                                  (address, limits.address_failures, "address")):
            seen = self._recent(key, now)
            if len(seen) >= limit:
                raise Throttled(ceil((seen[0] + limits.window - now).total_seconds()), scope)
        if len(self._failures) >= limits.tracked_keys:
            if self._swept is None or reading - self._swept >= 1.0:  # a full sweep at most once a second
                self._swept = reading
                self._sweep(now)
            if len(self._failures) >= limits.tracked_keys:
                raise Throttled(int(limits.window.total_seconds()), "gateway")
        self._tokens -= 1
        self._in_flight += 1
        for key in (pair, address):
            self._failures.setdefault(key, deque()).append(now)
        return Ticket((pair, address), now, self)

    def give_back(self, ticket: Ticket) -> None:
        """A success: the attempt does not count against its address and name."""
        for key in ticket.keys:
            seen = self._failures.get(key)
            if seen is not None:
                try:
                    seen.remove(ticket.at)
                except ValueError:
                    pass
                if not seen:
                    del self._failures[key]
        self.release(ticket)

    def release(self, ticket: Ticket) -> None:
        self._in_flight -= 1

    def clear(self, username: str) -> None:
        """Forget a name's failures from every address (``gateway users unlock`` in this process)."""
        suffix = f"\x00{name_key(username)}"
        for key in [k for k in self._failures if k.endswith(suffix)]:
            del self._failures[key]

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        seen = self._failures.get(key)
        if seen is None:
            return deque()
        while seen and seen[0] <= now - self.limits.window:
            seen.popleft()
        if not seen:
            del self._failures[key]
        return seen

    def _sweep(self, now: datetime) -> None:
        for key in list(self._failures):
            self._recent(key, now)

    def _refill(self, reading_s: float) -> None:
        if self._refilled is not None:
            elapsed = max(0.0, reading_s - self._refilled)
            self._tokens = min(float(self.limits.global_burst), self._tokens + elapsed * self.limits.global_per_second)
        self._refilled = reading_s
