"""Plots as server-rendered SVG (no JavaScript, nothing from a CDN); every label is escaped."""

from __future__ import annotations

from markupsafe import Markup, escape

W, H, LEFT, BOTTOM, TOP = 640, 260, 48, 60, 28


def bar_chart(labels: list[str], values: list[float], *, title: str, ymax: float | None = None,
              fmt: str = "{:g}", color: str = "#3b6ea5") -> Markup:
    """A bar chart with a value above each bar and the labels below, as an inline <svg>."""
    n = max(len(values), 1)
    top = ymax if ymax else max(values, default=0) or 1
    plot_w, plot_h = W - LEFT - 10, H - BOTTOM - TOP
    bw = plot_w / n
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" viewBox="0 0 {W} {H}" role="img" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<text x="{W / 2}" y="18" text-anchor="middle" class="plot-title">{escape(title)}</text>',
             f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{W - 10}" y2="{TOP + plot_h}" stroke="#555"/>',
             f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end" font-size="11">'
             f'{escape(fmt.format(top))}</text>',
             f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end" font-size="11">0</text>']
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * min(value / top, 1.0) if top else 0
        x = LEFT + i * bw
        parts.append(f'<rect x="{x + 2:.1f}" y="{TOP + plot_h - h:.1f}" width="{max(bw - 4, 1):.1f}" '
                     f'height="{h:.1f}" fill="{color}"><title>{escape(label)}: '
                     f'{escape(fmt.format(value))}</title></rect>')
        parts.append(f'<text x="{x + bw / 2:.1f}" y="{TOP + plot_h - h - 3:.1f}" text-anchor="middle" '
                     f'font-size="10">{escape(fmt.format(value))}</text>')
        short = label if len(label) <= 14 else label[:13] + "…"
        parts.append(f'<text x="{x + bw / 2:.1f}" y="{TOP + plot_h + 12}" font-size="10" text-anchor="end" '
                     f'transform="rotate(-30 {x + bw / 2:.1f} {TOP + plot_h + 12})">{escape(short)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # every interpolated string above went through escape()
