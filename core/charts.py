"""Bar charts drawn as SVG on the server: no script and nothing fetched, so they keep the pages'
Content-Security-Policy and work on a network cut off from the outside. Colours come from the
stylesheet (`.chart .series-N`), so that the admin's dark mode and a printout both read.

Each chart is a <figure> with a title and a description for screen readers, a legend, and the same
figures as a table under "Figures" for anyone who cannot see the bars.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count

from django.template.loader import render_to_string
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

_ids = count(1)

# Room for the labels, in the SVG's own units (the drawing scales to the width it is given).
LABEL_WIDTH = 210
BAR_AREA = 520
VALUE_GAP = 6
ROW_GAP = 10
BAR_HEIGHT = 14
COLUMN_AREA_HEIGHT = 180
COLUMN_WIDTH = 12


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[int]


@dataclass(frozen=True)
class Chart:
    """A drawn chart and what the template around it shows."""

    svg: SafeString
    title: str
    description: str
    categories: Sequence[str]
    series: Sequence[Series]
    links: Sequence[str | None]
    category_name: str

    def __str__(self) -> str:
        return render_to_string("admin/chart.html", {"chart": self})

    def __html__(self) -> str:
        return str(self)

    @property
    def rows(self) -> list[tuple[str, str | None, list[int]]]:
        return [(category, self.links[i], [s.values[i] for s in self.series])
                for i, category in enumerate(self.categories)]


def _scale(series: Sequence[Series]) -> int:
    return max([1, *(value for s in series for value in s.values)])


def horizontal_bars(*, title: str, description: str, category_name: str, categories: Sequence[str],
                    series: Sequence[Series], links: Sequence[str | None] | None = None) -> Chart:
    """One group of bars per category, one bar per series, the category's label on the left."""
    top = _scale(series)
    group = len(series) * BAR_HEIGHT + ROW_GAP
    height = max(group * len(categories), group)
    width = LABEL_WIDTH + BAR_AREA + 60
    chart_id = next(_ids)
    parts = [f'<svg class="chart-svg" viewBox="0 0 {width} {height}" role="img" '
             f'aria-labelledby="chart-{chart_id}-title chart-{chart_id}-desc" preserveAspectRatio="xMinYMin meet">',
             f'<title id="chart-{chart_id}-title">{escape(title)}</title>',
             f'<desc id="chart-{chart_id}-desc">{escape(description)}</desc>']
    for row, category in enumerate(categories):
        y = row * group
        parts.append(f'<text class="chart-label" x="{LABEL_WIDTH - VALUE_GAP}" y="{y + group / 2}" '
                     f'text-anchor="end" dominant-baseline="middle">{escape(category)}</text>')
        for n, s in enumerate(series):
            value = s.values[row]
            bar = round(BAR_AREA * value / top, 1)
            bar_y = y + n * BAR_HEIGHT
            parts.append(f'<rect class="series-{n}" x="{LABEL_WIDTH}" y="{bar_y}" width="{bar}" '
                         f'height="{BAR_HEIGHT - 2}"><title>{escape(s.name)}: {value}</title></rect>')
            parts.append(f'<text class="chart-value" x="{LABEL_WIDTH + bar + VALUE_GAP}" '
                         f'y="{bar_y + (BAR_HEIGHT - 2) / 2}" dominant-baseline="middle">{value}</text>')
    parts.append("</svg>")
    return Chart(mark_safe("".join(parts)), title, description, categories, series,  # noqa: S308 (escaped above)
                 links or [None] * len(categories), category_name)


def columns(*, title: str, description: str, category_name: str, categories: Sequence[str],
            series: Sequence[Series], links: Sequence[str | None] | None = None) -> Chart:
    """Columns over time: one group per category (a month), one column per series, labels beneath."""
    top = _scale(series)
    group = len(series) * COLUMN_WIDTH + 14
    width = max(group * len(categories), 200) + 40
    height = COLUMN_AREA_HEIGHT + 70
    chart_id = next(_ids)
    parts = [f'<svg class="chart-svg" viewBox="0 0 {width} {height}" role="img" '
             f'aria-labelledby="chart-{chart_id}-title chart-{chart_id}-desc" preserveAspectRatio="xMinYMin meet">',
             f'<title id="chart-{chart_id}-title">{escape(title)}</title>',
             f'<desc id="chart-{chart_id}-desc">{escape(description)}</desc>',
             f'<line class="chart-axis" x1="30" y1="{COLUMN_AREA_HEIGHT + 14}" x2="{width}" '
             f'y2="{COLUMN_AREA_HEIGHT + 14}"/>',
             f'<text class="chart-value" x="26" y="18" text-anchor="end">{top}</text>',
             f'<text class="chart-value" x="26" y="{COLUMN_AREA_HEIGHT + 14}" text-anchor="end">0</text>']
    for col, category in enumerate(categories):
        x = 36 + col * group
        for n, s in enumerate(series):
            value = s.values[col]
            bar = round(COLUMN_AREA_HEIGHT * value / top, 1)
            parts.append(f'<rect class="series-{n}" x="{x + n * COLUMN_WIDTH}" y="{COLUMN_AREA_HEIGHT + 14 - bar}" '
                         f'width="{COLUMN_WIDTH - 2}" height="{bar}"><title>{escape(category)}, '
                         f'{escape(s.name)}: {value}</title></rect>')
        tick_x, tick_y = x + group / 2 - 7, COLUMN_AREA_HEIGHT + 26
        parts.append(f'<text class="chart-label chart-tick" x="{tick_x}" y="{tick_y}" text-anchor="end" '
                     f'transform="rotate(-45 {tick_x} {tick_y})">{escape(category)}</text>')
    parts.append("</svg>")
    return Chart(mark_safe("".join(parts)), title, description, categories, series,  # noqa: S308 (escaped above)
                 links or [None] * len(categories), category_name)
