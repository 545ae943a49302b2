"""When time alone next changes each open case, so a tick reads only those whose time has come.

The tick read and evaluated every open case each minute: a province gateway holds hundreds of
thousands. `next_change_at` (Case.next_change_at) is indexed where set; existing rows get it from
their JSON here.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BATCH = 5_000
_INSTANT = sa.DateTime(timezone=True)
_OPEN = ("awaiting_reply", "due_soon", "overdue")

_cases = sa.table("cases", sa.column("case_id", sa.String), sa.column("state", sa.String),
                  sa.column("data", sa.Text), sa.column("next_change_at", _INSTANT))


def _next_change_at(data: str) -> datetime | None:
    # A frozen copy of Case.next_change_at over the stored JSON, as of this revision.
    case = json.loads(data)
    starts = datetime.fromisoformat(case["due_soon"]["starts_at"])
    due = datetime.fromisoformat(case["deadline"]["due_at"])
    sent = set(case.get("reminders_sent") or ())
    instants = []
    if case["state"] == "awaiting_reply":
        instants.append(min(starts, due))
    elif case["state"] == "due_soon":
        instants.append(due)
    if "overdue" not in sent:
        instants.append(due)
        if "due_soon" not in sent:
            instants.append(starts)
    return min(instants) if instants else None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("next_change_at", _INSTANT, nullable=True))
        batch.create_index("ix_cases_next_change", ["next_change_at"],
                           postgresql_where=sa.text("next_change_at IS NOT NULL"),
                           sqlite_where=sa.text("next_change_at IS NOT NULL"))
    conn = op.get_bind()
    update = (sa.update(_cases).where(_cases.c.case_id == sa.bindparam("b_case_id"))
              .values(next_change_at=sa.bindparam("b_next_change_at")))
    last = ""
    while True:  # keyset pages over the open cases only: closed ones keep NULL
        rows = conn.execute(
            sa.select(_cases.c.case_id, _cases.c.data)
            .where(_cases.c.case_id > last, _cases.c.state.in_(_OPEN))
            .order_by(_cases.c.case_id).limit(_BATCH)
        ).all()
        if not rows:
            return
        conn.execute(update, [{"b_case_id": case_id, "b_next_change_at": _next_change_at(data)} for case_id, data in rows])
        last = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_next_change")
        batch.drop_column("next_change_at")
