"""Tables of receipts and of the hash-chained archive."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, LargeBinary, String, Table, UniqueConstraint

from gateway.adapters.sql.tables import Id, metadata

receipts = Table(
    "receipts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("direction", String(8), nullable=False),  # "sent" by us as recipient, "received" by us as sender
    Column("message_id", String(64), nullable=False),  # the message it acknowledges
    Column("sender", String(9), nullable=False),  # of the receipt: the township that received the message
    Column("recipient", String(9), nullable=False),
    Column("envelope_sha256", String(64), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("data", LargeBinary, nullable=False),
    UniqueConstraint("direction", "sender", "message_id", name="uq_receipts_identity"),
)

archive = Table(
    "archive",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("source", String(8), nullable=False),  # "message" or "receipt": the row archived
    Column("source_id", Id, nullable=False),
    Column("direction", String(8), nullable=False),
    Column("item", String(8), nullable=False),
    Column("message_id", String(64), nullable=False, index=True),
    Column("sender", String(9), nullable=False),
    Column("recipient", String(9), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("recorded_at", String(32), nullable=False),  # the UTC stamp exactly as hashed
    Column("prev_hash", String(64), nullable=False),
    Column("record_hash", String(64), nullable=False),
    Column("data", LargeBinary, nullable=False),
    UniqueConstraint("source", "source_id", name="uq_archive_source"),
)
Index("ix_archive_pending_lookup", archive.c.source, archive.c.source_id)
