"""The case workers' page for flags: open ones first, raised or dismissed by hand."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from cases.admin import NoDeleteMixin
from core.pagination import EstimatedCountPaginator
from core.users import signed_in_user
from tracker.models import Flag
from tracker.selectors import flag_level_legend
from tracker.services.flags import flag_dismiss, flag_raise

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class FlagForm(forms.ModelForm):
    class Meta:
        model = Flag
        fields = ("case", "note")

    def clean_note(self) -> str:
        # A flag raised by hand must say why (the service refuses it otherwise); the model allows a
        # blank note only for the sweep's flags.
        note: str = self.cleaned_data.get("note", "")
        if not note.strip():
            raise forms.ValidationError(gettext("Say what needs attention."))
        return note


class OpenFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, StrOrPromise]]:
        return [("open", _("Open")), ("resolved", _("Resolved"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Flag]) -> QuerySet[Flag] | None:
        if self.value() == "open":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return None


class LevelFilter(admin.SimpleListFilter):
    title = _("level")
    parameter_name = "level"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, StrOrPromise]]:
        return [(str(level), f"{level}: {text}") for level, text in flag_level_legend()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Flag]) -> QuerySet[Flag] | None:
        value = self.value()
        return queryset.filter(level=int(value)) if value and value.isdigit() else None


@admin.register(Flag)
class FlagAdmin(NoDeleteMixin, admin.ModelAdmin):
    form = FlagForm
    list_display = ("kind", "level", "case", "entry", "due_on", "raised_at", "escalated_at", "resolved_at",
                    "resolution")
    # Levels are offered from the escalation settings: the field's own filter scanned every flag for
    # its distinct levels on each page.
    list_filter = (OpenFilter, "kind", LevelFilter, "resolution")
    list_select_related = ("case__child", "entry__handover_list")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 100
    autocomplete_fields = ("case",)
    actions = ["dismiss"]

    def get_readonly_fields(self, request: HttpRequest, obj: Flag | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("kind", "level", "case", "entry", "due_on", "note", "raised_at", "raised_by", "escalated_at",
                "resolved_at", "resolution", "resolved_by", "notified_level")

    def get_fields(self, request: HttpRequest, obj: Flag | None = None) -> Any:
        if obj is None:
            return ("case", "note")
        return self.get_readonly_fields(request, obj)

    def save_model(self, request: HttpRequest, obj: Flag, form: forms.ModelForm, change: bool) -> None:
        if change:
            return
        created = flag_raise(case=obj.case, note=obj.note, actor=signed_in_user(request))
        obj.pk = created.pk
        # The page's "added" message and log entry name the flag as raised, kind and all.
        obj.refresh_from_db()

    @admin.action(description=_("Dismiss the selected open flags"))
    def dismiss(self, request: HttpRequest, queryset: QuerySet[Flag]) -> None:
        count = 0
        for flag in queryset.filter(resolved_at__isnull=True):
            flag_dismiss(flag=flag, actor=signed_in_user(request))
            count += 1
        self.message_user(request, ngettext("Dismissed %(n)d flag.", "Dismissed %(n)d flags.", count)
                          % {"n": count}, messages.SUCCESS)

# Partner access (keys, shares, webhooks) and imports of spreadsheets have their own modules;
# importing them registers their pages.
