"""One request of each kind through the whole app, as the demo sends them: CPU and statements per request.

A gateway on SQLite hosting two townships (tracking, receipts, the audit trail and sign-in on; the
in-memory broker, so only the HTTP edge, the service and the database are measured), a clerk of each
signed in over ``POST /auth/token``, then in phases, each alone (no relay or consumer running
meanwhile):

1. ``submit``: N queries ``POST /nodes/{residence}/queries``, 64 at a time (as the demo);
2. the relay delivers them (not measured);
3. ``inbox``: ``GET /nodes/{registration}/inbox?limit=50`` N/50 times (one page of 50 decrypted records);
4. ``answer``: N answers ``POST /nodes/{registration}/inbox/{id}/feedback``, 64 at a time.

For each: wall time, CPU milliseconds per request (the process's, all threads), and statements per
request by verb and table. ``--profile`` adds cProfile's top functions (own time) per phase.

Run: flock /tmp/bench.lock .venv/bin/python bench/bench_http_request.py --requests 500 [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import re
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway import demo_records  # noqa: E402
from gateway.access.principal import Role  # noqa: E402
from gateway.adapters.fakes import FakeBroker  # noqa: E402
from gateway.api.app import create_app  # noqa: E402
from gateway.adapters.sql.sqlite_hop import listeners_of  # noqa: E402
from gateway.bootstrap import build_gateway  # noqa: E402
from gateway.exchange.nodes import HostedNode  # noqa: E402
from gateway.security.directory import KeyDirectory  # noqa: E402
from gateway.security.keys import generate_keyring  # noqa: E402
from gateway.settings import Settings  # noqa: E402

RESIDENCE, REGISTRATION = "110101001", "120101001"
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+([a-z_]+)", re.IGNORECASE)
statements: Counter[str] = Counter()


@event.listens_for(Engine, "before_cursor_execute")
def _count_sqlalchemy(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    _count(statement)


def _count(statement: str) -> None:  # also the statements run in one hop (sqlite_hop.py)
    verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
    table = _TABLE.search(statement)
    statements[f"{verb} {table.group(1) if table else ''}".strip()] += 1


@event.listens_for(Pool, "connect")
def _connected(*_args: Any) -> None:
    statements["(new database connection)"] += 1


async def phase(name: str, n: int, run: Callable[[], Awaitable[None]], profile: bool) -> None:
    before = Counter(statements)
    profiler = cProfile.Profile() if profile else None
    wall, cpu = time.monotonic(), time.process_time()
    if profiler:
        profiler.enable()
    await run()
    if profiler:
        profiler.disable()
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    ran = statements - before
    print(f"\n{name}: {n} requests in {wall:.2f} s ({n / wall:.0f}/s), CPU {1000 * cpu / n:.2f} ms per request, "
          f"{sum(ran.values()) / n:.2f} statements per request")
    for label, count in ran.most_common(14):
        print(f"    {count / n:6.2f}  {label}")
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        print("\n".join(out.getvalue().splitlines()[6:40]))


async def main(requests: int, profile: bool) -> None:
    rings = {code: generate_keyring(code) for code in (RESIDENCE, REGISTRATION)}
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        settings = Settings(gateway_id=f"bench-{secrets.token_hex(3)}", nodes=sorted(rings), data_dir=Path(tmp),
                            database_url=f"sqlite+aiosqlite:///{tmp}/gateway.db", allow_plaintext_keys=True)
        broker = FakeBroker()
        gateway = build_gateway(settings, broker=broker, nodes={c: HostedNode(r) for c, r in rings.items()},
                                directory=KeyDirectory.from_keyrings(rings.values()))
        await gateway.start(relay=False)
        assert gateway.access is not None
        listeners_of(gateway.engine.sync_engine).append(_count)
        transport = httpx.ASGITransport(app=create_app(gateway))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            headers: dict[str, dict[str, str]] = {}
            for code in rings:
                password = "Bench-" + secrets.token_urlsafe(12)
                await gateway.access.add_user(f"clerk-{code}", Role.CLERK, code, password, actor="demo")
                token = (await http.post("/auth/token", data={"username": f"clerk-{code}", "password": password})).json()
                headers[code] = {"Authorization": f"Bearer {token['access_token']}"}
            import random

            rng = random.Random(7)
            slots = asyncio.Semaphore(64)
            births: dict[str, date] = {}

            async def submit_one() -> None:
                record = demo_records.query(rng, RESIDENCE, REGISTRATION)
                async with slots:
                    response = await http.post(f"/nodes/{RESIDENCE}/queries", json=record, headers=headers[RESIDENCE])
                response.raise_for_status()
                births[response.json()["message_id"]] = date.fromisoformat(record["person"]["birth_date"])

            async def submit_all() -> None:
                await asyncio.gather(*(submit_one() for _ in range(requests)))

            await phase("submit", requests, submit_all, profile)
            while await gateway.relay.run_once():
                pass
            assert gateway.outcomes.get("stored", 0) >= requests, gateway.outcomes

            pages = max(1, requests // 50)

            async def read_pages() -> None:
                for _ in range(pages):
                    response = await http.get(f"/nodes/{REGISTRATION}/inbox", params={"limit": 50},
                                              headers=headers[REGISTRATION])
                    response.raise_for_status()

            await phase("inbox page of 50", pages, read_pages, profile)

            async def answer_one(message_id: str, born: date) -> None:
                payload = demo_records.found_feedback(rng, born, RESIDENCE)
                async with slots:
                    response = await http.post(f"/nodes/{REGISTRATION}/inbox/{message_id}/feedback", json=payload,
                                               headers=headers[REGISTRATION])
                response.raise_for_status()

            async def answer_all() -> None:
                await asyncio.gather(*(answer_one(m, b) for m, b in births.items()))

            await phase("answer", requests, answer_all, profile)
        await gateway.stop()
    print("\nload average", [round(x, 2) for x in os.getloadavg()])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.profile))
