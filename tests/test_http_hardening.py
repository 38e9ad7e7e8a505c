"""HTTP hardening seen from outside: the production settings pass Django's deployment check, every
admin page carries a Content Security Policy that allows no inline script and needs none, nothing
under /admin/ or /api/ may be stored by a cache, and a webhook's secret never comes back out."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from tests.factories import ChildFactory, OrganisationFactory, UserFactory
from tracker.models import CaseShare, Organisation, WebhookEndpoint
from tracker.services.imports import import_batch_create, import_batch_validate
from tracker.services.partners import api_key_issue

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------------
# Production settings
# ---------------------------------------------------------------------------------------------


def production_env(**extra: str) -> dict[str, str]:
    """A production start's environment: DJANGO_DEBUG off and the variables it then requires."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "SECURE_", "SESSION_", "TRACKER_", "AXES_", "CSRF_"))}
    env.update({
        "DJANGO_DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": "tracker.example.org",
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tracker"),
        "CELERY_BROKER_URL": "memory://",
        **extra,
    })
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


SETTINGS_DUMP = """
import json, django
from django.conf import settings
names = ["DEBUG", "SESSION_COOKIE_AGE", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "CSRF_COOKIE_SECURE",
         "CSRF_COOKIE_HTTPONLY", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_PROXY_SSL_HEADER",
         "X_FRAME_OPTIONS", "SECURE_REFERRER_POLICY", "TRACKER_REQUIRE_2FA", "AXES_FAILURE_LIMIT", "AXES_COOLOFF_TIME",
         "AXES_LOCKOUT_PARAMETERS", "TRUSTED_PROXY_COUNT"]
print(json.dumps({name: getattr(settings, name) for name in names}, default=str))
"""


def settings_of(env: dict[str, str]) -> dict[str, Any]:
    done = run(["-c", SETTINGS_DUMP], {**env, "DJANGO_SETTINGS_MODULE": "config.settings"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_check_deploy_is_clean_with_production_environment():
    done = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], production_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout
    assert "WARNINGS" not in done.stdout + done.stderr


@pytest.mark.slow
def test_debug_is_off_unless_turned_on():
    bare = production_env()
    for name in ("DJANGO_DEBUG", "SECRET_KEY", "ALLOWED_HOSTS"):
        bare.pop(name)
    refused = run(["manage.py", "check"], bare)
    assert refused.returncode != 0 and "Set the SECRET_KEY environment variable" in refused.stderr, \
        "without DJANGO_DEBUG a start is a production start, which needs its secret key"
    assert settings_of({**bare, "SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "tracker.example.org"})["DEBUG"] is False
    assert settings_of({**bare, "DJANGO_DEBUG": "true"})["DEBUG"] is True


@pytest.mark.slow
def test_production_defaults_and_what_the_environment_changes():
    defaults = settings_of(production_env())
    assert defaults | {"AXES_COOLOFF_TIME": None} == {
        "DEBUG": False,
        "SESSION_COOKIE_AGE": 9 * 60 * 60,
        "SESSION_COOKIE_SECURE": True, "SESSION_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_SECURE": True, "CSRF_COOKIE_HTTPONLY": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 365 * 24 * 60 * 60,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "X_FRAME_OPTIONS": "DENY", "SECURE_REFERRER_POLICY": "same-origin",
        "TRACKER_REQUIRE_2FA": True,
        "AXES_FAILURE_LIMIT": 5, "AXES_COOLOFF_TIME": None,
        "AXES_LOCKOUT_PARAMETERS": [["username", "ip_address"]],
        "TRUSTED_PROXY_COUNT": 0,
    }
    assert defaults["AXES_COOLOFF_TIME"] == "0:30:00"

    changed = settings_of(production_env(
        SESSION_HOURS="4", SECURE_HSTS_SECONDS="600", SECURE_PROXY_SSL_HEADER="X-Forwarded-Scheme",
        TRACKER_LOGIN_FAILURES="10", TRACKER_LOGIN_COOLOFF_MINUTES="5", TRUSTED_PROXY_COUNT="2",
        TRACKER_REQUIRE_2FA="false"))
    assert changed["SESSION_COOKIE_AGE"] == 4 * 60 * 60
    assert changed["SECURE_HSTS_SECONDS"] == 600
    assert changed["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_SCHEME", "https"]
    assert (changed["AXES_FAILURE_LIMIT"], changed["AXES_COOLOFF_TIME"]) == (10, "0:05:00")
    assert changed["TRUSTED_PROXY_COUNT"] == 2
    assert changed["TRACKER_REQUIRE_2FA"] is False
    # Facing the clients without a proxy: no header is trusted.
    assert settings_of(production_env(SECURE_PROXY_SSL_HEADER=""))["SECURE_PROXY_SSL_HEADER"] is None
    # Locally (make run) the second factor is off and cookies go over plain HTTP.
    local = settings_of({**production_env(), "DJANGO_DEBUG": "true"})
    assert local["TRACKER_REQUIRE_2FA"] is False and local["SESSION_COOKIE_SECURE"] is False


@pytest.mark.django_db
def test_production_redirects_to_https_and_sends_hsts(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    plain = client.get("/admin/login/")
    assert plain.status_code == 301 and plain["Location"] == "https://testserver/admin/login/"
    proxied = client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https")
    assert proxied.status_code == 200
    assert proxied["Strict-Transport-Security"].startswith("max-age=3600")


# ---------------------------------------------------------------------------------------------
# Content Security Policy
# ---------------------------------------------------------------------------------------------


def policy(response: Any) -> dict[str, list[str]]:
    header = response.get("Content-Security-Policy")
    assert header, f"{response.wsgi_request.path}: no Content-Security-Policy"
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


class InlineCode(HTMLParser):
    """What a strict policy would block in a page: inline scripts, event-handler attributes,
    javascript: links, and styles written into the page (<style> elements, style attributes)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script" and "src" not in named and named.get("type") != "application/json":
            self.found.append(f"inline <script> at line {self.getpos()[0]}")
        if tag == "style":
            self.found.append(f"<style> at line {self.getpos()[0]}")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=…> at line {self.getpos()[0]}")
            if name == "style":
                self.found.append(f"<{tag} style=…> at line {self.getpos()[0]}")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:…> at line {self.getpos()[0]}")


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    return parser.found


def assert_strict_page(response: Any) -> None:
    path = response.wsgi_request.get_full_path()
    directives = policy(response)
    scripts = directives.get("script-src", directives["default-src"])
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, (path, scripts)
    assert "'unsafe-inline'" not in directives["style-src"], path
    assert directives["object-src"] == ["'none'"] and directives["frame-ancestors"] == ["'none'"]
    if response["Content-Type"].startswith("text/html"):
        assert inline_code(response.content.decode()) == [], path


def admin_pages(client: Client, objects: dict[str, Any]) -> list[str]:
    """Every page of the admin a case worker reaches: each model's list, add and change pages, and the
    project's own views (start page, exports' pages, import preview, duplicates and merge)."""
    urls = [reverse("admin:index"), reverse("admin:password_change"), reverse("admin:two_factor")]
    for model in admin.site._registry:
        meta = model._meta
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_add"))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[first.pk]))
            urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_history", args=[first.pk]))
    child, twin = objects["child"], objects["twin"]
    urls += [reverse("admin:cases_child_duplicates", args=[child.pk]),
             reverse("admin:cases_child_merge", args=[child.pk, twin.pk]),
             reverse("admin:tracker_importbatch_change", args=[objects["batch"].pk])]
    return urls


@pytest.fixture
def site_data(make_handed_over_list, case_worker) -> dict[str, Any]:
    """One of everything the admin lists, made the way case workers make it."""
    handover_list = make_handed_over_list(3)
    child = handover_list.entries.first().child
    twin = ChildFactory(family_name=child.family_name, given_name=child.given_name, birth_date=child.birth_date)
    sender, recipient = handover_list.sender, handover_list.recipient
    batch = import_batch_create(kind="list", content="Прізвище;Ім'я;Дата народження\r\nТестенко;Ярина;2011\r\n"
                                .encode(), file_name="list.csv", actor=case_worker, sender=sender,
                                recipient=recipient, reference="UA-CSP/1")
    batch = import_batch_validate(batch_id=batch.pk)
    partner = OrganisationFactory(name="Partner", kind=Organisation.Kind.PARTNER)
    api_key_issue(organisation=partner, name="sync", scopes=["read"], actor=None)
    CaseShare.objects.create(case=handover_list.entries.first().case, organisation=partner)
    WebhookEndpoint.objects.create(organisation=partner, url="https://partner.example.org/hook", secret="s" * 32)
    return {"list": handover_list, "child": child, "twin": twin, "batch": batch, "partner": partner}


@pytest.mark.django_db
def test_every_admin_page_carries_a_policy_with_no_inline_script(admin_client, site_data):
    checked = 0
    for url in admin_pages(admin_client, site_data):
        response = admin_client.get(url)
        assert response.status_code in (200, 403), (url, response.status_code)
        assert_strict_page(response)
        checked += 1
    assert checked > 60
    # Pages drawn for someone not signed in: the login page and the way to it.
    anonymous = Client()
    assert_strict_page(anonymous.get(reverse("admin:login")))
    assert_strict_page(anonymous.get(reverse("admin:index")))


@pytest.mark.django_db
def test_the_login_and_second_factor_pages_are_strict_too(settings):
    settings.TRACKER_REQUIRE_2FA = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = UserFactory(username="new.worker")
    user.set_password("correct horse battery staple")
    user.save()
    client = Client()
    for_device = client.post(reverse("admin:login"), {"username": "new.worker", "password": "x"})
    assert_strict_page(for_device)
    client.force_login(user)
    enrol = client.get(reverse("admin:two_factor"))
    assert enrol.status_code == 200 and "<svg" in enrol.content.decode()
    assert_strict_page(enrol)


def test_the_projects_admin_templates_hold_no_inline_script_or_style():
    for template in (ROOT / "templates" / "admin").rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert inline_code(text) == [], template
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template


@pytest.mark.django_db
def test_the_api_documentation_pages_run_only_the_sites_own_scripts(admin_client):
    for name in ("api-v1:swagger", "api-v1:redoc"):
        response = admin_client.get(reverse(name))
        assert response.status_code == 200
        directives = policy(response)
        assert directives["script-src"] == ["'self'"], name
        page = response.content.decode()
        scripts = re.findall(r'<script src="([^"]+)"', page)
        assert scripts and not re.search(r"<script(?![^>]*\bsrc=)", page), name
        assert "https://" not in page, f"{name} fetches nothing from another site"
        for src in scripts:
            if src.startswith("/static/"):
                assert finders.find(src.removeprefix("/static/")), src
            else:
                # Swagger's start-up script, served by the same view instead of inline.
                assert src.startswith(reverse(name)) and "script" in src
                script = admin_client.get(src)
                assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


# ---------------------------------------------------------------------------------------------
# Never cached
# ---------------------------------------------------------------------------------------------


def assert_no_store(response: Any) -> None:
    control = response.get("Cache-Control", "")
    assert "no-store" in control and "private" in control, (response.wsgi_request.get_full_path(), control)


@pytest.mark.django_db
def test_no_admin_response_may_be_stored(admin_client, site_data):
    for url in admin_pages(admin_client, site_data):
        assert_no_store(admin_client.get(url))
    handover_list = site_data["list"]
    for fmt in ("xlsx", "pdf"):
        export = admin_client.get(reverse("admin:tracker_handoverlist_export", args=[handover_list.pk, fmt]))
        assert export.status_code == 200
        assert_no_store(export)
    assert_no_store(admin_client.get("/admin/no/such/page/"))
    anonymous = Client()
    assert_no_store(anonymous.get(reverse("admin:login")))
    assert_no_store(anonymous.get(reverse("admin:cases_child_changelist")))


@pytest.mark.django_db
def test_no_api_response_may_be_stored(admin_client, site_data):
    cache.clear()
    partner = site_data["partner"]
    _, key = api_key_issue(organisation=partner, name="test", scopes=["read"], actor=None)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    case = CaseShare.objects.get(organisation=partner).case
    responses = [
        api.get("/api/v1/cases/"), api.get(f"/api/v1/cases/{case.pk}/"), api.get("/api/v1/lists/"),
        api.get("/api/v1/cases/export/?format=csv"), api.get("/api/v1/webhooks/"), api.get("/api/v1/schema/"),
        api.get("/api/v1/cases/999999/"), APIClient().get("/api/v1/cases/"),
        admin_client.get("/api/v1/cases/"), admin_client.get(reverse("api-v1:swagger")),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 200, 200, 404, 401, 200, 200]
    for response in responses:
        assert_no_store(response)


def test_other_paths_are_left_to_the_usual_caching(client):
    # The root only redirects to the admin; static files are cached by design.
    assert "no-store" not in client.get("/").get("Cache-Control", "")


# ---------------------------------------------------------------------------------------------
# Write-only secrets
# ---------------------------------------------------------------------------------------------

SECRET = "the-partners-signing-secret-4f1c9a"


@pytest.fixture
def endpoint() -> WebhookEndpoint:
    partner = OrganisationFactory(name="Partner", kind=Organisation.Kind.PARTNER)
    return WebhookEndpoint.objects.create(organisation=partner, url="https://partner.example.org/hook", secret=SECRET)


def change_page(endpoint: WebhookEndpoint) -> str:
    return reverse("admin:tracker_webhookendpoint_change", args=[endpoint.pk])


@pytest.mark.django_db
def test_the_webhook_secret_is_never_shown_in_the_admin(admin_client, endpoint):
    page = admin_client.get(change_page(endpoint)).content.decode()
    assert SECRET not in page
    match = re.search(r'<input[^>]*name="secret"[^>]*>', page)
    assert match, "a secret field"
    field = match.group(0)
    assert 'type="password"' in field and "value=" not in field
    listing = admin_client.get(reverse("admin:tracker_webhookendpoint_changelist")).content.decode()
    assert SECRET not in listing
    history = admin_client.get(reverse("admin:tracker_webhookendpoint_history", args=[endpoint.pk]))
    assert SECRET not in history.content.decode()


def post_change(client: Client, endpoint: WebhookEndpoint, secret: str) -> Any:
    return client.post(change_page(endpoint), {
        "organisation": endpoint.organisation_id, "url": endpoint.url, "secret": secret,
        "events": ["entry.flagged"], "is_active": "on",
    })


@pytest.mark.django_db
def test_a_blank_secret_keeps_the_stored_one_and_a_new_one_replaces_it(admin_client, endpoint):
    assert post_change(admin_client, endpoint, "").status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.secret == SECRET and endpoint.events == ["entry.flagged"]
    page = admin_client.get(change_page(endpoint)).content.decode()
    assert SECRET not in page, "nor after a save"
    assert post_change(admin_client, endpoint, "short").status_code == 200, "too short to sign with"
    assert post_change(admin_client, endpoint, "a-brand-new-secret-of-32-chars!!").status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.secret == "a-brand-new-secret-of-32-chars!!"


@pytest.mark.django_db
def test_a_new_endpoint_in_the_admin_needs_a_secret(admin_client):
    partner = OrganisationFactory(name="Partner", kind=Organisation.Kind.PARTNER)
    refused = admin_client.post(reverse("admin:tracker_webhookendpoint_add"), {
        "organisation": partner.pk, "url": "https://partner.example.org/hook", "secret": "", "is_active": "on"})
    assert refused.status_code == 200 and not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_the_api_never_returns_the_webhook_secret(admin_client):
    cache.clear()
    partner = OrganisationFactory(name="Partner", kind=Organisation.Kind.PARTNER)
    _, key = api_key_issue(organisation=partner, name="hooks", scopes=["read", "contribute"], actor=None)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    made = api.post("/api/v1/webhooks/", {"url": "https://partner.example.org/hook", "secret": SECRET}, format="json")
    assert made.status_code == 201, made.content
    hook = made.json()["id"]
    assert WebhookEndpoint.objects.get(pk=hook).secret == SECRET
    responses = [made, api.get("/api/v1/webhooks/"), api.get(f"/api/v1/webhooks/{hook}/"),
                 api.patch(f"/api/v1/webhooks/{hook}/", {"events": ["entry.flagged"]}, format="json"),
                 api.patch(f"/api/v1/webhooks/{hook}/", {"secret": SECRET + "-2"}, format="json"),
                 api.get(f"/api/v1/webhooks/{hook}/", HTTP_ACCEPT="text/html"),
                 admin_client.get(f"/api/v1/webhooks/{hook}/"), admin_client.get("/api/v1/webhooks/?format=api")]
    for response in responses:
        assert response.status_code in (200, 201), response.content
        assert SECRET.encode() not in response.content
    assert WebhookEndpoint.objects.get(pk=hook).secret == SECRET + "-2", "still writable"
    schema = api.get("/api/v1/schema/?format=json").json()["components"]["schemas"]
    assert "secret" not in schema["WebhookEndpoint"]["properties"]
    assert schema["WebhookEndpointRequest"]["properties"]["secret"]["writeOnly"] is True
