"""The audit trail needs a secret to rewrite (issue 24): keyed records, anchors with a MAC, and the
database refusing UPDATE and DELETE on the trail outside the prune.

- ``audit_log.hash_version``: 0 for the records made before (plain SHA-256, as they were), 1 for the
  records keyed with the audit key from now on; ``audit_anchor.mac``: an anchor's HMAC (NULL for one
  left before);
- ``audit_pruning``: SQLite's mark of the sanctioned prune;
- triggers refusing UPDATE always, DELETE outside the prune and of records younger than the retention;
  on PostgreSQL ``audit_prune()`` (SECURITY DEFINER) is the prune's one way in, and the role
  ``gateway_runtime`` gets INSERT and SELECT on the trail and nothing else (docs/integrity.md).

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# This revision's own copy of the guard (access_tables.py holds the application's): it must not change
# when the application's does.
AUDIT_RETENTION_DAYS = 180
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


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("hash_version", sa.SmallInteger, nullable=False, server_default=sa.text("0")))
    op.add_column("audit_anchor", sa.Column("mac", sa.String(64)))
    op.create_table("audit_pruning", sa.Column("id", sa.Integer, primary_key=True, autoincrement=False))
    dialect = op.get_bind().dialect.name
    for statement in AUDIT_GUARD_POSTGRESQL if dialect == "postgresql" else AUDIT_GUARD_SQLITE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for trigger, table in (("audit_log_append_only", "audit_log"), ("audit_log_no_truncate", "audit_log"),
                               ("audit_anchor_pruned_only", "audit_anchor"), ("audit_anchor_no_truncate", "audit_anchor")):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS audit_prune(integer, text, text)")
        op.execute("DROP FUNCTION IF EXISTS audit_append_only()")
    else:
        for trigger in ("audit_log_no_update", "audit_log_no_delete", "audit_anchor_no_update", "audit_anchor_no_delete",
                        "audit_anchor_no_insert"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.drop_table("audit_pruning")
    with op.batch_alter_table("audit_anchor") as batch:
        batch.drop_column("mac")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("hash_version")
