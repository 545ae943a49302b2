"""The dashboard's tallies, kept by the database as cases change (revision 0010).

A province's open month is hundreds of thousands of cases; counting them for each page, or every 30 s
in the serving process, cost more than a page may take. Instead:

* ``case_changes`` — every write of a case's accounting facts, logged by triggers on ``cases`` in the
  writer's own transaction: the old facts with sign −1, the new ones with +1. Append-only, so
  concurrent writers never wait for one another on a shared counter (nor deadlock over two);
* ``tallies`` and ``open_tallies`` — the logged facts counted (`gateway/adapters/sql/tally_store.py`
  folds the log into them every few seconds and deletes what it folded, in one transaction): per
  reporting month, township that must reply and queries/notifications, what no longer changes with
  time, and the cases without a reply by deadline, so that whether one is overdue is decided at the
  request. A page reads these few thousand rows plus the log's latest rows.

The triggers only copy columns; which counter a fact feeds (the rules of `gateway.workflow.accounting`)
is decided in one place, tally_store.py. The DDL is attached to the metadata, so ``create_all`` makes the
same triggers as the revision (which keeps its own copy of this text: it must not change when this does).
"""

from __future__ import annotations

from sqlalchemy import DDL, Boolean, Column, DateTime, Index, Integer, String, Table, event

from gateway.adapters.sql.tables import Id, metadata

_INSTANT = DateTime(timezone=True)

case_changes = Table(
    "case_changes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("reporting_month", String(7), nullable=False),
    Column("responsible_township", String(9), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("due_at", _INSTANT, nullable=False),
    Column("answered_at", _INSTANT),
    Column("result", String(16)),
    Column("withdrawn_at", _INSTANT),
    Column("charged_at", _INSTANT),
    Column("sign", Integer, nullable=False),  # +1 the facts written, −1 the facts they replaced
)
# A page reads the log's rows of its months and region, a fold those of one month: through this index, not
# by scanning the table (whose pages, after a large fold, stay allocated until a vacuum gives them back).
Index("ix_case_changes_month", case_changes.c.reporting_month, case_changes.c.responsible_township)

tallies = Table(
    "tallies",
    metadata,
    Column("reporting_month", String(7), primary_key=True),
    Column("responsible_township", String(9), primary_key=True),
    Column("notification", Boolean, primary_key=True),  # rule 十三: queries and notifications apart
    Column("received", Integer, nullable=False),
    Column("answered", Integer, nullable=False),
    # On time, where that is decided: before the deadline, and before the month closed (or before its cutoff).
    Column("on_time", Integer, nullable=False),
    Column("no_such_person", Integer, nullable=False),
    Column("missed_management", Integer, nullable=False),
)

open_tallies = Table(
    "open_tallies",
    metadata,
    Column("reporting_month", String(7), primary_key=True),
    Column("responsible_township", String(9), primary_key=True),
    Column("notification", Boolean, primary_key=True),
    # The deadline in force; the deadlines passed long ago are merged into one row (see tally_store.py).
    Column("due_at", _INSTANT, primary_key=True),
    Column("open", Integer, nullable=False),  # cases without a reply, not withdrawn
)

# --- the triggers ------------------------------------------------------------------------------------

FACTS = ("reporting_month", "responsible_township", "kind", "due_at", "answered_at", "result", "withdrawn_at",
         "charged_at")
TRIGGERS = ("cases_log_insert", "cases_log_update", "cases_log_delete")


def _row(prefix: str, sign: int) -> str:
    return "(" + ", ".join(f"{prefix}.{name}" for name in FACTS) + f", {sign})"


_COLUMNS = "(" + ", ".join(FACTS) + ", sign)"
_OLD, _NEW = _row("OLD", -1), _row("NEW", 1)
_CHANGED = " OR ".join(f"OLD.{name} IS DISTINCT FROM NEW.{name}" for name in FACTS)

# PostgreSQL: inserts are logged per statement (a batch of cases is one INSERT … SELECT), updates per row and
# only when an accounting fact changed (the tick's state moves and reminders are no change to the tallies).
POSTGRESQL_DDL = (
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
    INSERT INTO case_changes {_COLUMNS} SELECT {", ".join(FACTS)}, 1 FROM inserted;
    RETURN NULL;
END $$""",
    "CREATE TRIGGER cases_log_insert AFTER INSERT ON cases REFERENCING NEW TABLE AS inserted "
    "FOR EACH STATEMENT EXECUTE FUNCTION log_cases_inserted()",
    f"CREATE TRIGGER cases_log_update AFTER UPDATE ON cases FOR EACH ROW WHEN ({_CHANGED}) "
    "EXECUTE FUNCTION log_case_change()",
    "CREATE TRIGGER cases_log_delete AFTER DELETE ON cases FOR EACH ROW EXECUTE FUNCTION log_case_change()",
)

SQLITE_DDL = (
    f"CREATE TRIGGER cases_log_insert AFTER INSERT ON cases BEGIN INSERT INTO case_changes {_COLUMNS} VALUES {_NEW}; END",
    f"CREATE TRIGGER cases_log_update AFTER UPDATE ON cases WHEN {_CHANGED.replace('IS DISTINCT FROM', 'IS NOT')} "
    f"BEGIN INSERT INTO case_changes {_COLUMNS} VALUES {_OLD}, {_NEW}; END",
    f"CREATE TRIGGER cases_log_delete AFTER DELETE ON cases BEGIN INSERT INTO case_changes {_COLUMNS} VALUES {_OLD}; END",
)

for _statement in POSTGRESQL_DDL:
    event.listen(metadata, "after_create", DDL(_statement).execute_if(dialect="postgresql"))
for _statement in SQLITE_DDL:
    event.listen(metadata, "after_create", DDL(_statement).execute_if(dialect="sqlite"))
