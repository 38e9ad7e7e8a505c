"""The interface in Ukrainian and English: the catalogue complete and compiled, the language chosen by
the browser or by the switch in the header (and remembered), dates as written in Ukraine."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import translation

from core.i18n import model_labels
from tests.factories import CaseFactory, ChildFactory, UserFactory

CATALOGUE = Path(settings.LOCALE_PATHS[0]) / "uk" / "LC_MESSAGES"


@pytest.fixture(scope="module")
def catalogue() -> polib.POFile:
    return polib.pofile(str(CATALOGUE / "django.po"))


def test_ukrainian_catalogue_has_no_untranslated_or_fuzzy_entry(catalogue):
    untranslated = [entry.msgid for entry in catalogue.untranslated_entries()]
    fuzzy = [entry.msgid for entry in catalogue.fuzzy_entries()]
    # A plural entry needs every form the catalogue's Plural-Forms counts: polib counts it translated
    # when only one is.
    declared = re.search(r"nplurals=(\d+)", catalogue.metadata["Plural-Forms"])
    assert declared, "the catalogue declares its plural forms"
    forms = int(declared.group(1))
    partial = [entry.msgid for entry in catalogue if entry.msgid_plural and (
        len(entry.msgstr_plural) != forms or not all(entry.msgstr_plural.values()))]
    assert untranslated == [], "untranslated (make messages, then translate them)"
    assert fuzzy == [], "fuzzy: check each translation and remove its fuzzy flag"
    assert partial == [], "plural forms missing"


def test_every_model_and_field_name_is_in_the_catalogue(catalogue):
    known = {entry.msgid for entry in catalogue}
    missing = sorted(set(model_labels()) - known)
    assert missing == [], "run make messages: names of models or fields not in the catalogue"


def test_compiled_catalogue_matches_its_source(catalogue):
    # make run needs no gettext: the .mo is committed, so it must be the .po compiled.
    compiled = polib.mofile(str(CATALOGUE / "django.mo"))
    as_compiled = {(e.msgid, e.msgstr or tuple(sorted(e.msgstr_plural.items()))) for e in compiled if e.msgid}
    as_written = {(e.msgid, e.msgstr or tuple(sorted(e.msgstr_plural.items()))) for e in catalogue
                  if e.msgid and e.translated()}
    assert as_written == as_compiled, "run make messages to compile the catalogue"


def test_placeholders_are_kept_in_each_translation(catalogue):
    def placeholders(text: str) -> list[str]:
        return sorted(re.findall(r"%\(\w+\)[sd]|\{\}", text))

    wrong = [entry.msgid for entry in catalogue if entry.msgid and (
        (not entry.msgid_plural and placeholders(entry.msgid) != placeholders(entry.msgstr))
        or (entry.msgid_plural and any(set(placeholders(form)) - set(placeholders(entry.msgid_plural))
                                       for form in entry.msgstr_plural.values())))]
    assert wrong == []


# --- In the admin ------------------------------------------------------------------------------


@pytest.fixture
def worker_client(db) -> Client:
    """A case worker with the rights to read children, cases, lists and flags (no superuser)."""
    user = UserFactory(username="uk.worker")
    user.user_permissions.add(*Permission.objects.filter(
        content_type__app_label__in=["cases", "tracker"], codename__startswith="view_"))
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_browsers_language_picks_ukrainian(worker_client):
    page = worker_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="uk").content.decode()
    assert '<html lang="uk"' in page
    assert "Облік справ" in page and "Потребує уваги" in page
    assert "Діти та справи" in page and "Списки та відповіді" in page and "Позначки" in page
    assert "Needs attention" not in page


@pytest.mark.django_db
def test_the_language_switch_is_remembered_over_the_browsers_choice(worker_client):
    response = worker_client.post(reverse("set_language"), {"language": "uk", "next": reverse("admin:index")},
                                  HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "uk"
    page = worker_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Потребує уваги" in page
    worker_client.post(reverse("set_language"), {"language": "en", "next": reverse("admin:index")})
    page = worker_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="uk").content.decode()
    assert "Needs attention" in page


@pytest.mark.django_db
def test_the_switch_is_on_every_page_with_the_current_language_marked(worker_client):
    page = worker_client.get(reverse("admin:cases_case_changelist"), HTTP_ACCEPT_LANGUAGE="uk").content.decode()
    assert 'class="language-switch"' in page
    assert 'value="uk" lang="uk" aria-current="true"' in page
    assert 'value="en" lang="en">English</button>' in page


@pytest.mark.django_db
def test_a_case_page_in_ukrainian_names_its_fields_choices_and_dates_in_ukrainian(worker_client):
    case = CaseFactory(child=ChildFactory(birth_date=datetime.date(2013, 11, 27), home_oblast="kherson"))
    page = worker_client.get(reverse("admin:cases_child_change", args=[case.child.pk]),
                             HTTP_ACCEPT_LANGUAGE="uk").content.decode()
    assert "Прізвище" in page and "Дата народження" in page and "Херсонська" in page
    assert "27.11.2013" in page
    assert "Family name" not in page and "Birth date" not in page


def test_dates_and_times_are_written_as_in_ukraine_in_both_languages():
    from django.utils import formats

    moment = datetime.datetime(2026, 11, 27, 12, 5, tzinfo=datetime.UTC)
    for language in ("uk", "en"):
        with translation.override(language):
            assert formats.date_format(datetime.date(2026, 11, 27), "SHORT_DATE_FORMAT") == "27.11.2026"
            assert formats.date_format(datetime.date(2026, 11, 27)) == "27.11.2026"
    assert settings.TIME_ZONE == "Europe/Kyiv"
    from django.utils import timezone

    assert f"{timezone.localtime(moment):%H:%M}" == "14:05"


@pytest.mark.django_db
def test_the_timeline_written_by_the_exchange_reads_in_ukrainian(make_handed_over_list, case_worker):
    from django.utils import timezone

    from cases.services import case_reassign
    from tests.factories import UserFactory
    from tracker.admin.timeline import timeline_text
    from tracker.models import ReplyOutcome
    from tracker.services.exchange import OutcomeInput, outcome_verify, reply_record

    handover_list = make_handed_over_list(1)
    reply_record(handover_list=handover_list, received_on=datetime.date(2025, 7, 10), actor=case_worker,
                 outcomes=[OutcomeInput(position=1, outcome="not_found")])
    due = timezone.localdate() + datetime.timedelta(days=10)
    with translation.override("uk"):  # a verdict given in Ukrainian is stored as every line is
        outcome_verify(outcome=ReplyOutcome.objects.get(), verification="disputed", note="Seen in Rivne",
                       actor=case_worker, follow_up_due_on=due)
    outcome_verify(outcome=ReplyOutcome.objects.get(), verification="unverified", note="", actor=case_worker)
    case = handover_list.entries.get().case
    colleague = UserFactory(username="olena.colleague")
    before = case.assignee
    case_reassign(case=case, assignee=colleague, actor=case_worker, reason="Back from leave")
    with translation.override("uk"):
        lines = [timeline_text(event) for event in case.events.order_by("happened_at", "id")]
    ref, on = handover_list.reference, f"{due:%d.%m.%Y}"
    assert lines == [
        f"Додано до списку {ref} під №1",
        f"Список {ref} передано: Russian delegation, 02.06.2025",
        f"Відповідь від 10.07.2025 на {ref} №1: Не знайдено",
        f"Твердження оскаржено: «Не знайдено» у відповіді від 10.07.2025 (№1): Seen in Rivne. "
        f"Повторну відповідь очікуємо до {on}.",
        "Твердження позначено як неперевірене: «Не знайдено» у відповіді від 10.07.2025 (№1); оскарження "
        "знято, позиція знову вважається відповіддю за цим твердженням",
        f"Виконавця змінено: {before or 'не призначено'} → olena.colleague. Причина: Back from leave",
    ]
    with translation.override("en"):
        # In English, each line as the services wrote it, its dates as written in Ukraine.
        assert [timeline_text(event) for event in case.events.order_by("happened_at", "id")] == [
            f"Added to list {ref} as #1",
            f"List {ref} handed over to Russian delegation on 02.06.2025",
            f"Reply of 10.07.2025 to {ref} #1: Not found",
            f"Claim disputed: “Not found” in the reply of 10.07.2025 (#1): Seen in Rivne. "
            f"A further reply is due by {on}.",
            "Claim marked unverified: “Not found” in the reply of 10.07.2025 (#1); no longer disputed, the entry "
            "is answered by this claim again",
            f"Reassigned from {before or 'nobody'} to olena.colleague: Back from leave",
        ]
