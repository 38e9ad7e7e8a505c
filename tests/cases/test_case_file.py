"""A case worker's day on the case file, through the admin as the roles' members use it: notes and contacts
on the timeline, nothing typed dropped, reassignment with its reason, other spellings as rows, the
child's facts on the case page, My work, and closings that wait for a supervisor's approval."""

from __future__ import annotations

import datetime
import importlib
from typing import Any

import pytest
from django.apps import apps
from django.contrib.admin.widgets import AutocompleteSelectMultiple
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import FileResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from cases.matching.candidates import child_match_keys
from cases.models import Case, CaseEvent, Child, ChildAlias, ChildMatchKey, ClosingRequest
from cases.services import case_request_closing
from tests.factories import CaseFactory, ChildFactory, UserFactory, role_user
from tests.test_admin import change_form_data, change_url, changelist, page_messages
from tracker.roles import CASE_WORKER, READ_ONLY, SUPERVISOR
from tracker.services.flags import flag_raise

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker():
    return role_user(CASE_WORKER, "o.worker")


@pytest.fixture
def worker_client(worker) -> Client:
    client = Client()
    client.force_login(worker)
    return client


@pytest.fixture
def supervisor():
    return role_user(SUPERVISOR, "s.supervisor")


@pytest.fixture
def supervisor_client(supervisor) -> Client:
    client = Client()
    client.force_login(supervisor)
    return client


@pytest.fixture
def case(worker) -> Case:
    child = ChildFactory(family_name="Шевченко", given_name="Олександр", birth_date=datetime.date(2012, 3, 5),
                         home_settlement="Маріуполь", home_oblast="donetsk", circumstances="forcibly_transferred")
    return CaseFactory(child=child, assignee=worker)


def post_case(client: Client, case: Case, **fields: Any) -> Any:
    data = change_form_data(client.get(change_url(case)))
    data.update(fields)
    return client.post(change_url(case), data)


def errors(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 200, "the page came back with the form, not a redirect"
    return {name: [str(e) for e in errs] for name, errs in response.context["adminform"].form.errors.items()}


# --- Notes and contacts ----------------------------------------------------------------------


def test_a_note_of_a_call_with_a_file_stands_on_the_timeline_for_the_roles_that_see_notes(worker_client, worker,
                                                                                          case):
    letter = SimpleUploadedFile("letter.pdf", b"%PDF-1.4 synthetic", content_type="application/pdf")
    response = post_case(worker_client, case, note_on="2025-07-30", note_channel="call",
                         note_text="Grandmother called: the child wrote from Taganrog.", note_attachment=letter)
    assert response.status_code == 302
    note = case.events.get(kind=CaseEvent.Kind.NOTE)
    assert (note.actor, note.channel, note.message) == (worker, "call",
                                                        "Grandmother called: the child wrote from Taganrog.")
    assert timezone.localdate(note.happened_at) == datetime.date(2025, 7, 30)

    page = worker_client.get(change_url(case)).content.decode()
    assert "Grandmother called" in page
    link = reverse("admin:cases_case_note_attachment", args=[case.pk, note.pk])
    assert link in page
    download = worker_client.get(link)
    assert download.status_code == 200
    assert isinstance(download, FileResponse)
    assert download.getvalue() == b"%PDF-1.4 synthetic"
    other_case = CaseFactory()
    assert worker_client.get(reverse("admin:cases_case_note_attachment", args=[other_case.pk, note.pk])
                             ).status_code == 404

    # The read-only role sees that a call was noted, not what was said nor the file; no role, nothing.
    reader = Client()
    reader.force_login(role_user(READ_ONLY))
    seen = reader.get(change_url(case)).content.decode()
    assert "Grandmother called" not in seen and link not in seen
    assert reader.get(link).status_code == 403
    stranger = Client()
    stranger.force_login(UserFactory(username="no.role"))
    assert stranger.get(link).status_code == 403


@pytest.mark.parametrize(("fields", "field", "says"), [
    ({"transition_note": "Spoke to the aunt"}, "transition_note", "Nothing keeps this text"),
    ({"note_channel": "letter"}, "note_text", "Write the note itself"),
    ({"next_closing_reason": "other"}, "next_closing_reason", "only with"),
    ({"note_text": "Tomorrow's meeting", "note_on": "2099-01-01"}, "note_on", "after today"),
    ({"note_text": "Scan", "note_attachment": SimpleUploadedFile("big.pdf", b"x" * 2048)}, "note_attachment",
     "larger than"),
], ids=["why-without-a-change", "channel-without-text", "reason-without-closing", "note-in-the-future",
        "file-too-large"])
def test_what_would_not_be_saved_is_refused_with_a_message_and_nothing_is_written(worker_client, case, fields, field,
                                                                                  says, settings):
    settings.TRACKER_NOTE_ATTACHMENT_MAX_BYTES = 1024
    before = case.events.count()
    response = post_case(worker_client, case, **fields)
    assert says in " ".join(errors(response)[field])
    assert case.events.count() == before
    case.refresh_from_db()
    assert case.status == Case.Status.OPEN


# --- Reassignment ----------------------------------------------------------------------------


def test_reassigning_needs_a_reason_and_the_timeline_says_who_and_why(worker_client, worker, case):
    colleague = role_user(CASE_WORKER, "i.colleague")
    refused = post_case(worker_client, case, assignee=colleague.pk)
    assert "Say why the case is reassigned." in errors(refused)["transition_note"]
    case.refresh_from_db()
    assert case.assignee == worker

    versions = case.history.count()
    assert post_case(worker_client, case, assignee=colleague.pk,
                     transition_note="Going on leave; Iryna knows the family").status_code == 302
    assert case.history.count() == versions + 1, "one change, one history row"
    case.refresh_from_db()
    assert case.assignee == colleague
    line = case.events.get(kind=CaseEvent.Kind.ASSIGNED)
    assert line.actor == worker
    assert line.data == {"from": worker.pk, "to": colleague.pk, "reason": "Going on leave; Iryna knows the family"}
    assert "Going on leave" in line.message
    assert case.history.latest().history_change_reason == "Going on leave; Iryna knows the family"


# --- The child's identity --------------------------------------------------------------------


def test_other_spellings_are_rows_and_the_match_keys_follow_them(worker_client, case):
    child = case.child
    keys_before = set(ChildMatchKey.objects.filter(child=child).values_list("key", flat=True))
    page = worker_client.get(change_url(child))
    form = page.context["adminform"].form
    assert "search_names" not in page.content.decode() and "aliases" not in form.fields
    assert isinstance(form.fields["siblings"].widget.widget, AutocompleteSelectMultiple)
    data = change_form_data(page)
    data.update({"alias_rows-0-name": "Koval Oleksandr", "alias_rows-0-script": "latin",
                 "alias_rows-0-source": "Foster family's register"})
    assert worker_client.post(change_url(child), data).status_code == 302

    child.refresh_from_db()
    assert child.aliases == ["Koval Oleksandr"]
    stored = set(ChildMatchKey.objects.filter(child=child).values_list("key", flat=True))
    assert stored == child_match_keys(child) and stored != keys_before
    assert list(Child.objects.filter(search_names__contains="koval")) == [child]

    # Taking the row away takes the spelling out of the search and the keys again.
    data = change_form_data(worker_client.get(change_url(child)))
    row = ChildAlias.objects.get(child=child)
    data.update({"alias_rows-0-id": row.pk, "alias_rows-0-DELETE": "on"})
    assert worker_client.post(change_url(child), data).status_code == 302
    child.refresh_from_db()
    assert child.aliases == [] and not ChildAlias.objects.filter(child=child).exists()
    assert set(ChildMatchKey.objects.filter(child=child).values_list("key", flat=True)) == keys_before


def test_the_migration_turns_every_listed_spelling_into_a_row():
    child = ChildFactory()
    Child.objects.filter(pk=child.pk).update(aliases=["Шевченко Александр", "Chevtchenko", "Шевченко Александр"])
    migration = importlib.import_module("cases.migrations.0011_aliases_into_rows")
    migration.aliases_into_rows(apps, None)
    assert list(ChildAlias.objects.filter(child=child).values_list("name", "script")) == [
        ("Шевченко Александр", "cyrillic"), ("Chevtchenko", "latin")]


def test_the_case_page_shows_the_childs_birth_home_and_circumstances(worker_client, case):
    page = worker_client.get(change_url(case)).content.decode()
    for shown in ("2012-03-05", "Маріуполь, Donetsk", "Forcibly transferred"):
        assert shown in page


# --- My work ---------------------------------------------------------------------------------


def test_my_work_lists_my_cases_my_flags_by_level_and_what_falls_due(worker_client, worker, case,
                                                                     make_handed_over_list):
    today = timezone.localdate()
    soon = make_handed_over_list(2, handed_over_on=today - datetime.timedelta(days=10),
                                 due=today + datetime.timedelta(days=3), assignee=worker)
    flag_raise(case=case, note="Family unreachable", actor=worker)
    others = CaseFactory()
    page = worker_client.get(reverse("admin:cases_case_my_work"))
    work = page.context["work"]
    assert set(work.cases) == {case, *(entry.case for entry in soon.entries.all())}
    assert others not in work.cases and work.n_cases == 3
    assert work.flags_by_level == [(1, 1)]
    assert [entry.handover_list for entry in work.due_soon] == [soon, soon]
    assert page.context["approvals_pending"] is None


def test_my_work_reads_the_same_queries_for_few_or_many_cases(worker_client, worker, make_handed_over_list,
                                                              django_assert_num_queries):
    today = timezone.localdate()
    url = reverse("admin:cases_case_my_work")

    def fill(n: int) -> None:
        make_handed_over_list(n, handed_over_on=today, due=today + datetime.timedelta(days=2), assignee=worker)

    fill(2)
    worker_client.get(url)
    # 1 session, 2 user, 3-4 own and role permissions, 5 cases, 6 count, 7 flag levels, 8 due soon,
    # 9 closings sent back.
    with django_assert_num_queries(9):
        worker_client.get(url)
    fill(20)
    with django_assert_num_queries(9):
        worker_client.get(url)


# --- Closing waits for a supervisor ------------------------------------------------------------


def test_a_case_workers_closing_is_recorded_not_applied(worker_client, worker, case):
    form = worker_client.get(change_url(case)).context["adminform"].form
    assert "approval" in dict(form.fields["next_status"].choices)[Case.Status.CLOSED]
    response = post_case(worker_client, case, next_status="closed", next_closing_reason="reunified",
                         transition_note="Back with the mother in Kyiv")
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == Case.Status.OPEN and case.closed_on is None
    request = ClosingRequest.objects.get(case=case)
    assert (request.state, request.closing_reason, request.requested_by) == ("pending", "reunified", worker)
    line = case.events.get(kind=CaseEvent.Kind.CLOSING_REQUESTED)
    assert (line.actor, line.message) == (worker, "Back with the mother in Kyiv")
    assert "awaits a supervisor's approval" in " ".join(page_messages(worker_client.get(change_url(case))))
    again = worker_client.get(change_url(case)).context["adminform"].form
    assert Case.Status.CLOSED not in dict(again.fields["next_status"].choices), "one closing awaits at a time"


def test_the_supervisor_approves_from_the_queue_and_the_case_closes_through_its_road(
        worker_client, supervisor_client, supervisor, case):
    post_case(worker_client, case, next_status="closed", next_closing_reason="confirmed_deceased",
              transition_note="Death certificate received")
    decided = CaseFactory()
    case_request_closing(case=decided, actor=None, reason="other")
    ClosingRequest.objects.filter(case=decided).update(state="sent_back", decided_at=timezone.now())

    assert supervisor_client.get(reverse("admin:cases_case_my_work")).context["approvals_pending"] == 1
    queue = supervisor_client.get(changelist(ClosingRequest))
    assert [r.case for r in queue.context["cl"].result_list] == [case], "the queue opens on what awaits"
    request = ClosingRequest.objects.get(case=case)
    response = supervisor_client.post(change_url(request), {"decision_note": "Certificate checked",
                                                            "_approve": "Approve"})
    assert response.status_code == 302
    case.refresh_from_db()
    assert (case.status, case.closing_reason, case.closing_note) == (
        "closed", "confirmed_deceased", "Death certificate received")
    line = case.events.get(kind=CaseEvent.Kind.CLOSING_APPROVED)
    assert (line.actor, line.from_status, line.to_status) == (supervisor, "open", "closed")
    assert line.data["approval_note"] == "Certificate checked"
    request.refresh_from_db()
    assert (request.state, request.decided_by) == ("approved", supervisor)
    assert supervisor_client.post(change_url(request), {"_approve": "1"}).status_code == 403, "decided once"


def test_the_supervisor_sends_back_with_a_note_and_the_case_worker_sees_it(worker_client, supervisor_client, case):
    post_case(worker_client, case, next_status="closed", next_closing_reason="other", transition_note="Lost touch")
    request = ClosingRequest.objects.get(case=case)
    refused = supervisor_client.post(change_url(request), {"decision_note": "", "_send_back": "1"})
    assert "Say why the closing is sent back." in errors(refused)["decision_note"]
    nothing = supervisor_client.post(change_url(request), {"decision_note": "Hmm"})
    assert "Approve the closing or send it back." in str(nothing.context["adminform"].form.non_field_errors())
    request.refresh_from_db()
    assert request.state == "pending"

    assert supervisor_client.post(change_url(request), {"decision_note": "Call the school first",
                                                        "_send_back": "1"}).status_code == 302
    request.refresh_from_db()
    case.refresh_from_db()
    assert request.state == "sent_back" and case.status == Case.Status.OPEN
    assert case.events.get(kind=CaseEvent.Kind.CLOSING_SENT_BACK).message == "Call the school first"
    work = worker_client.get(reverse("admin:cases_case_my_work"))
    assert "Call the school first" in work.content.decode()


def test_a_supervisor_closes_at_once_and_a_waiting_request_is_answered(worker_client, supervisor_client, case):
    post_case(worker_client, case, next_status="closed", next_closing_reason="other", transition_note="Adult now")
    assert post_case(supervisor_client, case, next_status="on_list").status_code == 302
    post_case(supervisor_client, case, next_status="closed", next_closing_reason="reached_adulthood",
              transition_note="Turned 18")
    case.refresh_from_db()
    assert (case.status, case.closing_reason) == ("closed", "reached_adulthood")
    assert ClosingRequest.objects.get(case=case).state == ClosingRequest.State.SUPERSEDED
    assert not ClosingRequest.objects.filter(state="pending").exists()
