"""The case workers' admin, seen from a browser: pages render, search finds, filters and actions act.

Everything here goes through HTTP as a logged-in member of the Administrator role (not a superuser;
what each other role may do is in tests/test_roles.py), and data is built through the
services the way case workers build it: lists handed over, replies recorded, the deadline sweep run.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import factory
import pytest
from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import connection, models
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cases.models import Case, CaseEvent, Child, RecordAccess
from cases.services import case_open
from tests.conftest import DUE, HANDED_OVER
from tests.factories import CaseFactory, ChildFactory, HandoverListFactory, OrganisationFactory, UserFactory
from tracker.models import Flag, HandoverList, ListEntry, Organisation, Outcome, Reply, Round
from tracker.services.exchange import OutcomeInput, reply_record
from tracker.services.flags import flag_raise, sweep_deadlines

pytestmark = pytest.mark.django_db

# Twenty days past the reply date: every unanswered entry is overdue, and escalated once (14 days).
SWEPT_ON = DUE + datetime.timedelta(days=20)
REPLIED_ON = DUE + datetime.timedelta(days=5)


def changelist(model: type[models.Model], query: str = "") -> str:
    meta = model._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist") + (f"?{query}" if query else "")


def add_url(model: type[models.Model]) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")


def change_url(obj: Any) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def shown(response: Any) -> list[Any]:
    """The objects on the changelist page, as the admin drew them."""
    return list(response.context["cl"].result_list)


def act(client: Client, model: type, action: str, selected: list[Any], **fields: Any) -> Any:
    """Run an admin action from the changelist, as the action bar's form posts it."""
    data = {"action": action, "_selected_action": [str(obj.pk) for obj in selected], "index": "0", **fields}
    return client.post(changelist(model), data, follow=True)


def page_messages(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def change_form_data(response: Any) -> dict[str, Any]:
    """What an add or change page's form would post back untouched: the main form and every inline's."""
    data: dict[str, Any] = {}
    form = response.context["adminform"].form
    for name, field in form.fields.items():
        if field.disabled:
            continue
        value = form.initial.get(name, field.initial)
        if isinstance(field, forms.FileField):
            continue  # no file is uploaded again; the stored one stays
        if value is not None:
            data[name] = value.pk if hasattr(value, "pk") else value
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for name, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{name}"] = value
        for index, inline_form in enumerate(formset.forms):
            data[f"{formset.prefix}-{index}-id"] = inline_form.instance.pk or ""
            fk = formset.fk.name
            data[f"{formset.prefix}-{index}-{fk}"] = formset.instance.pk
            for name, inline_field in inline_form.fields.items():
                if name in ("id", fk) or isinstance(inline_field, forms.FileField):
                    continue
                value = inline_form.initial.get(name)
                if value is not None:
                    data[f"{formset.prefix}-{index}-{name}"] = value
    return data


@pytest.fixture
def exchange(make_handed_over_list, case_worker) -> dict[str, Any]:
    """A list handed over and partly answered, swept after its due date: flags are open on the rest."""
    handover_list = make_handed_over_list(4)
    answered = handover_list.entries.get(position=1)
    reply = reply_record(handover_list=handover_list, received_on=REPLIED_ON, actor=case_worker,
                         outcomes=[OutcomeInput(entry_id=answered.pk, outcome=Outcome.LOCATED)]).reply
    sweep_deadlines(today=SWEPT_ON)
    overdue_entry = handover_list.entries.get(position=2)
    flag = Flag.objects.get(entry=overdue_entry, kind=Flag.Kind.OVERDUE)
    manual = flag_raise(case=overdue_entry.case, note="Grandmother called", actor=case_worker)
    draft = HandoverListFactory()
    round_ = Round.objects.create(name="Istanbul, 2 June 2025", held_on=HANDED_OVER,
                                  mediator=OrganisationFactory(name="Mediator", kind=Organisation.Kind.MEDIATOR))
    handover_list.refresh_from_db()
    return {
        "list": handover_list, "draft": draft, "reply": reply, "answered": answered, "overdue": overdue_entry,
        "flag": flag, "manual": manual, "round": round_,
    }


# ---------------------------------------------------------------------------------------------
# Every page renders
# ---------------------------------------------------------------------------------------------


def test_every_changelist_renders_with_data(admin_client, exchange):
    for model in admin.site._registry:
        response = admin_client.get(changelist(model))
        assert response.status_code == 200, model


@pytest.mark.parametrize("model", [Child, Case, HandoverList, Organisation, Round, Flag])
def test_add_pages_render(admin_client, exchange, model):
    assert admin_client.get(add_url(model)).status_code == 200


@pytest.mark.parametrize("model", [ListEntry, Reply, RecordAccess])
def test_add_pages_of_records_made_elsewhere_are_refused(admin_client, exchange, model):
    # Entries come from putting cases on a list, replies from recording them, accesses from reads.
    assert admin_client.get(add_url(model)).status_code == 403


def test_change_pages_render(admin_client, exchange):
    entry: ListEntry = exchange["overdue"]
    admin_client.get(change_url(entry.child))  # so that a RecordAccess row exists
    objects = [
        entry.child, entry.case, exchange["list"], exchange["draft"], entry, exchange["reply"], exchange["flag"],
        exchange["manual"], exchange["list"].recipient, exchange["round"], RecordAccess.objects.first(),
    ]
    for obj in objects:
        response = admin_client.get(change_url(obj))
        assert response.status_code == 200, obj
    listed = admin_client.get(change_url(exchange["list"]))
    assert str(entry.child) in listed.content.decode()


# ---------------------------------------------------------------------------------------------
# The start page
# ---------------------------------------------------------------------------------------------


def page_part(page: str, element_id: str) -> str:
    """One table or section of a page, found by its id, up to the element's end."""
    start = page.index(f'id="{element_id}"')
    return page[start:page.index("</table>", start)]


def cells(row: str) -> list[str]:
    """A table row's cells as text, without their markup."""
    return [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def test_start_page_shows_what_needs_attention(admin_client, exchange):
    response = admin_client.get(reverse("admin:index"))
    assert response.status_code == 200
    page = response.content.decode()
    overdue_section = page_part(page, "overdue-entries")
    past_due_section = page_part(page, "lists-past-due")
    replies_section = page_part(page, "recent-replies")

    # Three entries were left unanswered past their date; each child is named.
    for entry in exchange["list"].entries.exclude(pk=exchange["answered"].pk).select_related("child"):
        assert str(entry.child) in overdue_section
    assert str(exchange["answered"].child) not in overdue_section
    # The partly answered list, past its deadline: 4 children, 1 replied, 3 awaiting, 3 overdue.
    row = re.search(rf"{exchange['list'].reference}.*?</tr>", past_due_section, re.S)
    assert row is not None
    assert cells(row.group(0))[-4:] == ["4", "1", "3", "3"]
    assert exchange["draft"].reference not in past_due_section
    assert exchange["draft"].reference not in page_part(page, "lists-due-next")
    assert exchange["list"].reference in replies_section
    assert reverse("admin:tracker_reply_change", args=[exchange["reply"].pk]) in replies_section


def test_start_page_when_nothing_needs_attention(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert "Nothing is overdue." in page
    assert "No list awaiting a reply is past its deadline." in page
    assert "No list awaiting a reply has its deadline ahead." in page
    assert "No replies yet." in page


def test_start_page_shows_children_only_to_those_allowed_to_see_them(client, exchange):
    client.force_login(UserFactory(username="no.rights"))
    page = client.get(reverse("admin:index")).content.decode()
    assert str(exchange["overdue"].child) not in page
    assert exchange["list"].reference not in page


def test_start_page_shows_each_section_with_its_permission(client, exchange):
    reader = UserFactory(username="list.reader")
    reader.user_permissions.add(Permission.objects.get(codename="view_handoverlist"))
    client.force_login(reader)
    page = client.get(reverse("admin:index")).content.decode()
    assert 'id="lists-past-due"' in page and exchange["list"].reference in page
    assert 'id="overdue-entries"' not in page and str(exchange["overdue"].child) not in page
    assert 'id="recent-replies"' not in page


# ---------------------------------------------------------------------------------------------
# Search by any spelling
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def shevchenko() -> Child:
    CaseFactory(child=ChildFactory(family_name="Бондаренко", given_name="Марія"))
    return CaseFactory(child=ChildFactory(family_name="Шевченко", given_name="Олександр")).child


@pytest.mark.parametrize("term", ["Shevchenko Oleksandr", "shevchenko", "Шевченко Олександр", "Oleksandr Shevchenko",
                                  "SHEVCHENKO OLEKSANDR", "Shevchenko Olexandr"])
def test_search_finds_a_child_by_latin_or_cyrillic_spelling(admin_client, shevchenko, term):
    children = shown(admin_client.get(changelist(Child, f"q={term}")))
    cases = shown(admin_client.get(changelist(Case, f"q={term}")))
    assert children == [shevchenko]
    assert [c.child for c in cases] == [shevchenko]


@pytest.mark.parametrize("term", ["Shevchenko Aleksandr", "Шевченко Александр"])
def test_search_finds_a_child_by_the_russian_form_of_the_given_name(admin_client, shevchenko, term):
    assert shown(admin_client.get(changelist(Child, f"q={term}"))) == [shevchenko]
    assert [c.child for c in shown(admin_client.get(changelist(Case, f"q={term}")))] == [shevchenko]


def test_a_spelling_added_on_the_child_page_is_searchable(admin_client, shevchenko):
    data = change_form_data(admin_client.get(change_url(shevchenko)))
    data.update({"alias_rows-0-name": "Chevtchenko", "alias_rows-0-source": "French register"})
    assert admin_client.post(change_url(shevchenko), data).status_code == 302
    assert shown(admin_client.get(changelist(Child, "q=Chevtchenko"))) == [shevchenko]


def test_search_finds_list_entries_by_name(admin_client, make_handed_over_list):
    entry = make_handed_over_list(3).entries.select_related("child").first()
    term = entry.child.family_name_latin + " " + entry.child.given_name_latin
    assert [e.pk for e in shown(admin_client.get(changelist(ListEntry, f"q={term}")))] == [entry.pk]


def test_search_by_number_finds_the_case(admin_client, shevchenko):
    case = shevchenko.cases.get()
    assert shown(admin_client.get(changelist(Case, f"q={case.pk}"))) == [case]


def test_search_for_an_unknown_name_finds_nothing(admin_client, shevchenko):
    assert shown(admin_client.get(changelist(Child, "q=Kovalchuk"))) == []


def test_search_does_not_widen_a_surname_to_a_given_name(admin_client):
    # "Petrov" is one letter from the given name Petro; it must not find every Petro.
    petro = ChildFactory(family_name="Бойко", given_name="Петро")
    petrov = ChildFactory(family_name="Петров", given_name="Іван")
    assert shown(admin_client.get(changelist(Child, "q=Petrov"))) == [petrov]
    assert shown(admin_client.get(changelist(Child, "q=Petro Boiko"))) == [petro]


def test_autocomplete_finds_children_and_cases_by_name(admin_client, shevchenko):
    autocomplete = reverse("admin:autocomplete")
    children = admin_client.get(autocomplete, {"app_label": "cases", "model_name": "case", "field_name": "child",
                                               "term": "Shevchenko"}).json()["results"]
    assert [int(r["id"]) for r in children] == [shevchenko.pk]
    cases = admin_client.get(autocomplete, {"app_label": "tracker", "model_name": "flag", "field_name": "case",
                                            "term": "Шевченко"}).json()["results"]
    assert [int(r["id"]) for r in cases] == [shevchenko.cases.get().pk]


# ---------------------------------------------------------------------------------------------
# Changelists cost the same number of queries for 3 rows as for 30
# ---------------------------------------------------------------------------------------------


def _lists_with_flags(make_handed_over_list: Callable[..., HandoverList], rows: int) -> None:
    make_handed_over_list(rows)
    sweep_deadlines(today=SWEPT_ON)


def _one_child_lists(make_handed_over_list: Callable[..., HandoverList], rows: int) -> None:
    for _ in range(rows):
        make_handed_over_list(1)
    sweep_deadlines(today=SWEPT_ON)


def _replies(make_handed_over_list: Callable[..., HandoverList], rows: int) -> None:
    handover_list = make_handed_over_list(rows)
    for entry in handover_list.entries.all():
        reply_record(handover_list=handover_list, received_on=REPLIED_ON, actor=None,
                     outcomes=[OutcomeInput(entry_id=entry.pk, outcome=Outcome.NOT_FOUND)])


def _children(make_handed_over_list: Callable[..., HandoverList], rows: int) -> None:
    ChildFactory.create_batch(rows)


ROW_MAKERS = {
    Child: _children,
    Case: _lists_with_flags,
    ListEntry: _lists_with_flags,
    Flag: _lists_with_flags,
    HandoverList: _one_child_lists,
    Reply: _replies,
}


def _queries_for(client: Client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return [q["sql"] for q in captured.captured_queries]


@pytest.mark.parametrize("model", list(ROW_MAKERS), ids=lambda m: m.__name__)
def test_changelist_queries_do_not_grow_with_rows(admin_client, make_handed_over_list, model):
    make_rows = ROW_MAKERS[model]
    make_rows(make_handed_over_list, 3)
    url = changelist(model)
    admin_client.get(url)  # warm the content-type and session caches
    with_3 = _queries_for(admin_client, url)
    assert len(shown(admin_client.get(url))) == 3

    make_rows(make_handed_over_list, 27)
    with_30 = _queries_for(admin_client, url)
    assert len(shown(admin_client.get(url))) == 30

    assert len(with_30) == len(with_3), "\n".join(with_30)


def test_start_page_queries_do_not_grow_with_rows(admin_client, make_handed_over_list):
    def rows(count: int) -> None:
        for _ in range(count):
            handover_list = make_handed_over_list(2)
            reply_record(handover_list=handover_list, received_on=REPLIED_ON, actor=None,
                         outcomes=[OutcomeInput(position=1, outcome=Outcome.NOT_FOUND)])
        sweep_deadlines(today=SWEPT_ON)

    url = reverse("admin:index")
    rows(1)
    admin_client.get(url)
    with_1 = _queries_for(admin_client, url)
    rows(9)
    with_10 = _queries_for(admin_client, url)
    assert len(with_10) == len(with_1), "\n".join(with_10)


def test_case_autocomplete_queries_do_not_grow_with_results(admin_client):
    url = reverse("admin:autocomplete")
    query = {"app_label": "tracker", "model_name": "flag", "field_name": "case", "term": "Шевченко"}
    CaseFactory.create_batch(3, child=factory.SubFactory(ChildFactory, family_name="Шевченко"))
    admin_client.get(url, query)
    with_3 = _queries_for(admin_client, f"{url}?{urlencode(query)}")
    CaseFactory.create_batch(17, child=factory.SubFactory(ChildFactory, family_name="Шевченко"))
    with_20 = _queries_for(admin_client, f"{url}?{urlencode(query)}")
    assert len(admin_client.get(url, query).json()["results"]) == 20
    assert len(with_20) == len(with_3), "\n".join(with_20)


def test_case_changelist_query_budget(admin_client, make_handed_over_list, django_assert_num_queries):
    _lists_with_flags(make_handed_over_list, 30)
    url = changelist(Case)
    admin_client.get(url)
    # 1 the session and 2 the logged-in user; 3 their own and 4 their role's permissions (read once
    # per request);
    # 5 the "list" filter's choices (the latest lists), 6 the "organisation" filter's choices,
    # 7 the "assignee" filter's choices (the other filters are fixed choices and cost nothing);
    # 8 the planner's row estimate from pg_class (the list is unfiltered) and, the table being
    # small, 9 the exact COUNT(*);
    # 10 the page of cases, with child, assignee and highest open flag level joined into that one query;
    # 11 the draft lists offered next to the "add to list" action.
    with django_assert_num_queries(11):
        admin_client.get(url)


# ---------------------------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------------------------


def test_case_filter_overdue_shows_only_cases_with_an_open_overdue_flag(admin_client, exchange):
    unlisted = CaseFactory()
    cases = shown(admin_client.get(changelist(Case, "flag=overdue")))
    expected = {e.case for e in exchange["list"].entries.exclude(pk=exchange["answered"].pk)}
    assert set(cases) == expected
    assert unlisted not in cases and exchange["answered"].case not in cases


def test_case_filter_not_flagged(admin_client, exchange):
    unlisted = CaseFactory()
    cases = shown(admin_client.get(changelist(Case, "flag=none")))
    assert set(cases) == {unlisted, exchange["answered"].case}


def test_case_filter_escalated(admin_client, exchange):
    # Twenty days past due is past the first escalation threshold (14 days): level 2.
    assert len(shown(admin_client.get(changelist(Case, "flag=escalated")))) == 3


def test_case_filter_on_list(admin_client, exchange, make_handed_over_list):
    other = make_handed_over_list(2)
    cases = shown(admin_client.get(changelist(Case, f"on_list={other.pk}")))
    assert set(cases) == {e.case for e in other.entries.all()}


def test_case_filter_by_organisation(admin_client, exchange):
    elsewhere = HandoverListFactory(sender=OrganisationFactory(name="ICRC", kind=Organisation.Kind.MEDIATOR),
                                    recipient=OrganisationFactory(name="Ombudsman", kind=Organisation.Kind.PARTNER))
    CaseFactory()
    recipient = exchange["list"].recipient
    cases = shown(admin_client.get(changelist(Case, f"organisation={recipient.pk}")))
    assert set(cases) == {e.case for e in exchange["list"].entries.all()}
    assert shown(admin_client.get(changelist(Case, f"organisation={elsewhere.sender.pk}"))) == []


def test_list_entry_filter_overdue(admin_client, exchange):
    entries = shown(admin_client.get(changelist(ListEntry, "flag=overdue")))
    assert {e.pk for e in entries} == set(
        exchange["list"].entries.exclude(pk=exchange["answered"].pk).values_list("pk", flat=True)
    )


def test_list_entries_name_the_outcome_claimed_in_words(admin_client, exchange):
    # The column stores a code ("not_found"); the filter, the list and the case page say it in words.
    response = admin_client.get(changelist(ListEntry))
    page = response.content.decode()
    located = Outcome.LOCATED.label
    assert '?last_outcome=located"' in page and f">{located}</a>" in page, "the filter offers the label"
    assert f'<td class="field-last_outcome_label">{located}</td>' in page
    assert ">located<" not in page

    filtered = shown(admin_client.get(changelist(ListEntry, "last_outcome=located")))
    unanswered = shown(admin_client.get(changelist(ListEntry, "last_outcome=none")))
    case_page = admin_client.get(change_url(exchange["answered"].case)).content.decode()

    assert filtered == [exchange["answered"]]
    assert exchange["answered"] not in unanswered and len(unanswered) == 3
    assert f"<p>{located}</p>" in case_page


def test_start_page_tiles_lead_to_working_filters(admin_client, exchange):
    page = admin_client.get(reverse("admin:index")).content.decode()
    links = [link.replace("&amp;", "&") for link in re.findall(r'class="tile[^"]*" href="([^"]+)"', page)]
    # Five case states, a level of overdue for each escalation and the first, due soon, raised by hand,
    # three states of claims.
    assert len(links) == 5 + 1 + len(settings.TRACKER_ESCALATION_DAYS) + 2 + 3
    for link in links:
        # An unknown filter would redirect to "?e=1"; a working one draws the page.
        response = admin_client.get(link)
        assert response.status_code == 200, link
        assert "e=1" not in response.request["QUERY_STRING"]
    manual = shown(admin_client.get(next(link for link in links if "kind__exact=manual" in link)))
    assert manual == [exchange["manual"]]
    escalated = shown(admin_client.get(next(link for link in links if "level=2" in link)))
    assert all(flag.level == 2 and flag.kind == "overdue" for flag in escalated)


@pytest.mark.parametrize("model", [Case, ListEntry], ids=["Case", "ListEntry"])
def test_sorting_by_flag_puts_the_highest_first(admin_client, exchange, model):
    CaseFactory.create_batch(3)
    column = admin.site._registry[model].list_display.index("open_flag") + 1  # "o=" counts from 1
    rows = shown(admin_client.get(changelist(model, f"o=-{column}")))
    levels = [row.open_flag_level for row in rows]
    assert levels[0] == 2
    assert levels == sorted(levels, reverse=True)


# ---------------------------------------------------------------------------------------------
# Actions
# ---------------------------------------------------------------------------------------------


def test_close_cases_with_a_reason(admin_client, admin_user):
    first, second, untouched = CaseFactory(), CaseFactory(), CaseFactory()
    response = act(admin_client, Case, "close_cases", [first, second], closing_reason="family_withdrew")

    assert "Closed 2 cases." in page_messages(response)
    for case in (first, second):
        case.refresh_from_db()
        assert case.status == Case.Status.CLOSED
        assert case.closing_reason == "family_withdrew"
        event = case.events.get(to_status=Case.Status.CLOSED)
        assert event.actor == admin_user and event.from_status == Case.Status.OPEN
    untouched.refresh_from_db()
    assert untouched.status == Case.Status.OPEN


def test_close_cases_without_a_reason_closes_nothing(admin_client):
    case = CaseFactory()
    response = act(admin_client, Case, "close_cases", [case], closing_reason="")
    assert "Choose a closing reason next to the action." in page_messages(response)
    case.refresh_from_db()
    assert case.status == Case.Status.OPEN
    assert not case.events.exists()


def test_add_to_list_puts_cases_on_a_draft_list(admin_client, admin_user):
    draft = HandoverListFactory()
    cases = [CaseFactory(), CaseFactory()]
    response = act(admin_client, Case, "add_to_list", cases, handover_list=str(draft.pk))

    assert f"Added 2 cases to {draft.reference}." in page_messages(response)
    entries = list(draft.entries.order_by("position"))
    assert [e.position for e in entries] == [1, 2]
    assert {e.case_id for e in entries} == {c.pk for c in cases}
    for case in cases:
        case.refresh_from_db()
        assert case.status == Case.Status.ON_LIST
        assert case.events.filter(kind=CaseEvent.Kind.ADDED_TO_LIST, actor=admin_user).exists()

    again = act(admin_client, Case, "add_to_list", cases, handover_list=str(draft.pk))
    assert f"Added 0 cases to {draft.reference}; 2 already on it." in page_messages(again)
    assert draft.entries.count() == 2


def test_add_to_list_offers_only_draft_lists(admin_client, exchange):
    page = admin_client.get(changelist(Case)).content.decode()
    options = re.search(r'<select name="handover_list".*?</select>', page, re.S)
    assert options is not None
    assert exchange["draft"].reference in options.group(0)
    assert exchange["list"].reference not in options.group(0)


def test_record_outcome_records_a_reply_and_clears_flags(admin_client, admin_user, exchange):
    entries = list(exchange["list"].entries.filter(reply_state=ListEntry.ReplyState.AWAITING))
    assert Flag.objects.filter(entry__in=entries, resolved_at__isnull=True).count() == 3

    response = act(admin_client, ListEntry, "record_outcome", entries, outcome=Outcome.NOT_FOUND,
                   received_on=str(REPLIED_ON))

    assert f"{exchange['list'].reference}: reply recorded for 3 entries; 3 flags cleared." in (
        page_messages(response))
    reply = Reply.objects.exclude(pk=exchange["reply"].pk).get()
    assert reply.recorded_by == admin_user and reply.received_on == REPLIED_ON
    assert reply.outcomes.count() == 3
    for entry in entries:
        entry.refresh_from_db()
        assert entry.reply_state == ListEntry.ReplyState.ANSWERED
        assert entry.last_outcome == Outcome.NOT_FOUND
    assert not Flag.objects.filter(entry__in=entries, kind=Flag.Kind.OVERDUE, resolved_at__isnull=True).exists()
    exchange["list"].refresh_from_db()
    assert exchange["list"].status == HandoverList.Status.ANSWERED


def test_record_outcome_says_what_it_did_in_ukrainian_with_its_plural_forms(admin_client, exchange):
    admin_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "uk"
    one = act(admin_client, ListEntry, "record_outcome", [exchange["overdue"]], outcome=Outcome.NOT_FOUND,
              received_on=str(REPLIED_ON))
    rest = list(exchange["list"].entries.filter(reply_state=ListEntry.ReplyState.AWAITING))
    two = act(admin_client, ListEntry, "record_outcome", rest, outcome=Outcome.NOT_FOUND, received_on=str(REPLIED_ON))

    reference = exchange["list"].reference
    assert f"{reference}: відповідь зареєстровано для 1 запису; Знято 1 позначку." in page_messages(one)
    assert f"{reference}: відповідь зареєстровано для 2 записів; Знято 2 позначки." in page_messages(two)


def test_record_outcome_without_an_outcome_records_nothing(admin_client, exchange):
    response = act(admin_client, ListEntry, "record_outcome", [exchange["overdue"]], outcome="")
    assert "Choose the outcome next to the action." in page_messages(response)
    assert Reply.objects.count() == 1


def test_hand_over_a_draft_list(admin_client, admin_user):
    draft = HandoverListFactory()
    case = CaseFactory()
    act(admin_client, Case, "add_to_list", [case], handover_list=str(draft.pk))

    response = act(admin_client, HandoverList, "hand_over", [draft], on_date=str(HANDED_OVER), due_date=str(DUE))

    assert f"{draft.reference} handed over." in page_messages(response)
    draft.refresh_from_db()
    assert draft.status == HandoverList.Status.HANDED_OVER
    assert (draft.handed_over_on, draft.response_due_on) == (HANDED_OVER, DUE)
    assert draft.entries.get().reply_state == ListEntry.ReplyState.AWAITING
    case.refresh_from_db()
    assert case.status == Case.Status.AWAITING_REPLY
    assert case.events.filter(kind=CaseEvent.Kind.LIST_HANDED_OVER, actor=admin_user).exists()


def test_hand_over_needs_a_date(admin_client):
    draft = HandoverListFactory()
    response = act(admin_client, HandoverList, "hand_over", [draft])
    assert "Give the hand-over date next to the action." in page_messages(response)
    draft.refresh_from_db()
    assert draft.status == HandoverList.Status.DRAFT


def test_hand_over_of_an_empty_list_is_refused_with_the_reason(admin_client):
    draft = HandoverListFactory()
    response = act(admin_client, HandoverList, "hand_over", [draft], on_date=str(HANDED_OVER))
    assert f"entries: {draft.reference} has no children on it" in page_messages(response)
    draft.refresh_from_db()
    assert draft.status == HandoverList.Status.DRAFT


def test_dismiss_flags(admin_client, admin_user, exchange):
    flag, manual = exchange["flag"], exchange["manual"]
    response = act(admin_client, Flag, "dismiss", [flag, manual])

    assert "Dismissed 2 flags." in page_messages(response)
    for dismissed in (flag, manual):
        dismissed.refresh_from_db()
        assert dismissed.resolution == Flag.Resolution.DISMISSED
        assert dismissed.resolved_by == admin_user and dismissed.resolved_at is not None
    assert flag.case.events.filter(kind=CaseEvent.Kind.FLAG_RESOLVED, actor=admin_user).count() == 2


def test_verifying_a_claim_on_the_reply_page(admin_client, admin_user, exchange):
    reply = exchange["reply"]
    data = change_form_data(admin_client.get(change_url(reply)))
    data.update({"outcomes-0-verification": "disputed", "outcomes-0-verification_note": "Photo of another child",
                 "outcomes-0-follow_up_due_on": str(timezone.localdate())})

    response = admin_client.post(change_url(reply), data)

    assert response.status_code == 302
    outcome = reply.outcomes.get()
    assert (outcome.verification, outcome.verified_by) == ("disputed", admin_user)
    assert outcome.verification_note == "Photo of another child"
    # A dispute is said as one on the timeline, with the flag it raises; not as a verification.
    event = exchange["answered"].case.events.get(kind=CaseEvent.Kind.CLAIM_DISPUTED)
    assert event.actor == admin_user and "Photo of another child" in event.message
    assert event.message.startswith("Claim disputed")


def test_raise_a_flag_by_hand(admin_client, admin_user):
    case = CaseFactory()
    response = admin_client.post(add_url(Flag), {"case": case.pk, "note": "Seen in a video from Crimea"},
                                 follow=True)
    flag = Flag.objects.get()
    assert (flag.kind, flag.case, flag.raised_by) == (Flag.Kind.MANUAL, case, admin_user)
    assert case.events.filter(kind=CaseEvent.Kind.FLAG_RAISED).exists()
    assert any(str(flag) in message for message in page_messages(response))


def test_a_flag_raised_by_hand_must_say_why(admin_client):
    case = CaseFactory()
    response = admin_client.post(add_url(Flag), {"case": case.pk, "note": "  "})
    assert response.status_code == 200
    assert "note" in response.context["adminform"].form.errors
    assert not Flag.objects.exists()


# ---------------------------------------------------------------------------------------------
# The case page: the status moves only along its road
# ---------------------------------------------------------------------------------------------


def test_case_page_offers_only_the_allowed_next_steps(admin_client):
    case = CaseFactory()
    form = admin_client.get(change_url(case)).context["adminform"].form
    offered = {value for value, _ in form.fields["next_status"].choices if value}
    assert offered == {Case.Status.ON_LIST, Case.Status.CLOSED}


def test_case_page_moves_the_status_and_writes_the_timeline(admin_client, admin_user, exchange):
    case = exchange["answered"].case  # a reply claimed "located": the case is being verified
    assert case.status == Case.Status.VERIFYING
    data = change_form_data(admin_client.get(change_url(case)))
    data.update(next_status=Case.Status.RETURN_IN_PROGRESS, transition_note="Seen by the consul")

    response = admin_client.post(change_url(case), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    case.refresh_from_db()
    assert case.status == Case.Status.RETURN_IN_PROGRESS
    event = case.events.first()
    assert (event.kind, event.from_status, event.to_status) == (
        CaseEvent.Kind.STATUS_CHANGED, Case.Status.VERIFYING, Case.Status.RETURN_IN_PROGRESS)
    assert event.actor == admin_user and event.message == "Seen by the consul"


def test_case_timeline_names_each_event_in_local_time(admin_client, admin_user, settings):
    # Each timeline row is headed by its event; the time there is the one in the row, not UTC.
    settings.TIME_ZONE = "Europe/Kyiv"
    case = case_open(child=ChildFactory(), actor=admin_user)
    case.events.update(happened_at=datetime.datetime(2025, 6, 2, 7, 30, tzinfo=datetime.UTC))

    page = admin_client.get(change_url(case)).content.decode()

    assert "Case opened · 02.06.2025 10:30" in page
    assert "02.06.2025 07:30" not in page


def test_case_page_closes_with_a_reason_only(admin_client, admin_user):
    case = CaseFactory()
    data = change_form_data(admin_client.get(change_url(case)))
    data.update(next_status=Case.Status.CLOSED)

    refused = admin_client.post(change_url(case), data)

    assert refused.status_code == 200
    assert "next_closing_reason" in refused.context["adminform"].form.errors
    case.refresh_from_db()
    assert case.status == Case.Status.OPEN

    data.update(next_closing_reason=Case.ClosingReason.DUPLICATE)
    assert admin_client.post(change_url(case), data).status_code == 302
    case.refresh_from_db()
    assert (case.status, case.closing_reason) == (Case.Status.CLOSED, Case.ClosingReason.DUPLICATE)
    assert case.events.get(to_status=Case.Status.CLOSED).actor == admin_user


def test_case_page_refuses_a_step_off_the_road(admin_client):
    case = CaseFactory()
    data = change_form_data(admin_client.get(change_url(case)))
    data.update(next_status=Case.Status.RETURNED)

    response = admin_client.post(change_url(case), data)

    assert response.status_code == 200
    assert "next_status" in response.context["adminform"].form.errors
    case.refresh_from_db()
    assert case.status == Case.Status.OPEN
    assert not case.events.filter(kind=CaseEvent.Kind.STATUS_CHANGED).exists()


def test_case_page_saved_without_a_move_keeps_the_status(admin_client):
    case = CaseFactory()
    data = change_form_data(admin_client.get(change_url(case)))
    data.update(priority=Case.Priority.URGENT)

    assert admin_client.post(change_url(case), data).status_code == 302
    case.refresh_from_db()
    assert (case.status, case.priority) == (Case.Status.OPEN, Case.Priority.URGENT)
    assert not case.events.filter(kind=CaseEvent.Kind.STATUS_CHANGED).exists()


def test_adding_a_case_opens_it_with_a_timeline(admin_client, admin_user):
    child = ChildFactory()
    data = change_form_data(admin_client.get(add_url(Case)))
    data.update(child=child.pk, priority=Case.Priority.HIGH)
    response = admin_client.post(add_url(Case), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    case = child.cases.get()
    assert (case.status, case.priority) == (Case.Status.OPEN, Case.Priority.HIGH)
    assert case.events.get().actor == admin_user


def test_a_second_live_case_for_a_child_is_refused(admin_client):
    case = CaseFactory()
    data = change_form_data(admin_client.get(add_url(Case)))
    data.update(child=case.child.pk, priority=Case.Priority.NORMAL)

    response = admin_client.post(add_url(Case), data)

    assert response.status_code == 200
    assert "child" in response.context["adminform"].form.errors
    assert case.child.cases.count() == 1


def test_adding_a_child_opens_their_case(admin_client, admin_user):
    response = admin_client.post(add_url(Child), {
        "family_name": "Ткаченко", "given_name": "Дарина", "patronymic": "",
        "birth_date": "2012-03-01", "birth_date_precision": "month", "sex": "F",
        "circumstances": "deported", "category": "unknown",
        "cases-TOTAL_FORMS": "0", "cases-INITIAL_FORMS": "0",
        "alias_rows-TOTAL_FORMS": "1", "alias_rows-INITIAL_FORMS": "0",
        "alias_rows-0-name": "Ткаченко Дарья Фёдоровна", "alias_rows-0-script": "",
        "alias_rows-0-source": "Reply No. 1",
    })
    assert response.status_code == 302, response.context["adminform"].form.errors
    child = Child.objects.get(family_name="Ткаченко")
    assert child.family_name_latin == "Tkachenko"
    assert child.cases.get().events.get().actor == admin_user
    assert child.aliases == ["Ткаченко Дарья Фёдоровна"]
    assert list(child.alias_rows.values_list("script", "source")) == [("ru", "Reply No. 1")]


# ---------------------------------------------------------------------------------------------
# Reads are logged; nothing is deleted
# ---------------------------------------------------------------------------------------------


def test_viewing_a_child_is_logged(admin_client, admin_user):
    child = ChildFactory()
    assert admin_client.get(change_url(child)).status_code == 200
    access = RecordAccess.objects.get()
    assert (access.child, access.user, access.channel) == (child, admin_user, RecordAccess.Channel.ADMIN)
    assert access.path == change_url(child)


def test_viewing_a_case_is_logged_as_a_read_of_the_child(admin_client, admin_user):
    case = CaseFactory()
    admin_client.get(change_url(case))
    access = RecordAccess.objects.get()
    assert (access.child, access.user, access.channel) == (case.child, admin_user, RecordAccess.Channel.ADMIN)


def test_a_missing_child_is_not_logged(admin_client):
    response = admin_client.get(reverse("admin:cases_child_change", args=[999_999]))
    assert response.status_code == 302  # back to the start page, "does not exist"
    assert not RecordAccess.objects.exists()


def test_a_refused_read_is_not_logged(client, exchange):
    # A staff member without any permission on children sees nothing of the record.
    client.force_login(UserFactory(username="no.rights"))
    child = exchange["overdue"].child
    assert client.get(change_url(child)).status_code == 403
    assert client.get(change_url(exchange["overdue"].case)).status_code == 403
    assert not RecordAccess.objects.exists()


def test_listing_children_is_not_logged_as_reading_each(admin_client):
    ChildFactory.create_batch(3)
    admin_client.get(changelist(Child))
    assert not RecordAccess.objects.exists()


def test_access_log_cannot_be_edited(admin_client):
    child = ChildFactory()
    admin_client.get(change_url(child))
    access = RecordAccess.objects.get()
    response = admin_client.post(change_url(access), {"channel": "api", "path": "/elsewhere"})
    assert response.status_code == 403
    access.refresh_from_db()
    assert access.channel == RecordAccess.Channel.ADMIN


@pytest.mark.parametrize("model", [Child, Case, HandoverList, ListEntry, Reply, Flag, RecordAccess],
                         ids=lambda m: m.__name__)
def test_nothing_about_a_child_can_be_deleted(admin_client, exchange, model):
    admin_client.get(change_url(exchange["overdue"].child))
    obj = model.objects.first()
    delete = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_delete", args=[obj.pk])

    assert admin_client.get(delete).status_code == 403
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    response = admin_client.get(changelist(model))
    assert "delete_selected" not in dict(response.context["cl"].model_admin.get_actions(response.wsgi_request))
    assert "delete_selected" not in response.content.decode()
    refused = act(admin_client, model, "delete_selected", [obj], post="yes")
    assert model.objects.filter(pk=obj.pk).exists()
    assert refused.status_code == 200
