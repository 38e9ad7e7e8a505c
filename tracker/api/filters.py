"""The API's filters: the same ones case workers have in the admin, and `updated_since` for sync."""

from __future__ import annotations

import datetime
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest, QueryDict
from django.utils import timezone
from django.utils.translation import gettext
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework.request import Request

from cases.models import Case, Child, Oblast
from cases.selectors import search_by_name
from tracker.api.permissions import viewer_of
from tracker.models import (
    Flag,
    HandoverList,
    ListEntry,
    ListShare,
    Reply,
    ShareEvent,
    WebhookDelivery,
    WebhookEndpoint,
)
from tracker.selectors import case_overdue, entry_past_due, open_flag, visible_lists


def in_utc(value: datetime.datetime) -> datetime.datetime:
    """A time in any offset Python accepts, for the database: PostgreSQL refuses offsets beyond
    ±15:59, and a time before year 1 in UTC means "since always"."""
    try:
        return value.astimezone(datetime.UTC)
    except OverflowError:
        return datetime.datetime.min.replace(tzinfo=datetime.UTC)


@extend_schema_field(OpenApiTypes.DATETIME)
class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    def filter(self, qs: QuerySet, value: datetime.datetime | None) -> QuerySet:
        return super().filter(qs, None if value is None else in_utc(value))


class StrictBooleanField(forms.Field):
    """`true` or `false`, and nothing else: a value the API would not understand is refused, not ignored."""

    def to_python(self, value: object) -> bool | None:
        if value is None:
            return None
        if value in ("true", "false"):
            return value == "true"
        raise ValidationError(gettext("“%(value)s” is neither true nor false"), code="invalid",
                              params={"value": value})


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField  # type: ignore[assignment]


class StrictFilterSet(django_filters.FilterSet):
    """A parameter sent empty is refused unless it is free text: `updated_since=` is a mistake, not
    "no filter"."""

    def is_valid(self) -> bool:
        valid = super().is_valid()
        data = self.data if isinstance(self.data, QueryDict) else QueryDict()
        for name, given in self.filters.items():
            if isinstance(given, django_filters.CharFilter) or name not in data:
                continue
            values = data.getlist(name)
            if any(value == "" for value in values):
                self.form.add_error(name, gettext("give a value, or leave the parameter out"))
                valid = False
        return valid


class IdField(forms.Field):
    """A record's id: digits only, within PostgreSQL's integer range. An id matching nothing you may
    see filters down to nothing, as a filter does; it is not an error."""

    def to_python(self, value: object) -> int | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.isascii() or not value.isdigit() or int(value) > 2**31 - 1:
            raise ValidationError(gettext("“%(value)s” is not a record's id"), code="invalid", params={"value": value})
        return int(value)


@extend_schema_field({"type": "integer", "minimum": 0, "maximum": 2**31 - 1})
class IdFilter(django_filters.NumberFilter):
    field_class = IdField  # type: ignore[assignment]


@extend_schema_field({"type": "string", "pattern": "^[^\\u0000]*$"})
class TextFilter(django_filters.CharFilter):
    """Free text: any characters but NUL, which Django's text fields refuse."""


# django-filter takes a callable of the request for a filter's queryset, which its stubs do not allow.
def _visible_lists(request: HttpRequest | Request | None) -> QuerySet[HandoverList]:
    if request is None:
        return HandoverList.objects.none()
    # The API's filter sets are given the API's own requests; django-filter types them as Django's.
    assert isinstance(request, Request)  # noqa: S101 an invariant, for the type checker
    return visible_lists(viewer_of(request))


class CaseFilter(StrictFilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Case.Status.choices)
    flagged = StrictBooleanFilter(method="filter_flagged", label="Has an open flag")
    overdue = StrictBooleanFilter(method="filter_overdue", label="Has an open overdue flag")
    list = IdFilter(method="filter_list", label="On this handover list (its id)")
    organisation = IdFilter(method="filter_organisation", label="On a list this organisation (its id) sent or received")
    oblast = django_filters.MultipleChoiceFilter(field_name="child__home_oblast", choices=Oblast.choices)
    circumstances = django_filters.MultipleChoiceFilter(field_name="child__circumstances",
                                                        choices=Child.Circumstances.choices)
    q = TextFilter(method="filter_name", label="A name in any script or spelling")
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

    def filter_list(self, queryset: QuerySet, name: str, value: int | None) -> QuerySet:
        if value is None:
            return queryset
        lists = _visible_lists(self.request).filter(pk=value)
        return queryset.filter(Exists(ListEntry.objects.filter(case=OuterRef("pk"), handover_list__in=lists)))

    def filter_organisation(self, queryset: QuerySet, name: str, value: int | None) -> QuerySet:
        if value is None:
            return queryset
        lists = _visible_lists(self.request).filter(Q(sender_id=value) | Q(recipient_id=value))
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


class RemovedCaseFilter(StrictFilterSet):
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


class HandoverListFilter(StrictFilterSet):
    status = django_filters.MultipleChoiceFilter(choices=HandoverList.Status.choices)
    organisation = IdFilter(method="filter_organisation", label="Sent or received by this organisation (its id)")
    overdue = StrictBooleanFilter(method="filter_overdue", label="Has entries past due with no reply")
    updated_since = UtcDateTimeFilter(method="filter_updated_since", label="Changed, or shown to you, at or after")

    class Meta:
        model = HandoverList
        fields: list[str] = []

    def filter_organisation(self, queryset: QuerySet, name: str, value: int | None) -> QuerySet:
        return queryset if value is None else queryset.filter(Q(sender_id=value) | Q(recipient_id=value))

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


class ListEntryFilter(StrictFilterSet):
    reply_state = django_filters.MultipleChoiceFilter(choices=ListEntry.ReplyState.choices)
    flagged = StrictBooleanFilter(method="filter_flagged", label="Has an open flag")
    overdue = StrictBooleanFilter(method="filter_overdue", label="Past due with no reply")
    q = TextFilter(method="filter_name", label="A name in any script or spelling")
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


class ReplyFilter(StrictFilterSet):
    list = IdFilter(field_name="handover_list_id", label="To this handover list (its id)")
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


class WebhookDeliveryFilter(StrictFilterSet):
    endpoint = IdFilter(field_name="endpoint_id", label="The endpoint's id")
    state = django_filters.MultipleChoiceFilter(choices=WebhookDelivery.State.choices)
    event = django_filters.ChoiceFilter(field_name="outbox_event__event", choices=WebhookEndpoint.Event.choices,
                                        label="The event's name")

    class Meta:
        model = WebhookDelivery
        fields: list[str] = []


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend, which builds and validates its form only for a request that gives one
    of the filter set's parameters or where one is required: with none given, every filter set here
    leaves the queryset as it is (`tests/tracker/test_api_contract.py` holds each one to that), and a
    page of cases skips the form's work."""

    def filter_queryset(self, request: Any, queryset: QuerySet, view: Any) -> QuerySet:
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None and not any(
                name in request.query_params or given.extra.get("required")
                for name, given in filterset_class.base_filters.items()):
            return queryset
        return super().filter_queryset(request, queryset, view)
