"""The dashboard's tallies, kept by the database (gateway/adapters/sql/tally_tables.py).

``case_changes`` logs every write of a case's accounting facts (−1 the old, +1 the new), from triggers on
``cases``; the gateway folds the log into ``tallies`` and ``open_tallies`` every few seconds. The cases
stored before this revision are logged here once, as if each had just been written: the gateway's first
fold counts them (on PostgreSQL, about a second per 100,000 cases).

The triggers are created before the existing cases are logged, in this revision's transaction: on
PostgreSQL CREATE TRIGGER locks ``cases`` against writers until the commit, so no case written meanwhile
is logged twice or missed.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_INSTANT = sa.DateTime(timezone=True)

# This revision's own copy of the trigger text (tally_tables.py holds the application's): it must not
# change when the application's does.
_FACTS = "reporting_month, responsible_township, kind, due_at, answered_at, result, withdrawn_at, charged_at"
_COLUMNS = f"({_FACTS}, sign)"
_OLD = "(" + ", ".join(f"OLD.{n.strip()}" for n in _FACTS.split(",")) + ", -1)"
_NEW = "(" + ", ".join(f"NEW.{n.strip()}" for n in _FACTS.split(",")) + ", 1)"
_CHANGED = " OR ".join(f"OLD.{n.strip()} IS DISTINCT FROM NEW.{n.strip()}" for n in _FACTS.split(","))

_POSTGRESQL = (
    f"""CREATE OR REPLACE FUNCTION log_case_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO case_changes {_COLUMNS} VALUES {_OLD}, {_NEW};
    ELSE  -- DELETE (inserts are logged per statement, below)
        INSERT INTO case_changes {_COLUMNS} VALUES {_OLD};
    END IF;
    RETURN NULL;
END $$""",
    f"""CREATE OR REPLACE FUNCTION log_cases_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO case_changes {_COLUMNS} SELECT {_FACTS}, 1 FROM inserted;
    RETURN NULL;
END $$""",
    "CREATE TRIGGER cases_log_insert AFTER INSERT ON cases REFERENCING NEW TABLE AS inserted "
    "FOR EACH STATEMENT EXECUTE FUNCTION log_cases_inserted()",
    f"CREATE TRIGGER cases_log_update AFTER UPDATE ON cases FOR EACH ROW WHEN ({_CHANGED}) "
    "EXECUTE FUNCTION log_case_change()",
    "CREATE TRIGGER cases_log_delete AFTER DELETE ON cases FOR EACH ROW EXECUTE FUNCTION log_case_change()",
)
_SQLITE = (
    f"CREATE TRIGGER cases_log_insert AFTER INSERT ON cases BEGIN INSERT INTO case_changes {_COLUMNS} VALUES {_NEW}; END",
    f"CREATE TRIGGER cases_log_update AFTER UPDATE ON cases WHEN {_CHANGED.replace('IS DISTINCT FROM', 'IS NOT')} "
    f"BEGIN INSERT INTO case_changes {_COLUMNS} VALUES {_OLD}, {_NEW}; END",
    f"CREATE TRIGGER cases_log_delete AFTER DELETE ON cases BEGIN INSERT INTO case_changes {_COLUMNS} VALUES {_OLD}; END",
)


def upgrade() -> None:
    op.create_table(
        "case_changes",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("reporting_month", sa.String(7), nullable=False),
        sa.Column("responsible_township", sa.String(9), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("due_at", _INSTANT, nullable=False),
        sa.Column("answered_at", _INSTANT),
        sa.Column("result", sa.String(16)),
        sa.Column("withdrawn_at", _INSTANT),
        sa.Column("charged_at", _INSTANT),
        sa.Column("sign", sa.Integer, nullable=False),
    )
    op.create_index("ix_case_changes_month", "case_changes", ["reporting_month", "responsible_township"])
    op.create_table(
        "tallies",
        sa.Column("reporting_month", sa.String(7), primary_key=True),
        sa.Column("responsible_township", sa.String(9), primary_key=True),
        sa.Column("notification", sa.Boolean, primary_key=True),
        sa.Column("received", sa.Integer, nullable=False),
        sa.Column("answered", sa.Integer, nullable=False),
        sa.Column("on_time", sa.Integer, nullable=False),
        sa.Column("no_such_person", sa.Integer, nullable=False),
        sa.Column("missed_management", sa.Integer, nullable=False),
    )
    op.create_table(
        "open_tallies",
        sa.Column("reporting_month", sa.String(7), primary_key=True),
        sa.Column("responsible_township", sa.String(9), primary_key=True),
        sa.Column("notification", sa.Boolean, primary_key=True),
        sa.Column("due_at", _INSTANT, primary_key=True),
        sa.Column("open", sa.Integer, nullable=False),
    )
    for statement in _POSTGRESQL if op.get_bind().dialect.name == "postgresql" else _SQLITE:
        op.execute(statement)
    op.execute(f"INSERT INTO case_changes {_COLUMNS} SELECT {_FACTS}, 1 FROM cases")


def downgrade() -> None:
    for trigger in ("cases_log_insert", "cases_log_update", "cases_log_delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}" + (" ON cases" if op.get_bind().dialect.name == "postgresql" else ""))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS log_case_change()")
        op.execute("DROP FUNCTION IF EXISTS log_cases_inserted()")
    op.drop_table("open_tallies")
    op.drop_table("tallies")
    op.drop_table("case_changes")
