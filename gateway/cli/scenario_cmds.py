"""`gateway scenario play FILE [--json] [--database-url URL]`: replay a commission's dated cases.

The file format and the `--json` output are an interface (issue 23, item 7): see the README,
"Acceptance scenarios", and gateway/scenarios/.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(help="Acceptance scenarios: replay a dated timeline through the real services on a simulated clock.")

PLAY_HELP = (
    "Replay the scenario FILE on a simulated clock against a throw-away database and print the outcome of "
    "each event and the requested reports."
    "\n\n"
    "The real services run: the township keys are generated in a temporary folder, every query, notification "
    "and answer is submitted through the same service the HTTP API calls, sealed (signed and encrypted), "
    "relayed from the outbox and received through ExchangeService.receive — the consumer's own receive path, "
    "delivered in-process (no RabbitMQ is needed) — and the tracker ticks at 00:00 Beijing time of every day,"
    " at each event and at `until`, so months and quarters close as in production."
    "\n\n"
    "The database is SQLite in the temporary folder; with --database-url, a PostgreSQL server: a scratch "
    "database gateway_scenario_<random> is created on it (the URL's user needs CREATEDB) and dropped at the "
    "end; the database the URL names is not written to. Nothing of a running gateway is touched."
    "\n\n"
    "Exit 0 when played (an event refused with 422 is an outcome, not a failure); 2 for a bad file, with the "
    "event and the field."
)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code=2)


@app.command("play", help=PLAY_HELP)
def play(
    file: Annotated[Path, typer.Argument(help="The scenario (JSON): townships, events, until, reports.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object: events and reports.")] = False,
    database_url: Annotated[str | None, typer.Option(
        "--database-url", help="A PostgreSQL server (postgresql+asyncpg://user@host:5432/postgres) on which a "
        "scratch database is created and dropped; default: SQLite in a temporary folder.")] = None,
) -> None:
    from gateway.scenarios.play import play_file
    from gateway.scenarios.scratch import ScratchDatabaseError
    from gateway.scenarios.timeline import ScenarioError, load

    try:
        scenario = load(file)
    except ScenarioError as e:
        lines = "\n".join(f"  {r}" for r in e.reasons)
        raise _fail(f"scenario {e.source} refused:\n{lines}") from e
    try:
        result = play_file(scenario, database_url)
    except ScratchDatabaseError as e:
        raise _fail(str(e)) from e
    if json_output:
        typer.echo(json.dumps(result, ensure_ascii=False))  # one line: the whole output is the object
        return
    for line in summary_lines(result):
        typer.echo(line)


# --- the readable summary ---------------------------------------------------------------------------

EVENT_HEADERS = ("序号 #", "名称 as", "时间 at (北京时间)", "事件 event", "发送 from", "接收 to", "状态 status", "送达 delivery", "原因 reasons")
EVENT_NAMES = {"query": "查询 query", "notification": "通报 notification", "answer": "反馈 answer"}
STATUS_NAMES = {202: "202 受理", 404: "404 无此信息", 409: "409 已反馈", 422: "422 退回"}
REPORT_NAMES = {"monthly": "月报 monthly", "half-year": "半年报 half-year", "annual": "年报 annual", "scores": "季度考核 scores"}


def _table(header: tuple[str, ...] | list[str], rows: list[list[str]]) -> list[str]:
    lines = [list(header), *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]


def _reasons(event: dict[str, Any]) -> str:
    reasons = [f"{r['field']}: {r['msg']}" if r["field"] else r["msg"] for r in event["reasons"]]
    delivery = event["delivery"]
    if delivery and delivery["reason"]:  # refused or lost by the recipient's gateway: say why
        reasons.append(f"送达 delivery: {delivery['reason']}")
    return "; ".join(reasons) or "—"


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"情景 scenario: {result['start']} … {result['until']} (北京时间 Beijing time), "
             f"{result['ticks']} 次计时 ticks, 数据库 database {result['database']}"]
    rows = []
    for e in result["events"]:
        delivery = e["delivery"]["result"] if e["delivery"] else "—"
        rows.append([str(e["index"]), e["as"] or "—", e["at"][:16].replace("T", " "), EVENT_NAMES[e["event"]],
                     e["from"] or "—", e["to"] or "—", STATUS_NAMES.get(e["status"], str(e["status"])), delivery,
                     _reasons(e)])
    lines += ["", "事件 events", *_table(EVENT_HEADERS, rows)]
    closed = ", ".join(f"{c['period']} ({c['at'][:16].replace('T', ' ')})" for c in result["closed"]) or "—"
    lines += ["", f"结账 closed periods: {closed}"]
    for report in result["reports"]:
        request = report["request"]
        period = request.get("quarter") or request.get("period")
        lines += ["", f"{REPORT_NAMES[request['kind']]} {period}, 地区 region {request['region']}: "
                      + (f"{report['status']}, as of {report['as_of']}" if report["rows"] is not None
                         else f"无法生成 not made: {report['error']}")]
        if report["rows"] is not None:
            columns = report["columns"]
            cells = [["—" if row[c] is None else str(row[c]) for c in columns] for row in report["rows"]]
            lines += _table(columns, cells) if cells else ["(无数据 no rows)"]
    return lines
