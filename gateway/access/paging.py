"""Pages of a township's messages, newest first, for lists longer than one response (a clerk's inbox).

A page ends with a ``Cursor``: the position of its last message (when the gateway accepted it, and
its row), given to the client as an opaque token (``?after=``). The next page starts strictly after
it, so a message answered, or one arriving, between two requests never makes another one skipped or
shown twice: the position of a message never changes, unlike its offset in a filtered list.

The stores answer ``message_page`` (the SQL store through ``gateway/adapters/sql/message_pages.py``,
the in-memory fake itself); ``gateway.access.views.NodeView.message_page`` is how routes ask.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

from gateway.exchange.records import Direction, Status, StoredMessage

_CURSOR = re.compile(r"([0-9]{1,19})-([0-9]{1,19})")
_MAX = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class BadCursor(ValueError):
    """An ``after`` that is not a cursor this gateway gave out."""


@dataclass(frozen=True, order=True)
class Cursor:
    """Where a page ended: the accepting instant (microseconds since the epoch, UTC) and the row."""

    accepted_us: int
    row: int

    @classmethod
    def of(cls, accepted_at: datetime, row: int) -> Cursor:
        accepted = accepted_at if accepted_at.tzinfo else accepted_at.replace(tzinfo=timezone.utc)
        delta = accepted - _EPOCH
        return cls((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds, row)

    @property
    def accepted_at(self) -> datetime:
        return _EPOCH + timedelta(microseconds=self.accepted_us)

    def token(self) -> str:
        return f"{self.accepted_us}-{self.row}"

    @classmethod
    def parse(cls, token: str) -> Cursor:
        match = _CURSOR.fullmatch(token)
        if match is None or int(match.group(1)) > _MAX or int(match.group(2)) > _MAX:
            raise BadCursor("not a cursor this gateway gave out: pass the `after` of the previous page's "
                            "Link: rel=\"next\" as it came")
        try:
            cursor = cls(int(match.group(1)), int(match.group(2)))
            cursor.accepted_at  # noqa: B018  (a position past the year 9999 is no position)
        except OverflowError:
            raise BadCursor("not a cursor this gateway gave out: its instant is out of range") from None
        return cursor


@dataclass(frozen=True)
class MessagePage:
    messages: list[StoredMessage]
    next: Cursor | None  # where the next page starts; None: this was the last


class PagedMessages(Protocol):
    """What a message store answers for a paged list (the SQL store and the fake)."""

    async def message_page(
        self, node: str, direction: Direction, *, limit: int, after: Cursor | None = None,
        statuses: frozenset[Status] | None = None, except_kinds: frozenset[str] = frozenset(),
    ) -> MessagePage:
        """Up to ``limit`` of ``node``'s messages in ``direction``, newest first, strictly after
        ``after``; only those in ``statuses`` (None: any) and not of ``except_kinds``."""
        ...
