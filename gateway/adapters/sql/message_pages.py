"""A page of one township's messages on SQLAlchemy Core: newest first, strictly after a cursor.

The cursor is the last row's (accepted_at, id), the order the lists have always had, so a page is one
indexed range read however deep the client has paged (no OFFSET to count through), and a message
answered or arriving between two pages moves no other one across the page boundary.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.access.paging import Cursor, MessagePage
from gateway.adapters.sql.tables import messages
from gateway.exchange.records import Direction, Status


async def message_page(
    engine: AsyncEngine, node: str, direction: Direction, *, limit: int, after: Cursor | None = None,
    statuses: frozenset[Status] | None = None, except_kinds: frozenset[str] = frozenset(),
) -> MessagePage:
    from gateway.adapters.sql.store import _message_from_row  # the one row → record mapping

    query = select(messages).where(messages.c.node == node, messages.c.direction == direction.value)
    if statuses is not None:
        query = query.where(messages.c.status.in_(sorted(s.value for s in statuses)))
    if except_kinds:
        query = query.where(messages.c.kind.not_in(sorted(except_kinds)))
    if after is not None:
        # SQLite keeps instants as naive UTC text: compare with the same.
        at = after.accepted_at if engine.dialect.name != "sqlite" else _naive_utc(after.accepted_at)
        query = query.where(or_(messages.c.accepted_at < at,
                                and_(messages.c.accepted_at == at, messages.c.id < after.row)))
    # One row past the page says whether there is a next one, so a last page is never followed by an empty one.
    query = query.order_by(messages.c.accepted_at.desc(), messages.c.id.desc()).limit(limit + 1)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    shown = rows[:limit]
    following = Cursor.of(shown[-1].accepted_at, int(shown[-1].id)) if len(rows) > limit else None
    return MessagePage([_message_from_row(r) for r in shown], following)


def _naive_utc(instant: datetime) -> datetime:
    return instant.astimezone(timezone.utc).replace(tzinfo=None)
