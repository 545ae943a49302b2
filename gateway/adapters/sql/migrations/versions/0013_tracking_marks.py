"""The reconcile's marks: how far each township's messages have been checked against the case store;
and the index of a township's open re-verification tasks, which the reconcile probes.

No mark is written here: a township without one is checked from its first message, once, at the
gateway's next start (paged; on PostgreSQL about a second per 100,000 messages), so a database that
had a message stored but never tracked before this revision is healed too.

Revision ID: 0013
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tracking_marks",
        sa.Column("node", sa.String(9), primary_key=True),
        sa.Column("checked_through", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    _open = sa.text("state = 'open'")
    op.create_index("ix_reverification_tasks_open", "reverification_tasks", ["residence_township"],
                    postgresql_where=_open, sqlite_where=_open)


def downgrade() -> None:
    op.drop_index("ix_reverification_tasks_open", "reverification_tasks")
    op.drop_table("tracking_marks")
