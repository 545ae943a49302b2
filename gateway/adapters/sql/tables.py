"""The gateway's tables, as SQLAlchemy Core. One metadata; SQLite and PostgreSQL alike.

Nothing personal is stored in clear: bodies are kept encrypted at rest (``body_sealed``) and the
citizen ID only as a keyed pseudonym (``subject``), which is all the workflow needs to group by person.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for long-lived tables.
Id = BigInteger().with_variant(Integer(), "sqlite")

messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("node", String(9), nullable=False),
    Column("direction", String(3), nullable=False),  # "out" sent by node, "in" received by node
    Column("message_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("sender", String(9), nullable=False),
    Column("recipient", String(9), nullable=False),
    Column("in_reply_to", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),  # sender's clock, from the header
    Column("accepted_at", DateTime(timezone=True), nullable=False),  # this gateway's clock
    Column("envelope_sha256", String(64), nullable=False),
    Column("envelope", LargeBinary, nullable=False),
    Column("body_sealed", LargeBinary, nullable=False),
    Column("subject", String(64)),
    Column("status", String(16), nullable=False),
    Column("answered_by", String(64)),
    Column("answered_at", DateTime(timezone=True)),
    Column("result", String(16)),  # of a feedback: found / not_found
    UniqueConstraint("node", "direction", "sender", "message_id", name="uq_messages_identity"),
)
Index("ix_messages_node_dir_kind", messages.c.node, messages.c.direction, messages.c.kind, messages.c.accepted_at)
Index("ix_messages_reply", messages.c.node, messages.c.in_reply_to)
# Lookups by a node's message id without the sender (answering, checking feedback and receipts): the
# unique identity index puts the sender before the id, so it could only narrow to the node's messages.
Index("ix_messages_lookup", messages.c.node, messages.c.direction, messages.c.message_id)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", String(64), nullable=False, unique=True),
    Column("sender", String(9), nullable=False),
    Column("routing_key", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("envelope", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True)),
    Column("last_error", Text),
)
Index("ix_outbox_pending", outbox.c.published_at, outbox.c.next_attempt_at)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("reason", String(48), nullable=False),
    Column("detail", Text, nullable=False),
    Column("message_id", String(64)),
    Column("sender", String(9)),
    Column("recipient", String(9)),
    Column("kind", String(16)),
    Column("envelope_sha256", String(64), nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("redriven_at", DateTime(timezone=True)),
    Column("resolved", Boolean, nullable=False, default=False),
    # The whole message's size; `raw` keeps at most GATEWAY_QUARANTINE_PREFIX_BYTES of it (NULL: all).
    Column("size", BigInteger),
    # A re-drive under way since then (its claim): a second one at the same time is refused.
    Column("redrive_started_at", DateTime(timezone=True)),
    # True: refused after its signature verified (a peer's message broke a rule); False: unauthenticated
    # junk (anyone on the broker can publish it); NULL: kept before the distinction (0016).
    Column("authenticated", Boolean),
)

# What the quarantine saw, per UTC hour, bucket ("signed" or "unsigned"), sender ("" none or unknown)
# and reason: every refusal is counted here, stored or not (refusals beyond the caps are counted only;
# gateway/adapters/sql/quarantine_caps.py). The rows whose sender or reason is "*" are the budgets:
# (hour, bucket, "*", "*") for the bucket, (hour, bucket, sender, "*") for one sender.
quarantine_tally = Table(
    "quarantine_tally",
    metadata,
    Column("hour", String(13), primary_key=True),  # "2026-12-08T01", UTC
    Column("bucket", String(8), primary_key=True),
    Column("sender", String(9), primary_key=True),
    Column("reason", String(48), primary_key=True),
    Column("refused", BigInteger, nullable=False),
    Column("stored", BigInteger, nullable=False),
)
