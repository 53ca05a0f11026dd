"""The batch growth curve as inline SVG, drawn on the server: no JavaScript, no plotting dependency.

Two panels share the culture-day axis: cumulative population doublings above, viable cells on
a log scale below. Every point carries its value in text, so the chart reads without colour.
All text is escaped here; the markup can be placed in a page as it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape

from manufacturing.selectors import GrowthPoint
from manufacturing.timeline import PHASES, TimelineEvent

WIDTH, HEIGHT = 760, 600
LEFT, RIGHT = 100, 700
PD_PANEL = (70, 270)  # top and bottom of the population-doubling panel
CELL_PANEL = (340, 530)
LABEL_STEP = 17  # vertical distance between stacked point labels
CROWDED = 80  # points closer than this (px) stack their labels
PD_COLOUR, CELL_COLOUR, INK, GRID = "#0b4f8a", "#8a3b00", "#111111", "#dddddd"
SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


@dataclass(frozen=True)
class Panel:
    top: float
    bottom: float
    low: float
    high: float

    def y(self, value: float) -> float:
        return self.bottom - (value - self.low) / (self.high - self.low) * (self.bottom - self.top)


def nice_step(span: float, count: int = 5) -> float:
    """A round step (1, 2, 2.5 or 5 × 10ⁿ) that cuts the span into about ``count`` parts."""
    raw = max(span, 1e-9) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw - 1e-12)


def _ticks(high: float, count: int = 5) -> list[float]:
    step = nice_step(high, count)
    return [round(i * step, 10) for i in range(math.ceil(high / step - 1e-9) + 1)]


def _number(value: float) -> str:
    return f"{value:g}"


def power_of_ten(exponent: int) -> str:
    return f"10{str(exponent).translate(SUPERSCRIPT)}"


def million(cells: int) -> str:
    return f"{Decimal(cells) / 1_000_000:.2f} ×10⁶"


def _day_axis(x_of: Callable[[float], float], ticks: list[float], panel: Panel, *, labelled: bool) -> list[str]:
    parts = [
        f'<line x1="{LEFT}" y1="{panel.bottom}" x2="{RIGHT}" y2="{panel.bottom}" stroke="{INK}" stroke-width="1.5"/>'
    ]
    for tick in ticks:
        x = x_of(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{panel.top}" x2="{x:.1f}" y2="{panel.bottom}" stroke="{GRID}"/>')
        if labelled:
            parts.append(
                f'<text x="{x:.1f}" y="{panel.bottom + 22}" text-anchor="middle" font-size="14">{_number(tick)}</text>'
            )
    return parts


def _value_axis(panel: Panel, ticks: list[tuple[float, str]], title: str) -> list[str]:
    parts = [f'<line x1="{LEFT}" y1="{panel.top}" x2="{LEFT}" y2="{panel.bottom}" stroke="{INK}" stroke-width="1.5"/>']
    for value, text in ticks:
        y = panel.y(value)
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{RIGHT}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<line x1="{LEFT - 6}" y1="{y:.1f}" x2="{LEFT}" y2="{y:.1f}" stroke="{INK}"/>'
            f'<text x="{LEFT - 10}" y="{y + 5:.1f}" text-anchor="end" font-size="14">{escape(text)}</text>'
        )
    middle = (panel.top + panel.bottom) / 2
    parts.append(
        f'<text transform="translate(26 {middle:.1f}) rotate(-90)" text-anchor="middle" font-size="15">'
        f"{escape(title)}</text>"
    )
    return parts


def _series(
    coordinates: list[tuple[float, float]], texts: list[str], *, colour: str, marker: str, panel: Panel
) -> list[str]:
    """A line through the points, a marker at each, and each point's text stacked clear of its neighbours."""
    parts = []
    if len(coordinates) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coordinates)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
    for index, ((x, y), text) in enumerate(zip(coordinates, texts, strict=True)):
        if marker == "square":
            parts.append(f'<rect x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10" fill="{colour}"/>')
        else:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5.5" fill="{colour}"/>')
        crowd = sum(1 for earlier in coordinates[:index] if abs(earlier[0] - x) < CROWDED)
        text_y = max(panel.top + 12, y - 10 - crowd * LABEL_STEP)
        anchor, text_x = ("end", x - 8) if x > RIGHT - 160 else ("start", x + 8)
        parts.append(
            f'<text x="{text_x:.1f}" y="{text_y:.1f}" text-anchor="{anchor}" font-size="13" fill="{INK}" '
            f'class="point-label">{escape(text)}</text>'
        )
    return parts


def growth_curve_svg(points: Sequence[GrowthPoint], *, title: str, target_days: int, plot_id: str = "growth") -> str:
    """Cumulative PD and viable cells against culture day, the x axis running at least to the target day."""
    last_day = max([p.day for p in points] + [target_days, 1])
    day_ticks = _ticks(last_day, 6 if last_day > 6 else last_day)
    day_high = day_ticks[-1]

    def x_of(day: float) -> float:
        return LEFT + day / day_high * (RIGHT - LEFT)

    pd_values = [float(p.cumulative_pd) for p in points]
    pd_ticks = _ticks(max([*pd_values, 1.0]), 4)
    pd_panel = Panel(*PD_PANEL, low=0, high=pd_ticks[-1])

    counted = [p for p in points if p.viable_cells > 0]
    logs = [math.log10(p.viable_cells) for p in counted] or [6.0]
    low_decade, high_decade = math.floor(min(logs)), math.ceil(max(logs))
    if high_decade == low_decade:
        high_decade += 1
    cell_panel = Panel(*CELL_PANEL, low=low_decade, high=high_decade)

    latest = points[-1] if points else None
    description = (
        f"{len(points)} points. Latest: day {latest.day}, {latest.cumulative_pd} cumulative population doublings, "
        f"{million(latest.viable_cells)} viable cells ({latest.label})."
        if latest
        else "No counts yet."
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-labelledby="{plot_id}-title {plot_id}-desc" class="growth-curve" '
        'font-family="system-ui, sans-serif">',
        f'<title id="{plot_id}-title">{escape(title)}</title>',
        f'<desc id="{plot_id}-desc">{escape(description)}</desc>',
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        f'<text x="{LEFT}" y="30" font-size="17" font-weight="700">{escape(title)}</text>',
        f'<text x="{LEFT}" y="{PD_PANEL[0] - 12}" font-size="14" fill="{PD_COLOUR}">● cumulative population '
        "doublings (counted from P1)</text>",
        f'<text x="{LEFT}" y="{CELL_PANEL[0] - 12}" font-size="14" fill="{CELL_COLOUR}">■ viable cells '
        "(log scale)</text>",
    ]
    parts += _day_axis(x_of, day_ticks, pd_panel, labelled=False)
    parts += _day_axis(x_of, day_ticks, cell_panel, labelled=True)
    parts += _value_axis(pd_panel, [(t, _number(t)) for t in pd_ticks], "cumulative PD")
    parts += _value_axis(cell_panel, [(d, power_of_ten(d)) for d in range(low_decade, high_decade + 1)], "viable cells")
    parts.append(
        f'<text x="{(LEFT + RIGHT) / 2}" y="{CELL_PANEL[1] + 50}" text-anchor="middle" font-size="15">'
        "culture day (day 0 = P0 seeding)</text>"
    )
    target_x = x_of(target_days)
    parts.append(
        f'<line x1="{target_x:.1f}" y1="{PD_PANEL[0]}" x2="{target_x:.1f}" y2="{CELL_PANEL[1]}" stroke="#555" '
        f'stroke-dasharray="6 4"/><text x="{target_x - 4:.1f}" y="{PD_PANEL[0] + 14}" text-anchor="end" '
        f'font-size="13">target day {target_days}</text>'
    )
    parts += _series(
        [(x_of(p.day), pd_panel.y(float(p.cumulative_pd))) for p in points],
        [f"{p.label}: {p.cumulative_pd} PD" for p in points],
        colour=PD_COLOUR,
        marker="circle",
        panel=pd_panel,
    )
    parts += _series(
        [(x_of(p.day), cell_panel.y(math.log10(p.viable_cells))) for p in counted],
        [million(p.viable_cells) for p in counted],
        colour=CELL_COLOUR,
        marker="square",
        panel=cell_panel,
    )
    parts.append("</svg>")
    return "".join(parts)


TIMELINE_LEFT, TIMELINE_RIGHT, LANE, ALERT_COLOUR = 110, 730, 34, "#b00020"


def timeline_svg(events: Sequence[TimelineEvent], *, title: str, plot_id: str = "timeline") -> str:
    """One lane per phase against days since the first event; alerts are red diamonds, the rest dots.

    Each mark carries its event in a tooltip; the table under the plot holds the same events in words.
    """
    lanes = [phase for phase in PHASES if any(e.phase == phase for e in events)] or list(PHASES[:1])
    top = 60
    height = top + LANE * len(lanes) + 60
    start = events[0].at if events else None
    days = [(e.at - start).total_seconds() / 86400 for e in events] if start else []
    ticks = _ticks(max([*days, 1.0]), 6)

    def x_of(day: float) -> float:
        return TIMELINE_LEFT + day / ticks[-1] * (TIMELINE_RIGHT - TIMELINE_LEFT)

    alerts = sum(1 for e in events if e.alert)
    span = f" over {days[-1]:.0f} days" if days else ""
    description = f"{len(events)} events{span}, {alerts} of them alerts, in {len(lanes)} phases."
    bottom = top + LANE * len(lanes)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'role="img" aria-labelledby="{plot_id}-title {plot_id}-desc" class="timeline-plot" '
        'font-family="system-ui, sans-serif">',
        f'<title id="{plot_id}-title">{escape(title)}</title>',
        f'<desc id="{plot_id}-desc">{escape(description)}</desc>',
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        f'<text x="10" y="28" font-size="17" font-weight="700">{escape(title)}</text>',
        f'<text x="{TIMELINE_RIGHT}" y="28" font-size="13" text-anchor="end">● event   '
        f'<tspan fill="{ALERT_COLOUR}">◆ alert</tspan></text>',
    ]
    for index, lane in enumerate(lanes):
        y = top + LANE * index + LANE / 2
        parts.append(
            f'<line x1="{TIMELINE_LEFT}" y1="{y}" x2="{TIMELINE_RIGHT}" y2="{y}" stroke="{GRID}"/>'
            f'<text x="{TIMELINE_LEFT - 10}" y="{y + 5}" text-anchor="end" font-size="14">{escape(lane)}</text>'
        )
    for tick in ticks:
        x = x_of(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="{GRID}"/>'
            f'<text x="{x:.1f}" y="{bottom + 20}" text-anchor="middle" font-size="13">{_number(tick)}</text>'
        )
    parts.append(
        f'<text x="{(TIMELINE_LEFT + TIMELINE_RIGHT) / 2}" y="{bottom + 44}" text-anchor="middle" font-size="14">'
        f"days since {start:%Y-%m-%d}</text>"
        if start
        else ""
    )
    for event, day in zip(events, days, strict=True):
        x, y = x_of(day), top + LANE * lanes.index(event.phase) + LANE / 2
        tip = escape(f"{event.at:%Y-%m-%d %H:%M} {event.what}")
        if event.alert:
            parts.append(
                f'<path d="M{x:.1f},{y - 8:.1f} L{x + 8:.1f},{y:.1f} L{x:.1f},{y + 8:.1f} L{x - 8:.1f},{y:.1f} Z" '
                f'fill="{ALERT_COLOUR}" class="alert-mark"><title>{tip}</title></path>'
            )
        else:
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{PD_COLOUR}" fill-opacity="0.8">'
                f"<title>{tip}</title></circle>"
            )
    parts.append("</svg>")
    return "".join(parts)
