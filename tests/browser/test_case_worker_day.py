"""A case worker's day in a real browser, on the demo story, as the demo's own accounts (no superuser): the
case worker signs in, looks at their work, finds a child by a Latin spelling, notes a call, asks to
close the case; the supervisor approves the closing from the queue. Each step leaves a screenshot.

The day is a list of steps (`DAY`), each a function taking the browser tab and what the story has
gathered so far; a step of another part of the work (a reply letter, a disputed claim) goes into the
list where it happens in the day, before the closing is asked for.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from cases.models import Case, CaseEvent, ClosingRequest

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "synthetic-demo-password"  # the demo accounts' password on this throwaway database


@dataclass
class Story:
    """What the day has gathered: the tabs of each person signed in, the case worked on, the screenshots."""

    page_for: Callable[..., Any]
    folder: Path
    tabs: dict[str, Any] = field(default_factory=dict)
    case: Case | None = None
    shots: list[Path] = field(default_factory=list)

    def tab(self, username: str) -> Any:
        """The signed-in tab of this demo account, opened and signed in on first use."""
        if username not in self.tabs:
            page = self.page_for(locale="en-GB")
            page.goto("/admin/login/")
            page.fill("input[name=username]", username)
            page.fill("input[name=password]", PASSWORD)
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


CASE_WORKER, SUPERVISOR = "o.kovalenko", "s.bondar"


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
    worker = get_user_model().objects.get(username=CASE_WORKER)
    case = (Case.objects.filter(assignee=worker, status=Case.Status.OPEN).select_related("child")
            .order_by("pk").first())
    assert case is not None
    story.case = case
    page = story.tab(CASE_WORKER)
    page.goto("/admin/cases/case/")
    latin = f"{case.child.family_name_latin} {case.child.given_name_latin}"
    page.fill("#searchbar", latin)
    page.press("#searchbar", "Enter")
    page.wait_for_load_state()
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
    page.click("input[name=_continue]")
    page.wait_for_load_state()
    assert "Grandmother called" in page.content()
    story.shot(page, "note-on-the-timeline")


def case_worker_asks_to_close(story: Story) -> None:
    page = story.tab(CASE_WORKER)
    page.goto(story.case_url)
    page.select_option("select[name=next_status]", "closed")
    page.select_option("select[name=next_closing_reason]", "reunified")
    page.fill("textarea[name=transition_note]", "Back with her grandmother in Zaporizhzhia.")
    page.click("input[name=_continue]")
    page.wait_for_load_state()
    assert "awaits a supervisor" in page.content()
    assert Case.objects.get(pk=story.case.pk).status == Case.Status.OPEN  # type: ignore[union-attr]
    story.shot(page, "closing-asked")


def supervisor_approves_the_closing(story: Story) -> None:
    page = story.tab(SUPERVISOR)
    page.goto("/admin/cases/case/")
    page.click("a[href='/admin/cases/closingrequest/']")
    page.wait_for_load_state()
    story.shot(page, "supervisor-queue")
    row = page.locator("#result_list tbody tr", has_text=f"Case {story.case.pk} ·")  # type: ignore[union-attr]
    row.locator("th a").first.click()
    page.wait_for_load_state()
    page.fill("textarea[name=decision_note]", "Confirmed with the family by phone.")
    story.shot(page, "supervisor-decides")
    page.click("input[name=_approve]")
    page.wait_for_load_state()
    story.shot(page, "supervisor-approved")
    page.goto(story.case_url)
    assert "Closing approved" in page.content()
    story.shot(page, "case-closed-timeline")


# The day in order. Steps of the reply letters and their disputes go before `case_worker_asks_to_close`.
DAY: list[Callable[[Story], None]] = [
    case_worker_signs_in,
    case_worker_opens_my_work,
    case_worker_finds_a_child_by_a_latin_spelling,
    case_worker_notes_a_call,
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
