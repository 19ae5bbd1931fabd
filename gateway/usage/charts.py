"""Server-side SVG charts for the usage dashboard: no JavaScript, no CDN, readable without styles.

Each function returns safe markup. Values are plain numbers; labels are escaped.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 640, 180
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 64, 12, 14, 24
COLOURS = ("#417690", "#e07b39", "#7a9e3f", "#ba2121")


@dataclass(frozen=True)
class Line:
    label: str
    values: Sequence[float | None]


def _scale(top: float) -> float:
    """A round axis maximum at or above `top`."""
    if top <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(top))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= top:
            return step * magnitude
    return 10 * magnitude


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.4g}"
    return f"{value:.3g}"


def _frame(top: float, x_labels: Sequence[str], unit: str) -> list[str]:
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM
    parts = [f'<rect x="{PAD_LEFT}" y="{PAD_TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>']
    for fraction in (0, 0.5, 1):
        y = PAD_TOP + plot_h * (1 - fraction)
        parts.append(f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
                     f'{escape(_fmt(top * fraction))}{escape(unit)}</text>')
    if x_labels:
        for index in sorted({0, len(x_labels) // 2, len(x_labels) - 1}):
            x = PAD_LEFT + plot_w * (index + 0.5) / len(x_labels)
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="middle" font-size="11">'
                         f'{escape(x_labels[index])}</text>')
    return parts


def _legend(labels: Sequence[str]) -> list[str]:
    parts = []
    for index, label in enumerate(labels):
        x = PAD_LEFT + 8 + index * 130
        parts.append(f'<rect x="{x}" y="2" width="10" height="10" fill="{COLOURS[index % len(COLOURS)]}"/>')
        parts.append(f'<text x="{x + 14}" y="11" font-size="11">{escape(label)}</text>')
    return parts


def line_chart(title: str, lines: Sequence[Line], x_labels: Sequence[str], unit: str = "") -> SafeString:
    """One polyline per series over evenly spaced points; gaps (None) break the line."""
    known = [v for line in lines for v in line.values if v is not None]
    top = _scale(max(known, default=0))
    count = max((len(line.values) for line in lines), default=0)
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM
    parts = _frame(top, x_labels, unit)
    for index, line in enumerate(lines):
        segment: list[str] = []
        segments = [segment]
        for i, value in enumerate(line.values):
            if value is None:
                segment = []
                segments.append(segment)
                continue
            x = PAD_LEFT + plot_w * (i + 0.5) / max(count, 1)
            y = PAD_TOP + plot_h * (1 - value / top)
            segment.append(f"{x:.1f},{y:.1f}")
        colour = COLOURS[index % len(COLOURS)]
        for points in segments:
            if len(points) == 1:
                x, y = points[0].split(",")
                parts.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="{colour}"/>')
            elif points:
                parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(points)}"/>')
    parts += _legend([line.label for line in lines])
    return _svg(title, parts)


def bar_chart(title: str, bars: Sequence[Line], x_labels: Sequence[str], unit: str = "") -> SafeString:
    """Stacked bars, one stack per point (e.g. successful and failed requests)."""
    count = max((len(bar.values) for bar in bars), default=0)
    totals = [sum((bar.values[i] or 0) for bar in bars) for i in range(count)]
    top = _scale(max(totals, default=0))
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM
    parts = _frame(top, x_labels, unit)
    width = plot_w / max(count, 1)
    for i in range(count):
        base = 0.0
        for index, bar in enumerate(bars):
            value = bar.values[i] or 0
            if value <= 0:
                continue
            height = plot_h * value / top
            y = PAD_TOP + plot_h * (1 - (base + value) / top)
            parts.append(f'<rect x="{PAD_LEFT + i * width + 1:.1f}" y="{y:.1f}" width="{max(width - 2, 1):.1f}" '
                         f'height="{height:.1f}" fill="{COLOURS[index % len(COLOURS)]}"><title>'
                         f'{escape(x_labels[i] if i < len(x_labels) else "")} {escape(bar.label)}: {escape(_fmt(value))}'
                         f'</title></rect>')
            base += value
    parts += _legend([bar.label for bar in bars])
    return _svg(title, parts)


def budget_bar(fraction: float, reserved_fraction: float = 0.0, width: int = 220) -> SafeString:
    """A horizontal bar: spent (red past 90%), reserved in-flight (light), the rest empty."""
    spent = max(0.0, min(fraction, 1.0))
    held = max(0.0, min(reserved_fraction, 1.0 - spent))
    colour = "#ba2121" if fraction >= 0.9 else "#417690"
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="14" role="img" '
        f'aria-label="{fraction * 100:.1f}% spent">'
        f'<rect width="{width}" height="14" fill="#eee"/>'
        f'<rect width="{width * spent:.1f}" height="14" fill="{colour}"/>'
        f'<rect x="{width * spent:.1f}" width="{width * held:.1f}" height="14" fill="#9cc3d5"/></svg>'
    )


def _svg(title: str, parts: list[str]) -> SafeString:
    body = "".join(parts)
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>{body}</svg>'
    )
