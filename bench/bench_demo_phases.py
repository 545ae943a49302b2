"""`gateway demo`'s phases timed one by one, with the SQL statements each phase ran.

The demo's ``elapsed_s`` includes the sign-in of one clerk per township (Argon2id by design, ≈ 0.3 s
each); this runs the same ``gateway.demo.run_demo`` with an ``echo`` that stamps each line the demo
prints, so the sending and answering phases are timed apart: wall time, CPU time of the process, and
the statements the database ran (by verb and table) per round trip.

Run: flock /tmp/bench.lock .venv/bin/python bench/bench_demo_phases.py --townships 20 --messages 2000 [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import time
from collections import Counter
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from gateway.demo import run_demo, summary_dict

_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+([a-z_]+)", re.IGNORECASE)


def _label(statement: str) -> str:
    verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
    table = _TABLE.search(statement)
    return f"{verb} {table.group(1) if table else ''}".strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--townships", type=int, default=20)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    statements: Counter[str] = Counter()

    @event.listens_for(Engine, "before_cursor_execute")
    def _count(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool) -> None:
        statements[_label(statement)] += 1

    @event.listens_for(Pool, "connect")
    def _connected(*_args: Any) -> None:
        statements["(new database connection)"] += 1

    marks: list[dict[str, Any]] = []

    def mark(line: str) -> None:
        marks.append({"line": line[:80], "wall": time.monotonic(), "cpu": time.process_time(),
                      "statements": Counter(statements)})
        if not args.json:
            print(f"{time.strftime('%H:%M:%S')} {line[:100]}", flush=True)

    amqp_url = os.environ.get("GATEWAY_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    start = {"wall": time.monotonic(), "cpu": time.process_time()}
    summary = asyncio.run(run_demo(amqp_url=amqp_url, townships=args.townships, messages=args.messages,
                                   database_url=args.database_url, echo=mark))
    phases = []
    previous = {"wall": start["wall"], "cpu": start["cpu"], "statements": Counter()}
    for m in marks:
        diff = m["statements"] - previous["statements"]
        phases.append({"until": m["line"], "wall_s": round(m["wall"] - previous["wall"], 2),
                       "cpu_s": round(m["cpu"] - previous["cpu"], 2), "statements": dict(diff.most_common(12))})
        previous = m
    out = {"summary": summary_dict(summary), "load_average": os.getloadavg(), "phases": phases}
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
        return
    for p in phases:
        print(f"\n{p['wall_s']:7.2f} s wall {p['cpu_s']:7.2f} s CPU  until: {p['until']}")
        for label, n in p["statements"].items():
            print(f"      {n:8d}  {label}")
    print(json.dumps(out["summary"]), "load", [round(x, 2) for x in out["load_average"]])


if __name__ == "__main__":
    main()
