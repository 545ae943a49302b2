"""A simulated quarter of a province: the real gateways, the real broker, a fast clock, figures checked.

A generator plays the clerks of a province's townships for one exchange cycle (2026Q2: 21 March –
20 June 2026). Two gateways, each hosting every other county of the province, run in this process on
their own databases and talk over RabbitMQ with exchange and queue names of their own (deleted at the
end). The clock is a controllable one shared by both: it jumps through the quarter day by day, and
after every jump the gateways' minute tick runs (due soon / overdue, reminders, month cutoffs, the
quarter close), exactly the tick `gateway serve` runs every minute.

What the clerks do (service calls, as the HTTP routes make them):

* residence townships send queries on working days (real calendar: `chinese_calendar`), more and
  more of them in the days before each 20th; some about births (5 working days instead of 10);
* notifications (kind ④), most sent within 5 working days of the event, some later;
* registration townships answer found (every rule 四 field or `not_applicable`), or 查无此人 with a
  reason and `checked_sources`; most on time, some late, some never (overdue at the close);
* after some 查无此人 the residence township corrects the query and sends it again (rule 五); a few
  people are answered 查无此人 three times in a row (so 漏管 is charged), a few twice and then found.

At the end the quarter is closed by the night tick once every deadline of June's cases has passed (issue 23:
replies are judged by their deadline, and a month is final once its deadlines are), and every figure the gateways stored
— the quarter snapshot per township (received, answered, on time, late, overdue, open, 查无此人,
漏管, notifications), the local-convention score, and the sender figures `gateway scores` recounts as
of the close (queries sent, accuracy, notifications submitted on time, re-verifications) — is compared
with the generator's own count of what it did, computed from its log alone (its own working-day
arithmetic, its own month and deadline rules), never from the gateway's accounting code.

Run: python bench/simulate_quarter.py [--townships 1500] [--queries 20000] [--database sqlite|postgresql] [--json]
Exit 0 only when no figure differs and nothing was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import secrets
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway import demo_records  # noqa: E402
from gateway.bootstrap import Gateway, build_gateway  # noqa: E402
from gateway.clock import FakeClock  # noqa: E402
from gateway.codec.divisions import registry  # noqa: E402
from gateway.exchange.nodes import HostedNode  # noqa: E402
from gateway.security.directory import KeyDirectory  # noqa: E402
from gateway.security.keys import generate_keyring  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from gateway.workflow.accounting import Level, _as_facts  # noqa: E402
from gateway.workflow.data_files import DEFAULT_SCORING_FILE, load_score_formula  # noqa: E402
from gateway.workflow.periods import Quarter, reporting_month_of  # noqa: E402
from gateway.workflow.scoring import score_table  # noqa: E402
from gateway.workflow.sender_accounting import count_senders  # noqa: E402

CST = ZoneInfo("Asia/Shanghai")
QUARTER = "2026Q2"
FIRST_DAY, LAST_DAY = date(2026, 3, 21), date(2026, 6, 20)
PROVINCE = "43"  # 湖南省: 1,900-odd townships in the 2023 division data
PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
SEND_AT, ANSWER_AT, TICK_AT = (10, 0), (16, 0), (0, 5)  # local times of the clerks' day and the night tick
REPLY_DAYS = {"query": 10, "birth": 5, "notification": 5}
SUBMISSION_DAYS = 5
SCORE_FILE = Path(__file__).resolve().parent.parent / "schemas" / "workflow" / "scoring.json"


# --- the generator's own rules (deliberately not the gateway's code) --------------------------------

def at(day: date, hm: tuple[int, int]) -> datetime:
    return datetime(day.year, day.month, day.day, hm[0], hm[1], tzinfo=CST).astimezone(timezone.utc)


def is_working_day(day: date) -> bool:
    return chinese_calendar.is_workday(day)


def nth_working_day_after(day: date, n: int) -> date:
    counted = 0
    while counted < n:
        day += timedelta(days=1)
        counted += is_working_day(day)
    return day


def due_instant(received: datetime, n: int) -> datetime:
    """24:00 Beijing time of the n-th working day after the day of receipt (which is not counted)."""
    last = nth_working_day_after(received.astimezone(CST).date(), n)
    return at(last + timedelta(days=1), (0, 0))


def month_of(instant: datetime) -> str:
    """The reporting month: 21st of the month before, 00:00, to the 20th, 24:00, Beijing time."""
    local = instant.astimezone(CST)
    year, month = local.year, local.month
    if local.day > 20:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{year}-{month:02d}"


QUARTER_MONTHS = ("2026-04", "2026-05", "2026-06")
JUNE_CUTOFF, JULY_CUTOFF = at(date(2026, 6, 21), (0, 0)), at(date(2026, 7, 21), (0, 0))  # 24:00 on the 20th


def quarter_close(asks: Iterable["Ask"], registrations: set[str] | None = None) -> datetime:
    """When a gateway's night tick closes June, and with it the quarter (issue 23): the first tick once every
    deadline of June's cases has passed, by 24:00 on 20 July at the latest. Per gateway (`registrations`: the
    townships it hosts), whose cases' deadlines are its own; None: the latest over both."""
    june = [due_instant(a.received_at, REPLY_DAYS["birth" if a.about_birth else a.kind]) for a in asks
            if a.received_at is not None and month_of(a.received_at) == "2026-06"
            and (registrations is None or a.registration in registrations)]
    final = min(max([JUNE_CUTOFF, *june]), JULY_CUTOFF)  # a midnight: the night tick of that day is the first after it
    return at(final.astimezone(CST).date(), TICK_AT)


# --- the plan -------------------------------------------------------------------------------------

@dataclass
class Ask:
    """One query or notification the generator sends, and what the registration clerk will do with it."""

    key: int
    kind: str  # "query" | "notification"
    residence: str
    registration: str
    record: dict[str, Any]
    send_day: date
    about_birth: bool = False
    answer_day: date | None = None  # None: never answered
    answer: dict[str, Any] | None = None
    corrects: int | None = None  # the key of the query this one corrects (rule 五)
    correction: Ask | None = None  # its own correction, sent the working day after the 查无此人
    # filled in while running
    message_id: str | None = None
    received_at: datetime | None = None
    answered_at: datetime | None = None


def working_days() -> list[date]:
    days, day = [], FIRST_DAY
    while day <= LAST_DAY:
        if is_working_day(day):
            days.append(day)
        day += timedelta(days=1)
    return days


def volume_weight(day: date) -> float:
    """Traffic rises in the ten days before each 20th (the cutoff), up to four times the quiet level."""
    cutoff = date(day.year, day.month, 20) if day.day <= 20 else (
        date(day.year + (day.month == 12), day.month % 12 + 1, 20))
    to_cutoff = (cutoff - day).days
    return 1.0 + 3.0 * max(0.0, 1.0 - to_cutoff / 10.0)


def pick_townships(count: int) -> list[str]:
    codes = sorted(registry().townships_under(PROVINCE))
    if count > len(codes):
        raise SystemExit(f"province {PROVINCE} has only {len(codes)} townships")
    step = len(codes) / count  # spread over the whole province
    return [codes[int(i * step)] for i in range(count)]


class Planner:
    def __init__(self, townships: list[str], rng: random.Random) -> None:
        self.townships = townships
        self.rng = rng
        self.days = working_days()
        self.weights = [volume_weight(d) for d in self.days]
        self.asks: list[Ask] = []
        self.ids: set[str] = set()
        self.names = {c: (registry().get(c).name if registry().get(c) else c) for c in townships}

    def _person(self, registration: str) -> dict[str, Any]:
        while True:
            person = demo_records.person(self.rng, registration)
            if person["citizen_id"] not in self.ids:
                self.ids.add(person["citizen_id"])
                return person

    def _pair(self) -> tuple[str, str]:
        residence, registration = self.rng.sample(self.townships, 2)
        return residence, registration

    def _address(self, registration: str) -> str:
        return f"{self.names[registration]}{self.rng.choice('东南西北新和平安')}村{self.rng.randint(1, 9)}组"

    def _new(self, **kw: Any) -> Ask:
        ask = Ask(key=len(self.asks), **kw)
        self.asks.append(ask)
        return ask

    def _query(self, day: date, residence: str, registration: str, person: dict[str, Any], *, birth: bool,
               corrects: Ask | None = None, revision: int = 0) -> Ask:
        record = {
            "kind": "query", "residence_township": residence, "registration_township": registration,
            "person": person, "about_birth": birth,
            "registration_address": corrects.record["registration_address"] if corrects else self._address(registration),
            "current_address": f"幸福路{self.rng.randint(1, 300)}号" + ("" if not revision else f"{revision}单元"),
        }
        if corrects is not None:
            record["remarks"] = f"第{revision}次核实后更正地址"
        return self._new(kind="query", residence=residence, registration=registration, record=record,
                         send_day=day, about_birth=birth, corrects=None if corrects is None else corrects.key)

    def _later(self, day: date, working: int) -> date | None:
        """The working day `working` working days after `day`, if still in the quarter."""
        later = nth_working_day_after(day, working) if working else day
        return later if later <= LAST_DAY else None

    def _found(self, ask: Ask) -> dict[str, Any]:
        born = date.fromisoformat(ask.record["person"]["birth_date"])
        return demo_records.found_feedback(self.rng, born, ask.residence)

    def _not_found(self, reason: str | None = None) -> dict[str, Any]:
        answer = demo_records.not_found_feedback(self.rng)
        if reason is not None:
            answer["not_found_reason"] = reason
            answer["remarks"] = {"1": "门牌号不存在", "2": "户籍档案中无此姓名", "3": "身份证号码与户籍档案不符",
                                 "9": "已迁出本乡"}[reason]
        return answer

    def _answer_plan(self, ask: Ask) -> None:
        """Most on time, some late, some never; the day is judged against the rule only when counting."""
        n = REPLY_DAYS["birth" if ask.about_birth else ask.kind]
        roll = self.rng.random()
        if roll < 0.07:
            return  # never answered: overdue at the close (or still open, if sent late in the quarter)
        delay = self.rng.randint(n + 1, n + 6) if roll < 0.19 else self.rng.randint(0, n)
        ask.answer_day = self._later(ask.send_day, delay)

    def plan(self, queries: int, notifications: int, chains: int) -> list[Ask]:
        for _ in range(queries):
            day = self.rng.choices(self.days, self.weights)[0]
            residence, registration = self._pair()
            ask = self._query(day, residence, registration, self._person(registration), birth=self.rng.random() < 0.1)
            self._answer_plan(ask)
            if ask.answer_day is None:
                continue
            if self.rng.random() < 0.12:
                ask.answer = self._not_found()
                # Half of the 查无此人 are visited again, corrected and sent again (rule 五); found then.
                if self.rng.random() < 0.5 and (day2 := self._later(ask.answer_day, self.rng.randint(1, 3))):
                    fix = self._query(day2, residence, registration, ask.record["person"], birth=ask.about_birth,
                                      corrects=ask, revision=1)
                    ask.correction = fix
                    fix.answer_day, fix.answer = self._later(day2, self.rng.randint(0, 4)), self._found(fix)
                    if fix.answer_day is None:
                        fix.answer = None
            else:
                ask.answer = self._found(ask)
        self._chains(chains)
        for _ in range(notifications):
            self._notification()
        return self.asks

    def _chains(self, count: int) -> None:
        """People answered 查无此人 again and again: three in a row (漏管), or twice and then found."""
        early = [d for d in self.days if nth_working_day_after(d, 12) <= LAST_DAY]
        for i in range(count):
            residence, registration = self._pair()
            person = self._person(registration)
            day = self.rng.choice(early)
            three = i % 3 != 2
            ask = self._query(day, residence, registration, person, birth=False)
            for revision in range(3):
                ask.answer_day = self._later(day, 2)
                last = revision == 2
                ask.answer = self._found(ask) if last and not three else self._not_found(self.rng.choice("1239"))
                if last:
                    break
                day = self._later(ask.answer_day, 1)  # type: ignore[arg-type]
                ask.correction = self._query(day, residence, registration, person, birth=False, corrects=ask,
                                             revision=revision + 1)
                ask = ask.correction

    def _notification(self) -> None:
        day = self.rng.choices(self.days, self.weights)[0]
        residence, registration = self._pair()
        # Most are sent within 5 working days of the event; some later (the submission rate falls).
        back = self.rng.randint(0, 4) if self.rng.random() < 0.85 else self.rng.randint(6, 12)
        event = day
        for _ in range(back):
            event -= timedelta(days=1)
            while not is_working_day(event):
                event -= timedelta(days=1)
        record = {
            "kind": "notification", "notification_kind": "4", "residence_township": residence,
            "registration_township": registration, "person": self._person(registration),
            "event_date": event.isoformat(), "registration_address": self._address(registration),
            "current_address": f"幸福路{self.rng.randint(1, 300)}号", "pregnancy_weeks": self.rng.randint(6, 30),
        }
        ask = self._new(kind="notification", residence=residence, registration=registration, record=record, send_day=day)
        self._answer_plan(ask)
        if ask.answer_day is not None:
            ask.answer = self._not_found("9") if self.rng.random() < 0.03 else self._found(ask)


# --- the generator's expectation, from its log only -----------------------------------------------

FIELDS = ("received", "answered", "on_time", "late", "overdue", "still_open", "no_such_person", "missed_management",
          "notifications_received", "notifications_answered", "notifications_on_time", "notifications_late",
          "notifications_overdue", "notifications_open")
SENDER_FIELDS = ("queries_sent", "queries_answered", "own_error_no_such_person", "notifications_sent",
                 "notifications_judged", "notifications_on_time", "reverifications_opened", "reverifications_done",
                 "reverification_seconds")


def expected_figures(asks: Iterable[Ask]) -> tuple[dict[str, Counter[str]], dict[str, Counter[str]]]:
    """Per registration township (the one replying) and per residence township (the sender)."""
    asks = [a for a in asks if a.received_at is not None and month_of(a.received_at) in QUARTER_MONTHS]
    QUARTER_CLOSE = quarter_close(asks)  # every answer and correction is before either gateway's close
    replying: dict[str, Counter[str]] = defaultdict(Counter)
    sending: dict[str, Counter[str]] = defaultdict(Counter)
    # 漏管: the third 查无此人 in a row of one person's query and its corrections.
    charged: set[int] = set()
    for a in asks:
        if a.corrects is not None:
            continue
        run, node = 0, a
        while node is not None:
            answered = node.answered_at is not None and node.answered_at <= QUARTER_CLOSE
            if not answered:
                break
            run = run + 1 if node.answer["result"] == "not_found" else 0  # type: ignore[index]
            if run == 3:
                charged.add(node.key)
                run = 0
            node = node.correction if node.correction is not None and node.correction.received_at else None
    for a in asks:
        query = a.kind == "query"
        n = REPLY_DAYS["birth" if a.about_birth else a.kind]
        due = due_instant(a.received_at, n)  # type: ignore[arg-type]
        answered = a.answered_at is not None and a.answered_at <= QUARTER_CLOSE
        late = answered and a.answered_at >= due  # type: ignore[operator]  # by the deadline alone (rules "3")
        prefix = "" if query else "notifications_"
        r = replying[a.registration]
        r[f"{prefix}received"] += 1
        if answered:
            r[f"{prefix}answered"] += 1
            r[f"{prefix}late" if late else f"{prefix}on_time"] += 1
        else:
            r[f"{prefix}overdue" if QUARTER_CLOSE >= due else ("still_open" if query else "notifications_open")] += 1
        s = sending[a.residence]
        if not query:
            s["notifications_sent"] += 1
            s["notifications_judged"] += 1
            learned = date.fromisoformat(a.record["event_date"])
            submission_due = at(nth_working_day_after(learned, SUBMISSION_DAYS) + timedelta(days=1), (0, 0))
            s["notifications_on_time"] += a.received_at < submission_due  # type: ignore[operator]
            continue
        r["missed_management"] += a.key in charged
        s["queries_sent"] += 1
        if not answered:
            continue
        s["queries_answered"] += 1
        if a.answer["result"] == "not_found":  # type: ignore[index]
            r["no_such_person"] += 1
            s["own_error_no_such_person"] += a.answer["not_found_reason"] in ("1", "2", "3")  # type: ignore[index]
            s["reverifications_opened"] += 1
            fix = a.correction
            if fix is not None and fix.received_at is not None and fix.received_at <= QUARTER_CLOSE:
                s["reverifications_done"] += 1
                s["reverification_seconds"] += int((fix.received_at - a.answered_at).total_seconds())  # type: ignore[operator]
    return replying, sending


def expected_score(c: Counter[str], formula: dict[str, Any]) -> str | None:
    if not c["received"]:
        return None
    raw = formula["max_points"] * (Fraction(formula["feedback_weight"]) * Fraction(c["answered"], c["received"])
                                   + Fraction(formula["timely_weight"]) * Fraction(c["on_time"], c["received"]))
    raw -= Fraction(formula["missed_management_penalty_points_per_percent"]) * Fraction(100 * c["missed_management"], c["received"])
    raw = min(max(raw, Fraction(0)), Fraction(formula["max_points"]))
    value = (Decimal(raw.numerator) / Decimal(raw.denominator)).quantize(
        Decimal(1).scaleb(-formula["decimals"]), rounding=ROUND_HALF_UP)
    return str(value)


# --- running it -----------------------------------------------------------------------------------

@dataclass
class Run:
    gateways: list[Gateway]
    home: dict[str, Gateway]  # township → the gateway hosting it
    clock: FakeClock
    expected_stored: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    refused: list[str] = field(default_factory=list)
    ticks: int = 0
    closed: list[str] = field(default_factory=list)

    async def tick(self, instant: datetime) -> None:
        self.clock.set(instant)
        for gw in self.gateways:
            assert gw.tracker is not None
            report = await gw.tracker.tick()
            self.closed += report.closed
        self.ticks += 1

    async def settle(self, timeout_s: float, *, receipts: bool = False) -> None:
        """Wait until every message sent so far is stored (and tracked) by its recipient, before the clock
        moves on: what the recipient accepted at this instant is accepted at this instant. Receipts may
        trail behind (they count nothing) except at the end, when every one must be back."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            stored = all(gw.outcomes.get("stored", 0) >= self.expected_stored[i] for i, gw in enumerate(self.gateways))
            receipted = sum(gw.outcomes.get("receipted", 0) for gw in self.gateways) >= sum(self.expected_stored.values())
            if stored and not receipts:
                return
            if stored and receipted:
                backlog = [await gw.store.outbox_backlog(self.clock.now()) for gw in self.gateways]
                if all(b.pending == 0 for b in backlog):
                    return
            await asyncio.sleep(0.02)
        raise TimeoutError("messages did not settle: " + json.dumps([gw.outcomes for gw in self.gateways]))

    def delivered_to(self, township: str) -> None:
        self.expected_stored[self.gateways.index(self.home[township])] += 1


async def send(run: Run, ask: Ask, by_key: dict[int, Ask]) -> None:
    record = dict(ask.record)
    if ask.corrects is not None:
        record["resubmission_of"] = by_key[ask.corrects].message_id
    stored = await run.home[ask.residence].service.submit(ask.residence, record)
    ask.message_id, ask.received_at = stored.message_id, stored.accepted_at
    run.delivered_to(ask.registration)


async def answer(run: Run, ask: Ask) -> None:
    assert ask.message_id is not None and ask.answer is not None
    stored = await run.home[ask.registration].service.answer(ask.registration, ask.message_id, ask.answer)
    ask.answered_at = stored.accepted_at
    run.delivered_to(ask.residence)


async def in_parallel(items: list[Any], action: Callable[[Any], Any], run: Run, width: int = 48) -> None:
    slots = asyncio.Semaphore(width)

    async def one(item: Any) -> None:
        async with slots:
            try:
                await action(item)
            except Exception as exc:  # a refused record is a generator bug: count it, keep going
                run.refused.append(f"{type(exc).__name__}: {str(exc)[:300]}")

    await asyncio.gather(*(one(i) for i in items))


async def simulate(args: argparse.Namespace, echo: Callable[[str], None]) -> dict[str, Any]:
    started = time.monotonic()
    rng = random.Random(args.seed)
    townships = pick_townships(args.townships)
    planner = Planner(townships, rng)
    asks = planner.plan(args.queries, args.notifications if args.notifications is not None else args.queries // 10,
                        args.chains if args.chains is not None else max(3, args.queries // 100))
    by_key = {a.key: a for a in asks}
    echo(f"plan: {len(townships)} townships of province {PROVINCE}, {len(asks)} queries and notifications")

    # Two gateways, each hosting every other county (a county's townships stay together, as deployed).
    counties = sorted({t[:6] for t in townships})
    side = {c: i % 2 for i, c in enumerate(counties)}
    rings = {t: generate_keyring(t) for t in townships}
    directory = KeyDirectory.from_keyrings(rings.values())
    token = secrets.token_hex(4)
    clock = FakeClock(at(FIRST_DAY, TICK_AT) - timedelta(minutes=10))
    databases: list[str] = []
    gateways: list[Gateway] = []
    keygen_s = time.monotonic() - started
    with tempfile.TemporaryDirectory(prefix="simulate-quarter-") as tmp:
        for i in range(2):
            hosted = [t for t in townships if side[t[:6]] == i]
            url = await make_database(args.database, tmp, f"sim_{token}_{i}", args.postgres_server)
            databases.append(url)
            settings = Settings(
                gateway_id=f"sim-{token}-{i}", exchange=f"sim-{token}.exchange", nodes=hosted,
                data_dir=Path(tmp) / f"gw{i}", database_url=url, amqp_url=args.amqp_url,
                key_passphrase=None, allow_plaintext_keys=True, tick_interval_s=0,
            )
            gateways.append(build_gateway(settings, clock=clock, nodes={t: HostedNode(rings[t]) for t in hosted},
                                          directory=directory))
        run = Run(gateways, {t: gateways[side[t[:6]]] for t in townships}, clock)
        try:
            for gw in gateways:
                await gw.start()
            setup_s = time.monotonic() - started
            echo(f"two gateways up ({len(gateways[0].service.nodes)} + {len(gateways[1].service.nodes)} townships) "
                 f"in {setup_s:.1f} s")
            await drive(run, asks, by_key, echo, args.settle_timeout_s)
            drive_s = time.monotonic() - started - setup_s
            replying, sending = expected_figures(asks)
            mismatches, compared = await compare(run, replying, sending, asks)
        finally:
            for gw in gateways:
                await gw.stop()
                try:
                    await gw.broker.delete_topology()  # type: ignore[attr-defined]
                except Exception:
                    pass
            await drop_databases(args.database, databases, args.postgres_server)
    queries = [a for a in asks if a.kind == "query"]
    province, senders = sum(replying.values(), Counter()), sum(sending.values(), Counter())
    sent = sum(a.message_id is not None for a in asks)
    answered = sum(a.answered_at is not None for a in asks)
    stored = sum(gw.outcomes.get("stored", 0) for gw in gateways)
    lost = sum(run.expected_stored.values()) - stored
    quarantined = sum(gw.outcomes.get("quarantined", 0) for gw in gateways)
    return {
        "quarter": QUARTER,
        "province": PROVINCE,
        "townships": len(townships),
        "database": args.database,
        "queries": sum(a.message_id is not None for a in queries),
        "corrected_queries": sum(a.corrects is not None and a.message_id is not None for a in queries),
        "notifications": sum(a.kind == "notification" and a.message_id is not None for a in asks),
        "answers": answered,
        "no_such_person": sum(a.answered_at is not None and a.answer["result"] == "not_found" for a in asks),  # type: ignore[index]
        "unanswered": sent - answered,
        "missed_management": sum(c["missed_management"] for c in replying.values()),
        "messages_stored": stored,
        "receipts": sum(gw.outcomes.get("receipted", 0) for gw in gateways),
        "quarantined": quarantined,
        "outcomes": [dict(gw.outcomes) for gw in gateways],
        "refused": len(run.refused),
        "refusals": run.refused[:5],
        "lost": lost,
        "ticks": run.ticks,
        "closed": sorted(set(run.closed)),
        "figures": {name: province[name] for name in FIELDS},
        "sender_figures": {name: senders[name] for name in SENDER_FIELDS},
        "figures_compared": compared,
        "mismatches": mismatches[:50],
        "mismatch_count": len(mismatches),
        "elapsed_s": round(time.monotonic() - started, 1),
        "keys_s": round(keygen_s, 1),
        "setup_s": round(setup_s, 1),
        "drive_s": round(drive_s, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "ok": not mismatches and lost == 0 and not run.refused and quarantined == 0 and compared > 0,
    }


async def drive(run: Run, asks: list[Ask], by_key: dict[int, Ask], echo: Callable[[str], None], timeout_s: float) -> None:
    sends: dict[date, list[Ask]] = defaultdict(list)
    for a in asks:
        sends[a.send_day].append(a)
    day = FIRST_DAY
    while day <= LAST_DAY:
        await run.tick(at(day, TICK_AT))
        if is_working_day(day):
            # A correction is sent only once its 查无此人 has arrived (the plan puts it a working day later).
            todays = [a for a in sends.get(day, []) if a.corrects is None or by_key[a.corrects].answered_at is not None]
            run.clock.set(at(day, SEND_AT))
            await in_parallel(todays, lambda a: send(run, a, by_key), run)
            await run.settle(timeout_s)
            due = [a for a in asks if a.answer_day == day and a.answer is not None and a.message_id is not None]
            run.clock.set(at(day, ANSWER_AT))
            await in_parallel(due, lambda a: answer(run, a), run)
            await run.settle(timeout_s)
            await run.tick(at(day, ANSWER_AT) + timedelta(minutes=1))
            if day.day in (1, 11, 20, 21):
                echo(f"{day}: {sum(a.message_id is not None for a in asks)} sent, "
                     f"{sum(a.answered_at is not None for a in asks)} answered")
        day += timedelta(days=1)
    # Night ticks until June is final on both gateways (every deadline of its cases passed), which closes the quarter.
    day = LAST_DAY + timedelta(days=1)
    while day <= JULY_CUTOFF.astimezone(CST).date():
        await run.tick(at(day, TICK_AT))
        if all([await gw.tracker.store.quarter_snapshot(Quarter.parse(QUARTER)) for gw in run.gateways]):  # type: ignore[union-attr]
            break
        day += timedelta(days=1)
    await run.settle(timeout_s, receipts=True)


async def compare(run: Run, replying: dict[str, Counter[str]], sending: dict[str, Counter[str]],
                  asks: list[Ask]) -> tuple[list[str], int]:
    """Figure by figure: the quarter snapshots and the sender figures as `gateway scores --quarter` reads them."""
    quarter = Quarter.parse(QUARTER)
    mismatches: list[str] = []
    compared = 0
    stored_rows: dict[str, Any] = {}
    stored_senders: dict[str, Counter[str]] = defaultdict(Counter)
    for gw in run.gateways:
        assert gw.tracker is not None
        snapshot = await gw.tracker.store.quarter_snapshot(quarter)
        if snapshot is None:
            mismatches.append(f"{gw.settings.gateway_id}: quarter {QUARTER} not closed")
            continue
        expected_close = quarter_close(asks, set(gw.service.nodes))
        if snapshot.closed_at != expected_close:
            mismatches.append(f"{gw.settings.gateway_id}: closed at {snapshot.closed_at}, expected {expected_close}")
        stored_rows.update(snapshot.as_dict())
        facts = list(await gw.tracker.store.facts_in_months([*quarter.months, reporting_month_of(snapshot.closed_at)]))
        for township, counts in count_senders(_as_facts(facts), quarter, snapshot.closed_at).items():
            for name in SENDER_FIELDS:
                stored_senders[township][name] += getattr(counts, name)
    formula = json.loads(SCORE_FILE.read_text())
    scores = {row.region: row.points for row in score_table(stored_rows, load_score_formula(DEFAULT_SCORING_FILE),
                                                            Level.TOWNSHIP, None)}
    for township in sorted(replying.keys() | stored_rows.keys()):
        want, got = replying.get(township, Counter()), stored_rows.get(township)
        for name in FIELDS:
            compared += 1
            value = getattr(got, name) if got is not None else 0
            if value != want[name]:
                mismatches.append(f"{township} {name}: gateway {value}, generator {want[name]}")
        compared += 1
        got_score = scores.get(township)
        if (None if got_score is None else str(got_score)) != expected_score(want, formula):
            mismatches.append(f"{township} score: gateway {got_score}, generator {expected_score(want, formula)}")
    for township in sorted(sending.keys() | stored_senders.keys()):
        want, got_s = sending.get(township, Counter()), stored_senders.get(township, Counter())
        for name in SENDER_FIELDS:
            compared += 1
            if got_s[name] != want[name]:
                mismatches.append(f"{township} {name}: gateway {got_s[name]}, generator {want[name]}")
    # The province as a whole: the pooled rates from the summed counts.
    total_want = sum(replying.values(), Counter())
    total_got = {name: sum(getattr(c, name) for c in stored_rows.values()) for name in FIELDS}
    for name in FIELDS:
        compared += 1
        if total_got[name] != total_want[name]:
            mismatches.append(f"province {PROVINCE} {name}: gateway {total_got[name]}, generator {total_want[name]}")
    return mismatches, compared


# --- databases ------------------------------------------------------------------------------------

async def _admin(server: str, statement: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def make_database(kind: str, tmp: str, name: str, server: str) -> str:
    """A throw-away database per gateway: a SQLite file in the run's folder, or a PostgreSQL database."""
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{tmp}/{name}.db"
    from sqlalchemy.engine import make_url

    await _admin(server, f'CREATE DATABASE "{name}"')
    return make_url(server).set(database=name).render_as_string(hide_password=False)


async def drop_databases(kind: str, urls: list[str], server: str) -> None:
    if kind != "postgresql":
        return
    from sqlalchemy.engine import make_url

    for url in urls:
        await _admin(server, f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--townships", type=int, default=1500)
    parser.add_argument("--queries", type=int, default=20000, help="first queries (corrections come on top)")
    parser.add_argument("--notifications", type=int, default=None, help="default: a tenth of --queries")
    parser.add_argument("--chains", type=int, default=None,
                        help="people answered 查无此人 repeatedly (two of three reach 漏管); default: queries/100")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres-server", default=PG_SERVER,
                        help="a PostgreSQL server whose user may create databases (with --database postgresql)")
    parser.add_argument("--amqp-url", default=os.environ.get("GATEWAY_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    parser.add_argument("--seed", type=int, default=20260321)
    parser.add_argument("--settle-timeout-s", type=float, default=300.0)
    parser.add_argument("--json", action="store_true", help="print one JSON line only")
    args = parser.parse_args()
    echo = (lambda _line: None) if args.json else (lambda line: print(line, flush=True))
    result = asyncio.run(simulate(args, echo))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
