"""The supervisors' dashboard on PostgreSQL at province scale (issue 14, Speed).

Targets, for one province of 1,500 townships and 2,000,000 cases (the quarter of
bench/bench_workflow_pg.py, built by its generator): every dashboard view answers in under 300 ms at
the server (p95), a county's overdue list in under 100 ms, every page under 300 KB.

The state is the evening of the quarter's last cutoff day (20 March 2026, 21:00 CST): months 1 and 2
are closed (their snapshots stored by the gateway's own tracker), month 3 and the quarter are open and
counted live. Each view is timed as the page route builds it — the read model's queries on PostgreSQL
(`gateway/web/dashboard_data.py`), the view (`dashboard_view.build_dashboard`) and the template
(`render.render_dashboard`) — in-process; sign-in, HTTP and the network are not included.

As production runs it: the gateway's clock runs on from 21:00 during the measurement, the gateway's
background fold of the tallies (`tally_store.fold_forever`, every `GATEWAY_TALLY_INTERVAL_S`) runs in the
same process, and so does a stream of the tracker's writes (`--writes-per-s`: answers to open cases of
month 3 through the case store, and new cases), which the triggers log and the fold counts.

    python bench/bench_dashboard_pg.py                 # 2,000,000 cases (generation takes minutes)
    python bench/bench_dashboard_pg.py --cases 50000   # smoke check
    python bench/bench_dashboard_pg.py --keep / --reuse
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_workflow_pg as wf  # noqa: E402  (the province generator)

from gateway.adapters.sql.case_store import SqlCaseStore  # noqa: E402
from gateway.adapters.sql.engine import create_engine, create_schema  # noqa: E402
from gateway.adapters.sql.tally_store import TallyStore, fold_forever  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from gateway.workflow.cases import Case, evaluate, open_case  # noqa: E402
from gateway.workflow.data_files import DEFAULT_CALENDAR_FILE, DEFAULT_DEADLINES_FILE, load_calendar, load_deadline_rules  # noqa: E402
from gateway.workflow.deadlines import CaseKind  # noqa: E402
from gateway.workflow.feedback import FeedbackResult, NoSuchPersonReason  # noqa: E402
from gateway.workflow.feedback_handling import handle_feedback, rebuild_ledger  # noqa: E402
from gateway.web.dashboard_data import DashboardReader  # noqa: E402
from gateway.web.dashboard_view import build_dashboard  # noqa: E402
from gateway.web.render import render_dashboard  # noqa: E402

_started = [time.monotonic()]


def clock() -> datetime:
    """The gateway's clock: 21:00 CST on the cutoff day when the measurement starts, running on."""
    return wf.DASHBOARD_AT + timedelta(seconds=time.monotonic() - _started[0])


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


async def close_first_two_months(store: SqlCaseStore) -> None:
    await wf.reset_closures(store)
    tracker = wf.make_tracker(store)
    for month in wf.QUARTER.months[:2]:
        started = time.perf_counter()
        closed = await tracker.close_due_periods(wf.MONTH_CLOSES[month])
        print(f"closed {', '.join(closed)} with the gateway's tracker in {time.perf_counter() - started:.1f} s")


class TimedTallies(TallyStore):
    """The gateway's fold, with what it did during the measurement."""

    folds: list[tuple[int, float]] = []

    async def fold(self, now: datetime) -> int:
        started = time.perf_counter()
        n = await super().fold(now)
        self.folds.append((n, (time.perf_counter() - started) * 1000))
        return n


class Writes:
    """The tracker's writes at `rate` per second, as the gateway makes them: answers to open cases of the
    month (the case read, the person's strike ledger, the answer saved) and, one in four, a new case."""

    def __init__(self, store: SqlCaseStore, open_ids: list[str], rate: float, setup: wf.Setup) -> None:
        self.store, self.open_ids, self.rate, self.setup = store, open_ids, rate, setup
        self.rng = random.Random(5)
        self.calendar, self.rules = load_calendar(DEFAULT_CALENDAR_FILE), load_deadline_rules(DEFAULT_DEADLINES_FILE)
        self.done = 0
        # What to undo afterwards, so that --reuse finds the database as generated.
        self.answered: list[Case] = []
        self.added: list[str] = []

    async def one(self) -> None:
        now = clock()
        if self.rng.random() < 0.25 or not self.open_ids:
            registration = self.rng.choice(self.setup.townships)
            case = open_case(uuid.uuid4().hex, CaseKind.QUERY, self.rng.choice(self.setup.residences), registration,
                             wf.citizen_id(self.rng, registration[:6], self.rng.randrange(10**6)), now, self.rules,
                             self.calendar)
            await self.store.add_cases([evaluate(case, now)])
            self.added.append(case.case_id)
            return
        case = await self.store.get_case(self.open_ids.pop())
        if case is None or not case.is_open:
            return
        self.answered.append(case)
        version = await self.store.ledger_version(case.strike_key)
        ledger = rebuild_ledger(c for c in await self.store.cases_for_key(case.strike_key) if c.case_id != case.case_id)
        nsp = self.rng.random() < 0.04
        outcome = handle_feedback(evaluate(case, now), ledger, now,
                                  FeedbackResult.NO_SUCH_PERSON if nsp else FeedbackResult.FOUND,
                                  reason=NoSuchPersonReason.WRONG_ADDRESS if nsp else None)
        await self.store.save_answer(outcome.case, outcome.charge, ledger_version=version)

    async def undo(self) -> None:
        """The cases as generated again (the triggers log this too; the next run's first fold counts it)."""
        await self.store.save_cases(self.answered)
        async with self.store.engine.begin() as conn:
            await conn.execute(text("DELETE FROM cases WHERE case_id = ANY(:ids)"), {"ids": self.added})

    async def run(self) -> None:
        if self.rate <= 0:
            return
        started = time.monotonic()
        while True:
            await self.one()
            self.done += 1
            # Paced on the clock, not slept per write: the rate holds whatever a write costs.
            await asyncio.sleep(max(0.0, started + self.done / self.rate - time.monotonic()))


async def open_case_ids(store: SqlCaseStore, month: str, limit: int) -> list[str]:
    async with store.engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT case_id FROM cases WHERE reporting_month = :m AND answered_at IS NULL AND withdrawn_at IS NULL "
            "ORDER BY case_id LIMIT :n"), {"m": month, "n": limit})).all()
    ids = [r[0] for r in rows]
    random.Random(3).shuffle(ids)
    return ids


async def measure(reader: DashboardReader, views: list[tuple[str, str, str]], runs: int) -> None:
    # CPU: this process's CPU time during the page (the background work in it included), not PostgreSQL's.
    print(f"{'view':48} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'page KB':>8} {'first ms':>9} {'CPU p50':>8}")
    for label, region, period in views:
        samples = []
        cpu = []
        size = 0
        cold = 0.0
        for i in range(runs + 1):
            started, cpu_started = time.perf_counter(), time.process_time()
            view = await build_dashboard(reader, region, period, clock())
            html = render_dashboard(view)
            ms = (time.perf_counter() - started) * 1000
            size = len(html.encode())
            if i:  # the first run warms plans and caches (a closed period's snapshot is parsed once per process)
                samples.append(ms)
                cpu.append((time.process_time() - cpu_started) * 1000)
            else:
                cold = ms
        print(f"{label:48} {statistics.median(samples):8.1f} {p95(samples):8.1f} {max(samples):8.1f} {size / 1024:8.1f} "
              f"{cold:9.0f} {statistics.median(cpu):8.1f}")
    county = views[2][1]
    samples = []
    for i in range(runs + 1):
        started = time.perf_counter()
        rows, total = await reader.overdue(county, wf.QUARTER.months[-1], clock())
        if i:
            samples.append((time.perf_counter() - started) * 1000)
    print(f"{'overdue list of county ' + county + f' ({total:,} cases)':48} {statistics.median(samples):8.1f} {p95(samples):8.1f} {max(samples):8.1f}")


async def run(args: argparse.Namespace) -> None:
    server = args.server.rstrip("/")
    setup = wf.make_setup(args.townships)
    print(f"machine: {wf.machine()}")
    print(f"scale: {args.cases:,} cases, {len(setup.townships):,} townships of province {wf.PROVINCE}, quarter {wf.QUARTER}")
    url = f"{server.replace('postgresql://', 'postgresql+asyncpg://')}/{args.database}"
    if args.reuse and await wf.database_ready(server, args.database, args.cases):
        print("generation: reused the existing database")
    else:
        await wf.admin(server, f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        await wf.admin(server, f'CREATE DATABASE "{args.database}"')
        engine = create_engine(url)
        await create_schema(engine)
        await engine.dispose()
        seconds = await wf.generate(server, args.database, setup, args.cases)
        print(f"generation: {seconds:.1f} s")
    engine = create_engine(url)
    started = time.perf_counter()
    await create_schema(engine)  # migrates a database made before the tallies (revision 0010): logs its cases
    print(f"schema: {time.perf_counter() - started:.1f} s")
    store = SqlCaseStore(engine)
    tallies = TimedTallies(engine)
    background: list[asyncio.Task[None]] = []
    writes: Writes | None = None
    try:
        async with engine.connect() as conn:
            await conn.execute(text("COMMIT"))
            await conn.execute(text("VACUUM ANALYZE cases"))  # what autovacuum does after a bulk load
        if not args.keep_closures:
            await close_first_two_months(store)
        backlog, started = await tallies.backlog(), time.perf_counter()
        await tallies.fold(clock())  # the cases logged by generation (or the migration): once
        print(f"first fold: {backlog:,} changes in {time.perf_counter() - started:.1f} s")
        async with engine.connect() as conn:
            await conn.execute(text("COMMIT"))
            await conn.execute(text("VACUUM ANALYZE case_changes, tallies, open_tallies"))
        tallies.folds.clear()
        county = wf.busiest_county(setup)
        township = min(t for t in setup.townships if t.startswith(county))
        city = county[:4]
        month, quarter = str(wf.QUARTER.months[-1]), str(wf.QUARTER)
        reader = DashboardReader(engine, load_calendar(DEFAULT_CALENDAR_FILE))
        interval = args.fold_interval if args.fold_interval is not None else Settings(nodes=["110101001"]).tally_interval_s
        writes = Writes(store, await open_case_ids(store, month, 50_000), args.writes_per_s, setup)
        _started[0] = measured = time.monotonic()
        background = [asyncio.create_task(fold_forever(tallies, clock, interval)), asyncio.create_task(writes.run())]
        views = [
            (f"province {wf.PROVINCE}, month {month}", wf.PROVINCE, month),
            (f"city {city}, month {month}", city, month),
            (f"county {county}, month {month}", county, month),
            (f"township {township}, month {month}", township, month),
            (f"province {wf.PROVINCE}, quarter {quarter}", wf.PROVINCE, quarter),
            (f"county {county}, quarter {quarter}", county, quarter),
            (f"province {wf.PROVINCE}, closed month {wf.QUARTER.months[0]}", wf.PROVINCE, str(wf.QUARTER.months[0])),
        ]
        await measure(reader, views, args.runs)
        seconds = time.monotonic() - measured
        folded = [n for n, _ in tallies.folds]
        fold_ms = sorted(ms for _, ms in tallies.folds)
        print(f"meanwhile, in {seconds:.0f} s: {writes.done:,} writes of the tracker ({writes.done / seconds:.1f}/s), "
              f"{len(fold_ms)} folds every {interval:g} s of {sum(folded):,} changes "
              f"(fold p50 {statistics.median(fold_ms) if fold_ms else 0:.0f} ms, max {max(fold_ms, default=0):.0f} ms); "
              f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if writes is not None:
            await writes.undo()
        await engine.dispose()
        if not args.keep:
            await wf.admin(server, f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=2_000_000)
    parser.add_argument("--townships", type=int, default=1_500)
    parser.add_argument("--server", default=os.environ.get("GATEWAY_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432"))
    parser.add_argument("--database", default="gw_bench_dashboard")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--keep-closures", action="store_true", help="with --reuse: months 1 and 2 are closed already")
    parser.add_argument("--writes-per-s", type=float, default=20.0, help="the tracker's writes during the measurement")
    parser.add_argument("--fold-interval", type=float, default=None, help="seconds between folds (default: the setting's)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
