"""Quarantine: the size of the whole refused message, and the claim of a re-drive under way.

A refused message is kept as its size, SHA-256 and a bounded prefix (``size`` NULL on older rows:
their ``raw`` is the whole message). ``redrive_started_at`` is set by the re-drive that claimed the
row, so two operators re-driving one item at once publish its receipt once.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.add_column(sa.Column("size", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("redrive_started_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_column("redrive_started_at")
        batch.drop_column("size")
