"""Soak: the gateway pair at a steady rate for a long time, memory sampled, optional broker restarts.

Ends with the reconciliation of the fault tests (sent = stored, no id twice) and the resident memory
of this process every ``--sample-s`` seconds: it must stay flat once the pools are warm.

Run: python bench/soak_transport.py --minutes 10 --rate 100 [--restart-every-s 120] [--json]
(`--restart-every-s` runs `rabbitmqctl stop_app/start_app`: only on a broker nobody else is using.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_transport import RESIDENCE, Pair, drop_database, fresh_database, query  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def restart_broker() -> None:
    subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, timeout=120)
    time.sleep(2)
    subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, timeout=120)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--sample-s", type=float, default=10)
    parser.add_argument("--restart-every-s", type=float, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    url, created = await fresh_database(args.database_url)
    samples: list[tuple[float, float, int]] = []
    sent: list[str] = []
    restarts = 0
    try:
        with tempfile.TemporaryDirectory(prefix="soak-transport-") as tmp:
            pair = Pair(args.amqp_url, url, Path(tmp))
            await pair.start()
            started = time.monotonic()
            next_sample = next_restart = started
            if args.restart_every_s:
                next_restart += args.restart_every_s
            i = 0
            try:
                while (now := time.monotonic()) - started < args.minutes * 60:
                    stored = await pair.residence.service.submit(RESIDENCE, query(i))
                    sent.append(stored.message_id)
                    i += 1
                    if now >= next_sample:
                        samples.append((round(now - started, 1), round(rss_mb(), 1), len(pair.stored_at)))
                        next_sample += args.sample_s
                    if args.restart_every_s and now >= next_restart:
                        await asyncio.to_thread(restart_broker)
                        restarts += 1
                        next_restart += args.restart_every_s
                    await asyncio.sleep(max(0.0, started + i / args.rate - time.monotonic()))
                deadline = time.monotonic() + 120
                while any(m not in pair.stored_at for m in sent) and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
            finally:
                await pair.stop()
    finally:
        await drop_database(created)
    lost = sum(m not in pair.stored_at for m in sent)
    warm = [s[1] for s in samples[len(samples) // 4:]] or [0.0]
    report = {"sent": len(sent), "stored": len(pair.stored_at), "lost": lost, "broker_restarts": restarts,
              "rss_mb_first_last": [samples[0][1] if samples else None, samples[-1][1] if samples else None],
              "rss_mb_growth_after_warmup": round(max(warm) - min(warm), 1), "samples": samples}
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))
    raise SystemExit(0 if lost == 0 else 1)


if __name__ == "__main__":
    asyncio.run(main())
