"""A case worker (staff with the case worker's permissions, not a superuser) records a reply letter in
Chromium: three outcomes in one letter, two chosen on the list's rows and one pasted from a
spreadsheet; then disputes one claim and finds its flag on the flags page and the dispute in the list's
counts. A screenshot of each step is kept."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from cases.models import Case
from tests.roles import PASSWORD, make_case_worker
from tracker.models import Flag, ListEntry, Reply

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_case_worker_records_a_reply_letter_and_disputes_a_claim(page_for, screenshots, make_handed_over_list):
    worker = make_case_worker()
    handover_list = make_handed_over_list(4)
    entries = {entry.position: entry for entry in handover_list.entries.all()}
    page: Any = page_for(locale="en-GB", width=1920)

    page.goto("/admin/login/")
    page.fill("input[name=username]", worker.username)
    page.fill("input[name=password]", PASSWORD)
    page.screenshot(path=str(screenshots / "01-login.png"))
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")

    page.goto(reverse("admin:tracker_handoverlist_change", args=[handover_list.pk]))
    page.screenshot(path=str(screenshots / "02-list.png"), full_page=True)
    page.get_by_role("link", name="Record a reply letter").click()
    page.wait_for_url(f"**/{handover_list.pk}/reply/")

    page.fill("input[name=received_on]", "2025-07-20")
    page.fill("input[name=reference]", "No. 14/2025")
    page.set_input_files("input[name=document]", files=[
        {"name": "letter.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 a scanned letter"}])
    page.select_option(f"select[name=outcome-{entries[1].pk}]", "located")
    page.fill(f"input[name=location-{entries[1].pk}]", "Taganrog")
    page.fill(f"input[name=details-{entries[1].pk}]", "In a foster family")
    page.select_option(f"select[name=outcome-{entries[2].pk}]", "not_found")
    # As Excel copies cells: tab between columns, a header row above.
    page.fill("textarea[name=pasted]",
              "№\tРезультат\tМісце перебування\tПримітка\n3\tпомер\t\tRegistry office record\n")
    page.screenshot(path=str(screenshots / "03-letter-filled.png"), full_page=True)
    page.click("#reply-letter input[type=submit]")
    page.wait_for_url("**/tracker/reply/*/change/")
    page.screenshot(path=str(screenshots / "04-reply-recorded.png"), full_page=True)

    reply = Reply.objects.get()
    assert reply.reference == "No. 14/2025" and reply.recorded_by == worker
    assert sorted(reply.outcomes.values_list("entry__position", "outcome")) == [
        (1, "located"), (2, "not_found"), (3, "deceased")]
    assert "reply letter recorded for 3 children" in page.content()

    # Dispute the claim of "located" (the first row of the reply's outcomes, #1).
    follow_up = timezone.localdate() + datetime.timedelta(days=14)
    row = page.locator("tr.form-row", has_text="Taganrog")
    row.locator("select[name$=-verification]").select_option("disputed")
    row.locator("textarea[name$=-verification_note], input[name$=-verification_note]").fill(
        "The mother does not recognise the child in the photo")
    row.locator("input[name$=-follow_up_due_on]").fill(str(follow_up))
    row.locator("input[name$=-verification_evidence]").set_input_files(files=[
        {"name": "call-notes.txt", "mimeType": "text/plain", "buffer": b"Call with the mother, 21 July"}])
    page.screenshot(path=str(screenshots / "05-disputing.png"), full_page=True)
    page.click("input[name=_save]")
    page.wait_for_url("**/tracker/reply/")
    page.screenshot(path=str(screenshots / "06-saved.png"), full_page=True)

    flag = Flag.objects.get(resolved_at__isnull=True, kind=Flag.Kind.DISPUTED)
    assert flag.entry_id == entries[1].pk and flag.due_on == follow_up and flag.raised_by == worker
    disputed = ListEntry.objects.select_related("case").get(pk=entries[1].pk)
    assert disputed.reply_state == ListEntry.ReplyState.AWAITING
    assert disputed.case.status == Case.Status.AWAITING_REPLY

    page.goto(reverse("admin:tracker_flag_changelist") + "?state=open&kind__exact=disputed")
    page.screenshot(path=str(screenshots / "07-flags.png"), full_page=True)
    assert page.locator("#result_list tbody tr").count() == 1
    assert "Claim disputed" in page.locator("#result_list").inner_text()

    page.goto(reverse("admin:tracker_handoverlist_changelist"))
    page.screenshot(path=str(screenshots / "08-lists.png"), full_page=True)
    counts = page.locator("#result_list tbody tr", has_text=handover_list.reference)
    assert counts.locator("td.field-claim_counts").inner_text() == "3 / 0 / 1"

    page.goto(reverse("admin:cases_case_change", args=[disputed.case_id]))
    page.screenshot(path=str(screenshots / "09-case-timeline.png"), full_page=True)
    timeline = page.locator("tr", has_text="Claim disputed: ")
    # The timeline's line and the flag's note both say so; the line is of the dispute's own kind.
    assert timeline.count() == 2 and "Reply verified" not in page.content()
    assert disputed.case.events.filter(kind="claim_disputed").count() == 1
    for shot in screenshots.iterdir():
        assert shot.stat().st_size > 0
