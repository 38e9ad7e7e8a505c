"""The list filters the tracker's pages share: flags, outcomes, lists and organisations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from cases.models import Case
from tracker.models import Flag, HandoverList, ListEntry, Organisation, Outcome, Verification
from tracker.selectors import open_flag

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class FlaggedFilter(admin.SimpleListFilter):
    """Cases or entries with an open flag, and of which kind."""

    title = _("flag")
    parameter_name = "flag"
    subject = "case"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, StrOrPromise]]:
        return [("any", _("Flagged")), ("overdue", _("Overdue")), ("escalated", _("Overdue, escalated")),
                ("due_soon", _("Due soon")), ("disputed", _("Claim disputed")),
                ("none", _("Not flagged"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        value = self.value()
        if not value:
            return None
        conditions: dict[str, dict[str, Any]] = {"overdue": {"kind": Flag.Kind.OVERDUE},
                                                 "escalated": {"kind": Flag.Kind.OVERDUE, "level__gt": 1},
                                                 "due_soon": {"kind": Flag.Kind.DUE_SOON},
                                                 "disputed": {"kind": Flag.Kind.DISPUTED}}
        flagged = open_flag(self.subject, **conditions.get(value, {}))
        return queryset.filter(~flagged if value == "none" else flagged)


class EntryFlaggedFilter(FlaggedFilter):
    subject = "entry"


class LastOutcomeFilter(admin.SimpleListFilter):
    """The outcome last claimed, by its label: the column itself stores only the code."""

    title = _("last outcome claimed")
    parameter_name = "last_outcome"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, StrOrPromise]]:
        return [("none", _("None yet")), *Outcome.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ListEntry]) -> QuerySet[ListEntry] | None:
        if self.value() == "none":
            return queryset.filter(last_outcome="")
        if self.value() in Outcome.values:
            return queryset.filter(last_outcome=self.value())
        return None


class OnListFilter(admin.SimpleListFilter):
    title = _("list")
    parameter_name = "on_list"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, StrOrPromise]]:
        return [(str(pk), ref) for pk, ref in HandoverList.objects.order_by("-id").values_list("pk", "reference")[:200]]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Case]) -> QuerySet[Case] | None:
        value = self.value() or ""
        if not value.isdigit():
            return None
        return queryset.filter(Exists(ListEntry.objects.filter(case=OuterRef("pk"), handover_list_id=int(value))))


class OrganisationFilter(admin.SimpleListFilter):
    """Cases on a list that an organisation sent or received."""

    title = _("organisation")
    parameter_name = "organisation"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, StrOrPromise]]:
        return [(str(pk), name) for pk, name in Organisation.objects.values_list("pk", "name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Case]) -> QuerySet[Case] | None:
        value = self.value() or ""
        if not value.isdigit():
            return None
        org = int(value)
        on_their_list = ListEntry.objects.filter(case=OuterRef("pk")).filter(
            Q(handover_list__sender_id=org) | Q(handover_list__recipient_id=org)
        )
        return queryset.filter(Exists(on_their_list))


class OneListFilter(admin.SimpleListFilter):
    """The entries of one list, chosen by its id (the list's page links here). Only the chosen list is
    named: offering every list as a choice drew thousands of them on every page."""

    title = _("list")
    parameter_name = "handover_list__id__exact"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, StrOrPromise]]:
        value = self.value()
        if not value or not value.isdigit():
            return []
        chosen = HandoverList.objects.filter(pk=int(value)).only("reference", "title").first()
        return [(value, str(chosen))] if chosen is not None else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        value = self.value()
        if not value:
            return None
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(handover_list_id=int(value))


class ClaimVerificationFilter(admin.SimpleListFilter):
    """Entries whose latest claim is in the chosen state of verification (the start page's counts)."""

    title = _("claim")
    parameter_name = "claim"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, StrOrPromise]]:
        return list(Verification.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[ListEntry]) -> QuerySet[ListEntry] | None:
        value = self.value()
        if value not in Verification.values:
            return None
        return queryset.filter(claim_verification=value)
