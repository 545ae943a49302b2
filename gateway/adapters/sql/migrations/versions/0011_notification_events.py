"""A notification's kind and event date as columns of `cases` (issue 23).

The half-year and annual reports count events ①–④ (notification kinds 1 birth, 2 operation, 3 contraception
due, 4 pregnancy) by the statistical year of their own date (seed 000 登记制度 七; seed 002 范文篇4 第十六条(五)),
not by the reporting month the notification arrived in: ``notification_kind`` and ``event_date`` (ISO text,
"2026-03-27", which sorts as the days do) let a report select them by date, on ``ix_cases_event``.

Existing rows are left NULL: the kind of a notification tracked before this revision was never kept with
its case, so it cannot be counted among the events (the README says so). Columns are added in place, not
by rebuilding the table, so the tally triggers of revision 0010 stay.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_HAS_EVENT = sa.text("event_date IS NOT NULL")


def upgrade() -> None:
    op.add_column("cases", sa.Column("notification_kind", sa.String(2), nullable=True))
    op.add_column("cases", sa.Column("event_date", sa.String(10), nullable=True))
    op.create_index("ix_cases_event", "cases", ["event_date"], postgresql_where=_HAS_EVENT, sqlite_where=_HAS_EVENT)


def downgrade() -> None:
    op.drop_index("ix_cases_event", table_name="cases")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("event_date")
        batch.drop_column("notification_kind")
