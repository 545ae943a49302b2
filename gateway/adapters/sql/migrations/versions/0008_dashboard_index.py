"""Indexes for the supervisors' dashboard: a region's counts for a period from the index alone
(covering), and the open cases in deadline order for the 逾期未反馈 list of a large region.

The dashboard (gateway/web/dashboard_data.py) counts a province's open month (hundreds of thousands
of cases) by the township that must reply (`responsible_township`, revision 0007), queries and
notifications apart (`kind`); with the counted facts included in the index PostgreSQL reads neither the
heap's JSON nor random pages. (On a large table an operator may build it first with CREATE INDEX
CONCURRENTLY under the same name; this revision then finds it and does nothing.)

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_NAME = "ix_cases_dashboard"
_OPEN_DUE = "ix_cases_open_due"
# The open states, as in workflow_tables.OPEN_STATE_VALUES (a revision keeps its own copy: it must
# not change when the code does).
_IS_OPEN = sa.text("state IN ('awaiting_reply', 'due_soon', 'overdue') AND kind <> ''")  # see workflow_tables


def upgrade() -> None:
    existing = {index["name"] for index in sa.inspect(op.get_bind()).get_indexes("cases")}
    if _NAME not in existing:
        op.create_index(
            _NAME, "cases", ["reporting_month", "responsible_township"],
            postgresql_include=["kind", "received_at", "due_at", "answered_at", "result", "withdrawn_at", "charged_at"],
        )
    if _OPEN_DUE not in existing:
        op.create_index(_OPEN_DUE, "cases", ["due_at", "reporting_month", "case_id"], postgresql_where=_IS_OPEN,
                        sqlite_where=_IS_OPEN)


def downgrade() -> None:
    op.drop_index(_OPEN_DUE, table_name="cases")
    op.drop_index(_NAME, table_name="cases")
