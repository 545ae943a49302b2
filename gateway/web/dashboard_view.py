"""What one dashboard page shows, assembled from the read model: the page, the export and the print
view all use this one value, so the exported table is exactly the table on screen."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from gateway.codec.divisions import registry
from gateway.web import targets
from gateway.workflow.periods import FIRST_YEAR, LAST_YEAR
from gateway.web.dashboard_data import DashboardReader, sum_counts, MissedCase, OverdueCase, Period, months_of, parse_period
from gateway.workflow.accounting import Counts, percent
from gateway.workflow.finality import BEFORE_RECORDS, PROVISIONAL, before_records, final_text, provisional_text
from gateway.workflow.periods import Quarter, ReportingMonth, reporting_month_of

LEVEL_NAMES = {2: "省级", 4: "地市级", 6: "县级", 9: "乡镇（街道）"}
CHILD_LENGTH = {2: 4, 4: 6, 6: 9}
KIND_NAMES = {"query": "查询", "birth-query": "查询（生育信息）", "notification": "通报"}


class BadRequest(ValueError):
    """A region or period the dashboard cannot show; the message says why, in Chinese."""


def region_name(code: str) -> str:
    d = registry().get(code)
    return d.name if d is not None else code


def period_label(period: Period) -> str:
    if isinstance(period, Quarter):
        return f"{period.year}年第{period.q}季度"
    return f"{period.year}年{period.month}月"


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    target: str
    meets: bool | None  # None: nothing to judge


@dataclass(frozen=True)
class Row:
    code: str
    name: str
    counts: Counts
    band: targets.Band
    drill: bool  # a region below can be opened

    @property
    def feedback_rate(self) -> str:
        return percent(self.counts.feedback_rate)

    @property
    def timely_rate(self) -> str:
        return percent(self.counts.timely_rate)


    @property
    def notification_feedback_rate(self) -> str:
        return percent(self.counts.notification_feedback_rate)

    @property
    def targets_met(self) -> str:
        return PROVISIONAL if self.band is targets.PROVISIONAL else targets.summary(self.counts)


# Queries first (rule 十三's feedback rate is over them alone), then the notifications beside them.
TABLE_HEADERS = ("代码", "名称", "收到查询", "已反馈", "按时", "逾期反馈", "逾期未反馈", "未到期", "查无此人", "漏管",
                 "反馈率", "及时率", "收到通报", "通报已反馈", "通报逾期", "通报反馈率",
                 "目标达成", "达标情况")


def table_cells(row: Row) -> list[str | int]:
    c = row.counts
    return [row.code, row.name, c.received, c.answered, c.on_time, c.late, c.overdue, c.still_open,
            c.no_such_person, c.missed_management, row.feedback_rate, row.timely_rate,
            c.notifications_received, c.notifications_answered, c.notifications_overdue,
            row.notification_feedback_rate, row.targets_met, row.band.label]


@dataclass(frozen=True)
class TrendPoint:
    month: ReportingMonth
    counts: Counts

    @property
    def label(self) -> str:
        return f"{self.month.year}年{self.month.month}月"


@dataclass
class DashboardView:
    region: str
    name: str
    level: str
    period: Period
    period_text: str
    period_label: str
    as_of: datetime
    breadcrumbs: list[tuple[str, str]]
    total: Counts
    headline: list[Figure]
    child_level: str
    rows: list[Row]
    overdue: list[OverdueCase]
    overdue_total: int
    missed: list[MissedCase]
    missed_total: int
    league: list[Row]
    league_total: int
    trend: list[TrendPoint]
    periods: list[tuple[str, str]] = field(default_factory=list)  # choices for the period selector
    counted_at: datetime | None = None  # the instant the live figures are counted at; None: a closed period's frozen ones
    # 已定稿（date）, or why the period is still provisional: 进行中：N 件未到期，最迟 YYYY-MM-DD 定稿 (issue 23)
    status: str = ""
    provisional: bool = False

    @property
    def table(self) -> list[list[str | int]]:
        return [table_cells(r) for r in self.rows]


def _target_figures(total: Counts) -> dict[str, Figure]:
    """One figure per reply-side target of schemas/workflow/targets.json, with its threshold and gap."""
    out = {}
    for check in targets.checks(total):
        name = targets.FIGURE_NAMES.get(check.target.figure, check.target.figure)
        gap = f" · {targets.gap_text(check)}" if check.met is False else ""  # the page adds 达标 / 未达标
        out[check.target.figure] = Figure(name, percent(check.value), f"目标 ≥ {percent(check.target.at_least, 0)}{gap}",
                                          check.met)
    return out


def _headline(total: Counts, provisional: bool = False) -> list[Figure]:
    # The first three (queries received, answered, feedback rate) are what a supervisor reads first.
    by_target = _target_figures(total)
    if provisional:  # a figure still moving has missed no target yet: shown, never judged
        by_target = {k: Figure(f.label, f.value, f.target.split(" · ")[0] + f" · {PROVISIONAL}", None)
                     for k, f in by_target.items()}
    feedback = by_target.pop("feedback_rate", Figure("反馈率", percent(total.feedback_rate), "", None))
    timely = by_target.pop("timely_rate", Figure("及时率", percent(total.timely_rate), "", None))
    notification = [by_target.pop(k) for k in ("notification_feedback_rate", "notification_timely_rate") if k in by_target]
    return [
        Figure("收到查询", str(total.received), "", None),
        Figure("已反馈", str(total.answered), f"应为 {total.received}",
               None if not total.received or provisional else total.answered >= total.received),
        feedback,
        timely,
        *by_target.values(),
        Figure("收到通报", str(total.notifications_received), "不计入查询反馈率", None),
        Figure("通报已反馈", str(total.notifications_answered), f"应为 {total.notifications_received}",
               None if not total.notifications_received or provisional
               else total.notifications_answered >= total.notifications_received),
        *notification,
        Figure("当前逾期未反馈", str(total.overdue + total.notifications_overdue),
               f"查询 {total.overdue}，通报 {total.notifications_overdue}", None),
        Figure("本期漏管", str(total.missed_management), "", None),
        Figure("目标达成", PROVISIONAL if provisional else targets.summary(total),
               "本期尚未定稿，不作评判" if provisional else "可评判的目标中达到的个数", None),
    ]


def check_region(region: str) -> str:
    region = region.strip()
    if len(region) not in LEVEL_NAMES or not region.isdigit():
        raise BadRequest(f"地区代码应为2、4、6或9位数字，收到“{region[:12]}”")
    return region


def check_period(text: str) -> Period:
    try:
        return parse_period(text)
    except ValueError:
        raise BadRequest(f"期间应为{FIRST_YEAR}至{LAST_YEAR}年的月份（如2026-11）或季度（如2026Q4），收到“{text[:12]}”") from None


def period_choices(now_month: ReportingMonth) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    month = now_month
    for _ in range(12):
        out.append((str(month), period_label(month)))
        month = month.previous()
    quarter = now_month.quarter
    for _ in range(4):
        out.append((str(quarter), period_label(quarter)))
        prev_month = quarter.months[0].previous()
        quarter = prev_month.quarter
    return out


def _rows(prefix: str, counts: dict[str, Counts], provisional: bool = False) -> tuple[str, list[Row]]:
    length = CHILD_LENGTH.get(len(prefix))
    if length is None:  # a township: its own row
        c = counts.get(prefix, Counts())
        return LEVEL_NAMES[9], [Row(prefix, region_name(prefix), c, targets.band(c, provisional), False)]
    groups: dict[str, list[Counts]] = {}
    for township, c in counts.items():
        groups.setdefault(township[:length], []).append(c)
    summed = {code: sum_counts(group) for code, group in groups.items()}
    for child in registry().children(prefix):
        summed.setdefault(child[:length], Counts())
    rows = [Row(code, region_name(code), c, targets.band(c, provisional), True) for code, c in sorted(summed.items())]
    return LEVEL_NAMES[length], rows


LEAGUE_LIMIT = 25  # best and lowest shown above a county; a county shows every township


def _league(counts: dict[str, Counts], provisional: bool = False) -> tuple[list[Row], int]:
    ranked = sorted(((t, c) for t, c in counts.items() if c.received),  # ranked on queries (rule 十三)
                    key=lambda tc: (-tc[1].answered / tc[1].received, -tc[1].on_time / tc[1].received, tc[0]))
    if len(ranked) > 2 * LEAGUE_LIMIT:
        shown = ranked[:LEAGUE_LIMIT] + ranked[-LEAGUE_LIMIT:]
    else:
        shown = ranked
    return [Row(t, region_name(t), c, targets.band(c, provisional), True) for t, c in shown], len(ranked)


async def build_dashboard(reader: DashboardReader, region: str, period_text: str, now: datetime) -> DashboardView:
    region = check_region(region)
    period = check_period(period_text)
    closures = await reader.closures()
    live = str(period) not in closures
    # Before the gateway's records began: no case by construction, and nothing will ever close it (issue 23).
    early = live and before_records(period, await reader.records_begin(now, closures))
    counts = {} if early else await reader.township_counts(region, period, now, closures)
    total = sum_counts(counts.values())
    if early:
        live, status = False, BEFORE_RECORDS
    elif live:
        not_due = total.still_open + total.notifications_open
        status = provisional_text(await reader.progress(period, now, not_due, closures))
    else:
        status = final_text(closures[str(period)])
    child_level, rows = _rows(region, counts, live)
    # A live period's figures hold its overdue count, and a month's its point of the trend: not read twice.
    overdue, overdue_total = await reader.overdue(
        region, period, now, total=total.overdue + total.notifications_overdue if live else None)
    league, league_total = _league(counts, live)
    missed, missed_total = await reader.missed(region, period)
    known = {period: total} if live and isinstance(period, ReportingMonth) else None
    trend = await reader.trend(region, months_of(period)[-1], now, closures=closures, known=known)
    crumbs = [(code, region_name(code)) for code in (region[:n] for n in (2, 4, 6, 9)) if len(code) <= len(region)]
    crumbs = list(dict.fromkeys(crumbs))
    return DashboardView(
        region=region, name=region_name(region), level=LEVEL_NAMES[len(region)], period=period,
        period_text=str(period), period_label=period_label(period), as_of=now, breadcrumbs=crumbs, total=total,
        headline=_headline(total, live), child_level=child_level, rows=rows, overdue=overdue, overdue_total=overdue_total,
        missed=missed, missed_total=missed_total, league=league, league_total=league_total,
        trend=[TrendPoint(m, c) for m, c in trend], periods=period_choices(reporting_month_of(now)),
        counted_at=now if live else None, status=status, provisional=live,
    )
