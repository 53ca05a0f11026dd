"""Server-side plots as inline SVG: no JavaScript and no plotting dependency on the tablets.

Every piece of text is escaped here, so the markup can be placed in a page as it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from samples.selectors import EndpointReport

WIDTH, HEIGHT = 680, 440
TOP, BOTTOM = 70, 380  # the y axis runs between these
AXIS_X, LEFT_X, RIGHT_X = 90, 190, 450
LABEL_GAP = 15  # the least vertical distance between two subject labels

# Increase, decrease and no change differ in line pattern and end marker, not only in colour.
STYLES = {
    "increase": {"stroke": "#0a6b2d", "dash": "", "legend": "Increase"},
    "decrease": {"stroke": "#a40000", "dash": "8 5", "legend": "Decrease"},
    "unchanged": {"stroke": "#444444", "dash": "2 4", "legend": "No change"},
}


@dataclass(frozen=True)
class SlopeLine:
    label: str
    start: Decimal
    end: Decimal

    @property
    def direction(self) -> str:
        if self.end > self.start:
            return "increase"
        return "decrease" if self.end < self.start else "unchanged"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 × 10ⁿ) that cover low..high."""
    if high - low < 1e-9:
        low, high = low - 1, high + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step + 1e-9) * step
    stop = math.ceil(high / step - 1e-9) * step
    return [round(start + i * step, 10) for i in range(round((stop - start) / step) + 1)]


def _tick_text(value: float, ticks: Sequence[float]) -> str:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    places = max(0, -Decimal(str(round(step, 10))).normalize().as_tuple().exponent)  # type: ignore[operator]
    return f"{value:.{places}f}"


def _spread(positions: list[float], low: float, high: float) -> list[float]:
    """Move label positions apart (keeping their order) so no two overlap, within low..high."""
    order = sorted(range(len(positions)), key=lambda i: positions[i])
    placed = [positions[i] for i in order]
    for k in range(1, len(placed)):
        placed[k] = max(placed[k], placed[k - 1] + LABEL_GAP)
    if placed and placed[-1] > high:
        placed[-1] = high
        for k in range(len(placed) - 2, -1, -1):
            placed[k] = min(placed[k], placed[k + 1] - LABEL_GAP)
    result = [0.0] * len(positions)
    for k, i in enumerate(order):
        result[i] = max(placed[k], low)
    return result


def _legend() -> list[str]:
    parts = ['<g class="legend" font-size="14">']
    for k, (direction, style) in enumerate(STYLES.items()):
        x = AXIS_X + k * 170
        dash = f' stroke-dasharray="{style["dash"]}"' if style["dash"] else ""
        parts.append(
            f'<line x1="{x}" y1="24" x2="{x + 40}" y2="24" stroke="{style["stroke"]}" stroke-width="3"{dash}/>'
            f"{_marker(direction, x + 40, 24)}"
            f'<text x="{x + 52}" y="29">{escape(style["legend"])}</text>'
        )
    parts.append("</g>")
    return parts


def _marker(direction: str, x: float, y: float) -> str:
    colour = STYLES[direction]["stroke"]
    if direction == "increase":
        return f'<path d="M{x - 6:.1f},{y + 5:.1f} L{x:.1f},{y - 6:.1f} L{x + 6:.1f},{y + 5:.1f} Z" fill="{colour}"/>'
    if direction == "decrease":
        return f'<path d="M{x - 6:.1f},{y - 5:.1f} L{x:.1f},{y + 6:.1f} L{x + 6:.1f},{y - 5:.1f} Z" fill="{colour}"/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>'


def slopegraph_svg(
    lines: Sequence[SlopeLine],
    *,
    title: str,
    y_label: str,
    left_label: str,
    right_label: str,
    unit: str = "",
    plot_id: str = "slopegraph",
) -> str:
    """A paired plot: one line per subject from its left value to its right value."""
    values = [float(v) for line in lines for v in (line.start, line.end)] or [0.0]
    ticks = nice_ticks(min(values), max(values))
    low, high = ticks[0], ticks[-1]

    def y_of(value: float) -> float:
        return BOTTOM - (value - low) / (high - low) * (BOTTOM - TOP)

    counts = {d: sum(1 for line in lines if line.direction == d) for d in STYLES}
    description = (
        f"{len(lines)} subjects: {counts['increase']} increased, {counts['decrease']} decreased, "
        f"{counts['unchanged']} unchanged."
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-labelledby="{plot_id}-title {plot_id}-desc" class="slopegraph" '
        'font-family="system-ui, sans-serif">',
        f'<title id="{plot_id}-title">{escape(title)}</title>',
        f'<desc id="{plot_id}-desc">{escape(description)}</desc>',
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
        *_legend(),
        f'<line x1="{AXIS_X}" y1="{TOP}" x2="{AXIS_X}" y2="{BOTTOM}" stroke="#111" stroke-width="1.5"/>',
    ]
    for tick in ticks:
        y = y_of(tick)
        parts.append(
            f'<line x1="{AXIS_X - 6}" y1="{y:.1f}" x2="{RIGHT_X + 20}" y2="{y:.1f}" stroke="#dddddd"/>'
            f'<line x1="{AXIS_X - 6}" y1="{y:.1f}" x2="{AXIS_X}" y2="{y:.1f}" stroke="#111"/>'
            f'<text x="{AXIS_X - 10}" y="{y + 5:.1f}" text-anchor="end" font-size="14">{_tick_text(tick, ticks)}</text>'
        )
    middle = (TOP + BOTTOM) / 2
    parts.append(
        f'<text transform="translate(28 {middle:.1f}) rotate(-90)" text-anchor="middle" font-size="15">'
        f"{escape(y_label)}</text>"
    )
    for x, text in ((LEFT_X, left_label), (RIGHT_X, right_label)):
        parts.append(
            f'<line x1="{x}" y1="{TOP}" x2="{x}" y2="{BOTTOM}" stroke="#999" stroke-dasharray="1 3"/>'
            f'<text x="{x}" y="{BOTTOM + 30}" text-anchor="middle" font-size="16" font-weight="700">'
            f"{escape(text)}</text>"
        )
    label_y = _spread([y_of(float(line.end)) for line in lines], TOP, BOTTOM + 10)
    for line, text_y in zip(lines, label_y, strict=True):
        style = STYLES[line.direction]
        y1, y2 = y_of(float(line.start)), y_of(float(line.end))
        dash = f' stroke-dasharray="{style["dash"]}"' if style["dash"] else ""
        hint = f"{line.label}: {line.start} {unit} → {line.end} {unit} ({style['legend'].lower()})"
        parts.append(
            f'<g class="subject {line.direction}"><title>{escape(hint)}</title>'
            f'<line x1="{LEFT_X}" y1="{y1:.1f}" x2="{RIGHT_X}" y2="{y2:.1f}" stroke="{style["stroke"]}" '
            f'stroke-width="2.5"{dash}/>'
            f'<circle cx="{LEFT_X}" cy="{y1:.1f}" r="4" fill="{style["stroke"]}"/>'
            f"{_marker(line.direction, RIGHT_X, y2)}"
            f'<text x="{RIGHT_X + 14}" y="{text_y + 5:.1f}" font-size="14" fill="#111">{escape(line.label)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def endpoint_slopegraph(report: EndpointReport) -> str:
    """The study's primary endpoint, one line per subject with both values; empty when there is none."""
    lines = [
        SlopeLine(row.subject.code, row.baseline.value, row.endpoint.value)
        for row in report.rows
        if row.baseline.value is not None and row.endpoint.value is not None
    ]
    if not lines:
        return ""
    return slopegraph_svg(
        lines,
        title=f"{report.analyte_name} at {report.baseline_name} and {report.endpoint_name}, per subject "
        f"({report.study.code})",
        y_label=f"{report.analyte_name} ({report.unit})",
        left_label=report.baseline_name,
        right_label=report.endpoint_name,
        unit=report.unit,
        plot_id="endpoint-plot",
    )
