"""A new case worker's path through the admin in Ukrainian, in a real browser on the demo data: the start
page, an overdue list, a child and its case, a reply recorded, back to the start page; the language
switch; an accessibility check (axe-core) of the start page, a case page and a list page; the pages at a
phone's width. Screenshots of each step are kept (`screenshots`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polib
import pytest
from django.conf import settings
from django.core.management import call_command

from tests.factories import role_user
from tracker.models import HandoverList, ListEntry, Organisation, ReplyOutcome, Round
from tracker.roles import CASE_WORKER

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-test-password-1"


@pytest.fixture
def demo() -> None:
    """The demo story (`make run`'s), swept as the worker sweeps it when it starts."""
    call_command("seed_demo", verbosity=0)
    call_command("flag_overdue", verbosity=0)


@pytest.fixture
def login(demo) -> tuple[str, str]:
    """The one account the browser tests sign in with: a member of the shipped Case worker role, as an
    administrator makes one. Never a superuser."""
    user = role_user(CASE_WORKER, "new.case.worker")
    user.set_password(PASSWORD)
    user.save()
    return user.get_username(), PASSWORD


def sign_in(page: Any, account: tuple[str, str]) -> None:
    page.goto("/admin/login/")
    page.fill("input[name=username]", account[0])
    page.fill("input[name=password]", account[1])
    page.locator("#login-form [type=submit]").click()
    page.wait_for_url(re.compile(r"/admin/$"))


def _english_phrases() -> list[str]:
    """The interface's English: every phrase of the product's catalogue and of the admin's own whose
    Ukrainian differs, of two words or more (a single word may be a name in the data)."""
    phrases: set[str] = set()
    sources = [Path(settings.LOCALE_PATHS[0]) / "uk/LC_MESSAGES/django.po"]
    import django

    sources.append(Path(django.__file__).parent / "contrib/admin/locale/uk/LC_MESSAGES/django.po")
    for source in sources:
        for entry in polib.pofile(str(source)):
            text = re.sub(r"%\(\w+\)[sd]|\{\}|<[^>]+>|%s", "", entry.msgid).strip(" .,;:…")
            if entry.msgstr and entry.msgstr != entry.msgid and len(text.split()) >= 2 and "_" not in text:
                phrases.add(text)
    return sorted(phrases)


ENGLISH = _english_phrases()
# Single words of the interface that would betray an untranslated page.
ENGLISH_WORDS = ["Home", "Action", "Search", "Filter", "Save", "History", "Children", "Flags", "Partners",
                 "Overdue", "Level", "Received", "Answered", "Awaiting", "Status"]


# Patterns of the interface's own English around the data (a record's name, a heading in capitals).
ENGLISH_PATTERNS = [r"\bCase \d", r"\blevel \d", r"\bReply to\b", r"\bstay\b", r"\bTIMELINE\b", r"\bSHARED WITH\b",
                    r"\bLISTS THIS\b", r"\bdays? ago\b"]


def english_left(page: Any) -> list[str]:
    text = page.locator("body").inner_text()
    # The data is as it was written (a round called "Mediator channel (Qatar)"): only the interface counts.
    names = [*Round.objects.values_list("name", flat=True), *HandoverList.objects.values_list("title", flat=True),
             *Organisation.objects.values_list("name", flat=True)]
    for name in sorted(filter(None, names), key=len, reverse=True):
        text = text.replace(name, "")
    found = [phrase for phrase in ENGLISH if phrase in text]
    found += [word for word in ENGLISH_WORDS if re.search(rf"\b{word}\b", text)]
    found += [pattern for pattern in ENGLISH_PATTERNS if re.search(pattern, text)]
    return found


def serious_accessibility_findings(page: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [f"{violation['id']}: {violation['help']} ({[node['target'] for node in violation['nodes']]})"
            for violation in results.response["violations"] if violation["impact"] in ("serious", "critical")]


def test_a_new_case_worker_goes_from_the_start_page_to_an_overdue_child_and_records_a_reply_in_ukrainian(
        page_for, screenshots, login):
    page = page_for(locale="uk-UA")
    sign_in(page, login)
    page.screenshot(path=str(screenshots / "1-start-page.png"), full_page=True)
    assert page.locator("html").get_attribute("lang") == "uk"
    assert english_left(page) == [], english_left(page)
    assert page.locator("figure.chart svg").count() == 3

    # The list furthest past its deadline: its overdue children.
    page.locator("#lists-past-due tbody tr").first.locator("td").last.locator("a").click()
    page.wait_for_load_state()
    assert "flag=overdue" in page.url
    assert english_left(page) == []
    page.screenshot(path=str(screenshots / "2-overdue-list.png"), full_page=True)
    overdue_list = page.url

    # A child on it: the entry, then the child's case.
    page.locator("#result_list tbody tr").first.locator("th a, td.field-child a").first.click()
    page.wait_for_load_state()
    assert english_left(page) == []
    page.screenshot(path=str(screenshots / "3-entry.png"), full_page=True)
    page.locator(".field-case a").first.click()
    page.wait_for_load_state()
    assert "/admin/cases/case/" in page.url
    assert english_left(page) == []
    page.screenshot(path=str(screenshots / "4-case.png"), full_page=True)

    # Back to the overdue list: the reply for the first child, as it came.
    page.goto(overdue_list)
    first = page.locator("#result_list tbody tr").first
    entry_id = int(first.locator("input.action-select").get_attribute("value"))
    first.locator("input.action-select").check()
    page.select_option("select[name=action]", "record_outcome")
    page.select_option("select[name=outcome]", "located")
    page.locator("button[name=index], input[name=index]").first.click()
    page.wait_for_load_state()
    message = page.locator("ul.messagelist").inner_text()
    assert "відповідь зареєстровано" in message
    assert english_left(page) == []
    page.screenshot(path=str(screenshots / "5-reply-recorded.png"), full_page=True)
    assert ReplyOutcome.objects.filter(entry_id=entry_id, outcome="located").exists()
    assert ListEntry.objects.get(pk=entry_id).reply_state == ListEntry.ReplyState.ANSWERED

    # And back to the start page by the breadcrumbs.
    page.locator(".breadcrumbs a").first.click()
    page.wait_for_url(re.compile(r"/admin/$"))
    assert english_left(page) == []


def test_the_language_switch_changes_the_language_and_keeps_it(page_for, screenshots, login):
    page = page_for(locale="en-GB")
    sign_in(page, login)
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#site-name").inner_text().startswith("Case tracker")
    page.locator(".language-switch button[value=uk]").click()
    page.wait_for_url(re.compile(r"/admin/$"))
    assert page.locator("html").get_attribute("lang") == "uk"
    assert page.locator(".language-switch button[value=uk]").get_attribute("aria-current") == "true"
    # Kept over the browser's own English on the next page.
    page.goto("/admin/tracker/handoverlist/")
    assert page.locator("html").get_attribute("lang") == "uk"
    assert english_left(page) == []
    page.screenshot(path=str(screenshots / "lists-in-ukrainian.png"), full_page=True)
    page.locator(".language-switch button[value=en]").click()
    page.wait_for_url(re.compile(r"/admin/tracker/handoverlist/$"))
    assert page.locator("html").get_attribute("lang") == "en"


def test_start_case_and_list_pages_have_no_serious_accessibility_finding(page_for, screenshots, login):
    page = page_for(locale="uk-UA")
    sign_in(page, login)
    istanbul = HandoverList.objects.order_by("handed_over_on")[0]
    entry = ListEntry.objects.filter(handover_list=istanbul).order_by("position")[0]
    pages = {"start": "/admin/",
             "case": f"/admin/cases/case/{entry.case_id}/change/",
             "list": f"/admin/tracker/handoverlist/{istanbul.pk}/change/",
             "entries": f"/admin/tracker/listentry/?handover_list__id__exact={istanbul.pk}"}
    findings, english = {}, {}
    for name, url in pages.items():
        page.goto(url)
        findings[name] = serious_accessibility_findings(page)
        english[name] = english_left(page)
    assert findings == {name: [] for name in pages}
    assert english == {name: [] for name in pages}

    # The brief for the round, kept as a picture with the start page's.
    page.goto(f"/admin/tracker/round/{Round.objects.get(name__startswith='Istanbul').pk}/brief/")
    assert english_left(page) == []
    assert serious_accessibility_findings(page) == []
    page.screenshot(path=str(screenshots / "round-brief.png"), full_page=True)
    page.goto("/admin/")
    page.screenshot(path=str(screenshots / "start-page.png"), full_page=True)
    assert (screenshots / "round-brief.png").stat().st_size > 0 and (screenshots / "start-page.png").stat().st_size > 0


@pytest.mark.parametrize("url", ["/admin/", "/admin/tracker/listentry/?flag=overdue", "/admin/cases/case/"])
def test_pages_at_a_phones_width_scroll_their_tables_instead_of_cutting_them(page_for, screenshots, login, url):
    page = page_for(locale="uk-UA", width=390, height=844)
    sign_in(page, login)
    page.goto(url)
    # Nothing runs past the screen's edge: wide tables scroll inside their own box.
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    for table in page.locator("table").all():
        box = table.evaluate("t => { const s = t.closest('.table-scroll, .results, .module, .chart-figures');"
                             " return s ? getComputedStyle(s).overflowX : 'visible'; }")
        width = table.evaluate("t => t.getBoundingClientRect().width")
        if width > 390:
            assert box in ("auto", "scroll")
    page.screenshot(path=str(screenshots / "phone.png"), full_page=True)
