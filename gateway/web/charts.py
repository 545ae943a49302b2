"""The monthly trend as inline SVG, drawn on the server: no chart library, nothing fetched at run time."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from markupsafe import Markup

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 640, 200, 44, 12, 12, 40


def trend_svg(points: Sequence[Any]) -> Markup:
    """Feedback rate (solid) and timely rate (dashed) per month; a month with nothing received has no point."""
    n = max(len(points), 1)
    step = (WIDTH - LEFT - RIGHT) / max(n - 1, 1)

    def y(rate: float) -> float:
        return TOP + (1 - rate) * (HEIGHT - TOP - BOTTOM)

    parts = [f'<svg class="trend" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
             'aria-label="近12个月反馈率和及时率走势">']
    for tick in (0, 0.5, 1):
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" class="grid"/>'
                     f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{int(tick * 100)}%</text>')
    for attr, css in (("feedback_rate", "line-feedback"), ("timely_rate", "line-timely")):
        segment: list[str] = []
        segments: list[list[str]] = []
        for i, p in enumerate(points):
            rate = getattr(p.counts, attr)
            if rate is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            x = LEFT + i * step
            segment.append(f"{x:.1f},{y(float(rate)):.1f}")
            parts.append(f'<circle cx="{x:.1f}" cy="{y(float(rate)):.1f}" r="3" class="{css}"/>')
        if segment:
            segments.append(segment)
        parts += [f'<polyline points="{" ".join(s)}" class="{css}"/>' for s in segments]
    for i, p in enumerate(points):
        x = LEFT + i * step
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{escape(str(p.month.month))}月</text>')
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 6}" class="legend-feedback">— 反馈率</text>'
                 f'<text x="{LEFT + 90}" y="{HEIGHT - 6}" class="legend-timely">- - 及时率</text></svg>')
    return Markup("".join(parts))
