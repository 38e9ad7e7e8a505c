"""Case workers through the API: their role's model permissions, as in the admin, and no more.

Being staff opens nothing by itself: a staff account with no permissions is refused everywhere,
one that may read cases reads them without the restricted fields unless its role sees those, and
writes need the matching add or change permission. Each change made through the API is in the
history with who made it.
"""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.http import StreamingHttpResponse
from rest_framework.test import APIClient

from tests.factories import CaseFactory, ChildFactory, HandoverListFactory, OrganisationFactory, UserFactory
from tracker.models import Organisation, Reply, WebhookEndpoint
from tracker.services.exchange import list_add_cases, list_hand_over

pytestmark = pytest.mark.django_db
CASE_READER = ("cases.view_case", "cases.view_child")


def staff_with(*permissions: str) -> APIClient:
    user = UserFactory(is_staff=True)
    for name in permissions:
        app_label, codename = name.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def handed_over():
    partner = OrganisationFactory(name="Tracing partner", kind=Organisation.Kind.PARTNER)
    cases = [CaseFactory(child=ChildFactory(guardian_name="Guardian Synthetic")) for _ in range(2)]
    handover_list = HandoverListFactory(recipient=partner)
    list_add_cases(handover_list=handover_list, cases=cases, actor=None)
    list_hand_over(handover_list=handover_list, handed_over_on=datetime.date(2025, 6, 2),
                   response_due_on=datetime.date(2025, 7, 2), actor=None)
    endpoint = WebhookEndpoint.objects.create(organisation=partner, url="https://partner.example.org/hook",
                                              secret="s" * 32)
    return handover_list, cases, endpoint


def test_a_staff_account_without_permissions_is_refused_at_every_door(handed_over):
    handover_list, cases, endpoint = handed_over
    client = staff_with()
    for path in ("/api/v1/cases/", f"/api/v1/cases/{cases[0].pk}/", f"/api/v1/cases/{cases[0].pk}/timeline/",
                 "/api/v1/cases/export/?format=csv", "/api/v1/lists/", f"/api/v1/lists/{handover_list.pk}/entries/",
                 "/api/v1/replies/", "/api/v1/webhooks/", "/api/v1/organisations/"):
        answer = client.get(path)
        assert answer.status_code == 403, path
        assert answer["Content-Type"].startswith("application/problem+json"), path
    answered = client.post(f"/api/v1/lists/{handover_list.pk}/replies/", {
        "received_on": "2025-07-20", "outcomes": [{"position": 1, "outcome": "deceased"}]}, format="json")
    assert answered.status_code == 403
    moved = client.patch(f"/api/v1/webhooks/{endpoint.pk}/", {"url": "https://elsewhere.example.net/"}, format="json")
    assert moved.status_code == 403
    assert not Reply.objects.exists()
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).url == "https://partner.example.org/hook"


def test_a_case_reader_sees_cases_without_restricted_fields_unless_the_role_grants_them(handed_over):
    _, cases, _ = handed_over
    plain = staff_with(*CASE_READER).get(f"/api/v1/cases/{cases[0].pk}/")
    assert plain.status_code == 200
    assert "guardian_name" not in plain.json()["child"]
    assert plain.json()["restricted_fields_shared"] is False

    granted = staff_with(*CASE_READER, "cases.view_restricted_fields").get(f"/api/v1/cases/{cases[0].pk}/")
    assert granted.json()["child"]["guardian_name"] == "Guardian Synthetic"

    exported = staff_with(*CASE_READER, "cases.view_restricted_fields").get("/api/v1/cases/export/?format=csv")
    assert exported.status_code == 200
    assert isinstance(exported, StreamingHttpResponse)
    assert "Guardian Synthetic" not in b"".join(exported.streaming_content).decode(), \
        "a case worker's export never carries the restricted fields"


def test_a_reply_needs_the_right_to_add_replies(handed_over):
    handover_list, _, _ = handed_over
    body = {"received_on": "2025-07-20", "outcomes": [{"position": 1, "outcome": "located"}]}
    reader = staff_with("tracker.view_handoverlist")
    assert reader.post(f"/api/v1/lists/{handover_list.pk}/replies/", body, format="json").status_code == 403
    recorder = staff_with("tracker.view_handoverlist", "tracker.add_reply", "tracker.add_replyoutcome")
    assert recorder.post(f"/api/v1/lists/{handover_list.pk}/replies/", body, format="json").status_code == 201


def test_pointing_a_webhook_elsewhere_needs_an_administrators_right_and_is_in_the_history(handed_over):
    _, _, endpoint = handed_over
    viewer = staff_with("tracker.view_webhookendpoint")
    assert viewer.get(f"/api/v1/webhooks/{endpoint.pk}/").status_code == 200
    assert viewer.patch(f"/api/v1/webhooks/{endpoint.pk}/", {"is_active": False}, format="json").status_code == 403

    administrator = staff_with("tracker.view_webhookendpoint", "tracker.change_webhookendpoint")
    changed = administrator.patch(f"/api/v1/webhooks/{endpoint.pk}/", {"url": "https://new.example.org/hook"},
                                  format="json")
    assert changed.status_code == 200
    last = WebhookEndpoint.history.filter(id=endpoint.pk).latest("history_date")
    assert (last.url, last.history_type) == ("https://new.example.org/hook", "~")
    assert last.history_user is not None and last.history_user.is_staff
    assert not hasattr(last, "secret"), "the history never keeps the signing secret"
