"""One replay from end to end: a temporary folder and database, the timeline played, the reports made.

The result is the `--json` object of `gateway scenario play`: ``events`` (each with its ``as`` and
index, HTTP-like ``status`` and ``reasons``) and ``reports`` (each with its ``request`` and ``rows``).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from gateway.adapters.sql.case_source import SqlCaseSource
from gateway.scenarios import figures
from gateway.scenarios.player import simulate
from gateway.scenarios.scratch import scratch_database
from gateway.scenarios.timeline import BEIJING, Scenario


def play_file(scenario: Scenario, postgres_server: str | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gateway-scenario-") as tmp:
        with scratch_database(Path(tmp), postgres_server) as url:
            played = asyncio.run(simulate(scenario, url, Path(tmp)))
            # After the clock stopped, read as `gateway reports` / `gateway scores` read (their CaseSource).
            source = SqlCaseSource(url)
            reports = [figures.as_json(figures.report(source, request, played.until)) for request in scenario.reports]
    return {
        "database": "sqlite" if postgres_server is None else "postgresql",
        "start": played.start.astimezone(BEIJING).isoformat(),
        "until": played.until.astimezone(BEIJING).isoformat(),
        "ticks": played.ticks,
        "events": [e.as_json() for e in played.events],
        "closed": [{"period": period, "at": at.astimezone(BEIJING).isoformat()} for period, at in played.closed],
        "reports": reports,
    }
