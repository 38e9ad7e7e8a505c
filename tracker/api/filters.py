"""The API's filters: the same ones case workers have in the admin, and `updated_since` for sync."""

from __future__ import annotations

import datetime

import django_filters
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.request import Request

from cases.models import Case, Child, Oblast
from cases.selectors import search_by_name
from tracker.api.permissions import viewer_of
from tracker.models import (
    Flag,
    HandoverList,
    ListEntry,
    ListShare,
    Organisation,
    Reply,
    ShareEvent,
    WebhookDelivery,
)
from tracker.selectors import case_overdue, entry_past_due, open_flag, visible_lists


def in_utc(value: datetime.datetime) -> datetime.datetime:
    """A time in any offset Python accepts, for the database: PostgreSQL refuses offsets beyond
    ±15:59, and a time before year 1 in UTC means "since always"."""
    try:
        return value.astimezone(datetime.UTC)
    except OverflowError:
        return datetime.datetime.min.replace(tzinfo=datetime.UTC)


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    def filter(self, qs: QuerySet, value: datetime.datetime | None) -> QuerySet:
        return super().filter(qs, None if value is None else in_utc(value))


# django-filter takes a callable of the request for a filter's queryset, which its stubs do not allow.
def _visible_lists(request: HttpRequest | Request | None) -> QuerySet[HandoverList]:
    if request is None:
        return HandoverList.objects.none()
    # The API's filter sets are given the API's own requests; django-filter types them as Django's.
    assert isinstance(request, Request)  # noqa: S101 an invariant, for the type checker
    return visible_lists(viewer_of(request))


class CaseFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Case.Status.choices)
    flagged = django_filters.BooleanFilter(method="filter_flagged", label="Has an open flag")
    overdue = django_filters.BooleanFilter(method="filter_overdue", label="Has an open overdue flag")
    list = django_filters.ModelChoiceFilter(queryset=_visible_lists, method="filter_list",  # type: ignore[arg-type]
                                            label="On this handover list")
    organisation = django_filters.ModelChoiceFilter(queryset=Organisation.objects.all(), method="filter_organisation",
                                                    label="On a list this organisation sent or received")
    oblast = django_filters.MultipleChoiceFilter(field_name="child__home_oblast", choices=Oblast.choices)
    circumstances = django_filters.MultipleChoiceFilter(field_name="child__circumstances",
                                                        choices=Child.Circumstances.choices)
    q = django_filters.CharFilter(method="filter_name", label="A name in any script or spelling")
    updated_since = UtcDateTimeFilter(method="filter_updated_since", label="Changed at or after (ISO 8601)")

    class Meta:
        model = Case
        fields: list[str] = []

    def _flags(self, queryset: QuerySet, value: bool | None, **kinds: object) -> QuerySet:
        if value is None:
            return queryset
        flags = open_flag("case", **kinds)
        return queryset.filter(flags if value else ~flags)

    def filter_flagged(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        return self._flags(queryset, value)

    def filter_overdue(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        return queryset.filter(case_overdue() if value else ~case_overdue())

    def filter_list(self, queryset: QuerySet, name: str, value: HandoverList | None) -> QuerySet:
        if value is None:
            return queryset
        return queryset.filter(Exists(ListEntry.objects.filter(case=OuterRef("pk"), handover_list=value)))

    def filter_organisation(self, queryset: QuerySet, name: str, value: Organisation | None) -> QuerySet:
        if value is None:
            return queryset
        lists = _visible_lists(self.request).filter(Q(sender=value) | Q(recipient=value))
        return queryset.filter(Exists(ListEntry.objects.filter(case=OuterRef("pk"), handover_list__in=lists)))

    def filter_name(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return search_by_name(queryset, "child__search_names", value)

    def filter_updated_since(self, queryset: QuerySet, name: str, value: datetime.datetime | None) -> QuerySet:
        """Every case whose record as this caller sees it may have changed since `value`: the case or
        its child, its entries on lists the caller reads, its flags, a list shared with the caller
        since, and for a partner its own share of the case (new, widened or narrowed). Each part is a
        set of case ids read through its own index. What the caller may no longer see is listed by
        `/cases/removed/`."""
        if value is None:
            return queryset
        value = in_utc(value)
        viewer = viewer_of(self.request) if isinstance(self.request, Request) else None
        lists = _visible_lists(self.request)
        changed = Q(updated_at__gte=value) | Q(child__updated_at__gte=value) | Q(
            pk__in=ListEntry.objects.filter(updated_at__gte=value, handover_list__in=lists).values("case_id"))
        for moment in ("raised_at", "escalated_at", "resolved_at"):  # one index each
            changed |= Q(pk__in=Flag.objects.filter(**{f"{moment}__gte": value}).values("case_id"))
        if viewer is not None and viewer.organisation is not None:
            newly_shown = shown_since(self.request, value).values("handover_list_id")
            changed |= Q(pk__in=ListEntry.objects.filter(handover_list__in=newly_shown).values("case_id"))
            changed |= Q(pk__in=ShareEvent.objects.filter(organisation=viewer.organisation, occurred_at__gte=value)
                         .values("case_id"))
        return queryset.filter(changed)


class RemovedCaseFilter(django_filters.FilterSet):
    since = UtcDateTimeFilter(field_name="occurred_at", lookup_expr="gte", required=True,
                              label="Removed at or after (ISO 8601)")

    class Meta:
        model = ShareEvent
        fields: list[str] = []


def shown_since(request: HttpRequest | Request | None, value: datetime.datetime) -> QuerySet[ListShare]:
    """The lists shown to the calling partner (`ListShare`) at or after `value`: new to it, whatever
    their own times say."""
    viewer = viewer_of(request) if isinstance(request, Request) else None
    if viewer is None or viewer.organisation is None:
        return ListShare.objects.none()
    return ListShare.objects.filter(organisation=viewer.organisation, created_at__gte=in_utc(value))


class HandoverListFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=HandoverList.Status.choices)
    organisation = django_filters.ModelChoiceFilter(queryset=Organisation.objects.all(), method="filter_organisation",
                                                    label="Sent or received by this organisation")
    overdue = django_filters.BooleanFilter(method="filter_overdue", label="Has entries past due with no reply")
    updated_since = UtcDateTimeFilter(method="filter_updated_since", label="Changed, or shown to you, at or after")

    class Meta:
        model = HandoverList
        fields: list[str] = []

    def filter_organisation(self, queryset: QuerySet, name: str, value: Organisation | None) -> QuerySet:
        return queryset if value is None else queryset.filter(Q(sender=value) | Q(recipient=value))

    def filter_overdue(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        late = Exists(ListEntry.objects.filter(entry_past_due(timezone.localdate()), handover_list=OuterRef("pk")))
        return queryset.filter(late if value else ~late)

    def filter_updated_since(self, queryset: QuerySet, name: str, value: datetime.datetime | None) -> QuerySet:
        if value is None:
            return queryset
        shown = shown_since(self.request, value).values("handover_list_id")
        return queryset.filter(Q(updated_at__gte=in_utc(value)) | Q(pk__in=shown))


class ListEntryFilter(django_filters.FilterSet):
    reply_state = django_filters.MultipleChoiceFilter(choices=ListEntry.ReplyState.choices)
    flagged = django_filters.BooleanFilter(method="filter_flagged", label="Has an open flag")
    overdue = django_filters.BooleanFilter(method="filter_overdue", label="Past due with no reply")
    q = django_filters.CharFilter(method="filter_name", label="A name in any script or spelling")
    updated_since = UtcDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = ListEntry
        fields: list[str] = []

    def filter_flagged(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        flags = open_flag("entry")
        return queryset.filter(flags if value else ~flags)

    def filter_overdue(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        late = entry_past_due(timezone.localdate())
        return queryset.filter(late if value else ~late)

    def filter_name(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return search_by_name(queryset, "child__search_names", value)


class ReplyFilter(django_filters.FilterSet):
    list = django_filters.ModelChoiceFilter(field_name="handover_list", queryset=_visible_lists)  # type: ignore[arg-type]
    updated_since = UtcDateTimeFilter(method="filter_updated_since",
                                      label="Changed, or its list shown to you, at or after")

    class Meta:
        model = Reply
        fields: list[str] = []

    def filter_updated_since(self, queryset: QuerySet, name: str, value: datetime.datetime | None) -> QuerySet:
        if value is None:
            return queryset
        shown = shown_since(self.request, value).values("handover_list_id")
        return queryset.filter(Q(updated_at__gte=in_utc(value)) | Q(handover_list_id__in=shown))


class WebhookDeliveryFilter(django_filters.FilterSet):
    endpoint = django_filters.NumberFilter(field_name="endpoint_id", label="The endpoint's id")
    state = django_filters.MultipleChoiceFilter(choices=WebhookDelivery.State.choices)
    event = django_filters.CharFilter(field_name="outbox_event__event", label="The event's name")

    class Meta:
        model = WebhookDelivery
        fields: list[str] = []
