"""What a queue and a binding cost on the broker: the numbers behind the topology in docs/transport.md.

Declares N idle quorum queues, then N classic queues, then one queue with B bindings (township codes),
and reads the broker's memory breakdown and the beam process's RSS before and after each step; with
``--restart`` it also times the broker's restart (stop_app / start_app) with the quorum queues present.
Everything it declares is deleted at the end.

Run (as a user allowed to run rabbitmqctl):
    python bench/bench_transport_queues.py --queues 500 2000 --bindings 40000 [--restart] [--json]
Needs the local broker to itself for the duration: other tests slow down while it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import aio_pika

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def memory_breakdown() -> dict[str, int]:
    out = subprocess.run(
        ["rabbitmq-diagnostics", "-q", "memory_breakdown", "--unit", "kb", "--formatter", "json"],
        check=True, capture_output=True, text=True,
    ).stdout
    return {k: int(v["bytes"]) for k, v in json.loads(out).items()}


def beam_rss_bytes() -> int:
    pid = subprocess.run(["pgrep", "-f", "beam.smp"], capture_output=True, text=True).stdout.split()
    for line in Path(f"/proc/{pid[0]}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def snapshot() -> dict[str, int]:
    b = memory_breakdown()
    used = sum(v for k, v in b.items() if k not in ("reserved_unallocated", "allocated_unused"))
    return {"used": used, "rss": beam_rss_bytes(), **b}


def delta(before: dict[str, int], after: dict[str, int], keys: list[str]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in keys}


async def declare_queues(names: list[str], arguments: dict[str, Any], workers: int = 8) -> float:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channels = [await connection.channel(publisher_confirms=False) for _ in range(workers)]
        started = time.perf_counter()

        async def work(i: int) -> None:
            for name in names[i::workers]:
                await channels[i].declare_queue(name, durable=True, arguments=arguments)

        await asyncio.gather(*(work(i) for i in range(workers)))
        return time.perf_counter() - started


async def delete_queues(names: list[str], workers: int = 8) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channels = [await connection.channel(publisher_confirms=False) for _ in range(workers)]

        async def work(i: int) -> None:
            for name in names[i::workers]:
                await channels[i].queue_delete(name)

        await asyncio.gather(*(work(i) for i in range(workers)))


async def declare_bindings(prefix: str, count: int) -> tuple[float, str, str]:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=False)
        exchange = await channel.declare_exchange(f"{prefix}.x", aio_pika.ExchangeType.DIRECT, durable=True)
        queue = await channel.declare_queue(f"{prefix}.bound", durable=True, arguments={"x-queue-type": "quorum"})
        started = time.perf_counter()
        codes = [f"{110000000 + i:09d}" for i in range(count)]
        # Several bindings in flight at once, as the gateway's start-up does.
        window = 64
        for i in range(0, count, window):
            await asyncio.gather(*(queue.bind(exchange, routing_key=c) for c in codes[i:i + window]))
        return time.perf_counter() - started, exchange.name, queue.name


async def routed_publish_rate(exchange: str, count: int = 5000) -> float:
    """Publish rate (confirms, 500 in flight) into the exchange with many bindings: does routing slow down?"""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        x = await channel.get_exchange(exchange)
        body = b"x" * 1500
        slots = asyncio.Semaphore(500)

        async def one(i: int) -> None:
            async with slots:
                await x.publish(aio_pika.Message(body), routing_key=f"{110000000 + (i * 7919) % count:09d}")

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        return count / (time.perf_counter() - started)


def restart_seconds() -> float:
    started = time.perf_counter()
    subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "await_startup"], check=True, capture_output=True)
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queues", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--bindings", type=int, default=40_000)
    parser.add_argument("--restart", action="store_true", help="also time a broker restart with the largest quorum set")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    prefix = f"bench-qcost-{secrets.token_hex(3)}"
    keys = ["used", "rss", "quorum_queue_procs", "queue_procs", "quorum_ets", "other_ets", "mnesia", "binary", "other_proc"]
    results: dict[str, Any] = {"broker": subprocess.run(["rabbitmqctl", "-q", "version"], capture_output=True, text=True).stdout.strip()}
    for kind, arguments in (("quorum", {"x-queue-type": "quorum"}), ("classic", {"x-queue-type": "classic"})):
        for n in args.queues:
            names = [f"{prefix}.{kind}.{n}.{i}" for i in range(n)]
            before = snapshot()
            seconds = await declare_queues(names, arguments)
            await asyncio.sleep(3)  # let the queue processes settle before reading memory
            after = snapshot()
            d = delta(before, after, keys)
            row = {"queues": n, "declare_s": round(seconds, 2), "declare_per_s": round(n / seconds),
                   "bytes_per_queue_used": d["used"] // n, "bytes_per_queue_rss": d["rss"] // n, "delta": d}
            if args.restart and kind == "quorum" and n == max(args.queues):
                row["restart_s_with_queues"] = round(restart_seconds(), 1)
            await delete_queues(names)
            results[f"{kind}_{n}"] = row
            if not args.json:
                print(kind, json.dumps(row))
    if args.restart:
        results["restart_s_baseline"] = round(restart_seconds(), 1)
    if args.bindings:
        before = snapshot()
        seconds, exchange, queue = await declare_bindings(prefix, args.bindings)
        await asyncio.sleep(2)
        after = snapshot()
        d = delta(before, after, keys)
        rate = await routed_publish_rate(exchange, args.bindings)
        results["bindings"] = {"bindings": args.bindings, "declare_s": round(seconds, 2),
                               "bytes_per_binding_used": d["used"] // args.bindings, "delta": d,
                               "publish_per_s_routed": round(rate)}
        if not args.json:
            print("bindings", json.dumps(results["bindings"]))
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(queue)
            await channel.exchange_delete(exchange)
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main())
