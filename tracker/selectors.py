"""Reads for the exchange that the admin's pages and the start page share."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypedDict, cast

from django.conf import settings
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from cases.models import Case, CaseEvent, ClosingRequest
from tracker.models import (
    ApiKey,
    CaseShare,
    Flag,
    HandoverList,
    ListEntry,
    ListShare,
    Organisation,
    Reply,
    ReplyOutcome,
    Verification,
)


def open_flag_level() -> Coalesce:
    """The highest open flag level on an entry, as an annotation (0 when none is open).

    Not NULL: PostgreSQL sorts NULL first in descending order, so sorting entries by their flag,
    highest first, would start with every unflagged entry.
    """
    top = Flag.objects.filter(entry=OuterRef("pk"), resolved_at__isnull=True).order_by("-level").values("level")
    return Coalesce(Subquery(top[:1], output_field=IntegerField()), 0)


def open_flag(subject: str, **conditions: object) -> Exists:
    """Whether a case or an entry (`subject`: "case" or "entry") has an open flag meeting `conditions`,
    as a filter: the admin's and the API's "flagged" and "overdue" filters are this one rule."""
    return Exists(Flag.objects.filter(**{subject: OuterRef("pk")}, resolved_at__isnull=True, **conditions))


def entry_past_due(today: datetime.date, prefix: str = "") -> Q:
    """An entry is past due when it still awaits its reply after its due date; `prefix` reaches
    entries from another model ("entries__" from a list). The one rule the lists' counts and the
    API's list and entry filters share. Not to be confused with `case_overdue`."""
    return Q(**{f"{prefix}reply_state": ListEntry.ReplyState.AWAITING, f"{prefix}due_on__lt": today})


def case_overdue() -> Exists:
    """A case is overdue when it has an open overdue flag: the sweep's verdict, which knows the
    escalations and the flags dismissed by hand, rather than a date compared here. The one rule the
    admin's and the API's case filters share. An entry's own lateness is `entry_past_due`."""
    return open_flag("case", kind=Flag.Kind.OVERDUE)


class ListCounts(TypedDict):
    """What `handover_lists_with_counts` adds to each list."""

    n_entries: int
    n_answered: int
    n_awaiting: int
    n_overdue: int
    n_claimed: int
    n_verified: int
    n_disputed: int


def handover_lists_with_counts(queryset: QuerySet[HandoverList], *, today: datetime.date) -> QuerySet[HandoverList]:
    """Lists with their entry counts by reply state, and by the verdict on each entry's latest claim
    (claimed at all, verified, disputed), in the one query that lists them."""
    awaiting = Q(entries__reply_state=ListEntry.ReplyState.AWAITING)
    return queryset.annotate(
        n_entries=Count("entries"),
        n_answered=Count("entries", filter=Q(entries__reply_state=ListEntry.ReplyState.ANSWERED)),
        n_awaiting=Count("entries", filter=awaiting),
        n_overdue=Count("entries", filter=entry_past_due(today, "entries__")),
        n_claimed=Count("entries", filter=Q(entries__claim_count__gt=0)),
        n_verified=Count("entries", filter=Q(entries__claim_verification=Verification.VERIFIED)),
        n_disputed=Count("entries", filter=Q(entries__claim_verification=Verification.DISPUTED)),
    )


def overdue_entries(*, limit: int) -> QuerySet[Flag]:
    """Open overdue flags, longest unanswered first, with what the start page shows of each."""
    return (
        Flag.objects.filter(resolved_at__isnull=True, kind=Flag.Kind.OVERDUE)
        .select_related("entry__handover_list__recipient", "case__child", "case__assignee")
        .order_by("-level", "due_on", "id")[:limit]
    )


def open_flag_counts() -> tuple[dict[str, int], dict[int, int]]:
    """The open flags for the start page, in one query: how many of each kind, and the overdue ones by
    level with every level of the legend present (0 when none)."""
    by_kind = dict.fromkeys(Flag.Kind.values, 0)
    overdue_by_level = {level: 0 for level, _text in flag_level_legend()}
    rows = (Flag.objects.filter(resolved_at__isnull=True).order_by().values("kind", "level")
            .annotate(n=Count("id")))
    for row in rows:
        by_kind[row["kind"]] = by_kind.get(row["kind"], 0) + row["n"]
        if row["kind"] == Flag.Kind.OVERDUE:
            overdue_by_level[row["level"]] = overdue_by_level.get(row["level"], 0) + row["n"]
    return by_kind, overdue_by_level


def lists_awaiting_replies(*, today: datetime.date, limit: int) -> QuerySet[HandoverList]:
    """The lists still waiting for replies, closest to their deadline first, with their counts: the
    lists are chosen first and only theirs counted (counting every waiting list's entries took seconds
    at millions of entries)."""
    waiting = HandoverList.objects.filter(
        status__in=[HandoverList.Status.HANDED_OVER, HandoverList.Status.PARTIALLY_ANSWERED]
    ).order_by("response_due_on", "id").values("pk")[:limit]
    chosen = HandoverList.objects.filter(pk__in=Subquery(waiting)).select_related("sender", "recipient")
    return handover_lists_with_counts(chosen, today=today).order_by("response_due_on", "id")


def recent_replies(*, limit: int) -> QuerySet[Reply]:
    """The latest replies with how many children each answered: chosen first, counted after."""
    latest = Reply.objects.order_by("-received_on", "-id").values("pk")[:limit]
    return (
        Reply.objects.filter(pk__in=Subquery(latest)).select_related("handover_list", "received_from")
        .annotate(n_outcomes=Count("outcomes"))
        .order_by("-received_on", "-id")
    )


# --- What a partner organisation may see -----------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    """Who is asking: a partner organisation through one of its keys, or a case worker (sees all)."""

    organisation: Organisation | None
    key: ApiKey | None = None

    @property
    def is_staff(self) -> bool:
        return self.organisation is None

    def has_scope(self, scope: str) -> bool:
        return self.key is None or scope in self.key.scopes

    def read_log_fields(self) -> dict[str, Any]:
        """Who read, as the read log names a partner: its id, its key's prefix, both in words."""
        if self.organisation is None:
            return {}
        prefix = self.key.prefix if self.key else ""
        return {"partner_id": self.organisation.pk, "api_key_prefix": prefix,
                "client": f"{self.organisation} · key {prefix}" if prefix else ""}


def live_shares(viewer: Viewer) -> QuerySet[CaseShare]:
    return CaseShare.objects.filter(organisation=viewer.organisation, revoked_at__isnull=True)


def visible_cases(viewer: Viewer) -> QuerySet[Case]:
    if viewer.is_staff:
        return Case.objects.all()
    return _cases_shared_with(cast(Organisation, viewer.organisation)).all()


@lru_cache(maxsize=1024)
def _cases_shared_with(organisation: Organisation) -> QuerySet[Case]:
    """The cases an organisation has a live share of, as a query built once per organisation and
    process: building it cost about as much as running the API's page keys by it. Only the query is
    kept (the organisation's key in it), never rows: each use is a copy (`.all()`) that reads the
    shares as they are when it runs."""
    return Case.objects.filter(Exists(live_shares(Viewer(organisation=organisation)).filter(case=OuterRef("pk"))))


def visible_flags(viewer: Viewer) -> QuerySet[Flag]:
    """Flags with `entry_seen`: whether the viewer may read the list of the flag's entry. A partner is
    shown a flag on a case shared with it, but not the entry, list or due date of a list it cannot read."""
    if viewer.is_staff:
        return Flag.objects.annotate(entry_seen=Value(True))
    return Flag.objects.annotate(entry_seen=Exists(visible_lists(viewer).filter(pk=OuterRef("entry__handover_list"))))


def visible_lists(viewer: Viewer) -> QuerySet[HandoverList]:
    """Lists a partner sent, lists handed over to it, and lists explicitly shared with it."""
    return HandoverList.objects.filter(visible_list(viewer))


def visible_list(viewer: Viewer, path: str = "") -> Q:
    """The condition of `visible_lists` on a list reached by `path` (`"handover_list__"` from an
    entry): the list itself joined, not a second list searched for its key."""
    if viewer.is_staff:
        return Q()
    org = viewer.organisation
    shared = ListShare.objects.filter(handover_list=OuterRef(f"{path}pk"), organisation=org)
    return (Q(**{f"{path}sender": org})
            | (Q(**{f"{path}recipient": org}) & ~Q(**{f"{path}status": HandoverList.Status.DRAFT}))
            | Q(Exists(shared)))


# --- A case worker's own work ----------------------------------------------------------------

MY_WORK_ROWS = 200


@dataclass(frozen=True)
class MyWork:
    """What one case worker has on their desk: their live cases (the most urgent first), the open
    flags on them by level, the entries of theirs whose reply falls due soon, and the closings they
    asked for that a supervisor sent back."""

    cases: Sequence[Case]
    n_cases: int
    flags_by_level: Sequence[tuple[int, int]]
    due_soon: Sequence[ListEntry]
    sent_back: Sequence[ClosingRequest]


def my_work(*, user: Any, today: datetime.date, due_within_days: int, rows: int = MY_WORK_ROWS) -> MyWork:
    """Read in five queries whatever the number of cases: the page lists at most `rows` of each."""
    mine = Case.objects.filter(assignee=user).exclude(status=Case.Status.CLOSED)
    top_level = Flag.objects.filter(case=OuterRef("pk"), resolved_at__isnull=True).order_by("-level").values("level")
    cases = list(
        mine.select_related("child").annotate(
            open_flag_level=Coalesce(Subquery(top_level[:1], output_field=IntegerField()), 0))
        .order_by("-open_flag_level", "-priority", "opened_on", "id")[:rows]
    )
    levels = (Flag.objects.filter(resolved_at__isnull=True, case__assignee=user)
              .exclude(case__status=Case.Status.CLOSED).values("level").annotate(n=Count("id")).order_by("-level"))
    due_soon = list(
        ListEntry.objects.filter(case__in=mine, reply_state=ListEntry.ReplyState.AWAITING, due_on__gte=today,
                                 due_on__lte=today + datetime.timedelta(days=due_within_days))
        .select_related("child", "handover_list").order_by("due_on", "id")[:rows]
    )
    sent_back = list(
        ClosingRequest.objects.filter(requested_by=user, state=ClosingRequest.State.SENT_BACK,
                                      decided_at__date__gte=today - datetime.timedelta(days=30))
        .select_related("case__child", "decided_by").order_by("-decided_at")[:rows]
    )
    return MyWork(cases=cases, n_cases=mine.count(), flags_by_level=[(row["level"], row["n"]) for row in levels],
                  due_soon=due_soon, sent_back=sent_back)


# --- The start page ----------------------------------------------------------------------------


def flag_level_legend() -> list[tuple[int, str]]:
    """What each level of an overdue flag means, in words: level 1 when the deadline passed, one more
    for each escalation threshold (TRACKER_ESCALATION_DAYS) passed since."""
    legend = [(1, gettext("overdue, no reply"))]
    for n, days in enumerate(sorted(settings.TRACKER_ESCALATION_DAYS)):
        legend.append((n + 2, ngettext("%(days)d day or more past due", "%(days)d days or more past due", days)
                       % {"days": days}))
    return legend


def case_status_counts() -> dict[str, int]:
    """How many cases are in each status, every status present (0 when none)."""
    counts = dict.fromkeys(Case.Status.values, 0)
    for row in Case.objects.order_by().values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    return counts


def claim_verification_counts() -> dict[str, int]:
    """Entries answered by a claim, by the state of verification of their latest claim."""
    counts = dict.fromkeys(Verification.values, 0)
    for row in (ListEntry.objects.exclude(claim_verification="").order_by().values("claim_verification")
                .annotate(n=Count("id"))):
        counts[row["claim_verification"]] = row["n"]
    return counts


def _month_starts(first: datetime.date, last: datetime.date) -> list[datetime.date]:
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(month)
        month = (month + datetime.timedelta(days=32)).replace(day=1)
    return months


def answers_and_returns_by_month(*, today: datetime.date, months: int) -> list[tuple[datetime.date, int, int]]:
    """For each month from the first reply or return up to this one (at most the last `months` months,
    at least six): the children answered in replies received that month, and the cases that reached
    "returned" that month."""
    earliest = (today.replace(day=1) - datetime.timedelta(days=31 * (months - 1))).replace(day=1)
    first_reply = Reply.objects.filter(received_on__gte=earliest).order_by("received_on").values_list(
        "received_on", flat=True).first()
    recent = (today.replace(day=1) - datetime.timedelta(days=31 * 5)).replace(day=1)
    first = max(earliest, min(first_reply.replace(day=1) if first_reply else recent, recent))
    answered = {
        row["month"]: row["n"]
        for row in ReplyOutcome.objects.filter(reply__received_on__gte=first).order_by()
        .annotate(month=TruncMonth("reply__received_on")).values("month").annotate(n=Count("id"))
    }
    returned = {
        timezone.localdate(row["month"]) if isinstance(row["month"], datetime.datetime) else row["month"]: row["n"]
        for row in CaseEvent.objects.filter(to_status=Case.Status.RETURNED,
                                            happened_at__date__gte=first).order_by()
        .annotate(month=TruncMonth("happened_at")).values("month").annotate(n=Count("id"))
    }
    return [(month, answered.get(month, 0), returned.get(month, 0)) for month in _month_starts(first, today)]


@dataclass(frozen=True)
class ListClaims:
    """A list's claims: how many children it holds, were answered, and how the claims stand."""

    handover_list: HandoverList
    claimed: int
    verified: int
    disputed: int


def claims_per_list(*, limit: int) -> list[ListClaims]:
    """The latest lists handed over, each with its claims counted: verified and disputed among them."""
    chosen = list(HandoverList.objects.exclude(status=HandoverList.Status.DRAFT)
                  .order_by("-handed_over_on", "-id")[:limit])
    rows = {
        row["entry__handover_list"]: row
        for row in ReplyOutcome.objects.filter(entry__handover_list__in=[hl.pk for hl in chosen]).order_by()
        .values("entry__handover_list").annotate(
            claimed=Count("id"),
            verified=Count("id", filter=Q(verification=Verification.VERIFIED)),
            disputed=Count("id", filter=Q(verification=Verification.DISPUTED)))
    }
    empty = {"claimed": 0, "verified": 0, "disputed": 0}
    return [ListClaims(hl, rows.get(hl.pk, empty)["claimed"], rows.get(hl.pk, empty)["verified"],
                       rows.get(hl.pk, empty)["disputed"]) for hl in reversed(chosen)]


def overdue_children_by_oblast() -> list[tuple[str, int]]:
    """How many children have an open overdue flag, by home oblast (code, "" when not known), most first."""
    rows = (Flag.objects.filter(resolved_at__isnull=True, kind=Flag.Kind.OVERDUE).order_by()
            .values("case__child__home_oblast").annotate(n=Count("case__child", distinct=True)).order_by("-n"))
    return [(row["case__child__home_oblast"] or "", row["n"]) for row in rows]


def lists_nearest_deadline(*, today: datetime.date, limit: int) -> QuerySet[HandoverList]:
    """Lists awaiting replies whose deadline is today or ahead, the closest first, with their counts."""
    waiting = HandoverList.objects.filter(
        status__in=[HandoverList.Status.HANDED_OVER, HandoverList.Status.PARTIALLY_ANSWERED],
        response_due_on__gte=today,
    ).order_by("response_due_on", "id").values("pk")[:limit]
    chosen = HandoverList.objects.filter(pk__in=Subquery(waiting)).select_related("sender", "recipient")
    return handover_lists_with_counts(chosen, today=today).order_by("response_due_on", "id")


def lists_furthest_past_deadline(*, today: datetime.date, limit: int) -> QuerySet[HandoverList]:
    """Lists awaiting replies past their deadline, the longest past first, with their counts."""
    waiting = HandoverList.objects.filter(
        status__in=[HandoverList.Status.HANDED_OVER, HandoverList.Status.PARTIALLY_ANSWERED],
        response_due_on__lt=today,
    ).order_by("response_due_on", "id").values("pk")[:limit]
    chosen = HandoverList.objects.filter(pk__in=Subquery(waiting)).select_related("sender", "recipient")
    return handover_lists_with_counts(chosen, today=today).order_by("response_due_on", "id")
