"""The full secure path against bare aio-pika, side by side, in one run, on the same broker.

1. bare: aio-pika publishes N persistent messages of the envelope's size to a quorum queue (publisher
   confirms, 500 in flight) while a consumer (prefetch 200) acks them: messages/s end to end.
2. gateway: a residence gateway submits N queries (codec → seal → message + outbox row in one
   transaction) → relay → broker → the registration gateway's batching consumer (verify, decrypt,
   validate, store in one transaction, ack) on PostgreSQL; delivery receipts flow back as in production.
   Throughput = N / time until the last one is stored.
3. latency: the gateway path at half its measured peak, open loop, for ``--latency-s`` seconds:
   submit → stored at the recipient, p50/p95/p99.
4. ``--profile``: cProfile of a second gateway run, top functions by own time.

Run: python bench/bench_transport.py --messages 5000 [--database-url postgresql+asyncpg://…] [--profile] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import platform
import pstats
import secrets
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aio_pika
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.bootstrap import Gateway, build_gateway
from gateway.node_setup import init_nodes
from gateway.settings import Settings

RESIDENCE, REGISTRATION = "110101001", "120101001"
PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def query(i: int) -> dict[str, Any]:
    return {
        "kind": "query", "residence_township": RESIDENCE, "registration_township": REGISTRATION,
        "person": {"citizen_id": "120101199005170245", "name": "王秀英", "birth_date": "1990-05-17", "sex": "2"},
        "current_address": f"幸福路{i}号",
    }


# --- bare aio-pika ---------------------------------------------------------------------------------

async def bare(amqp_url: str, n: int, size: int) -> dict[str, Any]:
    name = f"bench-bare-{secrets.token_hex(3)}"
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        pub = await connection.channel(publisher_confirms=True)
        sub = await connection.channel()
        await sub.set_qos(prefetch_count=200)
        queue = await pub.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
        body = secrets.token_bytes(size)
        got = 0
        done = asyncio.Event()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal got
            await message.ack()
            got += 1
            if got == n:
                done.set()

        consume_q = await sub.get_queue(name)
        await consume_q.consume(on_message)
        slots = asyncio.Semaphore(500)

        async def one(i: int) -> None:
            async with slots:
                await pub.default_exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, message_id=str(i)),
                    routing_key=name)

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        published_s = time.perf_counter() - started
        await asyncio.wait_for(done.wait(), 300)
        elapsed = time.perf_counter() - started
        await pub.queue_delete(name)
    return {"messages": n, "size": size, "publish_per_s": round(n / published_s),
            "end_to_end_per_s": round(n / elapsed), "elapsed_s": round(elapsed, 2)}


# --- the gateway -----------------------------------------------------------------------------------

async def fresh_database(url: str | None) -> tuple[str, str | None]:
    if url:
        return url, None
    name = f"bench_{secrets.token_hex(4)}"
    admin = create_async_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return PG_SERVER.rsplit("/", 1)[0] + f"/{name}", name


async def drop_database(name: str | None) -> None:
    if name is None:
        return
    admin = create_async_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


class Pair:
    """A residence gateway and a registration gateway, own queues, one database (rows keyed by node)."""

    def __init__(self, amqp_url: str, database_url: str, data_dir: Path, *, hooks: bool = False) -> None:
        token = secrets.token_hex(3)
        common = dict(exchange=f"bench-{token}.exchange", data_dir=data_dir, database_url=database_url,
                      amqp_url=amqp_url, key_passphrase=None, tick_interval_s=0)
        init_nodes(Settings(gateway_id=f"init-{token}", nodes=[RESIDENCE, REGISTRATION], **common),
                   datetime.now(timezone.utc))
        self.residence = build_gateway(Settings(gateway_id=f"res-{token}", nodes=[RESIDENCE], **common))
        self.registration = build_gateway(Settings(gateway_id=f"reg-{token}", nodes=[REGISTRATION], **common))
        if not hooks:
            # The transport path the issue measures: no delivery receipts, case tracking or archive chain
            # (those are the workflow's and the archive's own costs, measured with --hooks).
            from gateway.exchange.ports import NoObserver

            for gw in (self.residence, self.registration):
                gw.service.receipts = None
                gw.service.observer = NoObserver()
                gw.archive = None
        self.stored_at: dict[str, float] = {}
        receive = self.registration.handle_batch

        async def timed(deliveries):  # type: ignore[no-untyped-def]
            outcomes = await receive(deliveries)
            now = time.perf_counter()
            for o in outcomes:
                if o.result == "stored" and o.message_id:
                    self.stored_at.setdefault(o.message_id, now)
            return outcomes

        assert self.registration.inbox is not None
        self.registration.inbox._receive_batch = timed

    async def start(self) -> None:
        await self.registration.start()
        await self.residence.start()

    async def stop(self) -> None:
        for gw in (self.residence, self.registration):
            await gw.stop()
            await gw.broker.delete_topology()  # type: ignore[attr-defined]

    async def burst(self, n: int, concurrency: int = 64) -> float:
        slots = asyncio.Semaphore(concurrency)
        before = len(self.stored_at)

        async def one(i: int) -> None:
            async with slots:
                await self.residence.service.submit(RESIDENCE, query(i))

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        while len(self.stored_at) - before < n:
            await asyncio.sleep(0.005)
            if time.perf_counter() - started > 600:
                raise TimeoutError("messages did not arrive")
        return time.perf_counter() - started

    async def paced(self, rate: float, seconds: float) -> list[float]:
        """Open loop at ``rate`` messages/s: latency submit → stored at the recipient, per message."""
        submitted: dict[str, float] = {}
        tasks = []

        async def one(i: int, at: float) -> None:
            stored = await self.residence.service.submit(RESIDENCE, query(i))
            submitted[stored.message_id] = at

        started = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            due = started + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, time.perf_counter())))
        await asyncio.gather(*tasks)
        deadline = time.perf_counter() + 60
        while any(m not in self.stored_at for m in submitted) and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        return [self.stored_at[m] - t for m, t in submitted.items() if m in self.stored_at]


async def gateway_run(amqp_url: str, database_url: str | None, n: int, latency_s: float,
                      profile: bool, hooks: bool = False) -> dict[str, Any]:
    url, created = await fresh_database(database_url)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-transport-") as tmp:
            pair = Pair(amqp_url, url, Path(tmp), hooks=hooks)
            await pair.start()
            try:
                await pair.burst(min(500, n))  # warm-up: connections, caches, JIT-free Python but warm pools
                elapsed = await pair.burst(n)
                throughput = n / elapsed
                sample = await pair.residence.store.list_messages(RESIDENCE, __import__(
                    "gateway.exchange.records", fromlist=["Direction"]).Direction.OUT, limit=1)
                size = len(sample[0].envelope) if sample else 0
                latencies = await pair.paced(throughput / 2, latency_s) if latency_s > 0 else []
                profile_text = None
                if profile:
                    profiler = cProfile.Profile()
                    profiler.enable()
                    await pair.burst(n)
                    profiler.disable()
                    buffer = io.StringIO()
                    pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(25)
                    profile_text = buffer.getvalue()
                inbox = pair.registration.inbox
                batches = inbox.batches if inbox else 0
            finally:
                await pair.stop()
    finally:
        await drop_database(created)
    result: dict[str, Any] = {"messages": n, "envelope_bytes": size, "end_to_end_per_s": round(throughput),
                              "elapsed_s": round(elapsed, 2), "consumer_batches": batches}
    if latencies:
        qs = statistics.quantiles(latencies, n=100)
        result["latency_at_half_peak"] = {"rate_per_s": round(throughput / 2), "count": len(latencies),
                                          "p50_ms": round(qs[49] * 1000, 1), "p95_ms": round(qs[94] * 1000, 1),
                                          "p99_ms": round(qs[98] * 1000, 1)}
    if profile_text:
        result["profile_top_tottime"] = profile_text
    return result


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--database-url", default=None, help="default: a throw-away PostgreSQL database")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--latency-s", type=float, default=10.0)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--hooks", action="store_true",
                        help="also measure with delivery receipts, case tracking and the archive chain switched on")
    args = parser.parse_args()
    load_before = list(__import__("os").getloadavg())  # the machine is shared: say how busy it was
    gateway = await gateway_run(args.amqp_url, args.database_url, args.messages, args.latency_s, args.profile)
    bare_result = await bare(args.amqp_url, args.messages, gateway["envelope_bytes"] or 1500)
    report = {
        "machine": {"cpu": cpu_model(), "cores": __import__("os").cpu_count(), "python": platform.python_version()},
        "bare_aio_pika": bare_result,
        "gateway": {k: v for k, v in gateway.items() if k != "profile_top_tottime"},
        "ratio": round(gateway["end_to_end_per_s"] / bare_result["end_to_end_per_s"], 3),
    }
    if args.hooks:
        with_hooks = await gateway_run(args.amqp_url, args.database_url, args.messages, 0, False, hooks=True)
        report["gateway_with_receipts_tracking_archive"] = with_hooks
    report["load_average_before_after"] = [load_before, list(__import__("os").getloadavg())]
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        if "profile_top_tottime" in gateway:
            print(gateway["profile_top_tottime"])


if __name__ == "__main__":
    asyncio.run(main())
