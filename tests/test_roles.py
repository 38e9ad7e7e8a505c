"""The four roles shipped as groups, tried through the admin and the API as their members would: what each
sees, what each may change, and what answers 403 or 404. Nobody here is a superuser."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from cases.models import Case, Child, ClosingRequest, RecordAccess
from cases.services import case_request_closing
from tests.factories import CaseFactory, ChildFactory, role_user
from tests.test_admin import change_form_data, change_url, changelist
from tracker.models import ApiKey, CaseShare, Organisation, WebhookEndpoint
from tracker.roles import ADMINISTRATOR, CASE_WORKER, READ_ONLY, ROLES, SUPERVISOR, role_permissions, roles_sync

pytestmark = pytest.mark.django_db

ADMIN_ONLY = [ApiKey, WebhookEndpoint, PeriodicTask, Group]


def signed_in(role: str) -> Client:
    client = Client()
    client.force_login(role_user(role))
    return client


@pytest.fixture
def case() -> Case:
    return CaseFactory(child=ChildFactory(guardian_name="Guardian Synthetic", relatives="Aunt Synthetic"))


def test_the_groups_hold_exactly_their_roles_permissions_and_a_migrate_restores_them():
    for role in ROLES:
        group = Group.objects.get(name=role)
        held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        assert held == role_permissions(role), role
    supervisor = Group.objects.get(name=SUPERVISOR)
    supervisor.permissions.clear()
    supervisor.permissions.add(*Group.objects.get(name=ADMINISTRATOR).permissions.all())
    call_command("migrate", verbosity=0)  # nothing to migrate; the groups are set right again all the same
    assert {f"{p.content_type.app_label}.{p.codename}" for p in supervisor.permissions.all()} == \
        role_permissions(SUPERVISOR)
    assert roles_sync(apps)[READ_ONLY] == len(role_permissions(READ_ONLY))


@pytest.mark.parametrize("role", [READ_ONLY, CASE_WORKER, SUPERVISOR])
def test_only_administrators_see_keys_webhooks_periodic_tasks_users_and_groups(role):
    client = signed_in(role)
    index = client.get(reverse("admin:index"))
    listed = {model["object_name"] for app in index.context["app_list"] for model in app["models"]}
    assert listed.isdisjoint({"ApiKey", "WebhookEndpoint", "WebhookDelivery", "PeriodicTask", "User", "Group"})
    for model in ADMIN_ONLY:
        assert client.get(changelist(model)).status_code == 403, model
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 403


def test_an_administrator_sees_them_and_is_no_superuser():
    client = signed_in(ADMINISTRATOR)
    for model in ADMIN_ONLY:
        assert client.get(changelist(model)).status_code == 200, model
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 200
    assert not Group.objects.get(name=ADMINISTRATOR).user_set.filter(is_superuser=True).exists()


@pytest.mark.parametrize("role", [READ_ONLY, CASE_WORKER, SUPERVISOR, ADMINISTRATOR])
def test_every_page_a_role_is_shown_opens(role, case):
    client = signed_in(role)
    for model, model_admin in admin.site._registry.items():
        request = client.get(reverse("admin:index")).wsgi_request
        if model_admin.has_view_or_change_permission(request):
            assert client.get(changelist(model)).status_code == 200, (role, model)
    assert client.get(change_url(case)).status_code == 200
    assert client.get(reverse("admin:cases_case_my_work")).status_code == 200


def test_read_only_sees_cases_without_the_restricted_fields_and_changes_nothing(case):
    client = signed_in(READ_ONLY)
    page = client.get(change_url(case.child))
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert not set(Child.RESTRICTED_FIELDS) & set(form.fields)
    assert "Guardian Synthetic" not in page.content.decode()
    assert "Aunt Synthetic" not in page.content.decode()

    request = case_request_closing(case=case, actor=None, reason=Case.ClosingReason.OTHER, note="Aunt in Kharkiv")
    closing_page = client.get(change_url(request))
    assert closing_page.status_code == 200 and "Aunt in Kharkiv" not in closing_page.content.decode()
    assert client.post(change_url(case), {"priority": Case.Priority.URGENT}).status_code == 403
    assert client.get(reverse("admin:cases_case_add")).status_code == 403
    assert client.get(reverse("admin:cases_child_add")).status_code == 403
    assert client.get(changelist(RecordAccess)).status_code == 403
    case.refresh_from_db()
    assert case.priority == Case.Priority.NORMAL


def test_the_restricted_fields_are_shown_to_case_workers_and_kept_from_other_roles_when_saving(case):
    worker = signed_in(CASE_WORKER)
    page = worker.get(change_url(case.child))
    assert "Guardian Synthetic" in page.content.decode()
    data = change_form_data(page)
    data["relatives"] = "Grandmother Synthetic, Kharkiv"
    assert worker.post(change_url(case.child), data).status_code == 302
    case.child.refresh_from_db()
    assert case.child.relatives == "Grandmother Synthetic, Kharkiv"


def test_no_role_finds_a_child_by_a_restricted_field_nor_exports_one(case):
    for role in (READ_ONLY, CASE_WORKER, SUPERVISOR):
        client = signed_in(role)
        assert list(client.get(changelist(Child, "q=Guardian Synthetic")).context["cl"].result_list) == [], role
        exported = client.post(changelist(Case), {"action": "export_cases_csv", "_selected_action": [case.pk],
                                                  "index": "0"})
        assert exported.status_code == 200, role
        assert isinstance(exported, StreamingHttpResponse)
        assert "Guardian Synthetic" not in b"".join(exported.streaming_content).decode(), role


@pytest.mark.parametrize(("role", "sees_guardian"), [(READ_ONLY, False), (CASE_WORKER, True)])
def test_the_api_follows_the_role(role, sees_guardian, case):
    client = APIClient()
    client.force_login(role_user(role))
    answer = client.get(f"/api/v1/cases/{case.pk}/")
    assert answer.status_code == 200
    assert ("guardian_name" in answer.json()["child"]) is sees_guardian
    assert client.get("/api/v1/webhooks/").status_code == 403


def test_a_case_worker_cannot_close_at_once_nor_approve_nor_share(case):
    client = signed_in(CASE_WORKER)
    listing = client.get(changelist(Case))
    assert "close_cases" not in listing.context["cl"].model_admin.get_actions(listing.wsgi_request)
    refused = client.post(changelist(Case), {"action": "close_cases", "_selected_action": [case.pk], "index": "0",
                                             "closing_reason": "other"}, follow=True)
    assert refused.status_code == 200
    case.refresh_from_db()
    assert case.status == Case.Status.OPEN

    request = case_request_closing(case=case, actor=None, reason=Case.ClosingReason.OTHER, note="Found at home")
    assert client.get(change_url(request)).status_code == 200, "a case worker sees a closing request"
    assert client.post(change_url(request), {"decision_note": "", "_approve": "1"}).status_code == 403
    request.refresh_from_db()
    assert request.state == ClosingRequest.State.PENDING
    partner = Organisation.objects.create(name="Tracing partner", kind=Organisation.Kind.PARTNER)
    assert client.post(reverse("admin:tracker_caseshare_add"),
                       {"case": case.pk, "organisation": partner.pk}).status_code == 403
    assert not CaseShare.objects.exists()


def test_a_supervisor_reads_the_access_log_and_closes_at_once(case):
    client = signed_in(SUPERVISOR)
    client.get(change_url(case.child))
    assert client.get(changelist(RecordAccess)).status_code == 200
    response = client.post(changelist(Case), {"action": "close_cases", "_selected_action": [case.pk], "index": "0",
                                              "closing_reason": "other"}, follow=True)
    assert response.status_code == 200
    case.refresh_from_db()
    assert case.status == Case.Status.CLOSED


def test_a_missing_record_answers_not_found_or_the_start_page(case):
    client = signed_in(CASE_WORKER)
    assert client.get(reverse("admin:cases_closingrequest_change", args=[999_999])).status_code == 302
    missing_note = reverse("admin:cases_case_note_attachment", args=[case.pk, 999_999])
    assert client.get(missing_note).status_code == 404
