"""The supervisors' dashboard on PostgreSQL at province scale (issue 14, Speed).

Targets, for one province of 1,500 townships and 2,000,000 cases (the quarter of
bench/bench_workflow_pg.py, built by its generator): every dashboard view answers in under 300 ms at
the server (p95), a county's overdue list in under 100 ms, every page under 300 KB.

The state is the evening of the quarter's last cutoff day (20 March 2026, 21:00 CST): months 1 and 2
are closed (their snapshots stored by the gateway's own tracker), month 3 and the quarter are open and
counted live. Each view is timed as the page route builds it — the read model's queries on PostgreSQL
(`gateway/web/dashboard_data.py`), the view (`dashboard_view.build_dashboard`) and the template
(`render.render_dashboard`) — in-process; sign-in, HTTP and the network are not included.

    python bench/bench_dashboard_pg.py                 # 2,000,000 cases (generation takes minutes)
    python bench/bench_dashboard_pg.py --cases 50000   # smoke check
    python bench/bench_dashboard_pg.py --keep / --reuse
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_workflow_pg as wf  # noqa: E402  (the province generator)

from gateway.adapters.sql.case_store import SqlCaseStore  # noqa: E402
from gateway.adapters.sql.engine import create_engine, create_schema  # noqa: E402
from gateway.clock import FakeClock  # noqa: E402
from gateway.workflow.data_files import DEFAULT_CALENDAR_FILE, load_calendar  # noqa: E402
from gateway.web.dashboard_data import DashboardReader  # noqa: E402
from gateway.web.dashboard_view import build_dashboard  # noqa: E402
from gateway.web.render import render_dashboard  # noqa: E402


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


async def measure(reader: DashboardReader, views: list[tuple[str, str, str]], runs: int) -> None:
    now = wf.DASHBOARD_AT
    print(f"{'view':48} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'page KB':>8} {'first ms':>9}")
    for label, region, period in views:
        samples = []
        size = 0
        cold = 0.0
        for i in range(runs + 1):
            started = time.perf_counter()
            view = await build_dashboard(reader, region, period, now)
            html = render_dashboard(view)
            ms = (time.perf_counter() - started) * 1000
            size = len(html.encode())
            if i:  # the first run counts the months' tallies (once per process), warms plans and caches
                samples.append(ms)
            else:
                cold = ms
        print(f"{label:48} {statistics.median(samples):8.1f} {p95(samples):8.1f} {max(samples):8.1f} {size / 1024:8.1f} {cold:9.0f}")
    county = views[2][1]
    samples = []
    for i in range(runs + 1):
        started = time.perf_counter()
        rows, total = await reader.overdue(county, wf.QUARTER.months[-1], now)
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
    await create_schema(engine)  # migrates: the dashboard's index (revision 0010) on a database made before it
    store = SqlCaseStore(engine)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("COMMIT"))
            await conn.execute(text("VACUUM ANALYZE cases"))  # what autovacuum does after a bulk load
        if not args.keep_closures:
            await close_first_two_months(store)
        county = wf.busiest_county(setup)
        township = min(t for t in setup.townships if t.startswith(county))
        city = county[:4]
        month, quarter = str(wf.QUARTER.months[-1]), str(wf.QUARTER)
        reader = DashboardReader(engine, load_calendar(DEFAULT_CALENDAR_FILE), clock=lambda: wf.DASHBOARD_AT)
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
    finally:
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
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
