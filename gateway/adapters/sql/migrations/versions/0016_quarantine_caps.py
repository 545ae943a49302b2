"""Quarantine caps: which refusals were authenticated, and the tally of every refusal, stored or not.

``quarantine.authenticated`` tells a correctly signed message refused for a rule (kept longer) from
unauthenticated junk anyone on the broker can publish; rows kept before this revision stay NULL (they
count against the signed cap, see gateway/adapters/sql/quarantine_caps.py). ``quarantine_tally``
counts refusals per UTC hour, bucket, sender and reason; it starts empty.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("quarantine") as batch:
        batch.add_column(sa.Column("authenticated", sa.Boolean(), nullable=True))
    op.create_table(
        "quarantine_tally",
        sa.Column("hour", sa.String(13), primary_key=True),
        sa.Column("bucket", sa.String(8), primary_key=True),
        sa.Column("sender", sa.String(9), primary_key=True),
        sa.Column("reason", sa.String(48), primary_key=True),
        sa.Column("refused", sa.BigInteger(), nullable=False),
        sa.Column("stored", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("quarantine_tally")
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_column("authenticated")
