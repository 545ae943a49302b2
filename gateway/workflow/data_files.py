"""Reading the operator-maintained data files (the only module here that touches the filesystem).

* ``schemas/calendar/cn_working_days.json`` — State Council holiday schedules, one entry per year;
  operators add next year's schedule each November without a release. A year in the file replaces
  the ``chinesecalendar`` package's data for that year entirely (so a wrong package year can be
  corrected); years only in the package are taken from it via ``chinese_calendar.is_workday``.
* ``schemas/workflow/deadlines.json`` — the deadline rule-set (`DeadlineRuleSet`).
* ``schemas/workflow/scoring.json`` — the quarterly score formula (`ScoreFormula`): a province's own
  convention, not a rule of the seeds; the file says so and who set it.
* ``schemas/workflow/targets.json`` — the targets the seeds set (`TargetSet`), with their sources.

Every loader takes a path: nothing reads a file behind the caller's back.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from fractions import Fraction
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.workflow.calendar import WorkingDayCalendar, YearSchedule
from gateway.workflow.deadlines import CaseKind, DeadlineRuleSet
from gateway.workflow.scoring import ScoreFormula
from gateway.workflow.targets import Target, TargetSet

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"
DEFAULT_CALENDAR_FILE = SCHEMAS_DIR / "calendar" / "cn_working_days.json"
DEFAULT_DEADLINES_FILE = SCHEMAS_DIR / "workflow" / "deadlines.json"
DEFAULT_SCORING_FILE = SCHEMAS_DIR / "workflow" / "scoring.json"
DEFAULT_TARGETS_FILE = SCHEMAS_DIR / "workflow" / "targets.json"


class DataFileError(ValueError):
    """A data file is missing or malformed; the message says which file and what is wrong."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CalendarYear(_Strict):
    source: str = Field(min_length=1, description="the notice this year comes from, e.g. 国务院办公厅关于2027年部分节假日安排的通知")
    holidays: list[date]
    makeup_workdays: list[date]


class CalendarFile(_Strict):
    schema_: str | None = Field(default=None, alias="$schema")
    version: str = Field(min_length=1)
    source: str = ""
    years: dict[Annotated[str, Field(pattern=r"^\d{4}$")], CalendarYear]


class DeadlinesFile(_Strict):
    schema_: str | None = Field(default=None, alias="$schema")
    version: str = Field(min_length=1)
    source: str = ""
    working_days: dict[CaseKind, Annotated[int, Field(ge=1)]]
    due_soon_working_days: Annotated[int, Field(ge=0)]
    notification_submission_working_days: Annotated[int, Field(ge=1)] = 5  # 第二十四条: 应在5个工作日内提交
    province_overrides: dict[Annotated[str, Field(pattern=r"^\d{2}$")], dict[CaseKind, Annotated[int, Field(ge=1)]]] = {}


class ScoringFile(_Strict):
    schema_: str | None = Field(default=None, alias="$schema")
    version: str = Field(min_length=1)
    feedback_weight: str = Field(pattern=r"^\d+(\.\d+)?$")
    timely_weight: str = Field(pattern=r"^\d+(\.\d+)?$")
    missed_management_penalty_points_per_percent: str = Field(pattern=r"^\d+(\.\d+)?$")
    max_points: int = 100
    decimals: Annotated[int, Field(ge=0, le=4)] = 1
    # The seeds set targets, not a score (issue 13): a score is a local convention and says whose.
    status: Literal["local convention"] = "local convention"
    set_by: str = Field(min_length=1)
    note: str = ""


class TargetEntry(_Strict):
    figure: str
    at_least: str = Field(pattern=r"^\d+(\.\d+)?$")
    side: Literal["reply", "sender"]
    source: str = Field(min_length=1)


class NotComputedEntry(_Strict):
    figure: str
    source: str
    why: str


class AssessmentItem(_Strict):
    item: str
    figures: list[str]


class TargetsFile(_Strict):
    schema_: str | None = Field(default=None, alias="$schema")
    version: str = Field(min_length=1)
    source: str = ""
    targets: list[TargetEntry]
    not_computed: list[NotComputedEntry] = []
    assessment_items: list[AssessmentItem] = []


def _read(path: Path, model: type[_Strict]) -> _Strict:
    try:
        return model.model_validate_json(Path(path).read_bytes())
    except FileNotFoundError as e:
        raise DataFileError(f"{path}: file not found") from e
    except ValidationError as e:
        raise DataFileError(f"{path}: {e}") from e


@lru_cache(maxsize=1)
def package_schedules() -> tuple[YearSchedule, ...]:
    """The years the installed ``chinesecalendar`` knows, read day by day with ``is_workday``
    (its ``get_workdays(include_weekends=False)`` would drop make-up Saturdays)."""
    import chinese_calendar
    from chinese_calendar import constants

    version = metadata.version("chinesecalendar")
    schedules = []
    for year in sorted({d.year for d in constants.holidays} | {d.year for d in constants.workdays}):
        holidays, makeups = set(), set()
        day = date(year, 1, 1)
        while day.year == year:
            working = chinese_calendar.is_workday(day)
            if day.weekday() < 5 and not working:
                holidays.add(day)
            elif day.weekday() >= 5 and working:
                makeups.add(day)
            day += timedelta(days=1)
        schedules.append(YearSchedule(year, frozenset(holidays), frozenset(makeups), f"chinesecalendar {version}"))
    return tuple(schedules)


def calendar_from_file_model(doc: CalendarFile, base: tuple[YearSchedule, ...] = (), base_version: str = "") -> WorkingDayCalendar:
    schedules = {s.year: s for s in base}
    for key, entry in doc.years.items():
        year = int(key)
        try:
            schedules[year] = YearSchedule(year, frozenset(entry.holidays), frozenset(entry.makeup_workdays), entry.source)
        except ValueError as e:
            raise DataFileError(f"calendar year {year}: {e}") from e
    version = f"{base_version}+{doc.version}" if base_version else doc.version
    return WorkingDayCalendar(schedules, version)


def load_calendar(path: Path, *, with_package: bool = True) -> WorkingDayCalendar:
    """The working-day calendar: the package's years, overridden and extended by the file's."""
    doc = _read(path, CalendarFile)
    assert isinstance(doc, CalendarFile)
    if not with_package:
        return calendar_from_file_model(doc)
    return calendar_from_file_model(doc, package_schedules(), f"chinesecalendar-{metadata.version('chinesecalendar')}")


def load_deadline_rules(path: Path) -> DeadlineRuleSet:
    doc = _read(path, DeadlinesFile)
    assert isinstance(doc, DeadlinesFile)
    try:
        return DeadlineRuleSet(
            version=doc.version,
            working_days=dict(doc.working_days),
            due_soon_working_days=doc.due_soon_working_days,
            province_overrides={p: dict(t) for p, t in doc.province_overrides.items()},
            submission_working_days=doc.notification_submission_working_days,
        )
    except ValueError as e:
        raise DataFileError(f"{path}: {e}") from e


def load_score_formula(path: Path) -> ScoreFormula:
    doc = _read(path, ScoringFile)
    assert isinstance(doc, ScoringFile)
    try:
        return ScoreFormula(
            version=doc.version,
            feedback_weight=Fraction(doc.feedback_weight),
            timely_weight=Fraction(doc.timely_weight),
            missed_management_penalty=Fraction(doc.missed_management_penalty_points_per_percent),
            max_points=doc.max_points,
            decimals=doc.decimals,
            set_by=doc.set_by,
        )
    except ValueError as e:
        raise DataFileError(f"{path}: {e}") from e


def load_targets(path: Path) -> TargetSet:
    doc = _read(path, TargetsFile)
    assert isinstance(doc, TargetsFile)
    try:
        return TargetSet(doc.version, tuple(Target(t.figure, Fraction(t.at_least), t.side, t.source) for t in doc.targets))
    except ValueError as e:
        raise DataFileError(f"{path}: {e}") from e


def calendar_file_json_schema() -> str:
    """JSON Schema of the calendar file, as shipped in ``schemas/calendar/cn_working_days.schema.json``."""
    return json.dumps(CalendarFile.model_json_schema(by_alias=True), ensure_ascii=False, indent=2) + "\n"
