"""Province-scale benchmark of the workflow tracker on PostgreSQL (issue 7, Performance).

Targets, for one province of 1,500 townships and 2,000,000 cases in one quarter:

* closing the quarter end to end the way the gateway does it — `CaseTracker.close_due_periods`
  (close_month × 3 + close_quarter, loading the cases from PostgreSQL and storing the snapshots) —
  in under 60 s;
* one county's overdue list for the current reporting month (the county supervisor's dashboard)
  in under 200 ms, warm, median of several runs.

Also reported: the minute tick's case work, which reads only the cases whose next change has come.

Run (PostgreSQL on 127.0.0.1:5432, user postgres):

    python bench/bench_workflow_pg.py                      # 2,000,000 cases, 1,500 townships
    python bench/bench_workflow_pg.py --cases 50000        # smoke check
    python bench/bench_workflow_pg.py --keep               # keep the database; --reuse skips generation

The cases are built with the real domain functions (`open_case`, `evaluate`, `handle_feedback`,
`withdraw`, `mark_reminder_sent`) in worker processes, serialised with the gateway's own `CASE`
adapter and loaded with COPY into the real `cases` table (`create_schema`). Generation is timed and
reported separately from the measurements.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import platform
import random
import resource
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import asyncpg
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from gateway.adapters.sql.case_store import SqlCaseStore, case_values  # noqa: E402
from gateway.adapters.sql.workflow_tables import cases as cases_table  # noqa: E402
from gateway.adapters.sql.engine import create_engine, create_schema  # noqa: E402
from gateway.clock import FakeClock  # noqa: E402
from gateway.codec.divisions import registry  # noqa: E402
from gateway.tracking.serialization import CHARGE  # noqa: E402
from gateway.tracking.tracker import CaseTracker  # noqa: E402
from gateway.workflow.calendar import WorkingDayCalendar  # noqa: E402
from gateway.workflow.cases import Case, CaseState, evaluate, mark_reminder_sent, open_case, withdraw  # noqa: E402
from gateway.workflow.data_files import DEFAULT_CALENDAR_FILE, DEFAULT_DEADLINES_FILE, load_calendar, load_deadline_rules  # noqa: E402
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet  # noqa: E402
from gateway.workflow.feedback import FeedbackResult, NoSuchPersonReason  # noqa: E402
from gateway.workflow.feedback_handling import handle_feedback  # noqa: E402
from gateway.workflow.instants import SHANGHAI  # noqa: E402
from gateway.workflow.periods import Quarter, ReportingMonth, reporting_month_of  # noqa: E402
from gateway.workflow.strikes import MissedManagementCharge, StrikeLedger  # noqa: E402

# --- the scenario ---------------------------------------------------------------------------------

PROVINCE = "43"  # Hunan: 2,008 townships in the shipped division table
RESIDENCE_PROVINCES = ("44", "33", "35")  # where Hunan's floating population mostly lives
QUARTER = Quarter(2026, 1)  # 21 Dec 2025 – 20 Mar 2026 (CST)
TICK_DELAY = timedelta(minutes=5)  # the tracker's tick runs a few minutes after each cutoff


def cst(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=SHANGHAI).astimezone(timezone.utc)


# Months 1 and 2 closed at their own cutoffs; the quarter closes with month 3.
MONTH_CLOSES = {m: m.ends_at + TICK_DELAY for m in QUARTER.months}
QUARTER_CLOSE = MONTH_CLOSES[QUARTER.months[-1]]
# The supervisor looks at the dashboard on the evening of the cutoff day, when the list is longest.
DASHBOARD_AT = cst(2026, 3, 20, 21)

KINDS, KIND_CUM_WEIGHTS = (CaseKind.QUERY, CaseKind.BIRTH_QUERY, CaseKind.NOTIFICATION), (80, 90, 100)
NEVER_ANSWERED = 0.03  # stays open: overdue once its deadline passes
ANSWERED_LATE = 0.07
WITHDRAWN = 0.005
NO_SUCH_PERSON = 0.04
MISSED_MANAGEMENT_CHAINS = 0.0005  # per case: three corrected queries, each answered 查无此人
CHUNK = 10_000


@dataclass(frozen=True)
class Setup:
    townships: tuple[str, ...]  # registration townships (who must reply)
    cum_weights: tuple[float, ...]  # their cumulative shares of the cases
    residences: tuple[str, ...]


def pick_townships(count: int) -> tuple[str, ...]:
    """`count` current townships of the province, spread evenly over all its counties."""
    reg = registry()
    on = QUARTER.months[0].first_day
    current = sorted(t for t in set(reg.townships_under(PROVINCE)) if reg.is_current(t, on))
    if count > len(current):
        raise SystemExit(f"province {PROVINCE} has only {len(current)} current townships")
    step = len(current) / count
    return tuple(current[int(i * step)] for i in range(count))


def pick_residences(count: int = 600) -> tuple[str, ...]:
    reg = registry()
    on = QUARTER.months[0].first_day
    pool = sorted(t for p in RESIDENCE_PROVINCES for t in reg.townships_under(p) if reg.is_current(t, on))
    return tuple(random.Random(7).sample(pool, min(count, len(pool))))


def make_setup(townships: int) -> Setup:
    codes = pick_townships(townships)
    rng = random.Random(11)
    # Townships differ a lot in how many people they have away: a long-tailed load.
    weights = [rng.lognormvariate(0, 0.6) for _ in codes]
    return Setup(codes, tuple(itertools.accumulate(weights)), pick_residences())


# --- generating one chunk of cases (in a worker process) -----------------------------------------

_calendar: WorkingDayCalendar | None = None
_rules: DeadlineRuleSet | None = None
_setup: Setup | None = None


def _init_worker(setup: Setup) -> None:
    global _calendar, _rules, _setup
    _calendar, _rules, _setup = load_calendar(DEFAULT_CALENDAR_FILE), load_deadline_rules(DEFAULT_DEADLINES_FILE), setup


def citizen_id(rng: random.Random, county: str, serial: int) -> str:
    """A well-formed 18-digit ID (GB 11643 check digit) of someone registered in `county`."""
    born = date(1965, 1, 1) + timedelta(days=rng.randrange(40 * 365))
    body = f"{county}{born:%Y%m%d}{serial % 1000:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]
    return body + check


QUARTER_DAYS = [QUARTER.months[0].first_day + timedelta(days=i)
                for i in range((QUARTER.months[-1].cutoff_day - QUARTER.months[0].first_day).days + 1)]


def received_instant(rng: random.Random) -> datetime:
    """Office hours (08:00–18:00 CST), mostly on weekdays, somewhere in the quarter."""
    while True:
        day = rng.choice(QUARTER_DAYS)
        if day.weekday() < 5 or rng.random() < 0.15:
            break
    at = datetime(day.year, day.month, day.day, 8, tzinfo=SHANGHAI) + timedelta(minutes=rng.randrange(10 * 60))
    return at.astimezone(timezone.utc)


def month_closed_at(case: Case) -> datetime:
    return MONTH_CLOSES[case.reporting_month]


def answer_instant(rng: random.Random, case: Case) -> datetime | None:
    """When the registration township replies, or None if it never does."""
    p = rng.random()
    if p < NEVER_ANSWERED:
        return None
    # Townships know R1: a reply after the month's close is late even inside the working days.
    due = min(case.deadline.due_at, month_closed_at(case))
    if p < NEVER_ANSWERED + ANSWERED_LATE:
        return due + timedelta(hours=rng.uniform(1, 12 * 24))
    return case.received_at + (due - case.received_at) * rng.uniform(0.05, 0.98)


def remind(case: Case) -> Case:
    # The tick sends one reminder per state the case has passed through (gateway.workflow.reminders).
    for state in (CaseState.DUE_SOON, CaseState.OVERDUE):
        if any(t.to_state is state for t in case.history):
            case = mark_reminder_sent(case, state.value)
    return case


def answer(case: Case, at: datetime, result: FeedbackResult, rng: random.Random,
           ledger: StrikeLedger = StrikeLedger()) -> tuple[Case, StrikeLedger, MissedManagementCharge | None]:
    reason = rng.choice(list(NoSuchPersonReason)) if result is FeedbackResult.NO_SUCH_PERSON else None
    remarks = "户籍地址已拆迁，本人下落不明" if reason is NoSuchPersonReason.OTHER else ""
    outcome = handle_feedback(
        remind(evaluate(case, at)), ledger, at, result, reason=reason, remarks=remarks,
        message_id=uuid.UUID(int=rng.getrandbits(128)).hex,
    )
    return outcome.case, outcome.ledger, outcome.charge


def one_case(rng: random.Random, serial: int) -> Case:
    assert _setup is not None and _rules is not None and _calendar is not None
    registration = rng.choices(_setup.townships, cum_weights=_setup.cum_weights)[0]
    kind = rng.choices(KINDS, cum_weights=KIND_CUM_WEIGHTS)[0]
    case = open_case(
        uuid.UUID(int=rng.getrandbits(128)).hex, kind, rng.choice(_setup.residences), registration,
        citizen_id(rng, registration[:6], serial), received_instant(rng), _rules, _calendar,
    )
    answered_at = answer_instant(rng, case)
    if rng.random() < WITHDRAWN:
        at = case.received_at + timedelta(hours=rng.uniform(1, 48))
        if at < QUARTER_CLOSE and (answered_at is None or at < answered_at):
            return withdraw(evaluate(case, at), at)
    if answered_at is None or answered_at >= QUARTER_CLOSE:
        return remind(evaluate(case, QUARTER_CLOSE))  # still open when the quarter closes
    result = FeedbackResult.NO_SUCH_PERSON if rng.random() < NO_SUCH_PERSON else FeedbackResult.FOUND
    return answer(case, answered_at, result, rng)[0]


def missed_management_chain(rng: random.Random, serial: int) -> tuple[list[Case], MissedManagementCharge]:
    """Three queries about one person, each corrected and re-sent, each answered 查无此人: 漏管."""
    assert _setup is not None and _rules is not None and _calendar is not None
    registration = rng.choice(_setup.townships)
    residence, person = rng.choice(_setup.residences), citizen_id(rng, registration[:6], serial)
    chain: list[Case] = []
    ledger, charge, previous = StrikeLedger(), None, None
    received = QUARTER.starts_at + timedelta(days=rng.uniform(0, 30))  # the whole chain fits in the quarter
    for _ in range(3):
        case = open_case(uuid.UUID(int=rng.getrandbits(128)).hex, CaseKind.QUERY, residence, registration, person,
                         received, _rules, _calendar, resubmits=previous)
        answered_at = case.received_at + timedelta(days=rng.uniform(0.5, 5))
        case, ledger, charge = answer(case, answered_at, FeedbackResult.NO_SUCH_PERSON, rng, ledger)
        chain.append(case)
        previous, received = case, answered_at + timedelta(days=rng.uniform(1, 4))  # visited again, corrected
    assert charge is not None and chain[-1].state is CaseState.MISSED_MANAGEMENT
    return chain, charge


def case_row(case: Case) -> tuple[object, ...]:
    values = case_values(case)  # the row SqlCaseStore writes
    return tuple(values[column] for column in CASE_COLUMNS)


def generate_chunk(index: int, size: int) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """`size` cases (seeded by `index`, so runs are reproducible) as table rows, and the 漏管 charges."""
    rng = random.Random(1_000_003 * (index + 1))
    cases: list[Case] = []
    charges: list[MissedManagementCharge] = []
    serial = index * size
    while len(cases) < size:
        serial += 1
        if rng.random() < MISSED_MANAGEMENT_CHAINS and size - len(cases) >= 3:
            chain, charge = missed_management_chain(rng, serial)
            cases.extend(chain)
            charges.append(charge)
        else:
            cases.append(one_case(rng, serial))
    charge_rows = [(c.registration_township, c.evidence_query_ids[-1], c.charged_at, CHARGE.dump_json(c).decode())
                   for c in charges]
    return [case_row(c) for c in cases], charge_rows


# --- the database ---------------------------------------------------------------------------------

CASE_COLUMNS = tuple(cases_table.c.keys())
CHARGE_COLUMNS = ("registration_township", "last_query_id", "charged_at", "data")


def chunks(total: int) -> Iterator[tuple[int, int]]:
    for index, start in enumerate(range(0, total, CHUNK)):
        yield index, min(CHUNK, total - start)


async def generate(server: str, database: str, setup: Setup, total: int) -> float:
    """Fill the tables; returns the seconds it took (workers build cases while COPY loads earlier ones)."""
    started = time.perf_counter()
    conn = await asyncpg.connect(f"{server}/{database}")
    loop = asyncio.get_running_loop()
    done = 0
    try:
        with ProcessPoolExecutor(os.cpu_count() or 2, initializer=_init_worker, initargs=(setup,)) as pool:
            pending: list[asyncio.Future] = []
            todo = chunks(total)
            for index, size in todo:
                pending.append(loop.run_in_executor(pool, generate_chunk, index, size))
                if len(pending) < 2 * (os.cpu_count() or 2):
                    continue
                done += await _copy(conn, await pending.pop(0))
                _progress(done, total, started)
            for future in pending:
                done += await _copy(conn, await future)
                _progress(done, total, started)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    print(file=sys.stderr)
    return time.perf_counter() - started


async def _copy(conn: asyncpg.Connection, rows: tuple[list, list]) -> int:
    case_rows, charge_rows = rows
    await conn.copy_records_to_table("cases", records=case_rows, columns=CASE_COLUMNS)
    if charge_rows:
        await conn.copy_records_to_table("missed_management", records=charge_rows, columns=CHARGE_COLUMNS)
    return len(case_rows)


def _progress(done: int, total: int, started: float) -> None:
    print(f"\r  generated {done:,}/{total:,} cases ({time.perf_counter() - started:.0f} s)", end="", file=sys.stderr)


async def admin(server: str, statement: str) -> None:
    conn = await asyncpg.connect(f"{server}/postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def database_ready(server: str, database: str, total: int) -> bool:
    try:
        conn = await asyncpg.connect(f"{server}/{database}")
    except asyncpg.InvalidCatalogNameError:
        return False
    try:
        return await conn.fetchval("SELECT count(*) FROM cases") == total
    except asyncpg.UndefinedTableError:
        return False
    finally:
        await conn.close()


# --- measurements ---------------------------------------------------------------------------------


async def timed(step: Callable[[], Awaitable[object]]) -> tuple[float, object]:
    gc.collect()
    started = time.perf_counter()
    result = await step()
    return time.perf_counter() - started, result


def cpu_and_memory(cpu_before: float) -> str:
    # Other work on the machine stretches wall time; this process's CPU time shows our own share.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    return f"(this process: {time.process_time() - cpu_before:.1f} s CPU; peak RSS so far {peak:.1f} GiB)"


def make_tracker(store: SqlCaseStore) -> CaseTracker:
    calendar, rules = load_calendar(DEFAULT_CALENDAR_FILE), load_deadline_rules(DEFAULT_DEADLINES_FILE)
    return CaseTracker(store, FakeClock(QUARTER_CLOSE), calendar, rules)


async def reset_closures(store: SqlCaseStore) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(text("DELETE FROM period_closures"))


async def close_quarter_at_once(store: SqlCaseStore) -> tuple[float, list[str]]:
    """The brief's case: three months and the quarter closed by one tick (e.g. after an outage)."""
    await reset_closures(store)
    tracker = make_tracker(store)
    seconds, closed = await timed(lambda: tracker.close_due_periods(QUARTER_CLOSE))
    return seconds, closed  # type: ignore[return-value]


async def close_routinely(store: SqlCaseStore) -> list[tuple[str, float]]:
    """Months 1 and 2 closed by the tick after their cutoffs, month 3 with the quarter."""
    await reset_closures(store)
    tracker = make_tracker(store)
    out = []
    for month in QUARTER.months:
        seconds, closed = await timed(lambda: tracker.close_due_periods(MONTH_CLOSES[month]))
        out.append((" + ".join(closed), seconds))  # type: ignore[arg-type]
    return out


def busiest_county(setup: Setup) -> str:
    counts: dict[str, int] = {}
    for township in setup.townships:
        counts[township[:6]] = counts.get(township[:6], 0) + 1
    return max(sorted(counts), key=counts.__getitem__)


async def median_ms(step: Callable[[], Awaitable[object]], runs: int) -> tuple[float, object]:
    result = await step()  # warm: plans cached, pages in shared buffers
    samples = []
    for _ in range(runs):
        seconds, result = await timed(step)
        samples.append(seconds * 1000)
    return statistics.median(samples), result


async def overdue_list_by_scan(store: SqlCaseStore, county: str, month: ReportingMonth, now: datetime) -> list[Case]:
    """What a dashboard could do before `overdue_cases`: every open case, filtered in Python."""
    return sorted(
        (c for c in await store.open_cases()
         if c.registration_township.startswith(county) and c.reporting_month == month and now >= c.deadline.due_at),
        key=lambda c: (c.deadline.due_at, c.case_id),
    )


def machine() -> str:
    model = "unknown CPU"
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        mem = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")) / 1024 / 1024
    except (OSError, StopIteration):
        mem = 0
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{model}, nproc {os.cpu_count()}, {mem:.0f} GiB RAM, Python {platform.python_version()}; load average {load}"


async def server_version(store: SqlCaseStore) -> str:
    async with store.engine.connect() as conn:
        return str((await conn.execute(text("SHOW server_version"))).scalar())


async def run(args: argparse.Namespace) -> None:
    server = args.server.rstrip("/")
    setup = make_setup(args.townships)
    print(f"machine: {machine()}")
    print(f"scale: {args.cases:,} cases, {len(setup.townships):,} townships of province {PROVINCE}, quarter {QUARTER}")

    if args.reuse and await database_ready(server, args.database, args.cases):
        print("generation: reused the existing database")
    else:
        await admin(server, f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        await admin(server, f'CREATE DATABASE "{args.database}"')
        engine = create_engine(f"{server.replace('postgresql://', 'postgresql+asyncpg://')}/{args.database}")
        await create_schema(engine)
        await engine.dispose()
        seconds = await generate(server, args.database, setup, args.cases)
        print(f"generation: {seconds:.1f} s ({args.cases / seconds:,.0f} cases/s, {os.cpu_count()} worker processes + COPY)")

    engine = create_engine(f"{server.replace('postgresql://', 'postgresql+asyncpg://')}/{args.database}")
    store = SqlCaseStore(engine)
    try:
        print(f"PostgreSQL {await server_version(store)}")
        await report_states(store)
        await measure_overdue(store, setup, args)
        if not args.skip_close:
            await measure_close(store, args)
        await measure_tick(store)
    finally:
        await engine.dispose()
        if not args.keep:
            await admin(server, f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')


async def report_states(store: SqlCaseStore) -> None:
    async with store.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT state, count(*) FROM cases GROUP BY state ORDER BY 2 DESC"))).all()
        size = (await conn.execute(text("SELECT pg_size_pretty(pg_total_relation_size('cases'))"))).scalar()
    total = sum(n for _, n in rows)
    print("states: " + ", ".join(f"{state} {n / total:.1%}" for state, n in rows) + f"; table with indexes {size}")


async def measure_overdue(store: SqlCaseStore, setup: Setup, args: argparse.Namespace) -> None:
    county = busiest_county(setup)
    month = reporting_month_of(DASHBOARD_AT)
    name = getattr(registry().get(county), "name", "")
    townships = sum(1 for t in setup.townships if t.startswith(county))
    print(f"overdue list: county {county} {name} ({townships} townships), month {month}, at {DASHBOARD_AT.astimezone(SHANGHAI):%Y-%m-%d %H:%M} CST")
    if hasattr(store, "overdue_cases"):
        ms, found = await median_ms(lambda: store.overdue_cases(county, month, DASHBOARD_AT), args.runs)
        print(f"  overdue_cases (SQL):               {ms:8.1f} ms median of {args.runs}, {len(found):,} cases")  # type: ignore[arg-type]
    if args.scan_runs:
        ms, scanned = await median_ms(lambda: overdue_list_by_scan(store, county, month, DASHBOARD_AT), args.scan_runs)
        print(f"  open_cases() + filter in Python:   {ms:8.1f} ms median of {args.scan_runs}, {len(scanned):,} cases")  # type: ignore[arg-type]


async def measure_close(store: SqlCaseStore, args: argparse.Namespace) -> None:
    cpu = time.process_time()
    seconds, closed = await close_quarter_at_once(store)
    print(f"quarter close, one tick ({', '.join(closed)}), gateway's tracker: {seconds:.1f} s {cpu_and_memory(cpu)}")
    if args.routine:
        for closed_now, seconds in await close_routinely(store):
            print(f"  routine tick closing {closed_now}: {seconds:.1f} s")
    if args.skip_audit:
        return
    tracker = make_tracker(store)
    cpu = time.process_time()
    seconds, (stored, again) = await timed(lambda: tracker.recompute_quarter(QUARTER))  # type: ignore[misc]
    same = stored is not None and again is not None and stored.inputs_digest == again.inputs_digest and stored.rows == again.rows
    print(f"recompute_quarter (audit): {seconds:.1f} s, identical to the stored snapshot: {same} {cpu_and_memory(cpu)}")


async def measure_tick(store: SqlCaseStore) -> None:
    """The tick's case work (due soon / overdue moves and reminders; `CaseTracker.advance_cases`).

    The generated open cases are up to date as of the quarter's close. A minute later nothing has
    ripened; the Monday after, the due-soon windows and deadlines of a weekend and a working day have.
    (The tick writes what it moved, so a later run with --reuse starts from there.)"""
    tracker = make_tracker(store)
    for label, at in (("a minute after the quarter close", QUARTER_CLOSE + timedelta(minutes=1)),
                      ("Monday 23 March 00:01 CST", cst(2026, 3, 23, 0, 1)),
                      ("the minute after", cst(2026, 3, 23, 0, 2))):
        seconds, (moved, sent) = await timed(lambda at=at: tracker.advance_cases(at))  # type: ignore[misc]
        print(f"tick, {label}: {seconds * 1000:,.0f} ms ({moved:,} cases moved, {len(sent):,} reminders)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=2_000_000)
    parser.add_argument("--townships", type=int, default=1_500)
    parser.add_argument("--server", default=os.environ.get("GATEWAY_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432"))
    parser.add_argument("--database", default="gw_bench")
    parser.add_argument("--runs", type=int, default=11, help="runs of the overdue list (median reported)")
    parser.add_argument("--scan-runs", type=int, default=3, help="runs of the open_cases() scan; 0 to skip")
    parser.add_argument("--routine", action="store_true", help="also close month by month, as the tick does on time")
    parser.add_argument("--skip-close", action="store_true")
    parser.add_argument("--skip-audit", action="store_true", help="do not time recompute_quarter")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept database of the same size")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
