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
    """A horizontal bar chart; ``maximum`` fixes the scale (1.0 for shares).

    Labels and values are HTML (the browser lays out any script and length); each bar is a
    small SVG, so nothing needs an inline style or script.
    """
    top = max([maximum or 0.0, *(b.value for b in bars)]) or 1.0
    rows = []
    for bar in bars:
        length = 0.0 if top <= 0 else min(100.0, max(0.0, bar.value) / top * 100)
        rows.append(
            "<tr>"
            f'<th scope="row">{escape(bar.label)}</th>'
            '<td class="bar"><svg viewBox="0 0 100 10" preserveAspectRatio="none" '
            f'role="img" aria-label="{escape(bar.label)}: {escape(bar.text)}">'
            '<rect width="100" height="10" rx="1" fill="#eceff1"/>'
            f'<rect width="{length:.2f}" height="10" rx="1" fill="{bar.colour}"/></svg></td>'
            f'<td class="value">{escape(bar.text)}</td>'
            "</tr>"
        )
    return Markup(
        f'<table class="chart" aria-label="{escape(title)}"><tbody>{"".join(rows)}</tbody></table>'
    )
