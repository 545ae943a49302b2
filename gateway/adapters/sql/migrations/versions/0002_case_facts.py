"""The accounting facts of a case as columns of `cases`.

A period close read and decoded every case whole (its JSON) to look at a dozen facts; for a
province's quarter that was most of the close. The facts now sit beside the JSON
(gateway/workflow/case_facts.py). Existing rows get them from their JSON here.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BATCH = 5_000
_INSTANT = sa.DateTime(timezone=True)

# This migration's own view of the table: it must not change when the application's does.
_cases = sa.table(
    "cases",
    sa.column("case_id", sa.String),
    sa.column("data", sa.Text),
    sa.column("original_due_at", _INSTANT),
    sa.column("calendar_version", sa.String),
    sa.column("answered_at", _INSTANT),
    sa.column("result", sa.String),
    sa.column("withdrawn_at", _INSTANT),
    sa.column("charged_at", _INSTANT),
    sa.column("deadline_moved", sa.Boolean),
)


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None  # the JSON holds ISO 8601 instants ("…Z")


def _facts(data: str) -> dict[str, Any]:
    # Read from the stored JSON, not through the application's model, which may have moved on.
    case = json.loads(data)
    feedback, charge = case.get("feedback"), case.get("missed_management")
    return {
        "b_original_due_at": _instant(case["original_deadline"]["due_at"]),
        "b_calendar_version": case["original_deadline"]["calendar_version"],
        "b_answered_at": _instant(feedback["answered_at"]) if feedback else None,
        "b_result": feedback["result"] if feedback else None,
        "b_withdrawn_at": _instant(case.get("withdrawn_at")),
        "b_charged_at": _instant(charge["charged_at"]) if charge else None,
        "b_deadline_moved": bool(case.get("deadline_changes")),
    }


def _backfill() -> None:
    conn = op.get_bind()
    update = (
        sa.update(_cases)
        .where(_cases.c.case_id == sa.bindparam("b_case_id"))
        .values({name: sa.bindparam(f"b_{name}") for name in (
            "original_due_at", "calendar_version", "answered_at", "result", "withdrawn_at", "charged_at", "deadline_moved")})
    )
    last = ""
    while True:  # keyset pages, so a large table is never held at once
        rows = conn.execute(
            sa.select(_cases.c.case_id, _cases.c.data).where(_cases.c.case_id > last).order_by(_cases.c.case_id).limit(_BATCH)
        ).all()
        if not rows:
            return
        conn.execute(update, [{"b_case_id": case_id, **_facts(data)} for case_id, data in rows])
        last = rows[-1][0]


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("original_due_at", _INSTANT, nullable=True))
        batch.add_column(sa.Column("calendar_version", sa.String(64), nullable=True))
        batch.add_column(sa.Column("answered_at", _INSTANT, nullable=True))
        batch.add_column(sa.Column("result", sa.String(16), nullable=True))
        batch.add_column(sa.Column("withdrawn_at", _INSTANT, nullable=True))
        batch.add_column(sa.Column("charged_at", _INSTANT, nullable=True))
        batch.add_column(sa.Column("deadline_moved", sa.Boolean(), server_default=sa.false(), nullable=False))
    _backfill()
    with op.batch_alter_table("cases") as batch:
        batch.alter_column("original_due_at", existing_type=_INSTANT, nullable=False)
        batch.alter_column("calendar_version", existing_type=sa.String(64), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        for name in ("deadline_moved", "charged_at", "withdrawn_at", "result", "answered_at", "calendar_version", "original_due_at"):
            batch.drop_column(name)
