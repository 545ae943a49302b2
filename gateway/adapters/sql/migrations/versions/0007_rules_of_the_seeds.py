"""The rules as the seeds state them (issue 13): the facts they count, as columns of `cases`.

* ``responsible_township`` — the township that must reply, the message's recipient: the registration
  township, but the residence township for 户籍地向现居住地通报 (seed 002, 第三十一条). Accounting, the
  overdue list and a township's open cases go by it; ``ix_cases_overdue`` moves onto it.
* ``sender_township`` — the other side, judged as the sender (第三十一条: 双向考核).
* ``strike_subject`` — the citizen ID a run of 查无此人 is kept under: a corrected re-submission keeps
  the one of the query it corrects (rule 六: 同一个信息). ``ix_cases_strike`` moves onto it.
* ``reason``, ``submission_due_at``, ``resubmission_of`` — the sender's accuracy (查无此人 reasons
  1–3), a notification's submission deadline (第二十四条: 5 个工作日内提交) and the re-verification
  done (rule 五), so the figures stay computable from columns.

Existing rows get them from their JSON: a case stored before this revision is a to-registration
case whose strikes run under its own citizen ID, with no submission deadline (its notification had
no event date recorded with the case).

Revision ID: 0007
Revises: 0004
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_BATCH = 5_000
_INSTANT = sa.DateTime(timezone=True)
# ix_cases_overdue covers the open cases only (OPEN_STATES of gateway/workflow/cases.py).
_OPEN_CASES = sa.text("state IN ('awaiting_reply', 'due_soon', 'overdue')")

# This migration's own view of the table: it must not change when the application's does.
_cases = sa.table(
    "cases",
    sa.column("case_id", sa.String),
    sa.column("subject", sa.String),
    sa.column("data", sa.Text),
    sa.column("responsible_township", sa.String),
    sa.column("sender_township", sa.String),
    sa.column("strike_subject", sa.String),
    sa.column("reason", sa.String),
    sa.column("submission_due_at", _INSTANT),
    sa.column("resubmission_of", sa.String),
)
_NEW = ("responsible_township", "sender_township", "strike_subject", "reason", "submission_due_at", "resubmission_of")


def _facts(subject: str, data: str) -> dict[str, Any]:
    # Read from the stored JSON, not through the application's model, which may have moved on.
    case = json.loads(data)
    to_residence = case.get("direction") == "to_residence"
    residence, registration = case["residence_township"], case["registration_township"]
    feedback = case.get("feedback")
    due = case.get("submission_due_at")
    return {
        "b_responsible_township": residence if to_residence else registration,
        "b_sender_township": registration if to_residence else residence,
        "b_strike_subject": case.get("strike_subject") or subject,
        "b_reason": feedback.get("reason") if feedback else None,
        "b_submission_due_at": datetime.fromisoformat(due) if due else None,
        "b_resubmission_of": case.get("resubmission_of"),
    }


def _backfill() -> None:
    conn = op.get_bind()
    update = (
        sa.update(_cases)
        .where(_cases.c.case_id == sa.bindparam("b_case_id"))
        .values({name: sa.bindparam(f"b_{name}") for name in _NEW})
    )
    last = ""
    while True:  # keyset pages, so a large table is never held at once
        rows = conn.execute(
            sa.select(_cases.c.case_id, _cases.c.subject, _cases.c.data)
            .where(_cases.c.case_id > last).order_by(_cases.c.case_id).limit(_BATCH)
        ).all()
        if not rows:
            return
        conn.execute(update, [{"b_case_id": case_id, **_facts(subject, data)} for case_id, subject, data in rows])
        last = rows[-1][0]


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("responsible_township", sa.String(9), nullable=True))
        batch.add_column(sa.Column("sender_township", sa.String(9), nullable=True))
        batch.add_column(sa.Column("strike_subject", sa.String(64), nullable=True))
        batch.add_column(sa.Column("reason", sa.String(16), nullable=True))
        batch.add_column(sa.Column("submission_due_at", _INSTANT, nullable=True))
        batch.add_column(sa.Column("resubmission_of", sa.String(64), nullable=True))
    _backfill()
    op.drop_index("ix_cases_overdue", table_name="cases")
    op.drop_index("ix_cases_strike", table_name="cases")
    with op.batch_alter_table("cases") as batch:
        for name, length in (("responsible_township", 9), ("sender_township", 9), ("strike_subject", 64)):
            batch.alter_column(name, existing_type=sa.String(length), nullable=False)
    op.create_index(
        "ix_cases_overdue", "cases", ["reporting_month", "responsible_township", "due_at"],
        postgresql_where=_OPEN_CASES, sqlite_where=_OPEN_CASES,
    )
    op.create_index("ix_cases_strike", "cases", ["residence_township", "registration_township", "strike_subject"])


def downgrade() -> None:
    op.drop_index("ix_cases_strike", table_name="cases")
    op.drop_index("ix_cases_overdue", table_name="cases")
    op.create_index(
        "ix_cases_overdue", "cases", ["reporting_month", "registration_township", "due_at"],
        postgresql_where=_OPEN_CASES, sqlite_where=_OPEN_CASES,
    )
    op.create_index("ix_cases_strike", "cases", ["residence_township", "registration_township", "subject"])
    with op.batch_alter_table("cases") as batch:
        for name in reversed(_NEW):
            batch.drop_column(name)
