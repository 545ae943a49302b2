"""Replay protection: each (sender, message id) is accepted once, and only within a time window.

Pure rules plus the ports they need; the clock is always passed in. A redelivery of the very same
envelope (same id, same bytes) is normal on an at-least-once broker and is a harmless no-op: it gets
its own verdict, not an error. The same id with other bytes, or a created_at outside the window, is
refused and recorded as a security event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Protocol

from gateway.security.encoding import utc_stamp
from gateway.security.errors import EnvelopeError


class Verdict(str, Enum):
    NEW = "new"  # first delivery: process it
    DUPLICATE = "duplicate"  # the same bytes again: acknowledge, re-send the receipt, do nothing else


@dataclass(frozen=True)
class ReplayPolicy:
    max_past: timedelta = timedelta(days=7)
    max_future: timedelta = timedelta(minutes=5)  # clock skew between township servers

    @property
    def retention(self) -> timedelta:
        """How long a seen-message record must be kept: older envelopes are refused as stale anyway."""
        return self.max_past + self.max_future


def check_window(created_at: datetime, now: datetime, policy: ReplayPolicy) -> None:
    if created_at < now - policy.max_past:
        raise EnvelopeError("stale", f"created at {utc_stamp(created_at)}, more than {policy.max_past} before {utc_stamp(now)}")
    if created_at > now + policy.max_future:
        raise EnvelopeError("future", f"created at {utc_stamp(created_at)}, more than {policy.max_future} after {utc_stamp(now)}")


def judge(envelope_sha256: str, recorded_sha256: str | None) -> Verdict:
    """Compare with what was recorded for the same (sender, message id)."""
    if recorded_sha256 is None:
        return Verdict.NEW
    if recorded_sha256 == envelope_sha256:
        return Verdict.DUPLICATE
    raise EnvelopeError("replay", "message id already used by this sender for a different envelope")


class SeenMessages(Protocol):
    """(sender, message_id) → SHA-256 (hex) of the envelope first accepted under that id."""

    async def lookup(self, sender: str, message_id: str) -> str | None: ...

    async def claim(self, sender: str, message_id: str, envelope_sha256: str, seen_at: datetime) -> str | None:
        """Record the id if it is new, atomically. Returns None when this call recorded it, else the
        hash recorded before (so two concurrent deliveries cannot both be NEW)."""
        ...


class InMemorySeenMessages:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], tuple[str, datetime]] = {}

    async def lookup(self, sender: str, message_id: str) -> str | None:
        row = self.rows.get((sender, message_id))
        return None if row is None else row[0]

    async def claim(self, sender: str, message_id: str, envelope_sha256: str, seen_at: datetime) -> str | None:
        existing = self.rows.get((sender, message_id))
        if existing is not None:
            return existing[0]
        self.rows[(sender, message_id)] = (envelope_sha256, seen_at)
        return None

    def forget_before(self, cutoff: datetime) -> None:
        self.rows = {k: v for k, v in self.rows.items() if v[1] >= cutoff}


@dataclass(frozen=True)
class SecurityEvent:
    """A refused envelope, for the security log. Holds routing facts only, never content."""

    at: datetime
    reason: str
    detail: str
    sender: str | None = None  # as claimed by the header: not authenticated when the signature failed
    message_id: str | None = None
    envelope_sha256: str | None = None


class SecurityEvents(Protocol):
    async def record(self, event: SecurityEvent) -> None: ...


@dataclass
class InMemorySecurityEvents:
    events: list[SecurityEvent] = field(default_factory=list)

    async def record(self, event: SecurityEvent) -> None:
        self.events.append(event)

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]
