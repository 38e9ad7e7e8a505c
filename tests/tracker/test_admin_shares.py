"""Shares made, changed and stopped in the admin by a case worker in their role reach the partner's sync
and webhooks; webhook endpoints added there keep the organisation's limit."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import CaseFactory, ChildFactory, OrganisationFactory, UserFactory
from tests.test_admin import act, add_url, change_url
from tracker.models import CaseShare, Organisation, ShareEvent, WebhookDelivery, WebhookEndpoint
from tracker.services.partners import api_key_issue

pytestmark = pytest.mark.django_db


def worker_with(*codenames: str) -> Client:
    user = UserFactory(username="sharing.officer", is_superuser=False)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_a_share_made_widened_and_stopped_in_the_admin_reaches_the_partners_sync():
    organisation = OrganisationFactory(name="Admin Tracing", kind=Organisation.Kind.PARTNER)
    _, key = api_key_issue(organisation=organisation, name="sync", scopes=["read"], actor=None)
    partner = APIClient()
    partner.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    case = CaseFactory(child=ChildFactory(guardian_name="Guardian (synthetic)"))
    officer = worker_with("view_caseshare", "add_caseshare", "change_caseshare", "view_case")
    mark = timezone.now().isoformat()

    added = officer.post(add_url(CaseShare), {"case": case.pk, "organisation": organisation.pk,
                                              "include_restricted": "", "can_contribute": ""})
    assert added.status_code == 302, added.content
    share = CaseShare.objects.get(case=case, organisation=organisation)
    synced = partner.get("/api/v1/cases/", {"updated_since": mark}).json()["results"]
    assert [row["id"] for row in synced] == [case.pk] and "guardian_name" not in synced[0]["child"]

    mark = timezone.now().isoformat()
    widened = officer.post(change_url(share), {"include_restricted": "on", "can_contribute": ""})
    assert widened.status_code == 302
    synced = partner.get("/api/v1/cases/", {"updated_since": mark}).json()["results"]
    assert synced[0]["child"]["guardian_name"] == "Guardian (synthetic)"

    mark = timezone.now().isoformat()
    stopped = act(officer, CaseShare, "revoke", [share])
    assert "Stopped 1 share." in [str(message) for message in stopped.context["messages"]]
    assert partner.get("/api/v1/cases/", {"updated_since": mark}).json()["results"] == []
    removed = partner.get("/api/v1/cases/removed/", {"since": mark}).json()["results"]
    assert [row["id"] for row in removed] == [case.pk]
    assert list(ShareEvent.objects.filter(share=share).order_by("id").values_list("kind", "actor__username")) == [
        ("shared", "sharing.officer"), ("changed", "sharing.officer"), ("revoked", "sharing.officer")]


def test_endpoints_added_in_the_admin_keep_the_limit_and_are_pinged(settings):
    settings.WEBHOOK_MAX_ENDPOINTS_PER_ORGANISATION = 1
    organisation = OrganisationFactory(name="Hooked Tracing", kind=Organisation.Kind.PARTNER)
    officer = worker_with("view_webhookendpoint", "add_webhookendpoint", "change_webhookendpoint")

    def add(url: str):
        return officer.post(add_url(WebhookEndpoint), {"organisation": organisation.pk, "url": url,
                                                       "secret": "s" * 20, "is_active": "on"})

    assert add("https://hooks.example.org/first").status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert WebhookDelivery.objects.get(endpoint=endpoint).payload["event"] == "webhook.ping"
    refused = add("https://hooks.example.org/second")
    assert refused.status_code == 200 and "the most it may have" in refused.content.decode()
    assert WebhookEndpoint.objects.count() == 1
