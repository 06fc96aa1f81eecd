"""Signatures over time as inline SVG, drawn on the server: no chart library, no request.

Stacked bars, one band per series, with a legend; the colours are the Okabe–Ito palette,
told apart with colour-blindness too, and the page puts the same figures in a table beside the
chart (its text alternative). Presentation attributes only (fill, x, y): the staff pages'
policy forbids inline styles.
"""

from __future__ import annotations

from html import escape

from markupsafe import Markup

from widget_server.services.dashboard import DIRECT_KEY, OTHER_KEY, Chart

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
OTHER_COLOUR = "#8C8C8C"
DIRECT_COLOUR = "#332288"
WIDTH, HEIGHT = 960, 260
LEFT, BOTTOM, TOP = 56, 28, 12


def colours(chart: Chart) -> dict[str, str]:
    found: dict[str, str] = {}
    for index, series in enumerate(s for s in chart.series if s.key not in (DIRECT_KEY, OTHER_KEY)):
        found[series.key] = PALETTE[index % len(PALETTE)]
    found[OTHER_KEY] = OTHER_COLOUR
    found[DIRECT_KEY] = DIRECT_COLOUR
    return found


def _nice_top(value: int) -> int:
    """The top of the scale: four ticks of 1, 2 or 5 × a power of ten, at or above `value`."""
    tick = 1
    while tick * 4 < value:
        for factor in (2, 5 / 2, 2):  # 1 → 2 → 5 → 10 → 20 …
            tick = int(tick * factor)
            if tick * 4 >= value:
                break
    return tick * 4


def _label(chart: Chart, label: str) -> str:
    return label[5:] if chart.unit == "day" else f"{label[11:13]}:00"


def stacked_bars(chart: Chart, title: str, chart_id: str) -> Markup:
    """The chart as an <svg> element labelled by `title` (its table is on the page)."""
    totals = chart.totals
    top = _nice_top(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    step = plot_w / max(1, len(chart.labels))
    bar_w = max(1.0, step * 0.8)
    fill = colours(chart)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{chart_id}-title"'
        f' focusable="false" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
    ]
    for tick in range(5):
        value = top * tick // 4
        y = TOP + plot_h - plot_h * tick / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d9d9d9"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12" fill="#333">{value:,}</text>'
        )
    every = max(1, len(chart.labels) // 12)
    # One <path> per band (a rectangle per bar in it): a year of days stays a small page.
    paths: dict[str, list[str]] = {series.key: [] for series in chart.series}
    for i, label in enumerate(chart.labels):
        x = LEFT + i * step + (step - bar_w) / 2
        y = TOP + plot_h
        for series in chart.series:
            count = series.values[i]
            if count:
                h = plot_h * count / top
                y -= h
                paths[series.key].append(f"M{x:.1f} {y:.1f}h{bar_w:.1f}v{h:.1f}h-{bar_w:.1f}z")
        if i % every == 0:
            parts.append(
                f'<text x="{LEFT + i * step + step / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle"'
                f' font-size="12" fill="#333">{escape(_label(chart, label))}</text>'
            )
    for series in chart.series:
        if paths[series.key]:
            shape = "".join(paths[series.key])
            parts.append(f'<path fill="{fill[series.key]}" d="{shape}"><title>{escape(series.name)}</title></path>')
    parts.append("</svg>")
    return Markup("".join(parts))


def legend(chart: Chart) -> list[tuple[str, str, int]]:
    """(name, colour, total) per series, for the legend beside the chart."""
    fill = colours(chart)
    return [(s.name, fill[s.key], sum(s.values)) for s in chart.series]


def swatch(colour: str) -> Markup:
    return Markup(
        f'<svg class="swatch" width="14" height="14" aria-hidden="true" focusable="false">'
        f'<rect width="14" height="14" fill="{escape(colour)}"/></svg>'
    )
