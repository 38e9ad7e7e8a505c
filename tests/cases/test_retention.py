"""Retention: children whose every case closed long ago are anonymised; the records and counts stay."""

from __future__ import annotations

import datetime
import io

import pytest
from django.core.management import call_command
from django.db.models import Count

from cases.models import Case, CaseEvent, Child, ChildMatchKey
from cases.services import StatusStep, case_add_event, cases_move
from tests.factories import CaseFactory, ChildFactory, HandoverListFactory
from tracker.models import ListEntry, Outcome, ReplyOutcome
from tracker.services.exchange import OutcomeInput, list_add_cases, list_hand_over, reply_record

pytestmark = pytest.mark.django_db
LONG_AGO = datetime.date(2019, 3, 1)


def close(case: Case, on: datetime.date, note: str) -> None:
    cases_move(cases=[case], steps=lambda current: [StatusStep(Case.Status.CLOSED, message=note,
               closing_reason=Case.ClosingReason.REUNIFIED)], actor=None, on=on)


@pytest.fixture
def register() -> dict[str, Case]:
    cases = {name: CaseFactory(child=ChildFactory(family_name=family, given_name="Софія", guardian_name="Мати Олена",
                                                   birth_date=datetime.date(2012, 4, 17), sex="F",
                                                   home_oblast="kherson", icrc_reference="ICRC-77"))
             for name, family in (("old", "Гнатюк"), ("recent", "Савчук"), ("open", "Лисенко"))}
    handover_list = HandoverListFactory()
    list_add_cases(handover_list=handover_list, cases=list(cases.values()), actor=None)
    list_hand_over(handover_list=handover_list, handed_over_on=datetime.date(2018, 6, 2), response_due_on=None,
                   actor=None)
    reply_record(handover_list=handover_list, received_on=datetime.date(2018, 9, 1), actor=None, outcomes=[
        OutcomeInput(position=1, outcome=Outcome.LOCATED, details="Гнатюк Софія, у родині в Ростові",
                     reported_location="Ростов")])
    case_add_event(case=Case.objects.get(pk=cases["old"].pk), kind=CaseEvent.Kind.NOTE, actor=None,
                   message="Дзвінок від матері, Олени Гнатюк")
    close(Case.objects.get(pk=cases["old"].pk), LONG_AGO, "Повернулася до матері Олени Гнатюк")
    close(Case.objects.get(pk=cases["recent"].pk), datetime.date.today(), "Повернулася")
    return cases


def counts() -> tuple[object, ...]:
    return (Child.objects.count(), Case.objects.count(), ListEntry.objects.count(), ReplyOutcome.objects.count(),
            sorted(Case.objects.values_list("status").annotate(n=Count("id"))),
            sorted(Child.objects.values_list("sex", "home_oblast").annotate(n=Count("id"))))


def test_a_child_whose_cases_closed_past_the_retention_period_is_anonymised_everywhere(register, settings):
    settings.TRACKER_RETENTION_DAYS_AFTER_CLOSING = 365
    before = counts()
    out = io.StringIO()
    call_command("anonymise_closed_cases", "--dry-run", stdout=out)
    assert out.getvalue().startswith("1 children are due")
    assert Child.objects.filter(anonymised_at__isnull=False).count() == 0, "a dry run changes nothing"

    call_command("anonymise_closed_cases", stdout=out)
    assert "anonymised 1 children" in out.getvalue()
    child = Child.objects.get(pk=register["old"].child_id)
    assert (child.family_name, child.given_name, child.guardian_name, child.icrc_reference) == (
        "Anonymised", f"#{child.pk}", "", "")
    assert (child.birth_date, child.birth_date_precision, child.sex, child.home_oblast) == (
        datetime.date(2012, 1, 1), "year", "F", "kherson"), "what statistics need stays"
    assert child.anonymised_at is not None
    assert not ChildMatchKey.objects.filter(child=child).exists(), "no search or match finds it any more"

    # The name is gone from every copy: the record's history, the timeline, the reply, the case's note.
    assert not Child.history.filter(id=child.pk, family_name="Гнатюк").exists()
    assert not Child.history.filter(id=child.pk, guardian_name="Мати Олена").exists()
    assert not CaseEvent.objects.filter(case__child=child, message__contains="Гнатюк").exists()
    assert not Case.objects.filter(child=child, closing_note__contains="Гнатюк").exists()
    assert not Case.history.filter(child_id=child.pk, closing_note__contains="Гнатюк").exists()
    outcome = ReplyOutcome.objects.get(entry__child=child)
    assert (outcome.outcome, outcome.details, outcome.reported_location) == (Outcome.LOCATED, "", "")
    assert not ReplyOutcome.history.filter(details__contains="Гнатюк").exists()

    assert counts() == before, "every record stays: counts by status, sex and oblast are unchanged"
    for name in ("recent", "open"):
        assert Child.objects.get(pk=register[name].child_id).guardian_name == "Мати Олена"

    call_command("anonymise_closed_cases", stdout=out)
    assert out.getvalue().endswith("anonymised 0 children whose every case closed before "
                                   f"{datetime.date.today() - datetime.timedelta(days=365)}\n"), "safe to run again"
