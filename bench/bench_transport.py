"""The full secure path against bare aio-pika, side by side, in one run, on the same broker.

Both sides run as production runs them: the sending side in this process and the receiving side in a
process of its own (one process per gateway, so each may use its own core). ``--one-process`` puts
everything in this one process instead (how this benchmark measured before).

1. bare: aio-pika publishes N persistent messages of the envelope's size to a quorum queue (publisher
   confirms, 500 in flight) from this process while a consumer in another process (prefetch 200) acks
   them: messages/s from the first publish until the consumer acked the last one.
2. gateway: a residence gateway (this process) submits N queries (codec → seal → message + outbox row
   in one transaction) → relay → broker → the registration gateway (its own process) and its batching
   consumer (verify, decrypt, validate, store in one transaction, ack) on PostgreSQL. Throughput =
   N / time from the first submit until the last one is stored (timestamps from CLOCK_MONOTONIC,
   which both processes share). Each gateway has its own throw-away database, as in production. Delivery receipts, case tracking and the archive are off (``--hooks``
   measures them too, in one process).
3. latency: the gateway path at half its measured peak, open loop, for ``--latency-s`` seconds:
   submit → stored at the recipient, p50/p95/p99.
4. CPU per message of each side (user + system time of each process over the measured burst).
5. ``--profile``: cProfile of a further burst, top functions by own time, sender and receiver apart.

Run: python bench/bench_transport.py --messages 5000 [--database-url postgresql+asyncpg://…] [--profile] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import multiprocessing
import os
import platform
import pstats
import resource
import secrets
import statistics
import tempfile
import time
from datetime import datetime, timezone
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aio_pika
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.bootstrap import Gateway, build_gateway
from gateway.node_setup import init_nodes
from gateway.settings import Settings

RESIDENCE, REGISTRATION = "110101001", "120101001"
PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
SPAWN = multiprocessing.get_context("spawn")  # a clean interpreter, as a second gateway process would be


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def cpu_s() -> float:
    """User + system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def query(i: int) -> dict[str, Any]:
    return {
        "kind": "query", "residence_township": RESIDENCE, "registration_township": REGISTRATION,
        "person": {"citizen_id": "120101199005170245", "name": "王秀英", "birth_date": "1990-05-17", "sex": "2"},
        "current_address": f"幸福路{i}号",
    }


def cpu_profiler() -> cProfile.Profile:
    """cProfile on this process's CPU time: waiting (epoll, a busy machine) does not count."""
    return cProfile.Profile(time.process_time)


def by_package(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Own CPU time summed by where the code lives: the gateway's packages, each library, asyncio."""
    totals: dict[str, float] = {}
    for (filename, _, name), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        if "/gateway/" in filename:
            key = "gateway." + filename.split("/gateway/", 1)[1].split("/", 1)[0].removesuffix(".py")
        elif "site-packages/" in filename:
            key = filename.split("site-packages/", 1)[1].split("/", 1)[0]
        elif filename == "~":  # C functions: name the ones that matter
            key = ("cryptography (OpenSSL)" if "cryptography" in name else "socket" if "socket" in name
                   else "select/epoll" if "poll" in name else "other built-ins")
        else:
            key = "stdlib " + Path(filename).stem
        totals[key] = totals.get(key, 0.0) + tottime
    return sorted(totals.items(), key=lambda kv: -kv[1])


def profile_text(profiler: cProfile.Profile, top: int = 25) -> str:
    """CPU time by package, top functions by own CPU time, the gateway's own functions by cumulative."""
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    total = sum(t for _, t in by_package(stats)) or 1.0
    buffer.write("own CPU time by package:\n")
    for key, seconds in by_package(stats)[:18]:
        buffer.write(f"  {seconds:7.3f} s {100 * seconds / total:5.1f} %  {key}\n")
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(r"/gateway/", 20)
    return buffer.getvalue()


class Peer:
    """The parent's end of a pipe to a child process: replies are awaited, ``stored`` reports are streamed."""

    def __init__(self, conn: Connection, process: Any, on_stored: Any = None) -> None:
        self.conn = conn
        self.process = process
        self.on_stored = on_stored
        self.replies: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        asyncio.get_running_loop().add_reader(conn.fileno(), self._readable)

    def _readable(self) -> None:
        while self.conn.poll():
            message = self.conn.recv()
            if message[0] == "stored" and self.on_stored is not None:
                self.on_stored(message[1])
            else:
                self.replies.put_nowait(message)

    async def reply(self, timeout: float = 600) -> tuple[Any, ...]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = await asyncio.wait_for(self.replies.get(), 1.0)
                break
            except asyncio.TimeoutError:
                if not self.process.is_alive():
                    raise RuntimeError(f"child process died (exit code {self.process.exitcode})") from None
                if time.monotonic() > deadline:
                    raise
        if message[0] == "error":
            raise RuntimeError(f"child process failed: {message[1]}")
        return message

    async def ask(self, *command: Any) -> tuple[Any, ...]:
        self.conn.send(command)
        return await self.reply()

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.conn.fileno())
        self.conn.close()


# --- bare aio-pika ---------------------------------------------------------------------------------

async def _bare_consume(conn: Connection, amqp_url: str, name: str, n: int) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        sub = await connection.channel()
        await sub.set_qos(prefetch_count=200)
        got = 0
        cpu_at_first = 0.0

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal got, cpu_at_first
            if got == 0:
                cpu_at_first = cpu_s()
            await message.ack()
            got += 1
            if got == n:
                conn.send(("done", time.perf_counter(), cpu_s() - cpu_at_first))

        queue = await sub.get_queue(name)
        await queue.consume(on_message)
        conn.send(("ready",))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)  # "stop"


def bare_consumer_main(conn: Connection, amqp_url: str, name: str, n: int) -> None:
    try:
        asyncio.run(_bare_consume(conn, amqp_url, name, n))
    except Exception as exc:  # tell the parent instead of leaving it waiting
        conn.send(("error", repr(exc)))
        raise


async def bare(amqp_url: str, n: int, size: int, *, split: bool = True) -> dict[str, Any]:
    name = f"bench-bare-{secrets.token_hex(3)}"
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        pub = await connection.channel(publisher_confirms=True)
        queue = await pub.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})
        body = secrets.token_bytes(size)
        done = asyncio.get_running_loop().create_future()
        process = peer = None
        if split:
            parent_end, child_end = SPAWN.Pipe()
            process = SPAWN.Process(target=bare_consumer_main, args=(child_end, amqp_url, name, n), daemon=True)
            process.start()
            peer = Peer(parent_end, process)
            await peer.reply(120)  # consuming
        else:
            sub = await connection.channel()
            await sub.set_qos(prefetch_count=200)
            got = 0

            async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                nonlocal got
                await message.ack()
                got += 1
                if got == n:
                    done.set_result(time.perf_counter())

            await (await sub.get_queue(name)).consume(on_message)
        slots = asyncio.Semaphore(500)

        async def one(i: int) -> None:
            async with slots:
                await pub.default_exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, message_id=str(i)),
                    routing_key=name)

        cpu_before = cpu_s()
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        published_s = time.perf_counter() - started
        consumer_cpu = None
        if peer is not None:
            _, finished, consumer_cpu = await peer.reply(300)
            peer.conn.send(("stop",))
            peer.close()
            assert process is not None
            process.join(30)
        else:
            finished = await asyncio.wait_for(done, 300)
        elapsed = finished - started
        publisher_cpu = cpu_s() - cpu_before
        await queue.delete(if_unused=False, if_empty=False)
    result = {"messages": n, "size": size, "publish_per_s": round(n / published_s),
              "end_to_end_per_s": round(n / elapsed), "elapsed_s": round(elapsed, 2),
              "consumer": "own process" if split else "same process"}
    if consumer_cpu is not None:
        result["cpu_ms_per_message"] = {"publisher": round(publisher_cpu * 1000 / n, 3),
                                        "consumer": round(consumer_cpu * 1000 / n, 3)}
    return result


# --- the gateway -----------------------------------------------------------------------------------

async def fresh_database(url: str | None, server: str = PG_SERVER) -> tuple[str, str | None]:
    """``url`` as it is, or a new database on ``server`` (its URL and its name, to drop it after)."""
    if url:
        return url, None
    name = f"bench_{secrets.token_hex(4)}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return make_url(server).set(database=name).render_as_string(hide_password=False), name


async def drop_database(name: str | None, server: str = PG_SERVER) -> None:
    if name is None:
        return
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


def _without_hooks(gw: Gateway) -> None:
    # The transport path the issue measures: no delivery receipts, case tracking or archive chain
    # (those are the workflow's and the archive's own costs, measured with --hooks).
    from gateway.exchange.ports import NoObserver

    gw.service.receipts = None
    gw.service.observer = NoObserver()
    gw.archive = None


def _time_stored(gw: Gateway, report: Any) -> None:
    """Wrap the registration gateway's batch receiver: report (message id, time) of what it stored."""
    assert gw.inbox is not None
    receive = gw.handle_batch

    async def timed(deliveries):  # type: ignore[no-untyped-def]
        outcomes = await receive(deliveries)
        now = time.perf_counter()
        report([(o.message_id, now) for o in outcomes if o.result == "stored" and o.message_id])
        return outcomes

    gw.inbox._receive_batch = timed


class _Driver:
    """Drives the residence gateway; ``stored_at`` is filled by the registration side."""

    residence: Gateway
    stored_at: dict[str, float]

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

    # what the receiving side did (overridden by the split pair, whose receiver is elsewhere)
    async def receiver_cpu_s(self) -> float:
        return 0.0

    async def receiver_profile(self, start: bool) -> str | None:
        return None

    async def receiver_batches(self) -> int:
        return 0


def _settings_common(amqp_url: str, database_url: str, data_dir: Path, token: str) -> dict[str, Any]:
    return dict(exchange=f"bench-{token}.exchange", data_dir=data_dir, database_url=database_url,
                amqp_url=amqp_url, key_passphrase=None, tick_interval_s=0)


class Pair(_Driver):
    """A residence gateway and a registration gateway in THIS process, own queues, one database."""

    def __init__(self, amqp_url: str, database_url: str, data_dir: Path, *, hooks: bool = False) -> None:
        token = secrets.token_hex(3)
        common = _settings_common(amqp_url, database_url, data_dir, token)
        init_nodes(Settings(gateway_id=f"init-{token}", nodes=[RESIDENCE, REGISTRATION], **common),
                   datetime.now(timezone.utc))
        self.residence = build_gateway(Settings(gateway_id=f"res-{token}", nodes=[RESIDENCE], **common))
        self.registration = build_gateway(Settings(gateway_id=f"reg-{token}", nodes=[REGISTRATION], **common))
        if not hooks:
            for gw in (self.residence, self.registration):
                _without_hooks(gw)
        self.stored_at: dict[str, float] = {}

        def report(pairs: list[tuple[str, float]]) -> None:
            for message_id, at in pairs:
                self.stored_at.setdefault(message_id, at)

        _time_stored(self.registration, report)

    async def start(self) -> None:
        await self.registration.start()
        await self.residence.start()

    async def stop(self) -> None:
        # Both stopped before any queue is deleted: RabbitMQ 3.10 crashes a channel (541) that publishes
        # (a late receipt) to a quorum queue being deleted.
        for gw in (self.residence, self.registration):
            await gw.stop()
        for gw in (self.residence, self.registration):
            await gw.broker.delete_topology()  # type: ignore[attr-defined]

    async def receiver_batches(self) -> int:
        return self.registration.inbox.batches if self.registration.inbox else 0


def command_queue(conn: Connection) -> "asyncio.Queue[tuple[Any, ...]]":
    """The parent's commands to a child gateway process, queued as they arrive on the pipe (read by the
    event loop when the pipe is readable: no thread, no blocking recv). ``loop.remove_reader`` ends it."""
    commands: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def readable() -> None:
        while conn.poll():
            commands.put_nowait(conn.recv())

    asyncio.get_running_loop().add_reader(conn.fileno(), readable)
    return commands


async def _registration(conn: Connection, common: dict[str, Any], token: str, hooks: bool) -> None:
    gw = build_gateway(Settings(gateway_id=f"reg-{token}", nodes=[REGISTRATION], **common))
    if not hooks:
        _without_hooks(gw)
    _time_stored(gw, lambda pairs: conn.send(("stored", pairs)) if pairs else None)
    await gw.start()
    loop = asyncio.get_running_loop()
    commands = command_queue(conn)
    conn.send(("ready",))
    profiler: cProfile.Profile | None = None
    while True:
        command = (await commands.get())[0]
        if command == "cpu":
            conn.send(("cpu", cpu_s()))
        elif command == "batches":
            conn.send(("batches", gw.inbox.batches if gw.inbox else 0))
        elif command == "profile_start":
            profiler = cpu_profiler()
            profiler.enable()
            conn.send(("ok",))
        elif command == "profile_stop":
            assert profiler is not None
            profiler.disable()
            conn.send(("profile", profile_text(profiler)))
        elif command == "stop":
            await gw.stop()
            conn.send(("stopped",))
        elif command == "delete_topology":
            loop.remove_reader(conn.fileno())
            await gw.broker.delete_topology()  # type: ignore[attr-defined]
            conn.send(("deleted",))
            return


def registration_main(conn: Connection, common: dict[str, Any], token: str, hooks: bool) -> None:
    try:
        asyncio.run(_registration(conn, common, token, hooks))
    except Exception as exc:
        conn.send(("error", repr(exc)))
        raise


class SplitPair(_Driver):
    """The residence gateway in this process, the registration gateway in a process of its own."""

    def __init__(self, amqp_url: str, database_url: str, data_dir: Path, *, hooks: bool = False,
                 receiver_database_url: str | None = None) -> None:
        self.token = secrets.token_hex(3)
        common = _settings_common(amqp_url, database_url, data_dir, self.token)
        init_nodes(Settings(gateway_id=f"init-{self.token}", nodes=[RESIDENCE, REGISTRATION], **common),
                   datetime.now(timezone.utc))
        self.residence = build_gateway(Settings(gateway_id=f"res-{self.token}", nodes=[RESIDENCE], **common))
        # Each gateway has its own database, as in production (otherwise the receiver's relay would
        # also claim and publish the sender's outbox rows).
        self.common = {**common, "database_url": receiver_database_url or database_url}
        if not hooks:
            _without_hooks(self.residence)
        self.hooks = hooks
        self.stored_at: dict[str, float] = {}
        self.process: Any = None
        self.peer: Peer | None = None

    def _report(self, pairs: list[tuple[str, float]]) -> None:
        for message_id, at in pairs:
            self.stored_at.setdefault(message_id, at)

    async def start(self) -> None:
        parent_end, child_end = SPAWN.Pipe()
        self.process = SPAWN.Process(target=registration_main, args=(child_end, self.common, self.token, self.hooks),
                                     daemon=True)
        self.process.start()
        self.peer = Peer(parent_end, self.process, self._report)
        await self.peer.reply(180)  # the registration gateway consumes: its queue and bindings exist
        await self.residence.start()

    async def stop(self) -> None:
        # Both gateways stopped before any queue is deleted (see Pair.stop).
        await self.residence.stop()
        if self.peer is None:
            await self.residence.broker.delete_topology()  # type: ignore[attr-defined]
            return
        try:
            await self.peer.ask("stop")
            await self.residence.broker.delete_topology()  # type: ignore[attr-defined]
            await self.peer.ask("delete_topology")
        finally:
            self.peer.close()
            self.process.join(30)
            if self.process.is_alive():
                self.process.terminate()

    async def receiver_cpu_s(self) -> float:
        assert self.peer is not None
        return (await self.peer.ask("cpu"))[1]

    async def receiver_profile(self, start: bool) -> str | None:
        assert self.peer is not None
        if start:
            await self.peer.ask("profile_start")
            return None
        return (await self.peer.ask("profile_stop"))[1]

    async def receiver_batches(self) -> int:
        assert self.peer is not None
        return (await self.peer.ask("batches"))[1]


async def gateway_run(amqp_url: str, database_url: str | None, n: int, latency_s: float,
                      profile: bool, hooks: bool = False, split: bool = True) -> dict[str, Any]:
    url, created = await fresh_database(database_url)
    receiver_url, receiver_created = (await fresh_database(None)) if split and database_url is None else (url, None)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-transport-") as tmp:
            pair: _Driver = (SplitPair(amqp_url, url, Path(tmp), hooks=hooks, receiver_database_url=receiver_url)
                             if split else Pair(amqp_url, url, Path(tmp), hooks=hooks))
            await pair.start()  # type: ignore[attr-defined]
            try:
                await pair.burst(min(500, n))  # warm-up: connections, caches, JIT-free Python but warm pools
                cpu_sender, cpu_receiver = cpu_s(), await pair.receiver_cpu_s()
                elapsed = await pair.burst(n)
                cpu_sender, cpu_receiver = cpu_s() - cpu_sender, await pair.receiver_cpu_s() - cpu_receiver
                throughput = n / elapsed
                sample = await pair.residence.store.list_messages(RESIDENCE, __import__(
                    "gateway.exchange.records", fromlist=["Direction"]).Direction.OUT, limit=1)
                size = len(sample[0].envelope) if sample else 0
                latencies = await pair.paced(throughput / 2, latency_s) if latency_s > 0 else []
                profiles = None
                if profile:
                    profiler = cpu_profiler()
                    await pair.receiver_profile(True)
                    profiler.enable()
                    await pair.burst(n)
                    profiler.disable()
                    profiles = {"sender (residence gateway)": profile_text(profiler)}
                    if split:
                        profiles["receiver (registration gateway)"] = await pair.receiver_profile(False)
                batches = await pair.receiver_batches()
            finally:
                await pair.stop()  # type: ignore[attr-defined]
    finally:
        await drop_database(created)
        await drop_database(receiver_created)
    result: dict[str, Any] = {"messages": n, "envelope_bytes": size, "end_to_end_per_s": round(throughput),
                              "elapsed_s": round(elapsed, 2), "consumer_batches": batches,
                              "receiver": "own process" if split else "same process"}
    if split:
        result["cpu_ms_per_message"] = {"sender": round(cpu_sender * 1000 / n, 3),
                                        "receiver": round(cpu_receiver * 1000 / n, 3)}
    else:
        result["cpu_ms_per_message"] = {"both": round(cpu_sender * 1000 / n, 3)}
    if latencies:
        qs = statistics.quantiles(latencies, n=100)
        result["latency_at_half_peak"] = {"rate_per_s": round(throughput / 2), "count": len(latencies),
                                          "p50_ms": round(qs[49] * 1000, 1), "p95_ms": round(qs[94] * 1000, 1),
                                          "p99_ms": round(qs[98] * 1000, 1)}
    if profiles:
        result["profiles"] = profiles
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--database-url", default=None, help="default: a throw-away PostgreSQL database")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--latency-s", type=float, default=10.0)
    parser.add_argument("--profile", action="store_true", help="cProfile of a further burst, each side apart")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--one-process", action="store_true",
                        help="both gateways (and the bare consumer) in this one process, as measured before")
    parser.add_argument("--hooks", action="store_true",
                        help="also measure with delivery receipts, case tracking and the archive chain switched on")
    args = parser.parse_args()
    split = not args.one_process
    load_before = list(os.getloadavg())  # the machine is shared: say how busy it was
    gateway = await gateway_run(args.amqp_url, args.database_url, args.messages, args.latency_s, args.profile,
                                split=split)
    bare_result = await bare(args.amqp_url, args.messages, gateway["envelope_bytes"] or 1500, split=split)
    report = {
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()},
        "bare_aio_pika": bare_result,
        "gateway": {k: v for k, v in gateway.items() if k != "profiles"},
        "ratio": round(gateway["end_to_end_per_s"] / bare_result["end_to_end_per_s"], 3),
    }
    if args.hooks:
        with_hooks = await gateway_run(args.amqp_url, args.database_url, args.messages, 0, False, hooks=True,
                                       split=split)
        report["gateway_with_receipts_tracking_archive"] = with_hooks
    report["load_average_before_after"] = [load_before, list(os.getloadavg())]
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        for side, text_ in (gateway.get("profiles") or {}).items():
            print(f"=== {side} ===")
            print(text_)


if __name__ == "__main__":
    asyncio.run(main())
