"""The reconcile's queries (gateway/tracking/reconcile.py): differences between messages and cases.

One statement per page of message row ids: the range of the primary key, and for each row in it a
probe of a primary key (``cases.case_id``, ``reverification_tasks.query_id``) or of the open-task
index. The database returns the differing rows only; nothing is read whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, exists, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.adapters.sql.engine import is_sqlite, reader, write_transaction
from gateway.adapters.sql.store import _message_from_row
from gateway.adapters.sql.tables import messages
from gateway.adapters.sql.workflow_tables import cases, reverification_tasks, tracking_marks
from gateway.exchange.records import Direction, StoredMessage
from gateway.workflow.reverification import TaskState

_m = messages.c
# A received query or notification opens a case named by its message id.
_NO_CASE = and_(_m.direction == Direction.IN.value, _m.kind.in_(("query", "notification")),
                ~exists().where(cases.c.case_id == _m.message_id))
# A reply sent: its case has a reply (or was withdrawn, and takes none). A reply whose case is missing
# too is returned, after the query that opens it (row order), so one pass heals both.
_REPLY_UNRECORDED = and_(
    _m.direction == Direction.OUT.value, _m.kind == "feedback",
    ~exists().where(cases.c.case_id == _m.in_reply_to,
                    or_(cases.c.answered_at.is_not(None), cases.c.withdrawn_at.is_not(None))))
# A 查无此人 received opens the re-verification task of the query it answers.
_NO_TASK = and_(_m.direction == Direction.IN.value, _m.kind == "feedback", _m.result == "not_found",
                ~exists().where(reverification_tasks.c.query_id == _m.in_reply_to))
# A query sent by a township with an open task may be its correction (``resubmission_of``, in the body).
_MAYBE_CORRECTION = and_(
    _m.direction == Direction.OUT.value, _m.kind == "query",
    exists().where(reverification_tasks.c.residence_township == _m.node,
                   # a constant, as the partial index says it (a bound value could not use it)
                   reverification_tasks.c.state == literal_column(f"'{TaskState.OPEN.value}'")))


class SqlTrackingGaps:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._reader = reader(engine)
        self._insert = sqlite_insert if is_sqlite(str(engine.url)) else pg_insert

    async def last_row(self) -> int:
        async with self._reader.connect() as conn:
            return int((await conn.execute(select(func.max(_m.id)))).scalar() or 0)

    async def marks(self, nodes: Sequence[str]) -> dict[str, int]:
        async with self._reader.connect() as conn:
            rows = await conn.execute(select(tracking_marks.c.node, tracking_marks.c.checked_through)
                                      .where(tracking_marks.c.node.in_(list(nodes))))
            return {node: int(through) for node, through in rows}

    async def save_marks(self, nodes: Sequence[str], checked_through: int, at: datetime) -> None:
        statement = self._insert(tracking_marks).values(
            [{"node": node, "checked_through": checked_through, "updated_at": at} for node in nodes])
        # Forward only: two processes of one gateway may both move it, the further one wins.
        statement = statement.on_conflict_do_update(
            index_elements=[tracking_marks.c.node],
            set_={"checked_through": statement.excluded.checked_through, "updated_at": statement.excluded.updated_at},
            where=tracking_marks.c.checked_through < statement.excluded.checked_through,
        )
        async with write_transaction(self.engine) as conn:
            await conn.execute(statement)

    async def untracked(self, nodes: Sequence[str], after: int, through: int) -> list[tuple[int, StoredMessage]]:
        query = (
            select(messages)
            .where(_m.id > after, _m.id <= through, _m.node.in_(list(nodes)),
                   or_(_NO_CASE, _REPLY_UNRECORDED, _NO_TASK, _MAYBE_CORRECTION))
            .order_by(_m.id)
        )
        async with self._reader.connect() as conn:
            return [(row.id, _message_from_row(row)) for row in await conn.execute(query)]

    async def open_tasks(self, query_ids: Sequence[str]) -> set[str]:
        query = select(reverification_tasks.c.query_id).where(
            reverification_tasks.c.query_id.in_(list(query_ids)), reverification_tasks.c.state == TaskState.OPEN.value)
        async with self._reader.connect() as conn:
            return set((await conn.execute(query)).scalars())
