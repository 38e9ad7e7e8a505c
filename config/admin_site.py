"""The case workers' admin site: its start page shows what needs attention today, and in production
nobody gets past its login without a second factor (TRACKER_REQUIRE_2FA)."""

from __future__ import annotations

from base64 import b32encode
from collections.abc import Callable
from functools import update_wrapper
from typing import Any, TypeVar, cast

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django_otp import login as otp_login
from django_otp.admin import OTPAdminAuthenticationForm
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from core import two_factor

# A view as AdminSite.admin_view takes and returns it.
View = TypeVar("View", bound=Callable[..., HttpResponseBase])


class TrackerAuthenticationForm(OTPAdminAuthenticationForm):
    """django-otp's admin login form (password, then the device and its code), asking for the code only
    when a second factor is required, and letting a staff user without any device in on the password
    alone when self-enrolment is on: the site then sends them nowhere but to the enrolment page."""

    otp_token = forms.CharField(required=False, widget=forms.TextInput(
        attrs={"autocomplete": "one-time-code", "autocapitalize": "none", "spellcheck": "false"}))

    no_device_message = _("This account has no second factor yet. Ask an administrator to run "
                           "'manage.py create_totp_device' for it.")

    def clean_otp_token(self) -> str:
        # Recovery codes are stored in lower case; people copy them with spaces and in capitals.
        return "".join(self.cleaned_data.get("otp_token", "").split()).lower()

    def _chosen_device(self, user: Any) -> Any:
        device = super()._chosen_device(user)
        if device is None and not self.cleaned_data.get("otp_device"):
            # The first form cannot list the user's devices (the user is not known yet), so a code typed
            # there picks its own: six digits are the app's, anything else a recovery code. Only that
            # device is tried, so a wrong code slows that one alone, as django-otp wants.
            token = self.cleaned_data.get("otp_token") or ""
            model = TOTPDevice if token.isdigit() else StaticDevice
            device = model.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk").first()
        return device

    def clean(self) -> dict[str, Any]:
        # The password and the staff flag, as the admin's own form checks them (not yet the code).
        cleaned = AdminAuthenticationForm.clean(self)
        if not two_factor.two_factor_required():
            return cleaned
        user = self.get_user()
        if two_factor.has_device(user):
            self.clean_otp(user)
        elif not settings.TRACKER_2FA_SELF_ENROL:
            raise forms.ValidationError(self.no_device_message, code="no_device")
        return cleaned


# The admin's sections, in the order of the work; each model by its label. What no section names
# (users, groups, schedules, devices, login attempts, the read log...) is under Settings, shown to
# administrators (superusers) only.
NAVIGATION: list[tuple[str, Any, list[str]]] = [
    ("children", _("Children and cases"), ["cases.Case", "cases.Child"]),
    ("lists", _("Lists and replies"), ["tracker.HandoverList", "tracker.ListEntry", "tracker.Reply",
                                       "tracker.Round", "tracker.ImportBatch"]),
    ("flags", _("Flags"), ["tracker.Flag"]),
    ("partners", _("Partners"), ["tracker.Organisation", "tracker.CaseShare", "tracker.ListShare",
                                 "tracker.ApiKey", "tracker.WebhookEndpoint", "tracker.WebhookDelivery"]),
]


def _section(slug: str, name: Any, models: list[dict[str, Any]]) -> dict[str, Any]:
    """One section of the navigation, shaped as the admin's templates expect an app."""
    return {"name": name, "app_label": slug, "app_url": models[0].get("admin_url") or "",
            "has_module_perms": True, "models": models}


class TrackerAdminSite(admin.AdminSite):
    site_header = _("Case tracker: deported and displaced children")
    site_title = _("Case tracker")
    index_title = _("Needs attention")
    index_template = "admin/tracker_index.html"
    login_form = TrackerAuthenticationForm
    login_template = "admin/tracker_login.html"

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        from tracker.admin.start_page import start_page_context

        return super().index(request, {**start_page_context(request), **(extra_context or {})})

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        """The navigation by the work rather than by the code's apps: children and cases, lists and
        replies, flags, partners; and the settings, for administrators only. An app's own page
        (`app_label`) keeps Django's grouping."""
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        models = {model["model"]._meta.label: model for app in apps for model in app["models"]}
        sections = []
        for slug, name, labels in NAVIGATION:
            chosen = [models.pop(label) for label in labels if label in models]
            if chosen:
                sections.append(_section(slug, name, chosen))
        if models and request.user.is_superuser:
            sections.append(_section("settings", _("Settings"), sorted(models.values(), key=lambda m: str(m["name"]))))
        return sections

    # -----------------------------------------------------------------------------------------
    # The second factor
    # -----------------------------------------------------------------------------------------

    def has_permission(self, request: HttpRequest) -> bool:
        """Staff, and (when required) verified by a second factor in this session: a password alone
        opens nothing here (django-otp's OTPAdminSite rule, switchable)."""
        if not super().has_permission(request):
            return False
        return not two_factor.two_factor_required() or two_factor.is_verified(request.user)

    def awaits_second_factor(self, request: HttpRequest) -> bool:
        user = request.user
        return (two_factor.two_factor_required() and user.is_authenticated and user.is_active and user.is_staff
                and not two_factor.is_verified(user))

    def admin_view(self, view: View, cacheable: bool = False) -> View:
        guarded = super().admin_view(view, cacheable)
        # Logging out must work before the second factor too (the admin's own rule would send a user
        # without permission from the logout to the index, and from there to the enrolment page).
        unguarded = csrf_protect(never_cache(view))

        def gate(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if self.awaits_second_factor(request):
                if request.path == reverse("admin:logout", current_app=self.name):
                    return unguarded(request, *args, **kwargs)
                if two_factor.may_enrol(request.user):
                    return HttpResponseRedirect(reverse("admin:two_factor", current_app=self.name))
            return guarded(request, *args, **kwargs)

        return cast(View, update_wrapper(gate, guarded))

    def login(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.method == "GET" and self.awaits_second_factor(request) and two_factor.may_enrol(request.user):
            return HttpResponseRedirect(reverse("admin:two_factor", current_app=self.name))
        context = {"two_factor_required": two_factor.two_factor_required(), **(extra_context or {})}
        return super().login(request, context)

    def get_urls(self) -> list[URLResolver | URLPattern]:
        from tracker.admin.briefs import round_brief_view

        return [
            path("two-factor/", csrf_protect(never_cache(self.two_factor_view)), name="two_factor"),
            path("tracker/round/<int:round_id>/brief/", self.admin_view(round_brief_view), name="tracker_round_brief"),
            path("tracker/round/<int:round_id>/brief/<str:language>.pdf", self.admin_view(round_brief_view),
                 name="tracker_round_brief_pdf"),
            *super().get_urls(),
        ]

    def two_factor_view(self, request: HttpRequest) -> HttpResponse:
        """Set up an authenticator app: its QR code and key, a code from it to confirm, then the ten
        recovery codes, shown this once. Confirming replaces any earlier device and codes."""
        user = request.user
        if not two_factor.may_enrol(user):
            if user.is_authenticated and user.is_staff:
                # Has a device but has not used it in this session: the login asks for its code.
                return HttpResponseRedirect(reverse("admin:login", current_app=self.name))
            from django.contrib.auth.views import redirect_to_login

            return redirect_to_login(request.get_full_path(), reverse("admin:login", current_app=self.name))

        device = two_factor.pending_app_device(user)
        error = ""
        if request.method == "POST":
            enrolment = two_factor.app_device_confirm(device=device, token=request.POST.get("otp_token", ""))
            if enrolment is not None:
                # This session is now verified by the new device, as a login with it would be.
                request.session.cycle_key()
                otp_login(request, enrolment.device)
                return TemplateResponse(request, "admin/two_factor_codes.html", {
                    **self._bare_context(request, gettext("Your recovery codes")),
                    "recovery_codes": enrolment.recovery_codes,
                })
            error = gettext("That code was not accepted. Check the phone's clock and enter the code now shown.")

        key = b32encode(device.bin_key).decode()
        return TemplateResponse(request, "admin/two_factor_enrol.html", {
            **self._bare_context(request, gettext("Set up two-factor authentication")),
            "config_url": device.config_url,
            "qr_svg": two_factor.qr_svg(device.config_url),
            "key_groups": [key[i:i + 4] for i in range(0, len(key), 4)],
            "replaces": two_factor.has_device(user),
            "error": error,
        })

    def _bare_context(self, request: HttpRequest, title: str) -> dict[str, Any]:
        # No application list: before the second factor the user may open none of them. The user's
        # links (the logout above all) are shown all the same.
        return {**self.each_context(request), "title": title, "available_apps": [],
                "is_nav_sidebar_enabled": False, "has_permission": True}
