"""Tables of accounts, their credentials (browser sessions, API tokens) and the audit trail."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Index, Integer, String, Table, Text

from gateway.adapters.sql.tables import Id, metadata

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("scope", String(9), nullable=False, default=""),
    Column("password_hash", String(200), nullable=False),  # Argon2id, PHC string (salt and parameters inside)
    # Set for the roles that need a second factor: sealed (gateway/access/totp_sealing.py), never in clear.
    Column("totp_secret", String(255)),
    Column("totp_last_step", Integer, nullable=False, default=0),  # a one-time code is used once
    Column("disabled", Boolean, nullable=False, default=False),
    Column("failed_attempts", Integer, nullable=False, default=0),  # consecutive, since the last sign-in or lock
    Column("locked_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("password_changed_at", DateTime(timezone=True), nullable=False),
    # An account signed in through the identity provider (OpenID Connect): its issuer and subject.
    Column("oidc_issuer", String(255)),
    Column("oidc_subject", String(255)),
)
# One account per identity: two first sign-ins of one person at once make one account, not two.
Index("ux_users_oidc", users.c.oidc_issuer, users.c.oidc_subject, unique=True)

credentials = Table(
    "credentials",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # Only the SHA-256 of the random token is kept: a copy of the database signs nobody in.
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("user_id", Id, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(8), nullable=False),  # "session" (idle expiry) or "api" (fixed expiry)
    Column("label", String(64), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),  # api tokens
    Column("revoked_at", DateTime(timezone=True)),
)
Index("ix_credentials_user", credentials.c.user_id)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", String(32), nullable=False),  # the UTC stamp exactly as hashed
    Column("username", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("source", String(64), nullable=False),  # client address, or "cli"
    Column("action", String(48), nullable=False),
    Column("object_id", String(64), nullable=False),  # message or case id, username, token id, ""
    Column("township", String(9), nullable=False),
    Column("result", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("record_hash", String(64), nullable=False),
)
Index("ix_audit_log_user", audit_log.c.username, audit_log.c.seq)
Index("ix_audit_log_at", audit_log.c.at)

# Where the chain starts after a prune: the seq of the oldest kept record and the hash it points at.
audit_anchor = Table(
    "audit_anchor",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("first_seq", Integer, nullable=False),
    Column("prev_hash", String(64), nullable=False),
)
