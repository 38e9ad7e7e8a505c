"""Admin pages for partner access: keys (shown once), shares, webhooks and their delivery log."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from cases.admin import NoDeleteMixin
from core.tasks import enqueue_on_commit
from core.users import signed_in_user
from tracker.models import ApiKey, ApiScope, CaseShare, ListShare, Organisation, WebhookDelivery, WebhookEndpoint
from tracker.services.partners import api_key_issue, api_key_revoke, case_share_grant, case_shares_revoke
from tracker.services.webhooks import EndpointRefused, url_problem, webhook_endpoint_register
from tracker.tasks import deliver_webhook


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=ApiScope.choices, widget=forms.CheckboxSelectMultiple,
                                       initial=[ApiScope.READ])

    class Meta:
        model = ApiKey
        fields = ("organisation", "name", "scopes", "expires_at")


@admin.register(ApiKey)
class ApiKeyAdmin(NoDeleteMixin, admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ("name", "organisation", "prefix", "scopes", "created_at", "expires_at", "last_used_at",
                    "revoked_at")
    list_filter = ("organisation",)
    list_select_related = ("organisation",)
    search_fields = ("name", "prefix", "organisation__name")
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("organisation", "name", "prefix", "scopes", "expires_at", "created_by", "created_at",
                "last_used_at", "revoked_at")

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> Any:
        return ("organisation", "name", "scopes", "expires_at") if obj is None else self.get_readonly_fields(request,
                                                                                                             obj)

    def save_model(self, request: HttpRequest, obj: ApiKey, form: forms.ModelForm, change: bool) -> None:
        if change:
            return
        key, full_text = api_key_issue(organisation=form.cleaned_data["organisation"],
                                       name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"],
                                       expires_at=form.cleaned_data.get("expires_at"), actor=signed_in_user(request))
        obj.pk = key.pk
        self.message_user(
            request, gettext("The new key is %(key)s — copy it now and give it to %(organisation)s safely: "
                             "it is not stored and will not be shown again.")
            % {"key": full_text, "organisation": key.organisation}, messages.WARNING,
        )

    @admin.action(description=_("Revoke the selected keys"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset:
            api_key_revoke(key=key)
        count = queryset.count()
        self.message_user(request, ngettext("Revoked %(n)d key.", "Revoked %(n)d keys.", count) % {"n": count},
                          messages.SUCCESS)


@admin.register(CaseShare)
class CaseShareAdmin(NoDeleteMixin, admin.ModelAdmin):
    list_display = ("case", "organisation", "include_restricted", "can_contribute", "created_at", "revoked_at")
    list_filter = ("organisation", "include_restricted", "can_contribute")
    list_select_related = ("case__child", "organisation")
    autocomplete_fields = ("case",)
    fields = ("case", "organisation", "include_restricted", "can_contribute", "shared_by", "revoked_at")
    # Revoking is the action's (a share event tells the partner's sync); a revoked share stays as it was.
    readonly_fields = ("shared_by", "revoked_at")
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: CaseShare | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("shared_by", "revoked_at")
        if obj.revoked_at is not None:
            return ("case", "organisation", "include_restricted", "can_contribute", "shared_by", "revoked_at")
        return ("case", "organisation", "shared_by", "revoked_at")

    def save_model(self, request: HttpRequest, obj: CaseShare, form: forms.ModelForm, change: bool) -> None:
        # Through the one road for shares, which records what the partner gained or lost.
        share = case_share_grant(case=obj.case, organisation=obj.organisation,
                                 include_restricted=obj.include_restricted, can_contribute=obj.can_contribute,
                                 actor=signed_in_user(request))
        obj.pk = share.pk

    @admin.action(description=_("Stop sharing the selected cases"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[CaseShare]) -> None:
        count = case_shares_revoke(share_ids=list(queryset.values_list("pk", flat=True)),
                                   actor=signed_in_user(request))
        self.message_user(request, ngettext("Stopped %(n)d share.", "Stopped %(n)d shares.", count) % {"n": count},
                          messages.SUCCESS)


@admin.register(ListShare)
class ListShareAdmin(admin.ModelAdmin):
    list_display = ("handover_list", "organisation", "created_at")
    list_select_related = ("handover_list", "organisation")
    fields = ("handover_list", "organisation")

    def save_model(self, request: HttpRequest, obj: ListShare, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.shared_by = signed_in_user(request)
        super().save_model(request, obj, form, change)


class WebhookEndpointForm(forms.ModelForm):
    """The signing secret is write-only: the page never sends it back to the browser (not even as a
    password field's value), and leaving it blank on a change keeps the one stored."""

    url = forms.URLField(max_length=500, assume_scheme="https")
    secret = forms.CharField(
        min_length=16, max_length=200, required=False, strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    events = forms.MultipleChoiceField(choices=WebhookEndpoint.Event.choices, required=False,
                                       widget=forms.CheckboxSelectMultiple, help_text=_("None ticked: every event."))

    class Meta:
        model = WebhookEndpoint
        fields = ("organisation", "url", "secret", "events", "is_active")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A form's initial value would be drawn into the page by any widget that shows values.
        self.initial.pop("secret", None)
        if self.instance.pk:
            self.fields["secret"].help_text = gettext("Stored and never shown. Leave blank to keep it; type a new one "
                                                      "to replace it.")
        else:
            self.fields["secret"].required = True
            self.fields["secret"].help_text = gettext("Shared with the partner for the X-Tracker-Signature HMAC; "
                                                      "not shown again.")

    def clean_secret(self) -> str:
        secret = self.cleaned_data.get("secret") or ""
        if not secret and self.instance.pk:
            return WebhookEndpoint.objects.only("secret").get(pk=self.instance.pk).secret
        return secret

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        problem = url_problem(url)
        if problem:
            raise forms.ValidationError(problem)
        return url

    def clean_organisation(self) -> Organisation:
        organisation = self.cleaned_data["organisation"]
        limit = settings.WEBHOOK_MAX_ENDPOINTS_PER_ORGANISATION
        if self.instance.pk is None and WebhookEndpoint.objects.filter(
                organisation=organisation, deleted_at__isnull=True).count() >= limit:
            raise forms.ValidationError(gettext("This organisation already has %(limit)d webhook endpoints, the "
                                                "most it may have.") % {"limit": limit})
        return organisation


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(NoDeleteMixin, admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ("organisation", "url", "events", "is_active", "created_at", "deleted_at")
    list_filter = ("organisation", "is_active")
    list_select_related = ("organisation",)

    def get_readonly_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> tuple[str, ...]:
        # A deleted endpoint stays as it was, for the record.
        if obj is not None and obj.deleted_at is not None:
            return ("organisation", "url", "events", "is_active", "deleted_at")
        return ()

    def get_fields(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> Any:
        if obj is not None and obj.deleted_at is not None:
            return self.get_readonly_fields(request, obj)
        return super().get_fields(request, obj)

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: forms.ModelForm, change: bool) -> None:
        if change:
            obj._history_user = signed_in_user(request)  # type: ignore[attr-defined]
            super().save_model(request, obj, form, change)
            return
        # Registered as through the API: within the organisation's limit, and pinged.
        try:
            endpoint, ping = webhook_endpoint_register(
                organisation=obj.organisation, url=obj.url, secret=obj.secret, events=obj.events,
                actor=signed_in_user(request))
        except EndpointRefused as refused:
            self.message_user(request, str(refused), messages.ERROR)
            raise
        obj.pk = endpoint.pk
        enqueue_on_commit(deliver_webhook, ping.pk)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(NoDeleteMixin, admin.ModelAdmin):
    list_display = ("id", "endpoint", "event_name", "state", "attempts", "last_status_code", "last_attempt_at",
                    "delivered_at")
    list_filter = ("state", "endpoint__organisation")
    list_select_related = ("endpoint__organisation", "outbox_event")
    readonly_fields = ("endpoint", "outbox_event", "payload", "state", "attempts", "last_attempt_at",
                       "last_status_code", "last_error", "delivered_at", "created_at")

    @admin.display(description=_("event"))
    def event_name(self, delivery: WebhookDelivery) -> str:
        return delivery.outbox_event.event

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
