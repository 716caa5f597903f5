"""The dashboard's chart: opt-in rate per category and day, as SVG rendered on the server.

No script and no inline style: colours come from classes in ``admin.css``,
so the chart works under the pages' strict Content-Security-Policy. The same
numbers stand in a table beside it for screen readers.
"""

from __future__ import annotations

from collections.abc import Mapping

from markupsafe import Markup, escape

from consent.log.stats import SiteStats, percent

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 36
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
X_LABELS = 8
# Beyond this many days the points are left out (the lines and the table remain).
MAX_POINTS_DAYS = 92


def _x(index: int, count: int) -> float:
    return LEFT + (index + 0.5) * PLOT_WIDTH / count


def _y(rate: float) -> float:
    return TOP + PLOT_HEIGHT * (1 - rate)


def _grid() -> list[str]:
    parts = []
    for step in range(5):
        rate = step / 4
        y = f"{_y(rate):.1f}"
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}"/>')
        parts.append(f'<text class="axis" x="{LEFT - 6}" y="{y}" text-anchor="end" dy="0.35em">{step * 25} %</text>')
    return parts


def _day_labels(report: SiteStats) -> list[str]:
    count = len(report.days)
    step = max(1, -(-count // X_LABELS))
    parts = []
    for index in range(0, count, step):
        day = report.days[index].day
        x = f"{_x(index, count):.1f}"
        label = escape(day.strftime("%d %b"))
        parts.append(f'<text class="axis" x="{x}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle">{label}</text>')
    return parts


def _series(report: SiteStats, category: str, label: str) -> list[str]:
    """One category: a line through consecutive days with records, and a point per day."""
    count = len(report.days)
    segments: list[list[str]] = [[]]
    points = []
    for index, day in enumerate(report.days):
        rate = day.counts.rate(category)
        if rate is None:
            segments.append([])  # no records that day: a gap, not a fall to zero
            continue
        x, y = f"{_x(index, count):.1f}", f"{_y(rate):.1f}"
        segments[-1].append(f"{x},{y}")
        if count <= MAX_POINTS_DAYS:
            granted = getattr(day.counts, category)
            title = escape(f"{day.day}: {label} {percent(rate)} ({granted} of {day.counts.records})")
            points.append(
                f'<circle class="point series-{category}" cx="{x}" cy="{y}" r="3" data-day="{day.day}" '
                f'data-category="{category}" data-rate="{rate:.4f}"><title>{title}</title></circle>'
            )
    lines = [
        f'<polyline class="line series-{category}" fill="none" points="{" ".join(segment)}"/>'
        for segment in segments
        if segment
    ]
    return [f'<g class="series" data-category="{category}">', *lines, *points, "</g>"]


def opt_in_chart(report: SiteStats, labels: Mapping[str, str]) -> Markup:
    """The SVG for ``report``: one line per category in ``labels`` (key → label), rates from 0 to 100 %."""
    title = escape(f"Opt-in rate per category and day, {report.since} to {report.until} (UTC)")
    description = escape(", ".join(labels.values()) + ": share of the day's consent records granting each.")
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-title">{title}</title><desc id="chart-desc">{description}</desc>',
        *_grid(),
        *_day_labels(report),
    ]
    for category, label in labels.items():
        parts.extend(_series(report, category, label))
    parts.append("</svg>")
    return Markup("\n".join(parts))
