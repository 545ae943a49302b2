"""Integrity: quarantine bounds and re-drive claims; one strike per query; strike-ledger versions.

A refused message is kept as its size, SHA-256 and a bounded prefix (``size`` NULL on older rows:
their ``raw`` is the whole message). ``redrive_started_at`` is set by the re-drive that claimed the
row, so two operators re-driving one item at once publish its receipt once.

``strike_evidence`` holds each query id a 漏管 charge names, once; ``strike_ledgers`` the version of
each person's strike ledger, which an answer moves on only from the version its tracker read. Both
start empty: charges made before keep their evidence in ``missed_management.data``.

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
    op.create_table(
        "strike_evidence",
        sa.Column("query_id", sa.String(64), primary_key=True),
        sa.Column("last_query_id", sa.String(64), nullable=False),
    )
    op.create_table(
        "strike_ledgers",
        sa.Column("residence_township", sa.String(9), primary_key=True),
        sa.Column("registration_township", sa.String(9), primary_key=True),
        sa.Column("subject", sa.String(64), primary_key=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("strike_ledgers")
    op.drop_table("strike_evidence")
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_column("redrive_started_at")
        batch.drop_column("size")
