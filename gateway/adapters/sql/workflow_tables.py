"""Tables of the workflow tracker.

A case is stored whole as JSON (`data`), plus the columns queries filter on, plus the facts a period
close reads (`gateway.workflow.case_facts`): a close of two million cases then reads a few columns
instead of decoding every case. `case_values` in case_store.py writes both from the same case.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Index, String, Table, Text, and_, false, literal_column

from gateway.adapters.sql.tables import Id, metadata
from gateway.workflow.cases import OPEN_STATES

OPEN_STATE_VALUES = sorted(s.value for s in OPEN_STATES)

cases = Table(
    "cases",
    metadata,
    Column("case_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("residence_township", String(9), nullable=False),
    Column("registration_township", String(9), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("reporting_month", String(7), nullable=False),  # "2026-03"
    Column("state", String(24), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),  # the current deadline
    Column("data", Text, nullable=False),
    # The accounting facts (CaseFacts).
    Column("original_due_at", DateTime(timezone=True), nullable=False),
    Column("calendar_version", String(64), nullable=False),  # of the original deadline
    Column("answered_at", DateTime(timezone=True)),
    Column("result", String(16)),  # FeedbackResult
    Column("withdrawn_at", DateTime(timezone=True)),
    Column("charged_at", DateTime(timezone=True)),  # 漏管 charged on this case
    # A calendar update moved the deadline: the moves are in `data` (rare, so read from there).
    Column("deadline_moved", Boolean, nullable=False, server_default=false()),
    # Case.next_change_at: when time alone next changes the case (NULL: closed, or nothing left).
    Column("next_change_at", DateTime(timezone=True)),
    # Issue 13 (revision 0007): who must reply (the recipient, whatever the direction) and who sent,
    # the key of its run of strikes, and the facts the sender is judged by.
    Column("responsible_township", String(9), nullable=False),
    Column("sender_township", String(9), nullable=False),
    Column("strike_subject", String(64), nullable=False),  # Case.strike_key.citizen_id
    Column("reason", String(16)),  # NoSuchPersonReason of a 查无此人 reply
    Column("submission_due_at", DateTime(timezone=True)),  # a notification's submission deadline
    Column("resubmission_of", String(64)),
    # Issue 23 (revision 0011): a notification's kind and event date ("2026-03-27"), so the half-year and
    # annual reports count events ①–④ by the statistical year of their date (gateway.workflow.events).
    Column("notification_kind", String(2)),
    Column("event_date", String(10)),
)
Index("ix_cases_open", cases.c.state, cases.c.due_at)
Index("ix_cases_month", cases.c.reporting_month, cases.c.registration_township)
_has_event = cases.c.event_date.is_not(None)
Index("ix_cases_event", cases.c.event_date, postgresql_where=_has_event, sqlite_where=_has_event)
Index("ix_cases_strike", cases.c.residence_township, cases.c.registration_township, cases.c.strike_subject)
# A county's overdue list for a month (SqlCaseStore.overdue_cases). Partial: only open cases, a few
# percent of the table, so the county's range holds little more than the answer.
_is_open = cases.c.state.in_([literal_column(f"'{v}'") for v in OPEN_STATE_VALUES])
Index(
    "ix_cases_overdue",
    cases.c.reporting_month,
    cases.c.responsible_township,
    cases.c.due_at,
    postgresql_where=_is_open,
    sqlite_where=_is_open,
)

# The supervisors' dashboard (gateway/web/dashboard_data.py): a region's counts for a period, read from
# the index alone on PostgreSQL (the facts it counts are included, `kind` to count queries and
# notifications apart), never from the cases' JSON.
Index(
    "ix_cases_dashboard",
    cases.c.reporting_month,
    cases.c.responsible_township,  # counted for the township that must reply
    postgresql_include=["kind", "received_at", "due_at", "answered_at", "result", "withdrawn_at", "charged_at"],
)
# The dashboard's 逾期未反馈 list of a large region, oldest deadline first: a month's open cases read in
# deadline order and stopped at the page's length, instead of sorting a province's tens of thousands.
# Its predicate also says `kind <> ''` (always true), which only the dashboard's query states: so the case
# store's county list (SqlCaseStore.overdue_cases) is never planned on it and keeps ix_cases_overdue.
_dashboard_open = and_(_is_open, cases.c.kind != literal_column("''"))
Index("ix_cases_open_due", cases.c.due_at, cases.c.reporting_month, cases.c.case_id,
      postgresql_where=_dashboard_open, sqlite_where=_dashboard_open)

# The tick's work: the open cases whose next change has come (a small part of the open ones).
_has_next_change = cases.c.next_change_at.is_not(None)
Index("ix_cases_next_change", cases.c.next_change_at, postgresql_where=_has_next_change, sqlite_where=_has_next_change)

missed_management = Table(
    "missed_management",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("registration_township", String(9), nullable=False, index=True),
    Column("last_query_id", String(64), nullable=False, unique=True),
    Column("charged_at", DateTime(timezone=True), nullable=False),
    Column("data", Text, nullable=False),
)

# One strike per query: every query id a 漏管 charge names as evidence, once. Two answers of one
# person's queries tracked at once could otherwise each complete a run from the same earlier strikes.
strike_evidence = Table(
    "strike_evidence",
    metadata,
    Column("query_id", String(64), primary_key=True),
    Column("last_query_id", String(64), nullable=False),  # the charge it is evidence of
)

# The version of each person's strike ledger (residence, registration, pseudonym): an answer is
# written only if no other answer of that person was written since its tracker read the ledger, so
# two answers tracked at once can neither both charge from the same strikes nor both miss a third one.
strike_ledgers = Table(
    "strike_ledgers",
    metadata,
    Column("residence_township", String(9), primary_key=True),
    Column("registration_township", String(9), primary_key=True),
    Column("subject", String(64), primary_key=True),
    Column("version", BigInteger, nullable=False),
)

period_closures = Table(
    "period_closures",
    metadata,
    Column("period", String(7), primary_key=True),  # "2026-03" or "2026Q1"
    Column("closed_at", DateTime(timezone=True), nullable=False),
    Column("inputs_digest", String(64), nullable=False),
    Column("snapshot", Text, nullable=False),
)

reverification_tasks = Table(
    "reverification_tasks",
    metadata,
    Column("query_id", String(64), primary_key=True),
    Column("residence_township", String(9), nullable=False, index=True),
    Column("state", String(16), nullable=False),
    Column("data", Text, nullable=False),
)
# The open tasks of a township: the reconcile asks whether a sent query may be a task's correction.
_task_open = reverification_tasks.c.state == literal_column("'open'")
Index("ix_reverification_tasks_open", reverification_tasks.c.residence_township,
      postgresql_where=_task_open, sqlite_where=_task_open)

reminders = Table(
    "reminders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("township", String(9), nullable=False, index=True),
    Column("case_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Column("data", Text, nullable=False),
)

# How far the reconcile (gateway/tracking/reconcile.py) has checked each hosted township's messages:
# every row of `messages` with an id up to `checked_through` was looked at at least twice, the second
# time long after it was written (see Reconciler). One row per township: gateways sharing a database
# each move their own townships' rows.
tracking_marks = Table(
    "tracking_marks",
    metadata,
    Column("node", String(9), primary_key=True),
    Column("checked_through", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
