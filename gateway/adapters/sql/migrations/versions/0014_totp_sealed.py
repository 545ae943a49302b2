"""TOTP secrets sealed at rest: `users.totp_secret` widened to hold a sealed value (about 100 characters).

The secrets already stored in clear are sealed by the gateway itself, which holds the key (the node
keys' passphrase or its own key file), not by this migration: `AccessService.seal_clear_totp_secrets`
runs at every start-up and before every `gateway users` command.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.alter_column("totp_secret", existing_type=sa.String(64), type_=sa.String(255), existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.alter_column("totp_secret", existing_type=sa.String(255), type_=sa.String(64), existing_nullable=True)
