"""Charts drawn on the server as inline SVG: no JavaScript, no CDN, readable when printed."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from markupsafe import Markup

LANE_COLOURS = {"red": "#c62828", "yellow": "#f9a825", "green": "#2e7d32", "blue": "#1565c0"}
NEUTRAL = "#546e7a"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str  # what is written at the end of the bar
    colour: str = NEUTRAL


def bar_chart(bars: list[Bar], *, title: str, maximum: float | None = None) -> Markup:
    """A horizontal bar chart; ``maximum`` fixes the scale (1.0 for shares)."""
    label_w, bar_w, row_h, pad = 190, 300, 30, 8
    width = label_w + bar_w + 110
    height = pad * 2 + row_h * max(len(bars), 1)
    top = max([maximum or 0.0, *(b.value for b in bars)]) or 1.0
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for i, bar in enumerate(bars):
        y = pad + i * row_h
        length = 0.0 if top <= 0 else max(0.0, bar.value) / top * bar_w
        parts.append(
            f'<text x="{label_w - 8}" y="{y + row_h / 2 + 5}" text-anchor="end" '
            f'class="chart-label">{escape(bar.label)}</text>'
            f'<rect x="{label_w}" y="{y + 5}" width="{bar_w}" height="{row_h - 10}" '
            f'fill="#eceff1" rx="3"/>'
            f'<rect x="{label_w}" y="{y + 5}" width="{length:.1f}" height="{row_h - 10}" '
            f'fill="{bar.colour}" rx="3"><title>{escape(bar.label)}: {escape(bar.text)}</title>'
            "</rect>"
            f'<text x="{label_w + bar_w + 8}" y="{y + row_h / 2 + 5}" '
            f'class="chart-value">{escape(bar.text)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
