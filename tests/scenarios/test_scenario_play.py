"""`gateway scenario play`: the command, its file checks, its JSON, and its figures against `gateway reports`."""

from __future__ import annotations

import asyncio
import copy
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from gateway.adapters.sql.case_source import SqlCaseSource
from gateway.cli import app, reports_cmds, scores_cmds
from gateway.scenarios import figures
from gateway.scenarios.player import simulate
from gateway.scenarios.timeline import parse

SHIPPED = Path(__file__).resolve().parents[2] / "schemas" / "scenarios"
PERSON = {"citizen_id": "120101199005170245", "name": "王秀英", "birth_date": "1990-05-17", "sex": "2"}
QUERY = {"registration_township": "120101001", "person": PERSON, "registration_address": "劝业场街道和平村3组",
         "current_address": "东华门街道幸福路1号"}
FOUND = {"result": "found", "birth_date": "1990-05-17", "household_type": "1", "husband_name": "李伟",
         "husband_residence_code": "110101001", "children": {"sons": 1, "daughters": 0, "youngest_birth_date": "2015-03-02"},
         "not_applicable": ["one_child_certificate_date", "pregnancy_policy_status", "left_on", "marriage_certificate_no"]}
runner = CliRunner()


def scenario(events: list[dict[str, Any]], until: str = "2026-08-22T00:00", reports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"townships": ["110101001", "120101001"], "events": events, "until": until,
            "reports": reports if reports is not None else [{"kind": "monthly", "period": "2026-08", "region": "120101"}]}


def play(tmp_path: Path, document: dict[str, Any], *options: str) -> tuple[int, str, str]:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    result = runner.invoke(app, ["scenario", "play", str(path), *options])
    return result.exit_code, result.stdout, result.stderr


def july() -> dict[str, Any]:
    return json.loads((SHIPPED / "july-answer-after-the-20th.json").read_text(encoding="utf-8"))


# --- a bad file is refused, naming the event and the field ---------------------------------------

@pytest.mark.parametrize(("change", "reason"), [
    (lambda d: d["events"][1].pop("at"), "events[1].at: Field required"),
    (lambda d: d["events"][1].update(answer="q9"), "events[1].answer: 'q9' names no earlier event (by its as)"),
    (lambda d: d["events"][0].update(send="letter"), "events[0] (as q1).send: Input should be 'query' or 'notification'"),
    (lambda d: d["events"][1].update(at="2026-07-16T10:00"),
     "events[1].at: is earlier than the event before it: events are in time order"),
    (lambda d: d["events"][0].update({"from": "110101002"}), "events[0] (as q1).from: 110101002 is not one of the scenario's townships"),
    (lambda d: d["events"][0]["body"].update(resubmission_of="q0"),
     "events[0] (as q1).body.resubmission_of: 'q0' names no earlier event (by its as)"),
    (lambda d: d["reports"][0].update(kind="weekly"), "reports[0].kind: Input should be"),
    (lambda d: d["reports"][0].update(period="July"), "reports[0].period: reporting month must look like 2026-01"),
    (lambda d: d["reports"][1].update(region="1201001"), "reports[1].region: must be a 2, 4, 6 or 9-digit division code"),
    (lambda d: d.update(until="2026-07-20T00:00"), "events[1].at: is after until, the end of the simulation"),
    (lambda d: d.pop("until"), "until: Field required"),
])
def test_a_bad_scenario_file_is_refused_with_the_event_and_the_field(tmp_path: Path, change: Any, reason: str) -> None:
    document = july()
    change(document)
    code, out, err = play(tmp_path, document, "--json")
    assert code == 2 and out == ""
    assert reason in err, err


def test_a_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "scenario.json"
    path.write_text('{"townships": [', encoding="utf-8")
    result = runner.invoke(app, ["scenario", "play", str(path)])
    assert result.exit_code == 2 and "file: is not JSON" in result.stderr


def test_two_events_with_one_name_are_refused(tmp_path: Path) -> None:
    document = july()
    document["events"][1]["as"] = "q1"
    code, _, err = play(tmp_path, document)
    assert code == 2 and "events[1] (as q1).as: 'q1' is already the name of events[0]" in err


# --- outcomes of the events ------------------------------------------------------------------------

def test_a_record_the_codec_refuses_is_a_422_with_the_apis_field_path(tmp_path: Path) -> None:
    bad = copy.deepcopy(QUERY)
    bad["person"]["citizen_id"] = "120101199005170246"  # wrong check character
    code, out, _ = play(tmp_path, scenario([
        {"at": "2026-08-03T10:00", "send": "query", "as": "q1", "from": "110101001", "body": bad},
        {"at": "2026-08-04T10:00", "answer": "q1", "body": FOUND},
    ]), "--json")
    assert code == 0
    refused, answer = json.loads(out)["events"]
    assert (refused["as"], refused["status"], refused["message_id"]) == ("q1", 422, None)
    reason = next(r for r in refused["reasons"] if r["field"] == "query.person.citizen_id")
    assert reason["loc"] == ["body", "query", "person", "citizen_id"] and "check character" in reason["msg"]
    # Nothing was sent, so there is nothing to answer: the HTTP API's 404.
    assert (answer["index"], answer["status"]) == (1, 404) and "q1 was refused (422)" in answer["reasons"][0]["msg"]


def test_each_event_gives_its_status_delivery_and_real_message_id(tmp_path: Path) -> None:
    code, out, err = play(tmp_path, july(), "--json")
    assert code == 0, err
    result = json.loads(out)
    query, answer = result["events"]
    assert {k: query[k] for k in ("index", "as", "event", "from", "to", "status", "reasons")} == {
        "index": 0, "as": "q1", "event": "query", "from": "110101001", "to": "120101001", "status": 202, "reasons": []}
    assert query["at"] == "2026-07-17T10:00:00+08:00" and len(query["message_id"]) == 32
    assert query["delivery"] == {"result": "stored", "reason": None}
    assert (answer["answers"], answer["from"], answer["to"], answer["status"]) == ("q1", "120101001", "110101001", 202)
    assert answer["delivery"]["result"] == "stored" and answer["message_id"] != query["message_id"]
    # The tracker ticked through the month ends: July is final once its query's deadline (24:00 on
    # Fri 31 July, 10 working days after the 17th) has passed, at 00:00 on 1 August, Beijing time.
    assert {"period": "2026-07", "at": "2026-08-01T00:00:00+08:00"} in result["closed"]


def test_a_time_with_an_offset_is_honoured(tmp_path: Path) -> None:
    document = july()
    document["events"][0]["at"] = "2026-07-17T02:00:00+00:00"  # 10:00 in Beijing
    _, out, _ = play(tmp_path, document, "--json")
    assert json.loads(out)["events"][0]["at"] == "2026-07-17T10:00:00+08:00"


def test_a_notification_is_sent_received_and_answered(tmp_path: Path) -> None:
    notification = {"notification_kind": "4", "registration_township": "120101001", "person": PERSON,
                    "event_date": "2026-07-30", "registration_address": "劝业场街道和平村3组",
                    "current_address": "东华门街道幸福路1号", "pregnancy_weeks": 12}
    code, out, err = play(tmp_path, scenario([
        {"at": "2026-08-03T10:00", "send": "notification", "as": "n1", "from": "110101001", "body": notification},
        {"at": "2026-08-05T10:00", "answer": "n1", "body": FOUND},
    ]), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert [e["status"] for e in result["events"]] == [202, 202]
    (row, county) = result["reports"][0]["rows"]
    assert (row["region"], row["notifications_received"], row["notifications_on_time"], row["received"]) == ("120101001", 1, 1, 0)


# --- the reports: the CLI's columns and cells ------------------------------------------------------

def test_report_rows_have_the_csv_columns_with_rates_as_numbers(tmp_path: Path) -> None:
    _, out, _ = play(tmp_path, july(), "--json")
    monthly, scores = json.loads(out)["reports"]
    assert monthly["request"] == {"kind": "monthly", "period": "2026-07", "region": "120101"}
    assert monthly["columns"] == list(reports_cmds.COLUMNS)
    assert [list(row) for row in monthly["rows"]] == [list(reports_cmds.COLUMNS)] * 2
    assert scores["request"] == {"kind": "scores", "quarter": "2026Q3", "region": "120101001"}
    assert [list(row) for row in scores["rows"]] == [list(scores_cmds.COLUMNS)]
    row = scores["rows"][0]
    assert isinstance(row["feedback_rate"], float) and 0 <= row["feedback_rate"] <= 100
    assert isinstance(row["received"], int) and row["region"] == "120101001" and row["notification_timely_rate"] is None


def test_the_figures_are_the_cells_gateway_reports_prints_as_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'kept.db'}"
    document = json.loads((SHIPPED / "three-no-such-person-is-missed-management.json").read_text(encoding="utf-8"))
    played = asyncio.run(simulate(parse(document), url, tmp_path))
    request = parse(document).reports[0]
    made = figures.report(SqlCaseSource(url), request, played.until)
    monkeypatch.setattr(reports_cmds, "_source_provider", None)  # restored after the test
    reports_cmds.configure(lambda: SqlCaseSource(url))
    result = runner.invoke(app, ["reports", "monthly", "--period", "2026-08", "--region", "120101", "--csv"])
    assert result.exit_code == 0, result.stderr
    header, *rows = list(csv.reader(io.StringIO(result.stdout)))
    assert header == made["columns"] and rows == made["cells"]
    assert figures.as_json(made)["rows"][0]["missed_management"] == int(rows[0][header.index("missed_management")])

    scores = figures.report(SqlCaseSource(url), parse(document).reports[2], played.until)
    monkeypatch.setattr(scores_cmds, "_source_provider", None)
    monkeypatch.setattr(scores_cmds, "_clock", scores_cmds._clock)
    scores_cmds.configure(lambda: SqlCaseSource(url), clock=lambda: played.until)  # as the scenario's end
    result = runner.invoke(app, ["scores", "--quarter", "2026Q3", "--region", "120101001", "--csv"])
    assert result.exit_code == 0, result.stderr
    header, *rows = list(csv.reader(io.StringIO(result.stdout)))
    assert header == scores["columns"] and rows == scores["cells"] and rows[0][0] == "120101001"


def test_a_report_of_a_month_not_final_is_provisional_and_says_why(tmp_path: Path) -> None:
    code, out, _ = play(tmp_path, scenario([
        {"at": "2026-08-03T10:00", "send": "query", "as": "q1", "from": "110101001", "body": QUERY},
    ], until="2026-08-10T00:00"), "--json")
    (report,) = json.loads(out)["reports"]
    assert code == 0 and report["status"].startswith("provisional: 2026-08: 进行中")
    (township,) = [row for row in report["rows"] if row["region"] == "120101001"]
    assert (township["received"], township["still_open"], township["provisional"]) == (1, 1, 1)


def test_without_json_a_readable_summary(tmp_path: Path) -> None:
    code, out, _ = play(tmp_path, july())
    assert code == 0
    assert "事件 events" in out and "202 受理" in out and "月报 monthly 2026-07" in out and "季度考核 scores 2026Q3" in out
    assert "received" in out and "feedback_rate" in out


def test_the_help_says_delivery_is_in_process_and_the_database_thrown_away() -> None:
    result = runner.invoke(app, ["scenario", "play", "--help"])
    assert result.exit_code == 0
    words = " ".join(result.stdout.split())
    assert "no RabbitMQ is needed" in words and "ExchangeService.receive" in words
    assert "scratch database" in words and "dropped" in words


# --- PostgreSQL --------------------------------------------------------------------------------------

async def _scratch_databases(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            found = await conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE 'gateway_scenario_%'"))
            return {name for (name,) in found}
    finally:
        await engine.dispose()


@pytest.mark.database
def test_on_postgresql_a_scratch_database_gives_the_same_figures_and_is_dropped(tmp_path: Path, postgres_url: str) -> None:
    before = asyncio.run(_scratch_databases(postgres_url))
    code, out, err = play(tmp_path, july(), "--json", "--database-url", postgres_url)
    assert code == 0, err
    on_postgres = json.loads(out)
    _, out, _ = play(tmp_path, july(), "--json")
    on_sqlite = json.loads(out)
    assert on_postgres["database"] == "postgresql"
    assert [(e["status"], e["delivery"]) for e in on_postgres["events"]] == [(e["status"], e["delivery"]) for e in on_sqlite["events"]]
    assert on_postgres["reports"] == on_sqlite["reports"] and on_postgres["closed"] == on_sqlite["closed"]
    assert asyncio.run(_scratch_databases(postgres_url)) == before


def test_a_database_url_that_is_not_postgresql_is_refused(tmp_path: Path) -> None:
    code, _, err = play(tmp_path, july(), "--database-url", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert code == 2 and "--database-url is for PostgreSQL" in err


def test_a_second_answer_is_the_apis_409_and_a_send_needs_no_name(tmp_path: Path) -> None:
    code, out, _ = play(tmp_path, scenario([
        {"at": "2026-08-03T10:00", "send": "query", "as": "q1", "from": "110101001", "body": QUERY},
        {"at": "2026-08-04T10:00", "answer": "q1", "body": FOUND},
        {"at": "2026-08-05T10:00", "answer": "q1", "body": FOUND},
        {"at": "2026-08-05T11:00", "send": "query", "from": "110101001",
         "body": {**QUERY, "person": {**PERSON, "citizen_id": "120101198803120467", "birth_date": "1988-03-12"}}},
    ]), "--json")
    assert code == 0
    statuses = [(e["index"], e["as"], e["status"]) for e in json.loads(out)["events"]]
    assert statuses == [(0, "q1", 202), (1, None, 202), (2, None, 409), (3, None, 202)]
    (row, _county) = json.loads(out)["reports"][0]["rows"]
    assert (row["received"], row["answered"]) == (2, 1)


async def test_a_delivery_the_receiving_gateway_cannot_take_is_reported_not_dropped() -> None:
    from gateway.scenarios.delivery import InProcessBroker

    broker = InProcessBroker()
    await broker.start(["120101001"])

    async def receive(_delivery: Any) -> None:
        raise RuntimeError("the case store refused it")

    await broker.consume(receive)
    await broker.publish("120101001", b"sealed", message_id="m1", kind="query")
    assert await broker.deliver_all() == 1 and broker.pending == 0
    failed = broker.delivered["m1"]
    assert (failed.result, failed.reason) == ("failed", "RuntimeError: the case store refused it")
    with pytest.raises(ConnectionError):
        await broker.publish("110101001", b"sealed", message_id="m2", kind="query")  # no queue for it here
