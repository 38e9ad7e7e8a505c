"""Reply letters and the claims they make: one letter is one reply, further claims are kept and
counted, doubtful claims are marked, and a disputed claim re-opens the follow-up.

The pages are driven over HTTP as a case worker (staff with the case worker's permissions, not a
superuser); data is built through the services, as case workers build it.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from cases.models import Case, CaseEvent
from tests.conftest import DUE
from tests.factories import CaseFactory, ChildFactory, HandoverListFactory, UserFactory
from tests.roles import make_case_worker
from tracker.models import Flag, HandoverList, ListEntry, Outcome, Reply, ReplyOutcome, Verification
from tracker.selectors import handover_lists_with_counts
from tracker.services.exchange import (
    ExchangeError,
    OutcomeInput,
    list_add_cases,
    list_hand_over,
    outcome_verify,
    reply_record,
)
from tracker.services.flags import sweep_deadlines

pytestmark = pytest.mark.django_db
RECEIVED = datetime.date(2025, 7, 20)
LATER = datetime.date(2025, 8, 25)


@pytest.fixture
def worker() -> Any:
    return make_case_worker()


@pytest.fixture
def signed_in(worker) -> Client:
    client = Client()
    client.force_login(worker)
    return client


def letter_url(handover_list: HandoverList) -> str:
    return reverse("admin:tracker_handoverlist_reply", args=[handover_list.pk])


def reply_change_url(reply: Reply) -> str:
    return reverse("admin:tracker_reply_change", args=[reply.pk])


def letter(handover_list: HandoverList, *, rows: dict[int, tuple[str, str, str]] | None = None, pasted: str = "",
           **fields: Any) -> dict[str, Any]:
    """What the letter's page posts: its particulars, the rows chosen on the table (by number on the
    list: outcome, location, details), and the pasted text."""
    data: dict[str, Any] = {"received_on": str(RECEIVED), "received_from": handover_list.recipient_id,
                            "reference": "", "notes": "", "pasted": pasted, **fields}
    for position, (outcome, location, details) in (rows or {}).items():
        entry = handover_list.entries.get(position=position)
        data.update({f"outcome-{entry.pk}": outcome, f"location-{entry.pk}": location,
                     f"details-{entry.pk}": details})
    return data


def written() -> tuple[int, int, int, int]:
    return (Reply.objects.count(), ReplyOutcome.objects.count(), CaseEvent.objects.count(),
            Flag.objects.filter(resolved_at__isnull=True).count())


def entry_at(handover_list: HandoverList, position: int) -> ListEntry:
    return ListEntry.objects.select_related("case").get(handover_list=handover_list, position=position)


# ---------------------------------------------------------------------------------------------
# One letter, one reply
# ---------------------------------------------------------------------------------------------


def test_a_letter_with_mixed_outcomes_is_one_reply_with_locations_and_details(signed_in, worker,
                                                                                make_handed_over_list):
    handover_list = make_handed_over_list(5)
    sweep_deadlines(today=RECEIVED)  # every entry overdue: the letter clears what it answers
    scan = SimpleUploadedFile("letter.pdf", b"%PDF-1.4 a scanned letter", content_type="application/pdf")

    response = signed_in.post(letter_url(handover_list), letter(
        handover_list, reference="No. 14/2025", document=scan, notes="By courier",
        rows={1: ("located", "Taganrog", "In a foster family"), 2: ("not_found", "", "")},
        pasted="№\tРезультат\tМісце перебування\tПримітка\n"
               "3\tпомер\t\tAccording to the registry office\n"
               "5\tno information\t\t\n"), follow=True)

    assert response.status_code == 200
    reply = Reply.objects.get()
    assert (reply.reference, reply.notes, reply.recorded_by) == ("No. 14/2025", "By courier", worker)
    assert str(reply.document.name).endswith(".pdf")
    assert response.redirect_chain[-1][0] == reply_change_url(reply)
    claims = {o.entry.position: (o.outcome, o.reported_location, o.details)
              for o in reply.outcomes.select_related("entry")}
    assert claims == {1: ("located", "Taganrog", "In a foster family"), 2: ("not_found", "", ""),
                      3: ("deceased", "", "According to the registry office"), 5: ("no_information", "", "")}
    assert entry_at(handover_list, 1).case.status == Case.Status.VERIFYING
    assert entry_at(handover_list, 4).reply_state == ListEntry.ReplyState.AWAITING
    assert list(Flag.objects.filter(resolved_at__isnull=True).values_list("entry__position", flat=True)) == [4]
    assert "reply letter recorded for 4 children" in response.content.decode()


def test_a_letter_with_any_bad_row_records_nothing_and_names_each_row(signed_in, make_handed_over_list):
    handover_list = make_handed_over_list(3)
    before = written()

    response = signed_in.post(letter_url(handover_list), letter(
        handover_list, rows={1: ("located", "", ""), 2: ("", "Rostov", "")},
        pasted="3\tsee the attachment\n9\tnot found\nonly one cell\n"))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Nothing was recorded" in page
    assert "row #2" in page and "choose the outcome claimed" in page
    assert "pasted row 1, outcome" in page and "“see the attachment” is not a known outcome; write one of" in page
    assert "pasted row 3" in page and "the outcome is missing" in page
    assert written() == before
    # What was typed stays on the page, to be corrected rather than typed again.
    assert 'value="Rostov"' in page


def test_a_pasted_hedged_outcome_is_refused_with_its_row_and_words(signed_in, make_handed_over_list):
    handover_list = make_handed_over_list(3)
    before = written()

    response = signed_in.post(letter_url(handover_list), letter(
        handover_list, pasted="1\tlocated\n2\tProbably deceased\n3\tЙмовірно перебуває в Криму\n"))

    page = response.content.decode()
    assert "Nothing was recorded" in page
    assert "pasted row 2, outcome" in page
    assert "“Probably deceased” is not a firm outcome (“probably” hedges it)" in page
    assert "pasted row 3, outcome" in page
    assert "“Ймовірно перебуває в Криму” is not a firm outcome (“ймовірно” hedges it)" in page
    assert written() == before


def test_rows_pasted_from_excel_on_windows_keep_a_cell_of_several_lines(signed_in, make_handed_over_list):
    handover_list = make_handed_over_list(2)
    # Excel copies rows ending in CRLF, and quotes a cell that holds a line break.
    pasted = ('No.\tOutcome\tLocation\tDetails\r\n'
              '1\tзнайдено\tYeysk\t"Seen by a neighbour\r\nin March"\r\n'
              '2\tвідмова\r\n')

    response = signed_in.post(letter_url(handover_list), letter(handover_list, pasted=pasted), follow=True)

    assert response.status_code == 200
    claims = sorted(ReplyOutcome.objects.values_list("entry__position", "outcome", "reported_location", "details"))
    assert claims == [(1, "located", "Yeysk", "Seen by a neighbour\nin March"), (2, "refused", "", "")]


def test_a_row_the_list_does_not_hold_refuses_the_letter(signed_in, make_handed_over_list):
    handover_list = make_handed_over_list(2)
    before = written()
    response = signed_in.post(letter_url(handover_list), letter(
        handover_list, rows={1: ("located", "", "")}, pasted="9\tnot found\n1\tdeceased\n"))
    page = response.content.decode()
    assert f"number 9 is not on list {handover_list.reference}" in page
    assert "the same child is answered twice in this reply" in page
    assert written() == before


def test_pasted_rows_name_children_in_either_script(signed_in, case_worker):
    handover_list = HandoverListFactory()
    cases = [CaseFactory(child=ChildFactory(family_name="Гнатюк", given_name="Ярина")),
             CaseFactory(child=ChildFactory(family_name="Дорошенко", given_name="Захар"))]
    list_add_cases(handover_list=handover_list, cases=cases, actor=case_worker)
    list_hand_over(handover_list=handover_list, handed_over_on=datetime.date(2025, 6, 2), response_due_on=DUE,
                   actor=case_worker)

    response = signed_in.post(letter_url(handover_list), letter(
        handover_list, pasted="Hnatiuk Yaryna\tlocated\tBelgorod\nЗахар Дорошенко\tnot found\n"), follow=True)

    assert response.status_code == 200
    claims = dict(ReplyOutcome.objects.values_list("entry__child__family_name", "outcome"))
    assert claims == {"Гнатюк": "located", "Дорошенко": "not_found"}


def test_a_name_not_on_the_list_is_refused_with_its_row(signed_in, make_handed_over_list):
    handover_list = make_handed_over_list(2)
    response = signed_in.post(letter_url(handover_list), letter(handover_list, pasted="Unknown Person\tlocated\n"))
    assert f"no child on list {handover_list.reference} is named “Unknown Person”" in response.content.decode()
    assert not Reply.objects.exists()


def test_the_letter_page_needs_the_right_to_add_replies(client, make_handed_over_list):
    handover_list = make_handed_over_list(1)
    reader = UserFactory(username="list.reader.only")
    reader.user_permissions.add(*make_case_worker("granted").user_permissions.exclude(codename="add_reply"))
    client.force_login(reader)
    assert client.get(letter_url(handover_list)).status_code == 403
    assert client.post(letter_url(handover_list), letter(handover_list, pasted="1\tlocated")).status_code == 403
    assert not Reply.objects.exists()


def test_the_list_page_links_the_letter_page(signed_in, make_handed_over_list):
    handover_list = make_handed_over_list(1)
    page = signed_in.get(reverse("admin:tracker_handoverlist_change", args=[handover_list.pk])).content.decode()
    assert letter_url(handover_list) in page
    page = signed_in.get(letter_url(handover_list)).content.decode()
    assert "Record the reply letter" in page and str(handover_list.entries.get().child) in page


# ---------------------------------------------------------------------------------------------
# Further claims and doubtful claims
# ---------------------------------------------------------------------------------------------


def test_a_further_claim_is_kept_beside_the_first_and_the_entry_shows_the_latest(signed_in, make_handed_over_list,
                                                                                 case_worker):
    handover_list = make_handed_over_list(2)
    first = reply_record(handover_list=handover_list, received_on=RECEIVED, actor=case_worker,
                         outcomes=[OutcomeInput(position=1, outcome=Outcome.NOT_FOUND)])
    page = signed_in.get(letter_url(handover_list)).content.decode()
    assert "already answered: Not found (1 claim); this will be a further claim" in page

    response = signed_in.post(letter_url(handover_list), letter(
        handover_list, received_on=str(LATER), pasted="1\tlocated\tKursk\n2\trefused\n"), follow=True)

    assert "1 further claim for a child already answered (#1)" in response.content.decode()
    entry = entry_at(handover_list, 1)
    assert (entry.last_outcome, entry.answered_on, entry.claim_count) == ("located", LATER, 2)
    assert list(entry.outcomes.order_by("claim_number").values_list(
        "claim_number", "outcome", "reply__received_on")) == [(1, "not_found", RECEIVED), (2, "located", LATER)]
    assert first.reply.outcomes.get().outcome == "not_found", "the first claim stays as it was"
    later = Reply.objects.exclude(pk=first.reply.pk).get()
    page = signed_in.get(reply_change_url(later)).content.decode()
    assert "further claim (no. 2)" in page
    entries_page = signed_in.get(reverse("admin:tracker_listentry_changelist")).content.decode()
    assert "2 claims, latest unverified" in entries_page


def test_claims_the_record_contradicts_are_marked_doubtful(make_handed_over_list, case_worker):
    handover_list = HandoverListFactory()
    young = CaseFactory(child=ChildFactory(birth_date=datetime.date(2012, 3, 5)))
    grown = CaseFactory(child=ChildFactory(birth_date=datetime.date(2007, 1, 10)))
    born_in_2007 = CaseFactory(child=ChildFactory(birth_date=datetime.date(2007, 1, 1), birth_date_precision="year"))
    not_returned = CaseFactory()
    list_add_cases(handover_list=handover_list, cases=[young, grown, born_in_2007, not_returned], actor=case_worker)
    list_hand_over(handover_list=handover_list, handed_over_on=datetime.date(2025, 6, 2), response_due_on=DUE,
                   actor=case_worker)

    recorded = reply_record(handover_list=handover_list, received_on=RECEIVED, actor=case_worker, outcomes=[
        OutcomeInput(position=1, outcome=Outcome.NOW_ADULT), OutcomeInput(position=2, outcome=Outcome.NOW_ADULT),
        OutcomeInput(position=3, outcome=Outcome.NOW_ADULT), OutcomeInput(position=4, outcome=Outcome.RETURNED)])

    doubts = {o.entry.position: o.doubt for o in recorded.outcomes}
    assert "the child was 13 on the reply's date" in doubts[1]
    assert doubts[2] == "", "18 on the reply's date"
    assert doubts[3] == "", "born some time in 2007: may be 18 by July 2025"
    assert "the case shows no return" in doubts[4]
    assert [o.entry.position for o in recorded.doubtful] == [1, 4]


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------


def answered_list(make_handed_over_list: Any, case_worker: Any) -> tuple[HandoverList, ReplyOutcome]:
    handover_list = make_handed_over_list(2)
    recorded = reply_record(handover_list=handover_list, received_on=RECEIVED, actor=case_worker, outcomes=[
        OutcomeInput(position=1, outcome=Outcome.LOCATED, reported_location="Yeysk"),
        OutcomeInput(position=2, outcome=Outcome.NOT_FOUND)])
    return handover_list, recorded.outcomes[0]


def test_disputing_the_latest_claim_reopens_the_follow_up(make_handed_over_list, case_worker):
    handover_list, located = answered_list(make_handed_over_list, case_worker)
    assert HandoverList.objects.get(pk=handover_list.pk).status == HandoverList.Status.ANSWERED
    follow_up = timezone.localdate() + datetime.timedelta(days=21)

    outcome_verify(outcome=located, verification=Verification.DISPUTED, note="The photo shows another girl",
                   follow_up_due_on=follow_up, actor=case_worker)

    entry = entry_at(handover_list, 1)
    assert (entry.reply_state, entry.due_on, entry.answered_on) == ("awaiting", follow_up, None)
    assert (entry.last_outcome, entry.claim_count, entry.claim_verification) == ("located", 1, "disputed")
    assert entry.case.status == Case.Status.AWAITING_REPLY
    flag = Flag.objects.get(entry=entry, resolved_at__isnull=True)
    assert (flag.kind, flag.due_on, flag.raised_by) == (Flag.Kind.DISPUTED, follow_up, case_worker)
    assert HandoverList.objects.get(pk=handover_list.pk).status == HandoverList.Status.PARTIALLY_ANSWERED
    line = entry.case.events.order_by("-id").first()
    assert line is not None and line.kind == CaseEvent.Kind.CLAIM_DISPUTED
    assert (line.from_status, line.to_status) == (Case.Status.VERIFYING, Case.Status.AWAITING_REPLY)
    assert line.message.startswith("Claim disputed: “Located” in the reply of 2025-07-20 (#1)")
    assert "The photo shows another girl" in line.message and "verified" not in line.message
    assert not entry.case.events.filter(kind=CaseEvent.Kind.REPLY_VERIFIED).exists()
    located.refresh_from_db()
    assert (located.verification, located.verified_by) == ("disputed", case_worker)
    assert located.history.first().verification == "disputed"

    counted: Any = handover_lists_with_counts(HandoverList.objects.filter(pk=handover_list.pk), today=RECEIVED).get()
    assert (counted.n_claimed, counted.n_verified, counted.n_disputed, counted.n_awaiting) == (2, 0, 1, 1)

    # The new due date is watched like any other, and a further reply answers the dispute.
    sweep_deadlines(today=follow_up + datetime.timedelta(days=1))
    assert set(Flag.objects.filter(entry=entry, resolved_at__isnull=True).values_list("kind", flat=True)) == {
        Flag.Kind.DISPUTED, Flag.Kind.OVERDUE}
    reply_record(handover_list=handover_list, received_on=timezone.localdate(), actor=case_worker,
                 outcomes=[OutcomeInput(position=1, outcome=Outcome.NOT_FOUND)])
    assert not Flag.objects.filter(entry=entry, resolved_at__isnull=True).exists()
    assert Flag.objects.get(pk=flag.pk).resolution == Flag.Resolution.ANSWERED
    entry.refresh_from_db()
    assert (entry.reply_state, entry.claim_count, entry.claim_verification) == ("answered", 2, "unverified")


def test_a_dispute_needs_a_follow_up_date_not_in_the_past(make_handed_over_list, case_worker):
    handover_list, located = answered_list(make_handed_over_list, case_worker)
    for follow_up, message in ((None, "give the date a further reply is due"),
                               (timezone.localdate() - datetime.timedelta(days=1), "is in the past")):
        with pytest.raises(ExchangeError, match=message):
            outcome_verify(outcome=located, verification=Verification.DISPUTED, note="", actor=case_worker,
                           follow_up_due_on=follow_up)
    located.refresh_from_db()
    assert located.verification == Verification.UNVERIFIED
    assert not Flag.objects.filter(kind=Flag.Kind.DISPUTED).exists()
    assert entry_at(handover_list, 1).reply_state == ListEntry.ReplyState.ANSWERED


def test_taking_a_dispute_back_answers_the_entry_again(make_handed_over_list, case_worker):
    handover_list, located = answered_list(make_handed_over_list, case_worker)
    outcome_verify(outcome=located, verification=Verification.DISPUTED, note="Wrong photo?", actor=case_worker,
                   follow_up_due_on=timezone.localdate())

    outcome_verify(outcome=located, verification=Verification.VERIFIED, note="Confirmed by a video call",
                   actor=case_worker)

    entry = entry_at(handover_list, 1)
    assert (entry.reply_state, entry.answered_on, entry.claim_verification) == ("answered", RECEIVED, "verified")
    assert entry.case.status == Case.Status.VERIFYING
    flag = Flag.objects.get(kind=Flag.Kind.DISPUTED)
    assert (flag.resolution, flag.resolved_by) == (Flag.Resolution.UNDISPUTED, case_worker)
    assert HandoverList.objects.get(pk=handover_list.pk).status == HandoverList.Status.ANSWERED
    line = entry.case.events.order_by("-id").first()
    assert line is not None and line.kind == CaseEvent.Kind.REPLY_VERIFIED
    assert line.message.startswith("Claim verified:") and "no longer disputed" in line.message


def test_disputing_a_claim_a_later_one_replaced_leaves_the_entry_on_the_later(make_handed_over_list, case_worker):
    handover_list, located = answered_list(make_handed_over_list, case_worker)
    reply_record(handover_list=handover_list, received_on=LATER, actor=case_worker,
                 outcomes=[OutcomeInput(position=1, outcome=Outcome.RETURNED)])

    outcome_verify(outcome=located, verification=Verification.DISPUTED, note="Never in Yeysk", actor=case_worker)

    entry = entry_at(handover_list, 1)
    assert (entry.reply_state, entry.last_outcome, entry.claim_verification) == ("answered", "returned", "unverified")
    assert not Flag.objects.filter(kind=Flag.Kind.DISPUTED).exists()
    line = entry.case.events.order_by("-id").first()
    assert line is not None and line.kind == CaseEvent.Kind.CLAIM_DISPUTED
    assert line.message.startswith("Claim disputed:")


# ---------------------------------------------------------------------------------------------
# Verification on the reply's page, and what the other pages show of it
# ---------------------------------------------------------------------------------------------


def reply_page_data(client: Client, reply: Reply) -> dict[str, Any]:
    """The reply's change form as it would be posted back untouched."""
    response = client.get(reply_change_url(reply))
    assert response.status_code == 200
    data: dict[str, Any] = {"reference": reply.reference, "notes": reply.notes}
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update({f"{formset.prefix}-TOTAL_FORMS": formset.total_form_count(),
                     f"{formset.prefix}-INITIAL_FORMS": formset.initial_form_count(),
                     f"{formset.prefix}-MIN_NUM_FORMS": 0, f"{formset.prefix}-MAX_NUM_FORMS": 1000})
        for index, form in enumerate(formset.forms):
            data[f"{formset.prefix}-{index}-id"] = form.instance.pk
            data[f"{formset.prefix}-{index}-verification"] = form.instance.verification
            data[f"{formset.prefix}-{index}-verification_note"] = form.instance.verification_note
            data[f"{formset.prefix}-{index}-follow_up_due_on"] = str(form.fields["follow_up_due_on"].initial)
    return data


def test_a_case_worker_disputes_a_claim_with_evidence_and_sees_its_flag(signed_in, worker, make_handed_over_list,
                                                                        case_worker):
    handover_list, located = answered_list(make_handed_over_list, case_worker)
    reply = located.reply
    data = reply_page_data(signed_in, reply)
    follow_up = timezone.localdate() + datetime.timedelta(days=10)
    index = list(reply.outcomes.order_by("entry__position").values_list("pk", flat=True)).index(located.pk)
    data.update({f"outcomes-{index}-verification": "disputed",
                 f"outcomes-{index}-verification_note": "The mother recognised no one in the photo",
                 f"outcomes-{index}-follow_up_due_on": str(follow_up),
                 f"outcomes-{index}-verification_evidence": SimpleUploadedFile("call-notes.txt", b"Call of 21 July")})

    response = signed_in.post(reply_change_url(reply), data)

    assert response.status_code == 302, response.context and response.context["errors"]
    located.refresh_from_db()
    assert (located.verification, located.verified_by) == ("disputed", worker)
    assert str(located.verification_evidence.name).endswith(".txt")
    other = reply.outcomes.exclude(pk=located.pk).get()
    assert other.verification == Verification.UNVERIFIED and other.verified_at is None, "an untouched row stays"
    flag = Flag.objects.get(kind=Flag.Kind.DISPUTED, resolved_at__isnull=True)
    assert (flag.due_on, flag.raised_by) == (follow_up, worker)

    flags_page = signed_in.get(reverse("admin:tracker_flag_changelist") + "?state=open").content.decode()
    assert "Claim disputed" in flags_page
    entries = signed_in.get(reverse("admin:tracker_listentry_changelist") + "?flag=disputed")
    assert [entry.position for entry in entries.context["cl"].result_list] == [1]
    lists = signed_in.get(reverse("admin:tracker_handoverlist_changelist"))
    counted = next(item for item in lists.context["cl"].result_list if item.pk == handover_list.pk)
    assert (counted.n_claimed, counted.n_verified, counted.n_disputed) == (2, 0, 1)
    start = signed_in.get(reverse("admin:index")).content.decode()
    assert "Claims disputed" in start


def test_a_dispute_on_the_page_without_a_follow_up_date_is_refused(signed_in, make_handed_over_list, case_worker):
    _, located = answered_list(make_handed_over_list, case_worker)
    data = reply_page_data(signed_in, located.reply)
    index = list(located.reply.outcomes.order_by("entry__position").values_list("pk", flat=True)).index(located.pk)
    data.update({f"outcomes-{index}-verification": "disputed", f"outcomes-{index}-follow_up_due_on": ""})

    response = signed_in.post(reply_change_url(located.reply), data)

    assert response.status_code == 200
    assert "a disputed claim needs the date a further reply is due" in response.content.decode()
    located.refresh_from_db()
    assert located.verification == Verification.UNVERIFIED
    assert not Flag.objects.filter(kind=Flag.Kind.DISPUTED).exists()
