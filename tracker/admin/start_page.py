"""The start page: the counts that matter, each a link to the filtered page; charts drawn from the data;
the lists nearest to and furthest past their deadlines; the longest unanswered children."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.http import urlencode
from django.utils.translation import gettext

from cases.models import Case, Oblast
from core.charts import Chart, Series, columns, horizontal_bars
from tracker import selectors
from tracker.models import Verification

ROWS = 15
# The charts' reach: months of replies and returns, and the latest lists compared.
CHART_MONTHS = 24
CHART_LISTS = 8


@dataclass(frozen=True)
class Tile:
    count: int
    label: str
    url: str
    legend: str = ""
    alert: bool = False


def _url(name: str, **query: Any) -> str:
    return f"{reverse(name)}?{urlencode(query)}" if query else reverse(name)


def _case_tiles(counts: dict[str, int]) -> list[Tile]:
    shown = [
        (Case.Status.ON_LIST, gettext("On a list, not yet handed over")),
        (Case.Status.AWAITING_REPLY, gettext("On a list handed over, awaiting a reply")),
        (Case.Status.VERIFYING, gettext("Located, being verified")),
        (Case.Status.RETURN_IN_PROGRESS, gettext("Return in progress")),
        (Case.Status.RETURNED, gettext("Returned to Ukraine")),
    ]
    return [Tile(counts[status], label, _url("admin:cases_case_changelist", status__exact=status))
            for status, label in shown]


def _flag_tiles(counts: dict[str, int], by_level: dict[int, int]) -> list[Tile]:
    legend = dict(selectors.flag_level_legend())
    tiles = [Tile(n, gettext("Overdue, level %(level)d") % {"level": level}, _url(
        "admin:tracker_flag_changelist", state="open", kind__exact="overdue", level=level),
        legend=legend.get(level, ""), alert=level > 1 and n > 0) for level, n in sorted(by_level.items())]
    tiles.append(Tile(counts["due_soon"], gettext("Reply due soon"),
                      _url("admin:tracker_listentry_changelist", flag="due_soon"),
                      legend=gettext("within %(days)d days") % {"days": settings.TRACKER_REMINDER_DAYS}))
    tiles.append(Tile(counts["manual"], gettext("Raised by a case worker"),
                      _url("admin:tracker_flag_changelist", state="open", kind__exact="manual")))
    return tiles


def _claim_tiles(counts: dict[str, int]) -> list[Tile]:
    return [
        Tile(counts[Verification.UNVERIFIED], gettext("Claims not yet verified"),
             _url("admin:tracker_listentry_changelist", claim=Verification.UNVERIFIED)),
        Tile(counts[Verification.DISPUTED], gettext("Claims disputed"),
             _url("admin:tracker_listentry_changelist", claim=Verification.DISPUTED),
             alert=counts[Verification.DISPUTED] > 0),
        Tile(counts[Verification.VERIFIED], gettext("Claims verified"),
             _url("admin:tracker_listentry_changelist", claim=Verification.VERIFIED)),
    ]


def _charts(today: Any) -> list[Chart]:
    months = selectors.answers_and_returns_by_month(today=today, months=CHART_MONTHS)
    over_time = columns(
        title=gettext("Replies and returns over time"),
        description=gettext("Children answered in replies received, and children returned, each month."),
        category_name=gettext("Month"),
        categories=[formats.date_format(month, "YEAR_MONTH_FORMAT") for month, _a, _r in months],
        series=[Series(gettext("Children answered"), [a for _m, a, _r in months]),
                Series(gettext("Children returned"), [r for _m, _a, r in months])],
    )
    per_list = selectors.claims_per_list(limit=CHART_LISTS)
    claims = horizontal_bars(
        title=gettext("Claims per list: made, verified, disputed"),
        description=gettext("For the latest lists handed over, the outcomes the other side claimed, and how "
                            "many of them were verified or disputed."),
        category_name=gettext("List"),
        categories=[row.handover_list.reference for row in per_list],
        series=[Series(gettext("Claimed"), [row.claimed for row in per_list]),
                Series(gettext("Verified"), [row.verified for row in per_list]),
                Series(gettext("Disputed"), [row.disputed for row in per_list])],
        links=[reverse("admin:tracker_handoverlist_change", args=[row.handover_list.pk]) for row in per_list],
    )
    by_oblast = selectors.overdue_children_by_oblast()
    labels = dict(Oblast.choices)
    oblasts = horizontal_bars(
        title=gettext("Overdue children by home oblast"),
        description=gettext("Children with an open overdue flag, by the oblast of their home."),
        category_name=gettext("Oblast"),
        categories=[str(labels.get(code, gettext("not known"))) for code, _n in by_oblast],
        series=[Series(gettext("Children overdue"), [n for _code, n in by_oblast])],
        links=[_url("admin:cases_case_changelist", flag="overdue", child__home_oblast__exact=code) if code else None
               for code, _n in by_oblast],
    )
    return [over_time, claims, oblasts]


def start_page_context(request: HttpRequest) -> dict[str, Any]:
    """What the start page shows; each part only to those who may open what it links to."""
    today = timezone.localdate()
    user = request.user
    context: dict[str, Any] = {"today": today, "level_legend": selectors.flag_level_legend()}
    if user.has_perm("cases.view_case"):
        context["case_tiles"] = _case_tiles(selectors.case_status_counts())
    if user.has_perm("tracker.view_flag"):
        context["overdue_tiles"] = _flag_tiles(*selectors.open_flag_counts())
        context["overdue_flags"] = selectors.overdue_entries(limit=ROWS)
    if user.has_perm("tracker.view_listentry"):
        context["claim_tiles"] = _claim_tiles(selectors.claim_verification_counts())
    if user.has_perm("tracker.view_handoverlist"):
        context["lists_due_next"] = selectors.lists_nearest_deadline(today=today, limit=ROWS)
        context["lists_past_due"] = selectors.lists_furthest_past_deadline(today=today, limit=ROWS)
    if user.has_perm("tracker.view_reply"):
        context["recent_replies"] = selectors.recent_replies(limit=ROWS)
    if user.has_perm("tracker.view_handoverlist") and user.has_perm("tracker.view_flag"):
        context["charts"] = _charts(today)
    return context
