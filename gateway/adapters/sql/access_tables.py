"""Tables of accounts, their credentials (browser sessions, API tokens) and the audit trail."""

from __future__ import annotations

from sqlalchemy import DDL, Boolean, Column, DateTime, ForeignKey, Index, Integer, SmallInteger, String, Table, Text, event, text

from gateway.access.audit import RETENTION
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
    # 0: SHA-256, made before the audit key; 1: HMAC-SHA256 under the key (gateway/access/audit.py)
    Column("hash_version", SmallInteger, nullable=False, server_default=text("0")),
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
    Column("mac", String(64)),  # HMAC under the audit key; NULL for an anchor left before the key
)

# SQLite only: a row here while ``gateway audit prune`` deletes (its triggers allow nothing else).
audit_pruning = Table("audit_pruning", metadata, Column("id", Integer, primary_key=True, autoincrement=False))

# Append-only, decided by the database (docs/integrity.md). UPDATE is refused always; DELETE only to
# the prune (PostgreSQL: inside audit_prune(), which sets a transaction-local flag; SQLite: while a row
# is in audit_pruning) and only of records older than the retention by the database's own clock, so
# the newest records cannot be cut without first disabling the triggers. On PostgreSQL the role
# ``gateway_runtime`` (made here when the migrating role may) gets INSERT and SELECT on the trail,
# SELECT on the anchor and EXECUTE on audit_prune() only: a gateway connecting as a member of it, not
# as the owner, can neither change the trail nor drop the triggers. Migration 0015 holds its own copy.
AUDIT_RETENTION_DAYS = RETENTION.days
AUDIT_GUARD_POSTGRESQL = (
    f"""CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('gateway.audit_prune', true) = 'on' THEN
        IF TG_TABLE_NAME = 'audit_anchor' THEN
            IF TG_OP = 'INSERT' THEN RETURN NEW; END IF;
            IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        ELSIF TG_OP = 'DELETE' THEN
            IF OLD.at < to_char((now() AT TIME ZONE 'UTC') - interval '{AUDIT_RETENTION_DAYS} days',
                                'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') THEN
                RETURN OLD;
            END IF;
        END IF;
    END IF;
    RAISE EXCEPTION '% on % refused: the audit trail is append-only (gateway audit prune deletes records older than {AUDIT_RETENTION_DAYS} days)',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$""",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
    "CREATE TRIGGER audit_anchor_pruned_only BEFORE INSERT OR UPDATE OR DELETE ON audit_anchor FOR EACH ROW "
    "EXECUTE FUNCTION audit_append_only()",
    "CREATE TRIGGER audit_anchor_no_truncate BEFORE TRUNCATE ON audit_anchor FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
    """CREATE OR REPLACE FUNCTION audit_prune(first_kept integer, anchor_hash text, anchor_mac text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    deleted integer;
BEGIN
    IF first_kept > 1 AND NOT EXISTS (SELECT 1 FROM audit_log WHERE seq = first_kept - 1 AND record_hash = anchor_hash)
       AND NOT EXISTS (SELECT 1 FROM audit_anchor WHERE first_seq = first_kept AND prev_hash = anchor_hash) THEN
        RAISE EXCEPTION 'the anchor must point at record %', first_kept - 1 USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('gateway.audit_prune', 'on', true);
    DELETE FROM audit_log WHERE seq < first_kept;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    DELETE FROM audit_anchor;
    INSERT INTO audit_anchor (id, first_seq, prev_hash, mac) VALUES (1, first_kept, anchor_hash, anchor_mac);
    PERFORM set_config('gateway.audit_prune', 'off', true);
    RETURN deleted;
END $$""",
    "REVOKE ALL ON FUNCTION audit_prune(integer, text, text) FROM PUBLIC",
    """DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gateway_runtime') THEN
        BEGIN
            CREATE ROLE gateway_runtime NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- made meanwhile by another database's migration
        END;
    END IF;
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO gateway_runtime', current_schema());
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO gateway_runtime', current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO gateway_runtime', current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO gateway_runtime', current_schema());
    REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM gateway_runtime;
    REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_anchor, audit_pruning FROM gateway_runtime;
    GRANT EXECUTE ON FUNCTION audit_prune(integer, text, text) TO gateway_runtime;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'gateway_runtime not set up (the migrating role may not create roles): see docs/integrity.md';
END $$""",
)
_REFUSED = "refused: the audit trail is append-only (gateway audit prune deletes records older than {} days)".format(AUDIT_RETENTION_DAYS)
_YOUNG = f"OLD.at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-{AUDIT_RETENTION_DAYS} days')"
_NOT_PRUNING = "NOT EXISTS (SELECT 1 FROM audit_pruning)"
AUDIT_GUARD_SQLITE = (
    f"CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'UPDATE on audit_log {_REFUSED}'); END",
    f"CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log WHEN {_NOT_PRUNING} OR {_YOUNG} "
    f"BEGIN SELECT RAISE(ABORT, 'DELETE on audit_log {_REFUSED}'); END",
    f"CREATE TRIGGER audit_anchor_no_update BEFORE UPDATE ON audit_anchor BEGIN SELECT RAISE(ABORT, 'UPDATE on audit_anchor {_REFUSED}'); END",
    f"CREATE TRIGGER audit_anchor_no_delete BEFORE DELETE ON audit_anchor WHEN {_NOT_PRUNING} "
    f"BEGIN SELECT RAISE(ABORT, 'DELETE on audit_anchor {_REFUSED}'); END",
    f"CREATE TRIGGER audit_anchor_no_insert BEFORE INSERT ON audit_anchor WHEN {_NOT_PRUNING} "
    f"BEGIN SELECT RAISE(ABORT, 'INSERT on audit_anchor {_REFUSED}'); END",
)
AUDIT_TRIGGERS = {
    "postgresql": ("audit_log_append_only", "audit_log_no_truncate", "audit_anchor_pruned_only", "audit_anchor_no_truncate"),
    "sqlite": ("audit_log_no_update", "audit_log_no_delete", "audit_anchor_no_update", "audit_anchor_no_delete",
               "audit_anchor_no_insert"),
}
for _statement in AUDIT_GUARD_POSTGRESQL:
    event.listen(metadata, "after_create", DDL(_statement.replace("%", "%%")).execute_if(dialect="postgresql"))
for _statement in AUDIT_GUARD_SQLITE:
    event.listen(metadata, "after_create", DDL(_statement.replace("%", "%%")).execute_if(dialect="sqlite"))
