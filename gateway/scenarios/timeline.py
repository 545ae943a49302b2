"""The scenario file: townships, a dated timeline of sends and answers, its end, the reports wanted.

Everything that can be checked before the clock starts is checked here, and a bad file is refused
with every reason at once, each naming the event (its index and `as`) and the field. What only the
gateway can judge (a record the codec refuses, a resubmission the rules do not allow) is not a bad
file: it is played, and the event's outcome is the 422 the HTTP API would give.

Times are Beijing time (Asia/Shanghai): ``"2026-07-17T10:00"``; an explicit offset is honoured.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.codec.divisions import registry
from gateway.workflow.accounting import Level
from gateway.workflow.periods import Quarter
from gateway.workflow.reports import ReportKind, report_period

BEIJING = ZoneInfo("Asia/Shanghai")
REPORT_KINDS = ("monthly", "half-year", "annual", "scores")
REGION_DIGITS = (2, 4, 6, 9)
# Body fields that name an earlier message: in a scenario they name an earlier event by its `as`.
REFERENCE_FIELDS = ("resubmission_of",)


@dataclass(frozen=True)
class Reason:
    path: str  # e.g. "events[2] (as q2).body.resubmission_of"
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ScenarioError(ValueError):
    """A scenario file that cannot be played; ``reasons`` says which event and which field."""

    def __init__(self, source: str, reasons: Sequence[Reason]) -> None:
        self.source = source
        self.reasons = list(reasons)
        super().__init__(f"{source}: " + "; ".join(str(r) for r in self.reasons))


def beijing(moment: datetime) -> datetime:
    """A naive time is Beijing time; an aware one keeps its offset."""
    return moment.replace(tzinfo=BEIJING) if moment.tzinfo is None else moment


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SendEvent(_Strict):
    at: datetime
    send: Literal["query", "notification"]
    as_: str | None = Field(None, alias="as", min_length=1, max_length=64, description="its name, for answers and resubmission_of")
    from_: str | None = Field(None, alias="from", description="the sending township (default: from the body)")
    body: dict[str, Any]

    @field_validator("at")
    @classmethod
    def _beijing(cls, value: datetime) -> datetime:
        return beijing(value)


class AnswerEvent(_Strict):
    at: datetime
    answer: str = Field(min_length=1, description="the `as` of the query or notification answered")
    as_: str | None = Field(None, alias="as", min_length=1, max_length=64)
    body: dict[str, Any]

    @field_validator("at")
    @classmethod
    def _beijing(cls, value: datetime) -> datetime:
        return beijing(value)


Event = SendEvent | AnswerEvent


class ReportRequest(_Strict):
    kind: Literal["monthly", "half-year", "annual", "scores"]
    period: str | None = None  # monthly 2026-07, half-year 2026H1, annual 2026; for scores an alias of quarter
    quarter: str | None = None  # scores: 2026Q3
    region: str
    level: Level | None = None  # scores only: roll up to county, city or province

    def as_request(self) -> dict[str, Any]:
        """The request as the file gave it (echoed beside its rows)."""
        return self.model_dump(mode="json", exclude_none=True)


class _Head(_Strict):
    title: str | None = None  # what the scenario shows, for the reader; not played
    townships: list[str] = Field(min_length=2)
    events: list[dict[str, Any]]
    until: datetime
    start: datetime | None = None
    reports: list[ReportRequest] = []

    @field_validator("until", "start")
    @classmethod
    def _beijing(cls, value: datetime | None) -> datetime | None:
        return None if value is None else beijing(value)


@dataclass(frozen=True)
class Scenario:
    townships: tuple[str, ...]
    events: tuple[Event, ...]
    until: datetime
    start: datetime | None
    reports: tuple[ReportRequest, ...]

    def label(self, index: int) -> str:
        name = getattr(self.events[index], "as_", None)
        return f"events[{index}]" + (f" (as {name})" if name else "")


def load(path: Path) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ScenarioError(str(path), [Reason("file", f"cannot be read: {e.strerror or e}")]) from e
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        raise ScenarioError(str(path), [Reason("file", f"is not JSON: {e.msg} at line {e.lineno} column {e.colno}")]) from e
    return parse(document, str(path))


def _pydantic_reasons(error: ValidationError, prefix: str) -> list[Reason]:
    reasons = []
    for item in error.errors():
        path = prefix
        for part in item["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        reasons.append(Reason(path or "file", item["msg"]))
    return reasons


def parse(document: Any, source: str = "scenario") -> Scenario:
    if not isinstance(document, Mapping):
        raise ScenarioError(source, [Reason("file", "must be a JSON object with townships, events, until and reports")])
    try:
        head = _Head.model_validate(document)
    except ValidationError as e:
        raise ScenarioError(source, _pydantic_reasons(e, "")) from e
    reasons: list[Reason] = []
    events: list[Event] = []
    for i, raw in enumerate(head.events):
        name = raw.get("as") if isinstance(raw.get("as"), str) else None
        where = f"events[{i}]" + (f" (as {name})" if name else "")
        if ("send" in raw) == ("answer" in raw):
            reasons.append(Reason(where, "needs exactly one of send (query or notification) and answer"))
            continue
        model: type[SendEvent] | type[AnswerEvent] = SendEvent if "send" in raw else AnswerEvent
        try:
            events.append(model.model_validate(raw))
        except ValidationError as e:
            reasons.extend(_pydantic_reasons(e, where))
    if reasons:
        raise ScenarioError(source, reasons)
    scenario = Scenario(tuple(head.townships), tuple(events), head.until, head.start, tuple(head.reports))
    reasons = _check(scenario)
    if reasons:
        raise ScenarioError(source, reasons)
    return scenario


def sender_of(event: SendEvent) -> str | None:
    """The township sending: ``from``, or the body's own sender field (as `submit` fills it in)."""
    if event.from_ is not None:
        return event.from_
    to_residence = event.send == "notification" and event.body.get("direction") == "to_residence"
    value = event.body.get("registration_township" if to_residence else "residence_township")
    return value if isinstance(value, str) else None


def _check(s: Scenario) -> list[Reason]:
    reasons: list[Reason] = []
    divisions = registry()
    hosted = set(s.townships)
    for i, code in enumerate(s.townships):
        if not (code.isdigit() and len(code) == 9 and divisions.exists(code)):
            reasons.append(Reason(f"townships[{i}]", f"{code!r} is not a 9-digit township code of the division data"))
    if len(hosted) != len(s.townships):
        reasons.append(Reason("townships", "names a township twice"))
    if s.start is not None and s.events and s.start > s.events[0].at:
        reasons.append(Reason("start", "is after the first event"))
    names: dict[str, int] = {}
    previous: datetime | None = None
    for i, event in enumerate(s.events):
        where = s.label(i)
        if previous is not None and event.at < previous:
            reasons.append(Reason(f"{where}.at", "is earlier than the event before it: events are in time order"))
        previous = event.at
        if event.at > s.until:
            reasons.append(Reason(f"{where}.at", "is after until, the end of the simulation"))
        if isinstance(event, SendEvent):
            sender = sender_of(event)
            if sender is None:
                reasons.append(Reason(f"{where}.from", "is missing (and the body names no sending township)"))
            elif sender not in hosted:
                reasons.append(Reason(f"{where}.from", f"{sender} is not one of the scenario's townships"))
            for ref in REFERENCE_FIELDS:
                value = event.body.get(ref)
                if value is not None and not (isinstance(value, str) and value in names):
                    reasons.append(Reason(f"{where}.body.{ref}", f"{value!r} names no earlier event (by its as)"))
                elif value is not None and not isinstance(s.events[names[value]], SendEvent):
                    reasons.append(Reason(f"{where}.body.{ref}", f"{value!r} is an answer, not a query"))
        else:
            target = names.get(event.answer)
            if target is None:
                reasons.append(Reason(f"{where}.answer", f"{event.answer!r} names no earlier event (by its as)"))
            elif not isinstance(s.events[target], SendEvent):
                reasons.append(Reason(f"{where}.answer", f"{event.answer!r} is an answer; answer a query or notification"))
        if event.as_ is not None:
            if event.as_ in names:
                reasons.append(Reason(f"{where}.as", f"{event.as_!r} is already the name of events[{names[event.as_]}]"))
            else:
                names[event.as_] = i
    for i, request in enumerate(s.reports):
        reasons.extend(_check_report(f"reports[{i}]", request))
    return reasons


def _check_report(where: str, r: ReportRequest) -> list[Reason]:
    reasons = []
    if not (r.region.isdigit() and len(r.region) in REGION_DIGITS):
        reasons.append(Reason(f"{where}.region", "must be a 2, 4, 6 or 9-digit division code"))
    if r.kind == "scores":
        text = r.quarter or r.period
        if text is None:
            reasons.append(Reason(f"{where}.quarter", "is required for scores, e.g. 2026Q3"))
        else:
            try:
                Quarter.parse(text)
            except ValueError as e:
                reasons.append(Reason(f"{where}.quarter", str(e)))
        return reasons
    if r.quarter is not None or r.level is not None:
        reasons.append(Reason(where, "quarter and level are for scores; a report takes period and region"))
    if r.period is None:
        reasons.append(Reason(f"{where}.period", "is required, e.g. 2026-07 (monthly), 2026H1 (half-year), 2026 (annual)"))
    else:
        try:
            report_period(ReportKind(r.kind), r.period)
        except ValueError as e:
            reasons.append(Reason(f"{where}.period", str(e)))
    return reasons
