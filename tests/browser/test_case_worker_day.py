"""A case worker's day in a real browser, on the demo story, as the demo's own accounts (no superuser): the
case worker signs in, looks at their work, finds a child by a Latin spelling, notes a call, records a
reply letter to a handed-over list with three outcomes (two chosen on the list's rows, one pasted from a
spreadsheet), disputes one claim and finds its flag and the list's counts, asks to close the case; the
supervisor approves the closing from the queue. Each step leaves a screenshot.

The day is a list of steps (`DAY`), each a function taking what the story has gathered so far; the
database is checked after each step that changes it.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Count, Q
from django.utils import timezone

from cases.models import Case, CaseEvent, ClosingRequest
from tracker.models import Flag, HandoverList, ListEntry, Reply

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "synthetic-demo-password"  # the demo accounts' password on this throwaway database


@dataclass
class Story:
    """What the day has gathered: the tabs of each person signed in, the case worked on, the screenshots."""

    page_for: Callable[..., Any]
    folder: Path
    tabs: dict[str, Any] = field(default_factory=dict)
    case: Case | None = None
    handover_list: HandoverList | None = None
    entries: list[ListEntry] = field(default_factory=list)  # the three entries the reply letter answers
    follow_up: datetime.date | None = None
    shots: list[Path] = field(default_factory=list)

    def tab(self, username: str) -> Any:
        """The signed-in tab of this demo account, opened and signed in on first use."""
        if username not in self.tabs:
            # Wide enough for the reply's outcomes table, its verification columns side by side.
            page = self.page_for(locale="en-GB", width=1920)
            page.goto("/admin/login/")
            page.fill("input[name=username]", username)
            page.fill("input[name=password]", PASSWORD)
            self.shot(page, f"{username}-signs-in")
            page.click("input[type=submit]")
            page.wait_for_url(re.compile(r"/admin/$"))
            self.tabs[username] = page
        return self.tabs[username]

    def shot(self, page: Any, name: str) -> None:
        path = self.folder / f"{len(self.shots) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)

    @property
    def case_url(self) -> str:
        assert self.case is not None, "set by the step that finds the child"
        return f"/admin/cases/case/{self.case.pk}/change/"

    @property
    def list_url(self) -> str:
        assert self.handover_list is not None, "set by the step that opens the list"
        return f"/admin/tracker/handoverlist/{self.handover_list.pk}/change/"


CASE_WORKER, SUPERVISOR = "o.kovalenko", "s.bondar"


def case_worker() -> Any:
    return get_user_model().objects.get(username=CASE_WORKER)


def case_worker_signs_in(story: Story) -> None:
    page = story.tab(CASE_WORKER)
    assert "You don't have permission" not in page.content()
    story.shot(page, "case-worker-start-page")


def case_worker_opens_my_work(story: Story) -> None:
    page = story.tab(CASE_WORKER)
    page.goto("/admin/cases/case/")
    page.click("a[href='/admin/cases/case/my-work/']")
    page.wait_for_url(re.compile(r"/my-work/$"))
    assert page.locator("table.my-cases tbody tr").count() > 0
    story.shot(page, "my-work")


def case_worker_finds_a_child_by_a_latin_spelling(story: Story) -> None:
    case = (Case.objects.filter(assignee=case_worker(), status=Case.Status.OPEN).select_related("child")
            .order_by("pk").first())
    assert case is not None
    story.case = case
    page = story.tab(CASE_WORKER)
    page.goto("/admin/cases/case/")
    latin = f"{case.child.family_name_latin} {case.child.given_name_latin}"
    page.fill("#searchbar", latin)
    page.press("#searchbar", "Enter")
    page.wait_for_url(re.compile(r"[?&]q="))
    story.shot(page, "found-by-latin-spelling")
    page.click(f"#result_list a[href^='{story.case_url}']")
    page.wait_for_url(re.compile(re.escape(story.case_url)))
    assert case.child.home_settlement in page.content()
    story.shot(page, "case-page")


def case_worker_notes_a_call(story: Story) -> None:
    page = story.tab(CASE_WORKER)
    page.goto(story.case_url)
    page.select_option("select[name=note_channel]", "call")
    page.fill("textarea[name=note_text]", "Grandmother called: the child wrote to her from Taganrog.")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    assert "Grandmother called" in page.content()
    story.shot(page, "note-on-the-timeline")
    note = CaseEvent.objects.filter(case=story.case, kind=CaseEvent.Kind.NOTE).latest("happened_at", "pk")
    assert note.message.startswith("Grandmother called") and note.channel == "call" and note.actor == case_worker()


def case_worker_opens_a_list_awaiting_a_reply(story: Story) -> None:
    # A handed-over demo list with no reply yet and at least three children awaiting one.
    handover_list = (HandoverList.objects.filter(status=HandoverList.Status.HANDED_OVER, replies__isnull=True)
                     .annotate(awaiting=Count("entries", filter=Q(entries__reply_state=ListEntry.ReplyState.AWAITING)))
                     .filter(awaiting__gte=3).order_by("handed_over_on", "pk").first())
    assert handover_list is not None
    story.handover_list = handover_list
    story.entries = list(handover_list.entries.filter(reply_state=ListEntry.ReplyState.AWAITING)
                         .select_related("case").order_by("position")[:3])
    page = story.tab(CASE_WORKER)
    page.goto("/admin/tracker/handoverlist/")
    page.click(f"#result_list a[href^='{story.list_url}']")
    page.wait_for_url(re.compile(re.escape(story.list_url)))
    story.shot(page, "list-awaiting-a-reply")


def case_worker_records_a_reply_letter(story: Story) -> None:
    assert story.handover_list is not None
    first, second, third = story.entries
    page = story.tab(CASE_WORKER)
    page.get_by_role("link", name="Record a reply letter").click()
    page.wait_for_url(re.compile(rf"/{story.handover_list.pk}/reply/$"))
    # The letter came in after the list was handed over, before today.
    assert story.handover_list.handed_over_on is not None
    received_on = min(story.handover_list.handed_over_on + datetime.timedelta(days=20), timezone.localdate())
    page.fill("input[name=received_on]", str(received_on))
    page.fill("input[name=reference]", "No. 14/2025")
    page.set_input_files("input[name=document]", files=[
        {"name": "letter.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 a scanned letter"}])
    page.select_option(f"select[name=outcome-{first.pk}]", "located")
    page.fill(f"input[name=location-{first.pk}]", "Taganrog")
    page.fill(f"input[name=details-{first.pk}]", "In a foster family")
    page.select_option(f"select[name=outcome-{second.pk}]", "not_found")
    # As Excel copies cells: tab between columns, a header row above.
    page.fill("textarea[name=pasted]",
              f"№\tРезультат\tМісце перебування\tПримітка\n{third.position}\tпомер\t\tRegistry office record\n")
    story.shot(page, "reply-letter-filled")
    page.click("#reply-letter input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/tracker/reply/\d+/change/$"))
    assert "reply letter recorded for 3 children" in page.content()
    story.shot(page, "reply-recorded")

    reply = Reply.objects.get(handover_list=story.handover_list)
    assert reply.received_on == received_on
    assert reply.reference == "No. 14/2025" and reply.recorded_by == case_worker()
    assert sorted(reply.outcomes.values_list("entry__position", "outcome")) == [
        (first.position, "located"), (second.position, "not_found"), (third.position, "deceased")]
    assert sorted(ListEntry.objects.filter(pk__in=[e.pk for e in story.entries]).values_list(
        "reply_state", flat=True)) == [ListEntry.ReplyState.ANSWERED] * 3


def case_worker_disputes_a_claim(story: Story) -> None:
    # The mother does not recognise the child "located" in Taganrog: the claim is disputed on the reply's page.
    story.follow_up = timezone.localdate() + datetime.timedelta(days=14)
    page = story.tab(CASE_WORKER)
    row = page.locator("tr.form-row", has_text="Taganrog")
    row.locator("select[name$=-verification]").select_option("disputed")
    row.locator("textarea[name$=-verification_note], input[name$=-verification_note]").fill(
        "The mother does not recognise the child in the photo")
    row.locator("input[name$=-follow_up_due_on]").fill(str(story.follow_up))
    row.locator("input[name$=-verification_evidence]").set_input_files(files=[
        {"name": "call-notes.txt", "mimeType": "text/plain", "buffer": b"Call with the mother, 21 July"}])
    story.shot(page, "disputing-a-claim")
    page.click("input[name=_save]")
    page.wait_for_url(re.compile(r"/admin/tracker/reply/$"))
    story.shot(page, "dispute-saved")

    disputed = story.entries[0]
    flag = Flag.objects.get(entry=disputed, resolved_at__isnull=True, kind=Flag.Kind.DISPUTED)
    assert flag.due_on == story.follow_up and flag.raised_by == case_worker()
    entry = ListEntry.objects.select_related("case").get(pk=disputed.pk)
    assert entry.reply_state == ListEntry.ReplyState.AWAITING
    assert entry.case.status == Case.Status.AWAITING_REPLY
    others = ListEntry.objects.filter(pk__in=[e.pk for e in story.entries[1:]])
    assert list(others.values_list("reply_state", flat=True)) == [ListEntry.ReplyState.ANSWERED] * 2
    assert not Flag.objects.filter(entry__in=others, kind=Flag.Kind.DISPUTED).exists()


def case_worker_sees_the_flag_and_the_lists_counts(story: Story) -> None:
    assert story.handover_list is not None
    disputed = story.entries[0]
    page = story.tab(CASE_WORKER)
    page.goto("/admin/tracker/flag/?state=open&kind__exact=disputed")
    story.shot(page, "disputed-flags")
    rows = page.locator("#result_list tbody tr")
    open_disputed = Flag.objects.filter(resolved_at__isnull=True, kind=Flag.Kind.DISPUTED).count()
    assert rows.count() == open_disputed
    ours = rows.filter(has_text=str(disputed))
    assert ours.count() == 1 and "Claim disputed" in ours.inner_text()

    page.goto("/admin/tracker/handoverlist/")
    story.shot(page, "lists-claim-counts")
    counts = page.locator("#result_list tbody tr", has_text=story.handover_list.reference)
    assert counts.locator("td.field-claim_counts").inner_text() == "3 / 0 / 1"

    page.goto(f"/admin/cases/case/{disputed.case_id}/change/")
    story.shot(page, "disputed-case-timeline")
    # The timeline says so in a line of the dispute's own kind, never as a verification.
    timeline = page.locator("#events-group tbody tr", has_text="Claim disputed")
    assert timeline.count() == 1 and "Reply verified" not in page.content()
    assert disputed.case.events.filter(kind=CaseEvent.Kind.CLAIM_DISPUTED).count() == 1


def case_worker_asks_to_close(story: Story) -> None:
    page = story.tab(CASE_WORKER)
    page.goto(story.case_url)
    page.select_option("select[name=next_status]", "closed")
    page.select_option("select[name=next_closing_reason]", "reunified")
    page.fill("textarea[name=transition_note]", "Back with her grandmother in Zaporizhzhia.")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    assert "awaits a supervisor" in page.content()
    assert Case.objects.get(pk=story.case.pk).status == Case.Status.OPEN  # type: ignore[union-attr]
    asked = ClosingRequest.objects.get(case=story.case)
    assert (asked.state, asked.requested_by) == (ClosingRequest.State.PENDING, case_worker())
    story.shot(page, "closing-asked")


def supervisor_approves_the_closing(story: Story) -> None:
    page = story.tab(SUPERVISOR)
    page.goto("/admin/cases/case/")
    page.click("a[href='/admin/cases/closingrequest/']")
    page.wait_for_url(re.compile(r"/admin/cases/closingrequest/$"))
    story.shot(page, "supervisor-queue")
    row = page.locator("#result_list tbody tr", has_text=f"Case {story.case.pk} ·")  # type: ignore[union-attr]
    row.locator("th a").first.click()
    page.wait_for_url(re.compile(r"/admin/cases/closingrequest/\d+/change/$"))
    page.fill("textarea[name=decision_note]", "Confirmed with the family by phone.")
    story.shot(page, "supervisor-decides")
    page.click("input[name=_approve]")
    page.wait_for_url(re.compile(r"/admin/cases/closingrequest/$"))
    decided = ClosingRequest.objects.select_related("decided_by").get(case=story.case)
    assert decided.state == ClosingRequest.State.APPROVED and decided.decided_by.username == SUPERVISOR  # type: ignore[union-attr]
    story.shot(page, "supervisor-approved")
    page.goto(story.case_url)
    assert "Closing approved" in page.content()
    story.shot(page, "case-closed-timeline")


# The day in order: the reply letter and its dispute come before the closing is asked for.
DAY: list[Callable[[Story], None]] = [
    case_worker_signs_in,
    case_worker_opens_my_work,
    case_worker_finds_a_child_by_a_latin_spelling,
    case_worker_notes_a_call,
    case_worker_opens_a_list_awaiting_a_reply,
    case_worker_records_a_reply_letter,
    case_worker_disputes_a_claim,
    case_worker_sees_the_flag_and_the_lists_counts,
    case_worker_asks_to_close,
    supervisor_approves_the_closing,
]


def test_a_case_workers_day_with_the_supervisors_approval(page_for, screenshots):
    call_command("seed_demo", children=30, no_sweep=True, verbosity=0)
    for user in get_user_model().objects.filter(username__in=[CASE_WORKER, SUPERVISOR]):
        assert not user.is_superuser
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
    story = Story(page_for=page_for, folder=screenshots)
    for step in DAY:
        step(story)

    assert story.case is not None
    case = Case.objects.get(pk=story.case.pk)
    assert (case.status, case.closing_reason) == (Case.Status.CLOSED, Case.ClosingReason.REUNIFIED)
    kinds = list(case.events.order_by("happened_at", "pk").values_list("kind", flat=True))
    assert kinds[-3:] == [CaseEvent.Kind.NOTE, CaseEvent.Kind.CLOSING_REQUESTED, CaseEvent.Kind.CLOSING_APPROVED]
    assert ClosingRequest.objects.get(case=case).state == ClosingRequest.State.APPROVED
    assert len(story.shots) >= len(DAY) and all(path.stat().st_size > 0 for path in story.shots)
