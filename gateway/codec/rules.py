"""Building blocks shared by the message models: field types that check national codes,
the reference date for "not in the future", and how a cross-field rule reports a violation.

A cross-field rule names itself (`rule`) and the field it blames (`path`, relative to the
model that runs it), so the error a clerk sees points at the field to correct.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo
from pydantic_core import PydanticCustomError

from gateway.codec import code_tables
from gateway.codec.divisions import registry
from gateway.codec.text_hygiene import TextProblem, check_text
from gateway.workflow.calendar import WorkingDayCalendar, add_working_days
from gateway.workflow.periods import statistical_year_bounds, statistical_year_of

CHINA = ZoneInfo("Asia/Shanghai")
RULES_ERROR = "codec_rules"


def china_today() -> date:
    return datetime.now(CHINA).date()


# Tests and replays inject the reference date through the validation context
# (`context={"today": date(...)}`); only when none is given does validation read the clock.
clock: Callable[[], date] = china_today


def reference_date(info: ValidationInfo) -> date:
    ctx = info.context
    if ctx and (today := ctx.get("today")) is not None:
        return today
    return clock()


class Violations:
    """Collects every cross-field problem of one model, then raises them together."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[tuple[str, str, str]] = []

    def add(self, rule: str, path: str, reason: str) -> None:
        self.items.append((rule, path, reason))

    def raise_if_any(self) -> None:
        if self.items:
            raise PydanticCustomError(
                RULES_ERROR,
                "{summary}",
                {"summary": "; ".join(f"{p}: {r}" for _, p, r in self.items), "violations": tuple(self.items)},
            )


def fail(reason: str) -> PydanticCustomError:
    return PydanticCustomError("codec", "{reason}", {"reason": reason})


def _iso_date(value: Any) -> Any:
    # Only ISO calendar dates: pydantic's lax parsing would also take numbers as Unix
    # timestamps, which no clerk means.
    if type(value) is str:
        if len(value) == 10 and value[4] == "-" and value[7] == "-":
            try:
                return date.fromisoformat(value)
            except ValueError:
                raise fail(f"impossible date {value}") from None
    elif isinstance(value, date) and not isinstance(value, datetime):
        return value
    elif isinstance(value, datetime):
        raise fail("must be a date YYYY-MM-DD, not a date-time")
    raise fail("must be a date YYYY-MM-DD")


def _not_future(value: date, info: ValidationInfo) -> date:
    today = reference_date(info)
    if value > today:
        raise fail(f"must not be after the reference date {today.isoformat()}")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
PastDate = Annotated[date, BeforeValidator(_iso_date), AfterValidator(_not_future)]


def _code_check(table_name: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        table = code_tables.table(table_name)
        if value not in table.codes:
            raise fail(f"unknown code {value!r} in table {table.describe()}")
        return value

    return check


LABELS_CONTEXT = "labels"  # validation context key: a clerk's input, where labels stand for codes
# Validation context key: the record is being entered (parse_message), not read from the wire. The rules
# that bind the person entering it (what she searched before answering 查无此人) are judged here; the
# wire keeps the form that records stored or in flight were accepted with.
CLERK_INPUT_CONTEXT = "clerk_input"


def clerk_input(info: ValidationInfo) -> bool:
    return bool((info.context or {}).get(CLERK_INPUT_CONTEXT))


def _label_to_code(table_name: str) -> Callable[[Any, ValidationInfo], Any]:
    # Only input typed by a clerk (the JSON API, the import) may say 女 for 2; the wire carries codes
    # exactly, so a peer sending labels is still refused.
    def convert(value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str) and (info.context or {}).get(LABELS_CONTEXT):
            return code_tables.code_for_input(table_name, value.strip()) or value
        return value

    return convert


def CodeOf(table_name: str) -> Any:  # noqa: N802 - reads as a type in field declarations
    return Annotated[
        str,
        Field(json_schema_extra={"x-code-table": table_name}, min_length=1, max_length=8),
        AfterValidator(_code_check(table_name)),
        BeforeValidator(_label_to_code(table_name)),
    ]


def _township(value: str) -> str:
    if len(value) != 9 or not value.isdigit():
        raise fail("must be a 9-digit township code")
    if not registry().is_township(value):
        raise fail(f"unknown township code {value}")
    return value


def _division(value: str) -> str:
    if len(value) not in (6, 9) or not value.isdigit():
        raise fail("must be a 6-digit county or 9-digit township code")
    if not registry().exists(value):
        raise fail(f"unknown division code {value}")
    return value


TownshipCode = Annotated[
    str,
    Field(description="9-digit township code (GB/T 2260 extended)", json_schema_extra={"pattern": "^[0-9]{9}$"}),
    AfterValidator(_township),
]
DivisionCode = Annotated[
    str,
    Field(description="6-digit county or 9-digit township code", json_schema_extra={"pattern": "^([0-9]{6}|[0-9]{9})$"}),
    AfterValidator(_division),
]


def _clean_text(value: str) -> str:
    # Names and free text: no control characters, no bidi controls, not only invisible characters
    # (gateway/codec/text_hygiene.py says why).
    try:
        return check_text(value)
    except TextProblem as exc:
        raise fail(str(exc)) from None


def Text(max_length: int) -> Any:  # noqa: N802
    return Annotated[str, Field(min_length=1, max_length=max_length), AfterValidator(_clean_text)]


Count = Annotated[int, Field(ge=0, le=30)]


# --- rules added with wire version 2 (issue 13: the rules as the seeds state them) ----------------

# Wire version 1 records predate the completeness rules below; they still decode (stored and
# in-flight messages must stay readable), so those rules run only for version 2 and later.
LEGACY_VERSION_KEY = "wire_version"


def strict_completeness(info: ValidationInfo) -> bool:
    ctx = info.context
    version = ctx.get(LEGACY_VERSION_KEY) if ctx else None
    return version is None or version >= 2


def accepted_date(info: ValidationInfo) -> date:
    """The day (China time) the gateway accepted the message: the sender's acceptance date when
    a stored or received record is read back, else the reference date (a record being submitted
    is accepted today). Rules relative to "now" use it, so a record read years later still
    validates as it did when it was accepted."""
    ctx = info.context
    if ctx and (accepted := ctx.get("accepted_on")) is not None:
        return accepted
    return reference_date(info)


def statistical_year(day: date) -> tuple[date, date]:
    """The family-planning statistical year holding `day`: 上年10月1日0时至本年9月30日24时
    (seed 000, 第一篇 七); `gateway.workflow.periods.statistical_year_of` names it."""
    return statistical_year_bounds(statistical_year_of(day))


# Validation context keys for the notification's submission window (seed 002, 第二十四条: 对应通报信息,
# 应在5个工作日内提交): the working-day calendar and the number of working days. The gateway passes its
# calendar; without one the count runs Monday to Friday, as for a year whose schedule is unpublished.
CALENDAR_CONTEXT = "calendar"
SUBMISSION_DAYS_CONTEXT = "submission_working_days"
SUBMISSION_WORKING_DAYS = 5
_WEEKDAYS_ONLY = WorkingDayCalendar({}, "weekdays only (no calendar given)")


def submission_context(calendar: WorkingDayCalendar | None, working_days: int | None) -> dict[str, Any]:
    """The validation context entries for the submission window (only those given)."""
    out: dict[str, Any] = {}
    if calendar is not None:
        out[CALENDAR_CONTEXT] = calendar
    if working_days is not None:
        out[SUBMISSION_DAYS_CONTEXT] = working_days
    return out


def submission_due(info: ValidationInfo, learned_on: date) -> tuple[date, int]:
    """The last day a notification learned of on `learned_on` may be submitted, and the working days
    that gives: the n-th working day after `learned_on`, the day itself not counted (as for replies)."""
    ctx = info.context or {}
    calendar = ctx.get(CALENDAR_CONTEXT) or _WEEKDAYS_ONLY
    days = ctx.get(SUBMISSION_DAYS_CONTEXT) or SUBMISSION_WORKING_DAYS
    return add_working_days(calendar, learned_on, days).day, days


MARRIAGE_CERTIFICATE_YEARS = 3


def certificate_expires_on(issued_on: date) -> date:
    """The first day a 《流动人口婚育证明》 is no longer valid: 有效期为3年 (seed 000,
    婚育证明 rule 四). Issued on 29 February, it lapses on 1 March three years on."""
    try:
        return issued_on.replace(year=issued_on.year + MARRIAGE_CERTIFICATE_YEARS)
    except ValueError:
        return date(issued_on.year + MARRIAGE_CERTIFICATE_YEARS, 3, 1)


# A part of an address at village or community level (seed 002, 第二十四条: 户籍地址应登记到
# 村(社区居)委会一级). 嘎查 is the village of Inner Mongolia; 组 a villagers' group inside a village.
VILLAGE_MARKERS = ("村民委员会", "居民委员会", "居委会", "社区", "村", "嘎查", "组")


def village_level_problem(address: str, township: str) -> str | None:
    """Why `address` does not reach village level inside `township`, or None when it does.

    No village code table is shipped (12-digit codes are not public here), so the check is on
    the text: the address names the registration township as the division data spells it, and
    after that name a village-level part. A township without a name in the data (some local
    codes) is checked for the village part only."""
    division = registry().get(township)
    name = division.name if division is not None else ""
    rest = address
    if name:
        at = address.find(name)
        if at < 0:
            return f"must name the registration township {township} ({name}) and then the 村/社区/居委会"
        rest = address[at + len(name):]
    if not any(marker in rest for marker in VILLAGE_MARKERS):
        return "must reach village or community level (村, 社区, 居委会 or 组 after the township)"
    return None
