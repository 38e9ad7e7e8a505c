"""Recording a reply: the entry, the case and the flags move together, or nothing moves."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from cases.models import Case, CaseEvent
from tests.factories import CaseFactory, HandoverListFactory
from tracker.models import Flag, HandoverList, ListEntry, Outcome, Reply, ReplyOutcome, Verification
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


def state(handover_list: HandoverList) -> tuple:
    return (
        Reply.objects.count(),
        ReplyOutcome.objects.count(),
        list(handover_list.entries.order_by("position").values_list("reply_state", "last_outcome")),
        list(Case.objects.order_by("pk").values_list("status", flat=True)),
        Flag.objects.filter(resolved_at__isnull=True).count(),
        CaseEvent.objects.count(),
        HandoverList.objects.get(pk=handover_list.pk).status,
    )


def test_reply_updates_entry_case_flags_and_list(make_handed_over_list, case_worker):
    handover_list = make_handed_over_list(3)
    sweep_deadlines(today=RECEIVED)
    first, second, third = handover_list.entries.order_by("position")

    result = reply_record(handover_list=handover_list, received_on=RECEIVED, actor=case_worker, reference="No. 7",
                          outcomes=[OutcomeInput(position=1, outcome=Outcome.LOCATED, reported_location="Rostov"),
                                    OutcomeInput(position=2, outcome=Outcome.NOT_FOUND)])

    first.refresh_from_db()
    assert (first.reply_state, first.last_outcome, first.answered_on) == ("answered", "located", RECEIVED)
    assert Case.objects.get(pk=first.case_id).status == Case.Status.VERIFYING, "a claim of 'located' is checked"
    assert Case.objects.get(pk=second.case_id).status == Case.Status.REPLY_RECEIVED
    assert Case.objects.get(pk=third.case_id).status == Case.Status.AWAITING_REPLY
    assert result.flags_resolved == 2 and result.cases_moved == 2
    assert list(Flag.objects.filter(resolved_at__isnull=True).values_list("entry", flat=True)) == [third.pk]
    handover_list.refresh_from_db()
    assert handover_list.status == HandoverList.Status.PARTIALLY_ANSWERED
    event = CaseEvent.objects.get(case_id=first.case_id, kind=CaseEvent.Kind.REPLY_RECORDED)
    assert event.actor == case_worker and "Located" in event.message

    reply_record(handover_list=handover_list, received_on=RECEIVED, actor=case_worker,
                 outcomes=[OutcomeInput(entry_id=third.pk, outcome=Outcome.NOW_ADULT)])
    handover_list.refresh_from_db()
    assert handover_list.status == HandoverList.Status.ANSWERED


@pytest.mark.parametrize(
    ("outcomes", "received_on", "message"),
    [
        ([OutcomeInput(position=99, outcome="located")], RECEIVED, "number 99 is not on list"),
        ([OutcomeInput(position=1, outcome="found_maybe")], RECEIVED, "“found_maybe” is not a known outcome"),
        ([OutcomeInput(position=1, outcome="located")], timezone.localdate() + datetime.timedelta(days=2),
         "in the future"),
        ([OutcomeInput(position=1, outcome="located")], datetime.date(2025, 5, 1), "before the list was handed over"),
        ([OutcomeInput(position=1, outcome="located"), OutcomeInput(position=1, outcome="deceased")], RECEIVED,
         "answered twice"),
        ([], RECEIVED, "at least one"),
    ],
)
def test_a_bad_reply_changes_nothing_and_says_what_was_wrong(make_handed_over_list, case_worker, outcomes,
                                                             received_on, message):
    handover_list = make_handed_over_list(2)
    sweep_deadlines(today=RECEIVED)
    good = OutcomeInput(position=2, outcome=Outcome.LOCATED)
    before = state(handover_list)

    with pytest.raises(ExchangeError, match=message):
        reply_record(handover_list=handover_list, received_on=received_on, actor=case_worker,
                     outcomes=[good, *outcomes] if outcomes else [])

    assert state(handover_list) == before


def test_an_entry_of_another_list_is_refused(make_handed_over_list, case_worker):
    ours, theirs = make_handed_over_list(1), make_handed_over_list(1)
    stranger = theirs.entries.get()
    with pytest.raises(ExchangeError, match=f"entry {stranger.pk} is not on list {ours.reference}"):
        reply_record(handover_list=ours, received_on=RECEIVED, actor=case_worker,
                     outcomes=[OutcomeInput(entry_id=stranger.pk, outcome=Outcome.LOCATED)])
    assert not Reply.objects.exists()


def test_a_draft_list_cannot_be_answered(case_worker):
    draft = HandoverListFactory()
    list_add_cases(handover_list=draft, cases=[CaseFactory()], actor=case_worker)
    with pytest.raises(ExchangeError, match="has not been handed over"):
        reply_record(handover_list=draft, received_on=RECEIVED, actor=case_worker,
                     outcomes=[OutcomeInput(position=1, outcome=Outcome.LOCATED)])


def test_a_later_reply_does_not_pull_a_case_back(make_handed_over_list, case_worker):
    first_list = make_handed_over_list(1)
    case = first_list.entries.get().case
    reply_record(handover_list=first_list, received_on=RECEIVED, actor=case_worker,
                 outcomes=[OutcomeInput(position=1, outcome=Outcome.LOCATED)])
    second_list = HandoverListFactory()
    list_add_cases(handover_list=second_list, cases=[Case.objects.get(pk=case.pk)], actor=case_worker)
    list_hand_over(handover_list=second_list, handed_over_on=RECEIVED, response_due_on=None, actor=case_worker)
    reply_record(handover_list=second_list, received_on=RECEIVED, actor=case_worker,
                 outcomes=[OutcomeInput(position=1, outcome=Outcome.NO_INFORMATION)])
    case.refresh_from_db()
    assert case.status == Case.Status.VERIFYING
    assert case.events.filter(kind=CaseEvent.Kind.REPLY_RECORDED).count() == 2


def test_list_building_numbers_entries_and_moves_cases(case_worker):
    draft = HandoverListFactory()
    cases = [CaseFactory() for _ in range(3)]
    assert list_add_cases(handover_list=draft, cases=cases, actor=case_worker) == 3
    assert list_add_cases(handover_list=draft, cases=cases[:1], actor=case_worker) == 0, "already on the list"
    assert list(draft.entries.values_list("position", flat=True)) == [1, 2, 3]
    assert set(Case.objects.values_list("status", flat=True)) == {Case.Status.ON_LIST}

    list_hand_over(handover_list=draft, handed_over_on=datetime.date(2025, 6, 2),
                   response_due_on=datetime.date(2025, 7, 2), actor=case_worker)
    assert set(Case.objects.values_list("status", flat=True)) == {Case.Status.AWAITING_REPLY}
    assert set(draft.entries.values_list("reply_state", "due_on")) == {("awaiting", datetime.date(2025, 7, 2))}
    assert all(e.age_at_listing is not None for e in ListEntry.objects.all())
    with pytest.raises(ExchangeError, match="only a draft list"):
        list_add_cases(handover_list=draft, cases=[CaseFactory()], actor=case_worker)


def test_hand_over_refuses_a_due_date_before_the_hand_over(case_worker):
    draft = HandoverListFactory()
    list_add_cases(handover_list=draft, cases=[CaseFactory()], actor=case_worker)
    with pytest.raises(ExchangeError, match="response_due_on"):
        list_hand_over(handover_list=draft, handed_over_on=datetime.date(2025, 6, 2),
                       response_due_on=datetime.date(2025, 6, 1), actor=case_worker)
    draft.refresh_from_db()
    assert draft.status == HandoverList.Status.DRAFT


def test_verification_is_kept_apart_from_the_claim(make_handed_over_list, case_worker):
    handover_list = make_handed_over_list(1)
    result = reply_record(handover_list=handover_list, received_on=RECEIVED, actor=case_worker,
                          outcomes=[OutcomeInput(position=1, outcome=Outcome.RETURNED)])
    outcome = result.outcomes[0]
    outcome_verify(outcome=outcome, verification=Verification.DISPUTED, actor=case_worker,
                   note="Mother says the child is still held", follow_up_due_on=timezone.localdate())
    outcome.refresh_from_db()
    assert (outcome.outcome, outcome.verification, outcome.verified_by) == ("returned", "disputed", case_worker)
    assert not outcome.entry.case.events.filter(kind=CaseEvent.Kind.REPLY_VERIFIED).exists()
    line = outcome.entry.case.events.get(kind=CaseEvent.Kind.CLAIM_DISPUTED)
    assert line.message.startswith("Claim disputed: “Returned”")


@pytest.mark.parametrize("outcome", Outcome.values)
def test_every_outcome_can_be_recorded_and_stands_on_the_entry(make_handed_over_list, case_worker, outcome):
    handover_list = make_handed_over_list(1)
    reply_record(handover_list=handover_list, received_on=RECEIVED, actor=case_worker,
                 outcomes=[OutcomeInput(position=1, outcome=outcome)])
    assert handover_list.entries.get().last_outcome == outcome
