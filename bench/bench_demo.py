"""`gateway demo` against bare aio-pika round trips on the same broker, in one run (issue 16).

1. the demo, exactly as `gateway demo --townships T --messages N` runs it: township nodes in one
   process on the embedded default (SQLite), every feature on — clerks signed in over HTTP, every
   request audited, each query sealed, relayed, opened, tracked as a case and receipted, answered by
   the other township's clerk over HTTP (15 % 查无此人), the feedback back, receipted, archived.
   **Round trips/s = N / (first query submitted → last answer linked back to its query)**; the clerks'
   sign-in before that (Argon2id, ≈ 0.3 s each by design) is reported apart, and the demo's own
   `elapsed_s` (everything, set-up included) too;
2. bare aio-pika, same process, same broker, same concurrency (64): a client publishes a persistent
   request with a publisher confirm to a quorum queue; a responder consumes it, publishes a persistent
   reply with a confirm to a second quorum queue and acks the request; the client consumes the reply
   and acks it. N such round trips: the transport a query → feedback round trip rides on, and nothing else.

    python bench/bench_demo.py --townships 20 --messages 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import aio_pika

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.demo import run_demo, summary_dict  # noqa: E402

CONCURRENCY = 64


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


async def demo(amqp_url: str, townships: int, messages: int) -> dict[str, Any]:
    marks: dict[str, tuple[float, float]] = {}

    def echo(line: str) -> None:
        for key, start in (("signed_in", "one clerk per township signed in"),
                           ("linked", "residence places saw")):
            if line.startswith(start):
                marks[key] = (time.perf_counter(), cpu_s())

    started = time.perf_counter()
    summary = await run_demo(amqp_url=amqp_url, townships=townships, messages=messages, echo=echo)
    (t0, c0), (t1, c1) = marks["signed_in"], marks["linked"]
    return {
        "summary": summary_dict(summary),
        "round_trips_per_s": round(messages / (t1 - t0), 1),
        "exchange_s": round(t1 - t0, 2),
        "sign_in_s": round(t0 - started, 2),
        "cpu_ms_per_round_trip": round((c1 - c0) * 1000 / messages, 2),
    }


async def bare_round_trips(amqp_url: str, n: int, size: int = 700) -> dict[str, Any]:
    token = secrets.token_hex(3)
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        client = await connection.channel(publisher_confirms=True)
        responder = await connection.channel(publisher_confirms=True)
        for channel in (client, responder):
            await channel.set_qos(prefetch_count=200)
        args = {"x-queue-type": "quorum"}
        requests = await responder.declare_queue(f"bench-rt-req-{token}", durable=True, arguments=args)
        replies = await client.declare_queue(f"bench-rt-rep-{token}", durable=True, arguments=args)
        body = secrets.token_bytes(size)
        waiting: dict[str, asyncio.Future[None]] = {}

        async def respond(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await responder.default_exchange.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                                 correlation_id=message.correlation_id), routing_key=replies.name)
            await message.ack()

        async def replied(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await message.ack()
            future = waiting.pop(message.correlation_id or "", None)
            if future is not None and not future.done():
                future.set_result(None)

        await requests.consume(respond)
        await replies.consume(replied)
        slots = asyncio.Semaphore(CONCURRENCY)
        loop = asyncio.get_running_loop()

        async def one(i: int) -> None:
            async with slots:
                future = waiting[str(i)] = loop.create_future()
                await client.default_exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, correlation_id=str(i)),
                    routing_key=requests.name)
                await future

        cpu_before, started = cpu_s(), time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        elapsed, cpu = time.perf_counter() - started, cpu_s() - cpu_before
        await requests.delete(if_unused=False, if_empty=False)
        await replies.delete(if_unused=False, if_empty=False)
    return {"round_trips": n, "round_trips_per_s": round(n / elapsed, 1), "elapsed_s": round(elapsed, 2),
            "cpu_ms_per_round_trip": round(cpu * 1000 / n, 3), "message_bytes": size}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--amqp-url", default=os.environ.get("GATEWAY_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"))
    parser.add_argument("--townships", type=int, default=20)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load_before = list(os.getloadavg())
    gateway = await demo(args.amqp_url, args.townships, args.messages)
    bare = await bare_round_trips(args.amqp_url, args.messages)
    report = {
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()},
        "demo": gateway,
        "bare_aio_pika": bare,
        "ratio": round(gateway["round_trips_per_s"] / bare["round_trips_per_s"], 3),
        "load_average_before_after": [load_before, list(os.getloadavg())],
    }
    print(json.dumps(report, ensure_ascii=False) if args.json else json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
