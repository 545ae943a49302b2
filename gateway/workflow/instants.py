"""Instants and China Standard Time.

Instants are stored as timezone-aware UTC datetimes; the rules (working days, the 20th cutoff,
24:00 deadlines) are stated in China Standard Time, so every rule converts with these helpers.
A naive datetime is refused here: guessing its zone is how off-by-eight-hours bugs are born.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def require_aware(instant: datetime, what: str = "instant") -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (got naive {instant.isoformat()})")
    return instant


def to_utc(instant: datetime) -> datetime:
    return require_aware(instant).astimezone(timezone.utc)


def local_date(instant: datetime) -> date:
    """The calendar date in China Standard Time at this instant."""
    return require_aware(instant).astimezone(SHANGHAI).date()


def start_of_local_day(day: date) -> datetime:
    """00:00 CST of `day`, as a UTC instant."""
    return datetime.combine(day, time(0), tzinfo=SHANGHAI).astimezone(timezone.utc)


def end_of_local_day(day: date) -> datetime:
    """24:00 CST of `day`, represented as 00:00 CST of the next day (an exclusive bound), in UTC."""
    return start_of_local_day(day + timedelta(days=1))


def in_shanghai(instant: datetime) -> datetime:
    return require_aware(instant).astimezone(SHANGHAI)
