"""Small inline SVG charts: rendered on the server, so the console needs no JavaScript library and no CDN."""

from __future__ import annotations

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString


def bar_chart(
    points: list[tuple[str, float]],
    *,
    title: str,
    value_format: str = "{:g}",
    width: int = 640,
    label_every_bar: bool = False,
) -> SafeString:
    """A vertical bar chart with the value over each bar and the first/last labels under the axis (every bar's
    label with `label_every_bar`, for a few categories rather than a time series)."""
    height, top, bottom = 180, 18, 22
    plot_height = height - top - bottom
    if not points:
        return format_html('<p class="empty">{}: no data yet.</p>', title)
    peak = max(value for _, value in points) or 1.0
    slot = width / len(points)
    bars = []
    for index, (label, value) in enumerate(points):
        bar_height = plot_height * value / peak
        # format_html escapes its arguments into strings, so numbers are formatted first.
        bars.append(
            (
                label,
                value_format.format(value),
                f"{index * slot + slot * 0.1:.1f}",
                f"{top + plot_height - bar_height:.1f}",
                f"{slot * 0.8:.1f}",
                f"{bar_height:.1f}",
                f"{index * slot + slot / 2:.1f}",
                f"{top + plot_height - bar_height - 4:.1f}",
                value_format.format(value) if len(points) <= 31 else "",
            )
        )
    svg_bars = format_html_join(
        "",
        '<g><title>{}: {}</title><rect x="{}" y="{}" width="{}" height="{}"></rect>'
        '<text x="{}" y="{}" class="value">{}</text></g>',
        bars,
    )
    if label_every_bar:
        axis_labels = format_html_join(
            "",
            '<text x="{}" y="{}" class="axis" text-anchor="middle">{}</text>',
            [(f"{index * slot + slot / 2:.1f}", height - 6, label) for index, (label, _) in enumerate(points)],
        )
    else:
        axis_labels = format_html(
            '<text x="0" y="{}" class="axis" text-anchor="start">{}</text>'
            '<text x="{}" y="{}" class="axis" text-anchor="end">{}</text>',
            height - 6,
            points[0][0],
            width,
            height - 6,
            points[-1][0],
        )
    return format_html(
        '<figure class="chart"><figcaption>{}</figcaption>'
        '<svg viewBox="0 0 {} {}" role="img" aria-label="{}">{}{}</svg></figure>',
        title,
        width,
        height,
        title,
        svg_bars,
        axis_labels,
    )
