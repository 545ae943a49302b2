"""The product as deployed, every feature on, against bare aio-pika on the same broker, in one run.

Two gateways, each in its own process with its own database (PostgreSQL by default, `--sqlite` for the
embedded default), as production runs them:

* the residence township's clerks submit queries through the principal's view
  (`gateway/access/views.py`: scope checked, every submission in the hash-chained audit trail);
* the registration gateway verifies, decrypts, validates and stores each query, opens its case
  (deadline, R1–R5), signs a receipt, and its clerk answers the query as soon as it is stored, through
  the view as well (audited): 85 % found with every rule 四 field, 15 % 查无此人 with a reason, which the
  case tracker records (three strikes, 漏管);
* the feedback travels back, is verified and stored, linked to its query and receipted; a 查无此人 opens
  a re-verification task; both gateways chain every envelope and receipt into their archive.

Measured:
1. burst: N queries from 64 clerks at once; **messages/s = 2N (queries + feedbacks) / (first submit →
   last feedback stored back at the residence gateway)**; round trips/s = N / the same time;
2. CPU milliseconds per message of each gateway process over the burst (user + system);
3. latency at half that message rate, open loop, for `--latency-s`: a query from submit until it is
   stored at the registration gateway, and the round trip until its feedback is stored back;
4. bare aio-pika in the same run, on the same broker: 2N persistent messages of the envelope's size
   published with confirms (500 in flight) to a quorum queue and acked by a consumer in another process;
5. `--soak M`: M more messages at the latency rate (or `--soak-rate` queries/s), the resident memory of
   both processes sampled every 10 s. Above what the pair sustains, the backlog (and memory) grows.

    python bench/bench_product.py --queries 3000 --latency-s 10
    python bench/bench_product.py --queries 3000 --sqlite
    python bench/bench_product.py --queries 500 --latency-s 0 --soak 100000 --soak-rate 40
"""

from __future__ import annotations

import argparse
import asyncio
from array import array
import json
import os
import platform
import random
import secrets
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta, datetime, timezone
from multiprocessing.connection import Connection
from pathlib import Path
from collections.abc import Sequence
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_transport import (  # noqa: E402  (bench/ is not a package)
    command_queue,
    REGISTRATION,
    RESIDENCE,
    SPAWN,
    PG_SERVER,
    Peer,
    bare,
    cpu_model,
    cpu_s,
    drop_database,
    fresh_database,
)

from sqlalchemy import make_url  # noqa: E402

from gateway import demo_records  # noqa: E402
from gateway.access.principal import Principal, Role  # noqa: E402
from gateway.access.views import NodeView  # noqa: E402
from gateway.bootstrap import Gateway, build_gateway  # noqa: E402
from gateway.node_setup import init_nodes  # noqa: E402
from gateway.settings import Settings  # noqa: E402

BORN = date(1990, 5, 17)  # the person of bench_transport.query
NOT_FOUND_SHARE = 0.15
CLERKS = 64


def query(i: int) -> dict[str, Any]:
    """A query about one of many women (one person queried thousands of times would make every answer
    re-read her whole history for the three-strikes rule, which no real township sees)."""
    rng = random.Random(i)
    # An ID's sequence number gives 500 women per birth date: a day more every 500 queries, so a soak of
    # 100,000 messages is not 500 women queried 100 times each (every answer reads her whole history).
    born = BORN + timedelta(days=i // 500)
    return {
        "kind": "query", "residence_township": RESIDENCE, "registration_township": REGISTRATION,
        "person": {"citizen_id": demo_records.citizen_id(rng, REGISTRATION[:6], born),
                   "name": rng.choice(demo_records.SURNAMES) + rng.choice(demo_records.GIVEN),
                   "birth_date": born.isoformat(), "sex": "2"},
        "current_address": f"幸福路{i % 500 + 1}号",
    }


def service_cpu_s() -> dict[str, float]:
    """CPU seconds used so far by the machine's PostgreSQL and RabbitMQ processes (all of them: the
    services are shared, so run this on an otherwise quiet machine)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {"postgresql": 0.0, "rabbitmq": 0.0}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        key = "postgresql" if name.startswith("postgres") else "rabbitmq" if name.startswith("beam") else None
        if key:
            out[key] += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return out


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def clerk(township: str) -> Principal:
    return Principal(f"bench-clerk-{township}", Role.CLERK, township)


def settings(common: dict[str, Any], gateway_id: str, township: str) -> Settings:
    # tick_interval_s stays as production has it (60 s): the minute tick runs during the run.
    return Settings(gateway_id=gateway_id, nodes=[township], **common)


def wrap_stored(gw: Gateway, on_stored: Any) -> None:
    """Call ``on_stored(outcomes)`` after each batch the gateway's consumer stored."""
    assert gw.inbox is not None
    receive = gw.handle_batch

    async def observed(deliveries):  # type: ignore[no-untyped-def]
        outcomes = await receive(deliveries)
        on_stored([o for o in outcomes if o.result == "stored" and o.message_id])
        return outcomes

    gw.inbox._receive_batch = observed


# --- the registration gateway: its own process; its clerk answers every query once stored -----------

async def _registration(conn: Connection, common: dict[str, Any], token: str) -> None:
    gw = build_gateway(settings(common, f"reg-{token}", REGISTRATION))
    view = NodeView.of(gw, clerk(REGISTRATION), None, REGISTRATION)
    rng = random.Random(20261203)
    slots = asyncio.Semaphore(CLERKS)
    pending: set[asyncio.Task[None]] = set()
    failures: list[str] = []

    async def answer(query_id: str) -> None:
        payload = (demo_records.not_found_feedback(rng) if rng.random() < NOT_FOUND_SHARE
                   else demo_records.found_feedback(rng, BORN, RESIDENCE))
        async with slots:
            try:
                feedback = await view.answer(query_id, payload)
            except Exception as exc:  # reported, never silent: the parent fails the run
                failures.append(f"{query_id}: {exc!r}")
                conn.send(("answer_failed", query_id, repr(exc)))
                return
        conn.send(("answered", query_id, feedback.message_id))

    def stored(outcomes: list[Any]) -> None:
        now = time.perf_counter()
        conn.send(("stored", [(o.message_id, now) for o in outcomes]))
        for o in outcomes:
            task = asyncio.get_running_loop().create_task(answer(o.message_id))
            pending.add(task)
            task.add_done_callback(pending.discard)

    wrap_stored(gw, stored)
    await gw.start()
    loop = asyncio.get_running_loop()
    commands = command_queue(conn)
    conn.send(("ready",))
    while True:
        command = (await commands.get())[0]
        if command == "cpu":
            conn.send(("cpu", cpu_s()))
        elif command == "rss":
            conn.send(("rss", rss_mb()))
        elif command == "stop":
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            await gw.stop()
            conn.send(("stopped", len(failures)))
        elif command == "delete_topology":
            loop.remove_reader(conn.fileno())
            await gw.broker.delete_topology()  # type: ignore[attr-defined]
            conn.send(("deleted",))
            return


def registration_main(conn: Connection, common: dict[str, Any], token: str) -> None:
    try:
        asyncio.run(_registration(conn, common, token))
    except Exception as exc:
        conn.send(("error", repr(exc)))
        raise


# --- the residence gateway: this process ------------------------------------------------------------

class Product:
    def __init__(self, amqp_url: str, residence_db: str, registration_db: str, data_dir: Path) -> None:
        self.token = secrets.token_hex(3)
        common = dict(exchange=f"bench-{self.token}.exchange", data_dir=data_dir, amqp_url=amqp_url,
                      key_passphrase=None)
        init_nodes(Settings(gateway_id=f"init-{self.token}", nodes=[RESIDENCE, REGISTRATION],
                            database_url=residence_db, **common), datetime.now(timezone.utc))
        self.residence = build_gateway(settings({**common, "database_url": residence_db}, f"res-{self.token}", RESIDENCE))
        self.view = NodeView.of(self.residence, clerk(RESIDENCE), None, RESIDENCE)
        self.child_common = {**common, "database_url": registration_db}
        self.query_stored: dict[str, float] = {}  # query id → stored at the registration gateway
        self.feedback_of: dict[str, str] = {}  # feedback id → its query id
        self.feedback_stored: dict[str, float] = {}  # query id → its feedback stored back here
        self._early: dict[str, float] = {}  # feedback stored before the child said whose it is
        self.answer_failures: list[str] = []
        wrap_stored(self.residence, self._feedback_stored)
        self.process: Any = None
        self.peer: Peer | None = None

    def _feedback_stored(self, outcomes: list[Any]) -> None:
        now = time.perf_counter()
        for o in outcomes:
            query_id = self.feedback_of.pop(o.message_id, None)
            if query_id is None:
                self._early[o.message_id] = now
            else:
                self.feedback_stored.setdefault(query_id, now)

    def _from_child(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "stored":
            for query_id, at in message[1]:
                self.query_stored.setdefault(query_id, at)
        elif kind == "answered":
            _, query_id, feedback_id = message
            early = self._early.pop(feedback_id, None)
            if early is None:
                self.feedback_of[feedback_id] = query_id
            else:  # stored here before the child said whose it is: nothing more to wait for
                self.feedback_stored.setdefault(query_id, early)
        elif kind == "answer_failed":
            self.answer_failures.append(f"{message[1]}: {message[2]}")

    async def start(self) -> None:
        parent_end, child_end = SPAWN.Pipe()
        self.process = SPAWN.Process(target=registration_main, args=(child_end, self.child_common, self.token), daemon=True)
        self.process.start()
        self.peer = Peer(parent_end, self.process)
        peer = self.peer

        def readable() -> None:  # the child's reports go to _from_child, replies to our requests to the peer
            while peer.conn.poll():
                message = peer.conn.recv()
                if message[0] in ("stored", "answered", "answer_failed"):
                    self._from_child(message)
                else:
                    peer.replies.put_nowait(message)

        loop = asyncio.get_running_loop()
        loop.remove_reader(parent_end.fileno())
        loop.add_reader(parent_end.fileno(), readable)
        await self.peer.reply(180)  # the registration gateway consumes
        await self.residence.start()

    async def stop(self) -> None:
        await self.residence.stop()
        assert self.peer is not None
        try:
            await self.peer.ask("stop")
            await self.residence.broker.delete_topology()  # type: ignore[attr-defined]
            await self.peer.ask("delete_topology")
        finally:
            self.peer.close()
            self.process.join(30)
            if self.process.is_alive():
                self.process.terminate()

    async def child(self, what: str) -> float:
        assert self.peer is not None
        return (await self.peer.ask(what))[1]

    async def _wait_back(self, ids: list[str], timeout_s: float) -> None:
        deadline = time.perf_counter() + timeout_s
        while any(i not in self.feedback_stored for i in ids):
            if self.answer_failures:
                raise RuntimeError(f"answers failed: {self.answer_failures[:3]}")
            if time.perf_counter() > deadline:
                missing = sum(i not in self.feedback_stored for i in ids)
                raise TimeoutError(f"{missing} of {len(ids)} round trips did not complete")
            await asyncio.sleep(0.005)

    async def burst(self, n: int) -> tuple[float, list[str]]:
        slots = asyncio.Semaphore(CLERKS)
        ids: list[str] = []

        async def one(i: int) -> None:
            async with slots:
                ids.append((await self.view.submit(query(i))).message_id)

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        await self._wait_back(ids, 900)
        return time.perf_counter() - started, ids

    async def paced(self, per_s: float, seconds: float, *, sample_rss_s: float = 0) -> dict[str, Any]:
        """Queries at ``per_s``, open loop: latencies, and the memory of both processes if asked.

        Each round trip is folded into two arrays of latencies as soon as its feedback is back, and
        forgotten: what this process holds for the bench does not grow with the soak (8 bytes a sample)."""
        submitted: dict[str, float] = {}
        one_way, round_trip = array("d"), array("d")
        tasks = []
        rss: list[tuple[float, float, float]] = []

        async def one(i: int, at: float) -> None:
            submitted[(await self.view.submit(query(i))).message_id] = at

        started = time.perf_counter()
        next_sample = started
        total = int(per_s * seconds)
        for i in range(total):
            due = started + i / per_s
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, time.perf_counter())))
            if sample_rss_s and time.perf_counter() >= next_sample:
                self._harvest(submitted, one_way, round_trip)
                rss.append((round(time.perf_counter() - started, 1), round(rss_mb(), 1), round(await self.child("rss"), 1)))
                next_sample += sample_rss_s
            if len(tasks) > 500:  # the submits done are let go (a failed one raises), the open loop goes on
                for task in tasks:
                    if task.done():
                        task.result()
                tasks = [t for t in tasks if not t.done()]
        await asyncio.gather(*tasks)
        deadline = time.perf_counter() + 300
        while self._harvest(submitted, one_way, round_trip):
            if self.answer_failures:
                raise RuntimeError(f"answers failed: {self.answer_failures[:3]}")
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{len(submitted)} of {total} round trips did not complete")
            await asyncio.sleep(0.005)
        out: dict[str, Any] = {"queries_per_s": round(per_s, 1), "messages_per_s": round(2 * per_s, 1),
                               "queries": len(round_trip), "query_ms": quantiles(one_way),
                               "round_trip_ms": quantiles(round_trip)}
        if rss:
            rss.append((round(time.perf_counter() - started, 1), round(rss_mb(), 1), round(await self.child("rss"), 1)))
            out["rss_mb_residence_registration"] = rss
        return out

    def _harvest(self, submitted: dict[str, float], one_way: array[float], round_trip: array[float]) -> int:
        """Fold the round trips that are back into the latency arrays and forget them; how many are not back."""
        for query_id in [q for q in submitted if q in self.feedback_stored]:
            at = submitted.pop(query_id)
            round_trip.append(self.feedback_stored.pop(query_id) - at)
            stored = self.query_stored.pop(query_id, None)
            if stored is not None:
                one_way.append(stored - at)
        return len(submitted)


async def cpu_snapshot(product: "Product") -> dict[str, float]:
    """CPU seconds so far: this (residence) process, the registration process, PostgreSQL, RabbitMQ."""
    return {"residence": cpu_s(), "registration": await product.child("cpu"), **service_cpu_s()}


async def cpu_per_message(product: "Product", before: dict[str, float], messages: int) -> dict[str, float]:
    after = await cpu_snapshot(product)
    return {k: round((after[k] - before[k]) * 1000 / messages, 3) for k in before}


async def analyze(*urls: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    for url in urls:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text("ANALYZE"))
        finally:
            await engine.dispose()


def quantiles(samples: Sequence[float]) -> dict[str, float]:
    if len(samples) < 2:
        return {}
    qs = statistics.quantiles(samples, n=100)
    return {"p50": round(qs[49] * 1000, 1), "p95": round(qs[94] * 1000, 1), "p99": round(qs[98] * 1000, 1)}


async def product_run(amqp_url: str, n: int, latency_s: float, soak: int, sqlite: bool,
                      soak_rate: float = 0.0, pg_server: str = PG_SERVER) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-product-") as tmp:
        if sqlite:
            residence_db, registration_db = (f"sqlite+aiosqlite:///{tmp}/{name}.db" for name in ("residence", "registration"))
            created: list[str | None] = []
        else:
            (residence_db, a), (registration_db, b) = (await fresh_database(None, pg_server),
                                                            await fresh_database(None, pg_server))
            created = [a, b]
        try:
            product = Product(amqp_url, residence_db, registration_db, Path(tmp))
            await product.start()
            try:
                await product.burst(min(300, n))  # warm-up: pools, caches, the first plans
                if not sqlite:
                    # Each database as it is after a gateway's first minute, once autovacuum has analyzed
                    # what the warm-up stored (a run this short would otherwise be measured entirely
                    # before its first ANALYZE, on the plans of empty tables).
                    await analyze(residence_db, registration_db)
                before = await cpu_snapshot(product)
                elapsed, _ = await product.burst(n)
                messages_per_s = 2 * n / elapsed
                result: dict[str, Any] = {
                    "queries": n, "messages": 2 * n, "elapsed_s": round(elapsed, 2),
                    "messages_per_s": round(messages_per_s), "round_trips_per_s": round(n / elapsed),
                    "cpu_ms_per_message": await cpu_per_message(product, before, 2 * n),
                    "database": "sqlite" if sqlite else f"postgresql ({_pg_route(pg_server)})",
                }
                envelope = await product.residence.store.list_messages(RESIDENCE, __import__(
                    "gateway.exchange.records", fromlist=["Direction"]).Direction.OUT, limit=1)
                result["envelope_bytes"] = len(envelope[0].envelope) if envelope else 0
                if latency_s > 0:
                    before = await cpu_snapshot(product)
                    paced = result["latency_at_half_load"] = await product.paced(messages_per_s / 4, latency_s)
                    # Small batches at this rate: each message costs more than in the burst.
                    paced["cpu_ms_per_message"] = await cpu_per_message(product, before, 2 * paced["queries"])
                if soak:
                    rate = soak_rate or messages_per_s / 4
                    result["soak"] = await product.paced(rate, soak / 2 / rate, sample_rss_s=10)
            finally:
                await product.stop()
            if product.answer_failures:
                raise RuntimeError(f"answers failed: {product.answer_failures[:3]}")
            return result
        finally:
            for name in created:
                await drop_database(name, pg_server)


def _pg_route(server: str) -> str:
    host = make_url(server).query.get("host")
    return f"Unix socket {host}" if host else "TCP"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--queries", type=int, default=3000, help="round trips in the measured burst")
    parser.add_argument("--latency-s", type=float, default=10.0)
    parser.add_argument("--soak", type=int, default=0, help="messages of a further soak at the latency rate")
    parser.add_argument("--soak-rate", type=float, default=0.0,
                        help="queries/s of the soak (default: the latency rate, which small batches may not sustain)")
    parser.add_argument("--sqlite", action="store_true", help="each gateway on SQLite (the embedded default)")
    parser.add_argument("--pg-server", default=PG_SERVER,
                        help="the PostgreSQL server the two databases are made on (default TCP on 127.0.0.1; a gateway "
                             "on the database's host: postgresql+asyncpg://postgres@/postgres?host=/var/run/postgresql)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load_before = list(os.getloadavg())
    product = await product_run(args.amqp_url, args.queries, args.latency_s, args.soak, args.sqlite, args.soak_rate,
                                 args.pg_server)
    bare_result = await bare(args.amqp_url, 2 * args.queries, product.get("envelope_bytes") or 1500)
    report = {
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()},
        "product": product,
        "bare_aio_pika": bare_result,
        "ratio": round(product["messages_per_s"] / bare_result["end_to_end_per_s"], 3),
        "load_average_before_after": [load_before, list(os.getloadavg())],
    }
    print(json.dumps(report, ensure_ascii=False) if args.json else json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
