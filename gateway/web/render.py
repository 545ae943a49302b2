"""Jinja2 templates and the Chinese formatting every page shares (one filter per format)."""

from __future__ import annotations

import base64
import hashlib
from datetime import date, datetime, timedelta, timezone
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from gateway.web.charts import trend_svg
from gateway.workflow.accounting import percent
from gateway.workflow.instants import SHANGHAI


def cn_date(value: datetime | date | str | None) -> str:
    """2026年12月1日, in Beijing time; '—' when there is no date."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        value = (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(SHANGHAI).date()
    return f"{value.year}年{value.month}月{value.day}日"


def cn_datetime(value: datetime | str | None) -> str:
    """2026年12月1日 09:05 (Beijing time)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    local = (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(SHANGHAI)
    return f"{cn_date(local.date())} {local:%H:%M}"


def cn_deadline(value: datetime | str | None) -> str:
    """A deadline is 24:00 of its last working day, stored as the next midnight: shown as that day."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    local = value.astimezone(SHANGHAI)
    if (local.hour, local.minute, local.second) == (0, 0, 0):
        return f"{cn_date(local.date() - timedelta(days=1))} 24:00"
    return cn_datetime(local)


def pct(rate: Fraction | None) -> str:
    return percent(rate)


_env = Environment(
    loader=PackageLoader("gateway.web", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(cn_date=cn_date, cn_datetime=cn_datetime, cn_deadline=cn_deadline, pct=pct)
_STYLESHEET = (Path(__file__).parent / "static" / "site.css").read_text(encoding="utf-8")
_env.globals.update(trend_svg=trend_svg, stylesheet=Markup(_STYLESHEET))


def stylesheet_csp_source() -> str:
    """The inlined stylesheet as a Content-Security-Policy source (its hash): the pages' only style."""
    digest = base64.b64encode(hashlib.sha256(_STYLESHEET.encode("utf-8")).digest()).decode()
    return f"'sha256-{digest}'"


def render(template: str, **context: Any) -> str:
    return _env.get_template(template).render(**context)


@lru_cache(maxsize=65536)
def township_label(code: str) -> str:
    """名称（代码）: a page lists hundreds (the 逾期未反馈 and 漏管 lists), the same ones from page to page."""
    from gateway.web.dashboard_view import region_name

    name = region_name(code)
    return code if name == code else f"{name}（{code}）"


def render_dashboard(view: Any, **context: Any) -> str:
    from gateway.web import targets
    from gateway.web.dashboard_view import KIND_NAMES, LEAGUE_LIMIT, TABLE_HEADERS

    shown = len(view.league)
    ranks = list(range(1, shown + 1))
    if view.league_total > shown:
        ranks = list(range(1, LEAGUE_LIMIT + 1)) + list(range(view.league_total - LEAGUE_LIMIT + 1, view.league_total + 1))
    context.setdefault("principal", None)
    context.setdefault("csrf", "")
    context.setdefault("now", view.as_of)
    return render("dashboard.html", view=view, headers=TABLE_HEADERS, kinds=KIND_NAMES, names=township_label,
                  ranks=ranks, target_list=[f"{targets.FIGURE_NAMES.get(t.target.figure, t.target.figure)} ≥ "
                                            f"{percent(t.target.at_least, 0)}" for t in targets.checks(view.total)],
                  **context)
