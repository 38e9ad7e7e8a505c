"""The brief for a round of talks: what a delegation takes into the next round, as a page and a PDF in
Ukrainian and English, read as a case worker reads it."""

from __future__ import annotations

import datetime
import io
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db.models import Q
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from cases.models import RecordAccess
from tests.factories import CaseFactory, ChildFactory, HandoverListFactory, UserFactory
from tracker.models import ListEntry, ReplyOutcome, Round
from tracker.services.briefs import round_brief
from tracker.services.exchange import OutcomeInput, list_add_cases, list_hand_over, outcome_verify, reply_record

pytestmark = pytest.mark.django_db

TODAY = datetime.date(2025, 8, 1)


@pytest.fixture
def reader() -> Client:
    """A case worker who may read rounds, lists and children (no superuser)."""
    user = UserFactory(username="brief.reader")
    user.user_permissions.add(*Permission.objects.filter(
        Q(codename__in=["view_round", "view_handoverlist", "view_child", "view_case", "view_listentry"])))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def talks(case_worker) -> dict[str, Any]:
    """Istanbul: two lists handed over; the first answered in part (one claim verified, one disputed),
    the second not at all; a third list of the round still a draft. Guardian details on every child."""
    round_ = Round.objects.create(name="Istanbul, 2 June 2025", place="Istanbul", held_on=datetime.date(2025, 6, 2))
    lists = []
    for n, (handed, due, size) in enumerate([(datetime.date(2025, 6, 2), datetime.date(2025, 7, 2), 4),
                                            (datetime.date(2025, 6, 20), datetime.date(2025, 7, 20), 2)]):
        handover_list = HandoverListFactory(reference=f"IST-{n + 1}", round=round_)
        cases = [CaseFactory(child=ChildFactory(guardian_name="Guardian Secret", guardian_contact="+380 00 000"))
                 for _ in range(size)]
        list_add_cases(handover_list=handover_list, cases=cases, actor=case_worker)
        lists.append(list_hand_over(handover_list=handover_list, handed_over_on=handed, response_due_on=due,
                                    actor=case_worker))
    draft = HandoverListFactory(reference="IST-DRAFT", round=round_)
    list_add_cases(handover_list=draft, cases=[CaseFactory()], actor=case_worker)
    reply_record(handover_list=lists[0], received_on=datetime.date(2025, 7, 10), actor=case_worker,
                 outcomes=[OutcomeInput(position=1, outcome="located"), OutcomeInput(position=2, outcome="located"),
                           OutcomeInput(position=3, outcome="not_found")])
    located = ReplyOutcome.objects.filter(entry__handover_list=lists[0], outcome="located").order_by("entry__position")
    outcome_verify(outcome=located[0], verification="verified", note="Seen by the ombudsman", actor=case_worker)
    # A dispute re-opens the entry, a further reply due by a date not yet come (nor on the brief's day).
    outcome_verify(outcome=located[1], verification="disputed", note="Not the same child", actor=case_worker,
                   follow_up_due_on=timezone.localdate() + datetime.timedelta(days=30))
    return {"round": round_, "lists": lists, "draft": draft}


def test_brief_counts_the_rounds_lists_claims_and_what_is_overdue(talks, django_assert_num_queries):
    # The lists with their counts; the claims by outcome; the children awaiting, with their names.
    with django_assert_num_queries(3):
        brief = round_brief(round_=talks["round"], today=TODAY)
    assert [bl.handover_list.reference for bl in brief.lists] == ["IST-1", "IST-2"]
    assert [(bl.n_entries, bl.n_answered, bl.n_awaiting, bl.n_overdue) for bl in brief.lists] == [(4, 2, 2, 1),
                                                                                                   (2, 0, 2, 2)]
    assert [(c.outcome, c.claimed, c.verified, c.disputed, c.unverified) for c in brief.claims] == [
        ("located", 2, 1, 1, 0), ("not_found", 1, 0, 0, 1)]
    # Overdue since the earliest deadline passed, the longest first.
    assert [(bl.handover_list.reference, bl.overdue_since) for bl in brief.overdue] == [
        ("IST-1", datetime.date(2025, 7, 2)), ("IST-2", datetime.date(2025, 7, 20))]
    assert brief.days_overdue(datetime.date(2025, 7, 2)) == 30
    awaiting = ListEntry.objects.filter(handover_list__in=talks["lists"], reply_state="awaiting")
    assert {e.pk for e in brief.awaiting} == set(awaiting.values_list("pk", flat=True))


def test_brief_page_in_ukrainian_names_the_children_without_an_answer_and_logs_the_reads(talks, reader):
    url = reverse("admin:tracker_round_brief", args=[talks["round"].pk])
    page = reader.get(url, HTTP_ACCEPT_LANGUAGE="uk").content.decode()
    assert "Довідка до наступного раунду: Istanbul, 2 June 2025" in page
    assert "Діти, щодо яких досі немає відповіді" in page
    assert "Місцеперебування встановлено" in page  # "located", claimed twice
    awaiting = list(ListEntry.objects.filter(handover_list__in=talks["lists"], reply_state="awaiting")
                    .select_related("child"))
    for entry in awaiting:
        assert entry.child.family_name in page
    assert "02.07.2025" in page  # dates as written in Ukraine
    assert "IST-DRAFT" not in page
    # Only what may be handed over: no guardian, no contact.
    assert "Guardian Secret" not in page and "+380" not in page
    logged = RecordAccess.objects.filter(path=url).values_list("child_id", flat=True)
    assert sorted(logged) == sorted(e.child_id for e in awaiting)


@pytest.mark.parametrize(("language", "heading", "page_label"), [
    ("uk", "Діти, щодо яких досі немає відповіді", "Сторінка 1 з"),
    ("en", "Children still without an answer", "Page 1 of"),
])
def test_brief_pdf_reads_back_in_each_language(talks, reader, language, heading, page_label):
    response = reader.get(reverse("admin:tracker_round_brief_pdf", args=[talks["round"].pk, language]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    pdf = PdfReader(io.BytesIO(response.content))
    assert len(pdf.pages) >= 1
    text = " ".join(page.extract_text() for page in pdf.pages)
    assert heading in text
    assert page_label in text and f"{len(pdf.pages)}" in text
    for entry in ListEntry.objects.filter(handover_list__in=talks["lists"], reply_state="awaiting"):
        assert entry.child.family_name in text
    assert "Guardian Secret" not in text and "+380" not in text
    # One read per child awaiting: the first list's unanswered child and its disputed one, both of the second.
    assert RecordAccess.objects.filter(channel=RecordAccess.Channel.EXPORT).count() == 4


def test_brief_pdf_of_many_children_runs_over_pages_each_numbered(case_worker, reader):
    round_ = Round.objects.create(name="Geneva channel")
    handover_list = HandoverListFactory(reference="GEN-1", round=round_)
    list_add_cases(handover_list=handover_list, cases=[CaseFactory() for _ in range(120)], actor=case_worker)
    list_hand_over(handover_list=handover_list, handed_over_on=datetime.date(2025, 6, 2),
                   response_due_on=datetime.date(2025, 7, 2), actor=case_worker)
    response = reader.get(reverse("admin:tracker_round_brief_pdf", args=[round_.pk, "en"]))
    pdf = PdfReader(io.BytesIO(response.content))
    total = len(pdf.pages)
    assert total >= 3
    assert f"Page {total} of {total}" in pdf.pages[-1].extract_text()


def test_brief_needs_the_right_to_see_children(talks):
    lists_only = UserFactory(username="lists.only")
    lists_only.user_permissions.add(*Permission.objects.filter(codename__in=["view_round", "view_handoverlist"]))
    client = Client()
    client.force_login(lists_only)
    assert client.get(reverse("admin:tracker_round_brief", args=[talks["round"].pk])).status_code == 403
    assert client.get(reverse("admin:tracker_round_brief_pdf", args=[talks["round"].pk, "uk"])).status_code == 403


def test_brief_in_an_unknown_language_is_not_found(talks, reader):
    assert reader.get(reverse("admin:tracker_round_brief_pdf", args=[talks["round"].pk, "fr"])).status_code == 404
