"""Merging two records of one child, and the match keys the candidate search runs on."""

from __future__ import annotations

import datetime

import pytest

from cases.matching.candidates import backfill_match_keys, find_candidates, possible_duplicates
from cases.matching.engine import PersonRecord
from cases.models import Case, CaseEvent, Child, ChildMatchKey
from cases.services import MergeRefused, child_merge
from tests.conftest import DUE
from tests.factories import CaseFactory, ChildFactory, HandoverListFactory
from tracker.models import Flag, ListEntry
from tracker.services.exchange import list_add_cases, list_hand_over
from tracker.services.flags import sweep_deadlines

pytestmark = pytest.mark.django_db


def pair() -> tuple[Case, Case]:
    kept = CaseFactory(child=ChildFactory(family_name="Гнатюк", given_name="Остап", patronymic="Тарасович", sex="M",
                                          birth_date=datetime.date(2011, 5, 4), home_settlement=""))
    duplicate = CaseFactory(child=ChildFactory(family_name="Гнатюх", given_name="Ostap", patronymic="", sex="M",
                                               birth_date=datetime.date(2011, 5, 4), home_settlement="Херсон",
                                               aliases=["Гнатюк Остап Тарасович"], icrc_reference="ICRC-SYN-7"))
    return kept, duplicate


def hand_over(*cases: Case) -> None:
    handover_list = HandoverListFactory()
    list_add_cases(handover_list=handover_list, cases=list(cases), actor=None)
    list_hand_over(handover_list=handover_list, handed_over_on=datetime.date(2025, 6, 2), response_due_on=DUE,
                   actor=None)


def test_the_engine_finds_the_duplicate_and_a_merge_keeps_both_records_history(case_worker):
    kept_case, duplicate_case = pair()
    kept, duplicate = kept_case.child, duplicate_case.child
    hand_over(duplicate_case)
    assert [c.child for c in possible_duplicates(kept)] == [duplicate]

    child_merge(keep=kept, merge=duplicate, actor=case_worker, note="one birth certificate")

    kept.refresh_from_db()
    duplicate.refresh_from_db()
    assert duplicate.merged_into == kept, "the merged record stays, pointing at the child kept"
    assert Child.objects.filter(pk=duplicate.pk).exists()
    assert kept.aliases == ["Гнатюх Ostap"], "a spelling that folds onto a known one is not repeated"
    assert (kept.home_settlement, kept.icrc_reference) == ("Херсон", "ICRC-SYN-7"), "blanks filled"
    # Both cases now belong to the child kept; the duplicate's live one is closed as a duplicate.
    duplicate_case.refresh_from_db()
    assert set(kept.cases.all()) == {kept_case, duplicate_case}
    assert (duplicate_case.status, duplicate_case.closing_reason) == ("closed", "duplicate")
    assert CaseEvent.objects.filter(case=duplicate_case, kind=CaseEvent.Kind.ADDED_TO_LIST).exists()
    assert CaseEvent.objects.filter(case=kept_case, message__contains="one birth certificate").exists()
    # The list entry moved; the history of both records is kept.
    assert ListEntry.objects.get().child == kept
    assert duplicate.history.count() >= 2 and kept.history.first().history_change_reason.startswith("Child")
    # The merged record is no longer anyone's candidate; the kept one is found by the other spelling.
    assert not ChildMatchKey.objects.filter(child=duplicate).exists()
    found = find_candidates([PersonRecord(family_name="Hnatiukh", given_name="Остап", birth_date="2011-05-04")])[0]
    assert [c.child for c in found] == [kept]
    assert possible_duplicates(kept) == []


def test_both_on_one_list_the_duplicate_entry_is_withdrawn_and_kept(case_worker):
    kept_case, duplicate_case = pair()
    hand_over(kept_case, duplicate_case)
    sweep_deadlines(today=DUE + datetime.timedelta(days=1))
    assert Flag.objects.filter(resolved_at__isnull=True).count() == 2

    child_merge(keep=kept_case.child, merge=duplicate_case.child, actor=case_worker)

    entries = {e.child_id: e for e in ListEntry.objects.all()}
    assert entries[kept_case.child_id].reply_state == ListEntry.ReplyState.AWAITING
    withdrawn = entries[duplicate_case.child_id]
    assert withdrawn.reply_state == ListEntry.ReplyState.WITHDRAWN, "still there, on the merged record"
    assert Flag.objects.get(entry=withdrawn).resolution == Flag.Resolution.WITHDRAWN
    assert Flag.objects.get(entry=entries[kept_case.child_id]).resolved_at is None


def test_a_merge_is_refused_into_itself_or_twice(case_worker):
    kept_case, duplicate_case = pair()
    with pytest.raises(MergeRefused, match="into itself"):
        child_merge(keep=kept_case.child, merge=kept_case.child, actor=case_worker)
    child_merge(keep=kept_case.child, merge=duplicate_case.child, actor=case_worker)
    with pytest.raises(MergeRefused, match="already merged"):
        child_merge(keep=kept_case.child, merge=duplicate_case.child, actor=case_worker)


def test_match_keys_follow_a_renamed_child_and_are_backfilled():
    child = ChildFactory(family_name="Кравець", given_name="Ілля", birth_date=datetime.date(2013, 2, 2))
    assert "n:fkrvts|gilia" in set(child.match_keys.values_list("key", flat=True))

    child.family_name = "Лисенко"
    child.family_name_latin = ""
    child.save()
    keys = set(child.match_keys.values_list("key", flat=True))
    assert "n:fkrvts|gilia" not in keys and "y:flsnk:2013:i" in keys

    ChildMatchKey.objects.all().delete()
    assert backfill_match_keys(Child.objects.all()) == len(keys)
