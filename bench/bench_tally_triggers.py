"""What the dashboard's triggers cost the tracker's writes, on PostgreSQL (revision 0010).

Every write of a case's accounting facts is logged into `case_changes` by a trigger, in the writer's
transaction. This times the case store's own writes — cases added in batches (as the inbox batches
them) and answered one by one (as clerks answer) — on two fresh databases, one with the triggers and one
with them dropped, alternated, and reports the time per case written and the ratio within each round.

    python bench/bench_tally_triggers.py                  # 20,000 cases in batches of 100, 5,000 answers
    python bench/bench_tally_triggers.py --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.adapters.sql.case_store import SqlCaseStore  # noqa: E402
from gateway.adapters.sql.engine import create_engine, create_schema  # noqa: E402
from gateway.adapters.sql.tally_tables import TRIGGERS  # noqa: E402
from gateway.workflow.cases import evaluate, open_case, record_feedback  # noqa: E402
from gateway.workflow.data_files import DEFAULT_CALENDAR_FILE, DEFAULT_DEADLINES_FILE, load_calendar, load_deadline_rules  # noqa: E402
from gateway.workflow.deadlines import CaseKind  # noqa: E402
from gateway.workflow.feedback import FeedbackResult  # noqa: E402
from gateway.workflow.instants import SHANGHAI  # noqa: E402

TOWNSHIPS = ("430181001", "430181002", "430102001", "431102003")


async def admin(server: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def one_database(server: str, name: str, triggers: bool, cases: int, batch: int, answers: int) -> tuple[float, float]:
    """Seconds per case added, per case answered (microseconds are what matter)."""
    await admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin(server, f'CREATE DATABASE "{name}"')
    engine = create_engine(f"{server.replace('postgresql://', 'postgresql+asyncpg://')}/{name}")
    try:
        await create_schema(engine)
        if not triggers:
            async with engine.begin() as conn:
                for trigger in TRIGGERS:
                    await conn.execute(text(f"DROP TRIGGER {trigger} ON cases"))
        store = SqlCaseStore(engine)
        calendar, rules = load_calendar(DEFAULT_CALENDAR_FILE), load_deadline_rules(DEFAULT_DEADLINES_FILE)
        received = datetime(2026, 3, 2, 9, tzinfo=SHANGHAI)
        made = [evaluate(open_case(uuid.uuid4().hex, CaseKind.QUERY, "440106001", TOWNSHIPS[i % len(TOWNSHIPS)],
                                   f"43018119900101{i % 1000:03d}X", received, rules, calendar), received)
                for i in range(cases)]
        started = time.perf_counter()
        for i in range(0, cases, batch):
            await store.add_cases(made[i:i + batch])
        added = (time.perf_counter() - started) / cases
        answered_at = received + timedelta(days=2)
        replies = [record_feedback(evaluate(c, answered_at), answered_at, FeedbackResult.FOUND) for c in made[:answers]]
        started = time.perf_counter()
        for reply in replies:
            await store.save_answer(reply, None)
        return added, (time.perf_counter() - started) / answers
    finally:
        await engine.dispose()
        await admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def run(args: argparse.Namespace) -> None:
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}; {args.cases:,} cases in batches of "
          f"{args.batch}, {args.answers:,} answers, per round: without the triggers, then with them")
    ratios_add, ratios_answer = [], []
    for round_ in range(args.rounds):
        without = await one_database(args.server, "gw_bench_triggers", False, args.cases, args.batch, args.answers)
        with_ = await one_database(args.server, "gw_bench_triggers", True, args.cases, args.batch, args.answers)
        ratios_add.append(with_[0] / without[0])
        ratios_answer.append(with_[1] / without[1])
        print(f"round {round_ + 1}: add {without[0] * 1e6:.0f} → {with_[0] * 1e6:.0f} µs per case "
              f"(×{ratios_add[-1]:.2f}); answer {without[1] * 1e6:.0f} → {with_[1] * 1e6:.0f} µs (×{ratios_answer[-1]:.2f})")
    print(f"median ratio with/without the triggers: add ×{statistics.median(ratios_add):.2f}, "
          f"answer ×{statistics.median(ratios_answer):.2f}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default=os.environ.get("GATEWAY_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432"))
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--answers", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=2)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
