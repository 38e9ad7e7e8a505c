"""A register's new children written in bulk (`list_add_new_children`) leave the very records a case
worker's road leaves (`children_create_many`, then `list_add_cases`): the same children, match
keys, cases, timelines, entries and history rows, line for line. Every name here is synthetic."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any, cast

import pytest
from django.dispatch import receiver

from cases.models import Case, CaseEvent, Child, ChildMatchKey
from cases.services import children_create_many
from cases.signals import case_status_changed
from tests.conftest import DUE, HANDED_OVER
from tests.factories import HandoverListFactory, UserFactory
from tracker.models import HandoverList, ListEntry
from tracker.services.exchange import ExchangeError, HandOver, list_add_cases, list_add_new_children

pytestmark = pytest.mark.django_db

CHILDREN: list[dict[str, Any]] = [
    {"family_name": "Зелінчук", "given_name": "Мирослава", "patronymic": "Тарасівна",
     "birth_date": datetime.date(2012, 3, 9), "birth_date_precision": "day", "sex": "F",
     "home_settlement": "Оріхів", "home_oblast": "chernihiv", "circumstances": "forcibly_transferred"},
    {"family_name": "Дробиш", "given_name": "Ярема", "birth_date": datetime.date(2015, 1, 1),
     "birth_date_precision": "year", "sex": "M", "category": "orphan"},
    {"family_name": "Кулинич", "given_name": "Олесь", "patronymic": "Ігорович", "family_name_latin": "Kulynych",
     "last_known_location": "Таганрог", "last_known_on": datetime.date(2024, 5, 20), "icrc_reference": "IC-77"},
    {"family_name": "Ничипорук", "given_name": "Стефанія", "birth_date": datetime.date(2009, 11, 1),
     "birth_date_precision": "month"},
]
POSITIONS = [4, 7, 9, 12]
AS_HANDED_OVER = [{"family_name": f"РЯДОК {index}"} for index in range(len(CHILDREN))]


def _records(handover_list: HandoverList) -> list[dict[str, Any]]:
    """Everything written for each child of the list, with keys, times and the list's reference left out."""
    reference = handover_list.reference

    def said(text: str) -> str:
        return text.replace(reference, "REF")

    written = []
    for entry in handover_list.entries.order_by("position"):
        child, case = Child.objects.get(pk=entry.child_id), Case.objects.get(pk=entry.case_id)
        written.append({
            "child": {field.attname: getattr(child, field.attname) for field in Child._meta.concrete_fields
                      if field.attname not in ("id", "created_at", "updated_at")},
            "child history": list(Child.history.filter(id=child.pk).order_by("history_id").values_list(
                "history_type", "history_change_reason", "search_names", "family_name_latin")),
            "keys": sorted(ChildMatchKey.objects.filter(child=child).values_list("key", flat=True)),
            "case": (case.status, case.priority, case.opened_on, case.assignee_id, case.closed_on),
            "case history": [(kind, said(reason), status) for kind, reason, status in Case.history.filter(
                id=case.pk).order_by("history_id").values_list("history_type", "history_change_reason", "status")],
            "timeline": [(kind, from_status, to_status, said(message), {k: said(v) for k, v in data.items()}, actor)
                         for kind, from_status, to_status, message, data, actor in CaseEvent.objects.filter(
                             case=case).order_by("id").values_list("kind", "from_status", "to_status", "message",
                                                                   "data", "actor_id")],
            "entry": (entry.position, entry.reply_state, entry.due_on, entry.age_at_listing, entry.as_handed_over),
            "entry history": [(kind, said(reason), state) for kind, reason, state in ListEntry.history.filter(
                id=entry.pk).order_by("history_id").values_list("history_type", "history_change_reason",
                                                                "reply_state")],
        })
    return written


@pytest.fixture
def moves() -> Iterator[list[tuple[str, str, str]]]:
    """Each status change the signal tells of, by the child's family name."""
    heard: list[tuple[str, str, str]] = []

    @receiver(case_status_changed, weak=False)
    def hear(sender: Any, changes: list[tuple[Case, str, str]], **kwargs: Any) -> None:
        names = dict(Child.objects.filter(pk__in=[case.child_id for case, _, _ in changes]).values_list(
            "pk", "family_name"))
        heard.extend((names[case.child_id], before, after) for case, before, after in changes)

    yield heard
    case_status_changed.disconnect(hear)


@pytest.mark.parametrize("handed_over", [True, False], ids=["handed over", "draft"])
def test_new_children_listed_in_bulk_leave_the_records_of_a_case_workers_road(
        moves: list[tuple[str, str, str]], handed_over: bool) -> None:
    worker = UserFactory(username="bulk-writer")
    handing_over = HandOver(HANDED_OVER, DUE) if handed_over else None
    road, bulk = HandoverListFactory(reference="ROAD-1"), HandoverListFactory(reference="BULK-1")

    cases = children_create_many(children=[Child(**fields) for fields in CHILDREN], actor=worker, note="Added here")
    list_add_cases(handover_list=road, cases=cases, positions=POSITIONS, actor=worker, handing_over=handing_over,
                   handed_over_as=AS_HANDED_OVER)
    heard_on_road = list(moves)
    moves.clear()
    list_add_new_children(handover_list=bulk, children=CHILDREN, positions=POSITIONS, actor=worker,
                          note="Added here", handing_over=handing_over, handed_over_as=AS_HANDED_OVER)

    expected, written = _records(road), _records(bulk)
    assert len(written) == len(CHILDREN)
    for want, got in zip(expected, written, strict=True):
        assert got == want
    assert moves == heard_on_road
    final = Case.Status.AWAITING_REPLY if handed_over else Case.Status.ON_LIST
    assert [after for _, _, after in moves] == [final] * len(CHILDREN)


def test_a_list_already_handed_over_takes_no_new_children() -> None:
    handed = HandoverListFactory(reference="SHUT-1", status=HandoverList.Status.HANDED_OVER,
                                 handed_over_on=HANDED_OVER)
    with pytest.raises(ExchangeError, match="only a draft list"):
        list_add_new_children(handover_list=handed, children=CHILDREN[:1], positions=[1], actor=None, note="x")
    assert not Child.objects.filter(family_name=CHILDREN[0]["family_name"]).exists()


def test_one_number_per_child_or_nothing_is_written() -> None:
    draft = HandoverListFactory(reference="SHORT-1")
    with pytest.raises(ExchangeError) as refused:
        list_add_new_children(handover_list=draft, children=CHILDREN, positions=[1], actor=None, note="x")
    assert refused.value.problems[0][0] == "positions"
    assert not draft.entries.exists() and not Child.objects.exists()


def test_translated_texts_given_lazily_are_written_as_their_text() -> None:
    from django.utils.translation import gettext_lazy

    from cases.services import StatusStep, cases_open_listed, children_insert

    [child_id] = children_insert(children=CHILDREN[:1], actor=None, note="x")
    # Typed as texts, and given as Django code gives them: translations not yet made.
    added, opened = cast(str, gettext_lazy("Added to a list")), cast(str, gettext_lazy("Opened"))
    step = StatusStep(Case.Status.ON_LIST, CaseEvent.Kind.ADDED_TO_LIST, added)
    [case_id] = cases_open_listed(child_ids=[child_id], steps=[[step]], actor=None, note=opened)
    assert list(CaseEvent.objects.filter(case_id=case_id).order_by("pk").values_list("message", flat=True)) == [
        "Opened", "Added to a list"]
