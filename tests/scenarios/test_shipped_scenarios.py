"""Every scenario shipped under schemas/scenarios/ gives the figures the seeds demand.

Each `NAME.json` is played with `gateway scenario play NAME.json --json` (the command itself, on
SQLite) and compared with `NAME.expected.json`, written from the seeds' rules (DOMAIN.md R1–R5, issue
23), not from what the code gave. An expected row names the columns it checks; a row the expectation
does not list must hold no case (every count 0). The items that wait for another branch of issue 23
are strict xfails naming it: remove the mark once that branch is merged.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway.cli import app

SCENARIOS = Path(__file__).resolve().parents[2] / "schemas" / "scenarios"
WAITING: dict[tuple[str, str], str] = {}  # (scenario, part) → what it waits for, as a strict xfail


def names() -> list[str]:
    return sorted(p.name.removesuffix(".json") for p in SCENARIOS.glob("*.json") if not p.name.endswith(".expected.json"))


def expected(name: str) -> dict[str, Any]:
    return json.loads((SCENARIOS / f"{name}.expected.json").read_text(encoding="utf-8"))


@cache
def played(name: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["scenario", "play", str(SCENARIOS / f"{name}.json"), "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def cases() -> list[Any]:
    out = []
    for name in names():
        parts = ["events"] + [f"reports[{i}]" for i in range(len(expected(name)["reports"]))]
        for part in parts:
            reason = WAITING.get((name, part))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(name, part, marks=marks, id=f"{name}:{part}"))
    return out


def test_every_shipped_scenario_has_its_expected_figures() -> None:
    assert names(), "no scenario shipped"
    for name in names():
        assert (SCENARIOS / f"{name}.expected.json").exists(), f"{name} has no expected figures"
    assert {n for n, _ in WAITING} <= set(names())


def check_events(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert len(got) == len(want)
    for w in want:
        g = next(e for e in got if (e["as"] == w["as"] if "as" in w else e["index"] == w["index"]))
        assert g["status"] == w["status"], (w, g["reasons"])
        if w["status"] == 202:
            assert g["reasons"] == [] and g["delivery"] == {"result": "stored", "reason": None}, g
        if "reason_mentions" in w:
            assert any(w["reason_mentions"] in r["field"] for r in g["reasons"]), g["reasons"]


def check_report(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got["request"] == want["request"]
    assert got["rows"] is not None, got.get("error")
    if "status" in want:
        assert got["status"] == want["status"]
    by_region = {row["region"]: row for row in got["rows"]}
    for row in want["rows"]:
        assert row["region"] in by_region, f"no row for {row['region']}: {sorted(by_region)}"
        actual = by_region[row["region"]]
        assert {column: actual[column] for column in row} == row
    listed = {row["region"] for row in want["rows"]}
    for region, row in by_region.items():
        if region not in listed:
            assert all(v == 0 for v in row.values() if isinstance(v, int)), f"unexpected cases in {region}: {row}"


@pytest.mark.parametrize(("name", "part"), cases())
def test_shipped_scenario_gives_the_seeds_figures(name: str, part: str) -> None:
    result, want = played(name), expected(name)
    if part == "events":
        check_events(result["events"], want["events"])
    else:
        index = int(part.removeprefix("reports[").removesuffix("]"))
        check_report(result["reports"][index], want["reports"][index])
