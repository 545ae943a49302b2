"""Index a node's messages by message id, for the lookups that do not know the sender.

Answering a query, and checking a feedback or a receipt, find a message by (node, direction,
message_id); the unique identity index is (node, direction, sender, message_id), so those lookups read
all of a node's messages in one direction, more as the table grows.

(On a large PostgreSQL table, an operator may prefer to build it first with CREATE INDEX CONCURRENTLY
under the same name; this revision then finds it and does nothing.)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_NAME = "ix_messages_lookup"


def upgrade() -> None:
    if _NAME not in {index["name"] for index in sa.inspect(op.get_bind()).get_indexes("messages")}:
        op.create_index(_NAME, "messages", ["node", "direction", "message_id"])


def downgrade() -> None:
    op.drop_index(_NAME, table_name="messages")
