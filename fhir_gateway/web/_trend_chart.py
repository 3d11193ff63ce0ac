"""A small chart of one instrument's totals over time, drawn on the server as SVG (pure: points in,
markup out; no JavaScript, no outside service).

The chart is an image with a title and a description that says in words what it shows (the
totals, the thresholds, where the latest total stands); the page puts the same numbers in a table
beside it. Thresholds are dashed lines: remission (a total below ``remission_below``) and response
(half of the baseline, when there is one). Colours are presentation attributes, not inline styles
(the pages' Content-Security-Policy forbids those).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

__all__ = ["ChartPoint", "trend_svg", "MAX_POINTS"]

MAX_POINTS = 60  # the newest totals drawn; the table lists the same ones
_W, _H = 680, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 190, 20, 46  # the thresholds are named in the right margin
_INK, _GRID, _LINE = "#1c2833", "#c9d1d9", "#1f4e79"
_REMISSION, _RESPONSE = "#1b6b35", "#8a4b00"


@dataclass(frozen=True, slots=True)
class ChartPoint:
    at: datetime
    label: str  # the date as a person reads it
    value: int


def _x(points: list[ChartPoint], point: ChartPoint) -> float:
    first, last = points[0].at, points[-1].at
    span = (last - first).total_seconds()
    width = _W - _LEFT - _RIGHT
    if span <= 0:
        return _LEFT + width / 2
    return _LEFT + width * (point.at - first).total_seconds() / span


def _y(value: float, maximum: int) -> float:
    height = _H - _TOP - _BOTTOM
    return _TOP + height * (1 - min(max(value, 0), maximum) / maximum)


def _threshold(y: float, colour: str, lines: tuple[str, ...], label_y: float) -> str:
    """A dashed line across the plot, named in the right margin (at ``label_y``)."""
    label = "".join(
        f'<tspan x="{_W - _RIGHT + 8}" dy="{0 if i == 0 else 14}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    return (
        f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{colour}" '
        f'stroke-width="2" stroke-dasharray="6 4"/>'
        f'<text y="{label_y + 4:.1f}" fill="{colour}" font-size="12" font-weight="600">'
        f"{label}</text>"
    )


def _grid(maximum: int) -> list[str]:
    parts = []
    for tick in range(0, maximum + 1, 5 if maximum > 10 else 2):
        y = _y(tick, maximum)
        parts.append(
            f'<line x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{_GRID}"/>'
            f'<text x="{_LEFT - 8}" y="{y + 4:.1f}" text-anchor="end" fill="{_INK}" '
            f'font-size="12">{tick}</text>'
        )
    return parts


def _describe(
    name: str, points: list[ChartPoint], remission_below: int, baseline: int | None
) -> str:
    values = ", ".join(f"{p.value} on {p.label}" for p in points)
    latest = points[-1].value
    words = f"{len(points)} {name} total{'s' if len(points) != 1 else ''}: {values}. "
    words += f"Remission is a total below {remission_below}"
    if baseline is not None and baseline > 0:
        words += (
            f"; response is a total of {baseline / 2:g} or less, half of the baseline {baseline}"
        )
    state = "in remission" if latest < remission_below else "not in remission"
    return words + f". The latest total, {latest}, is {state}."


_LABEL_GAP = 110  # px between date labels (the first is anchored at its start): never overlapping


def _dated(xs: list[float]) -> set[int]:
    """Which points get a date label: the first, the last, and those between far enough apart."""
    chosen: list[int] = []
    for i, x in enumerate(xs):
        if not chosen or x - xs[chosen[-1]] >= _LABEL_GAP:
            chosen.append(i)
    last = len(xs) - 1
    if chosen and chosen[-1] != last:
        if len(chosen) > 1 and xs[last] - xs[chosen[-1]] < _LABEL_GAP:
            chosen.pop()
        chosen.append(last)
    return set(chosen)


def _anchor(index: int, count: int) -> str:
    """The first and last date labels stay inside the chart."""
    if count == 1:
        return "middle"
    return "start" if index == 0 else "end" if index == count - 1 else "middle"


def trend_svg(
    key: str,
    name: str,
    points: list[ChartPoint],
    *,
    maximum: int,
    remission_below: int,
    baseline: int | None,
) -> Markup:
    """The chart of ``points`` (oldest first); empty markup when there is nothing to draw."""
    points = points[-MAX_POINTS:]
    if not points:
        return Markup("")
    ident = f"trend-{escape(key)}"
    parts = [
        f'<svg class="trend" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{ident}-title">{escape(name)} totals over time</title>',
        f'<desc id="{ident}-desc">'
        f"{escape(_describe(name, points, remission_below, baseline))}</desc>",
        f'<rect x="0" y="0" width="{_W}" height="{_H}" fill="#ffffff"/>',
        *_grid(maximum),
    ]
    remission_y = _y(remission_below, maximum)
    parts.append(
        _threshold(remission_y, _REMISSION, (f"Remission: below {remission_below}",), remission_y)
    )
    if baseline is not None and baseline > 0:
        half = baseline / 2
        y = _y(half, maximum)
        label_y = min(y, remission_y - 32)  # never on top of the remission label
        lines = (f"Response: {half:g} or less", f"(half of the baseline {baseline})")
        parts.append(_threshold(y, _RESPONSE, lines, label_y))
    coords = [(_x(points, p), _y(p.value, maximum)) for p in points]
    if len(coords) > 1:
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{_LINE}" stroke-width="3"/>')
    dated = _dated([x for x, _ in coords])
    for i, (point, (x, y)) in enumerate(zip(points, coords, strict=True)):
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{_LINE}"/>'
            f'<text x="{x:.1f}" y="{y - 10:.1f}" text-anchor="middle" fill="{_INK}" '
            f'font-size="13" font-weight="700">{point.value}</text>'
        )
        if i in dated:
            anchor = _anchor(i, len(points))
            parts.append(
                f'<text x="{x:.1f}" y="{_H - _BOTTOM + 18}" text-anchor="{anchor}" '
                f'fill="{_INK}" font-size="12">{escape(point.label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  # every text in it is escaped above
