"""Query budgets of the write services: each costs the same statements for a few children as for many.

A per-row query in a write path is the most expensive bug this product can have at scale (a
10,000-row reply would be tens of thousands of round trips), so each service is run at two sizes
against the real database and its statements counted. The sizes are small to keep the suite fast;
what is checked is that the count does not move with them, and stays under a stated ceiling.
Rows written with COPY (timeline lines, new records) are not in Django's count; there is one COPY
per table a call writes, whatever the number of rows.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cases.models import Case, CaseEvent, Child
from cases.services import StatusStep, cases_move, child_merge
from tests.conftest import DUE, HANDED_OVER
from tests.factories import CaseFactory, ChildFactory, HandoverListFactory, OrganisationFactory
from tracker.models import Flag, HandoverList, ListEntry, OutboxEvent, Outcome, WebhookEndpoint
from tracker.services.exchange import OutcomeInput, list_add_cases, list_hand_over, reply_record
from tracker.services.flags import sweep_deadlines
from tracker.services.imports import import_batch_create, import_batch_run, import_batch_start, import_batch_validate

pytestmark = pytest.mark.django_db
SMALL, LARGE = 4, 40
RECEIVED = datetime.date(2025, 8, 20)


@pytest.fixture(autouse=True)
def partner_listening() -> None:
    """A partner subscribed to every event, so that the outbox's writes are part of each budget."""
    partner = OrganisationFactory(name="Tracing partner", kind="partner")
    WebhookEndpoint.objects.create(organisation=partner, url="https://partner.example.org/hook", secret="s" * 32,
                                   events=list(WebhookEndpoint.Event.values))


def statements(action: Callable[[], Any]) -> int:
    with CaptureQueriesContext(connection) as captured:
        action()
    return len(captured.captured_queries)


def draft_with(size: int) -> tuple[HandoverList, list[Case]]:
    return HandoverListFactory(), [CaseFactory() for _ in range(size)]


def handed_over(size: int, actor: Any) -> HandoverList:
    handover_list, cases = draft_with(size)
    list_add_cases(handover_list=handover_list, cases=cases, actor=actor)
    return list_hand_over(handover_list=handover_list, handed_over_on=HANDED_OVER, response_due_on=DUE, actor=actor)


def test_adding_cases_to_a_list_costs_the_same_for_few_or_many(case_worker):
    small, large = draft_with(SMALL), draft_with(LARGE)
    counts = [statements(partial(list_add_cases, handover_list=made[0], cases=made[1], actor=case_worker))
              for made in (small, large)]
    assert counts[0] == counts[1] <= 16, counts
    assert ListEntry.objects.filter(handover_list=large[0]).count() == LARGE


def test_handing_over_a_list_costs_the_same_for_few_or_many(case_worker):
    lists = []
    for size in (SMALL, LARGE):
        handover_list, cases = draft_with(size)
        list_add_cases(handover_list=handover_list, cases=cases, actor=case_worker)
        lists.append(handover_list)
    counts = [statements(partial(list_hand_over, handover_list=h, handed_over_on=HANDED_OVER, response_due_on=DUE,
                                          actor=case_worker)) for h in lists]
    assert counts[0] == counts[1] <= 20, counts
    assert set(Case.objects.filter(list_entries__handover_list=lists[1]).values_list("status", flat=True)) == {
        Case.Status.AWAITING_REPLY}


def test_recording_a_reply_costs_the_same_for_few_or_many_children(case_worker):
    lists = [handed_over(size, case_worker) for size in (SMALL, LARGE)]
    sweep_deadlines(today=DUE + datetime.timedelta(days=20))  # every entry overdue: the reply clears the flags
    outcomes = [Outcome.LOCATED, Outcome.NOT_FOUND, Outcome.RETURNED, Outcome.NO_INFORMATION]

    def reply(handover_list: HandoverList) -> None:
        # One case of each list moved on meanwhile: its line is written, its status kept.
        first = handover_list.entries.order_by("position").first()
        assert first is not None
        cases_move(cases=[first.case], steps=lambda case: [StatusStep(Case.Status.CLOSED, message="found by a relative",
                   closing_reason=Case.ClosingReason.OTHER)], actor=case_worker)
        answers = [OutcomeInput(position=position, outcome=outcomes[position % len(outcomes)])
                   for position in handover_list.entries.values_list("position", flat=True)]
        recorded = reply_record(handover_list=handover_list, received_on=RECEIVED, outcomes=answers,
                                actor=case_worker)
        assert recorded.flags_resolved == len(answers)
        assert recorded.cases_moved == len(answers) - 1

    counts = [statements(partial(reply, h)) for h in lists]
    assert counts[0] == counts[1] <= 40, counts
    large = lists[1]
    assert not Flag.objects.filter(entry__handover_list=large, resolved_at__isnull=True).exists()
    assert ListEntry.history.filter(handover_list_id=large.pk, reply_state=ListEntry.ReplyState.ANSWERED).count() \
        == LARGE
    assert CaseEvent.objects.filter(case__list_entries__handover_list=large,
                                    kind=CaseEvent.Kind.REPLY_RECORDED).count() == LARGE
    assert OutboxEvent.objects.filter(event=WebhookEndpoint.Event.REPLY_RECORDED).count() == SMALL + LARGE


def test_a_reply_naming_children_with_further_claims_costs_the_same_for_few_or_many(case_worker):
    lists = [handed_over(size, case_worker) for size in (SMALL, LARGE)]
    named: dict[int, list[OutcomeInput]] = {}
    for handover_list in lists:
        reply_record(handover_list=handover_list, received_on=RECEIVED, actor=case_worker,
                     outcomes=[OutcomeInput(position=entry.position, outcome=Outcome.NOT_FOUND)
                               for entry in handover_list.entries.all()])
        # The second letter names each child (Latin, given name first) instead of numbering it.
        named[handover_list.pk] = [
            OutcomeInput(name=f"{entry.child.given_name_latin} {entry.child.family_name_latin}",
                         outcome=Outcome.LOCATED) for entry in handover_list.entries.select_related("child")]

    def reply(handover_list: HandoverList) -> None:
        recorded = reply_record(handover_list=handover_list, received_on=RECEIVED, actor=case_worker,
                                outcomes=named[handover_list.pk])
        assert len(recorded.further_claims) == len(named[handover_list.pk])

    counts = [statements(partial(reply, h)) for h in lists]
    # The reply's statements, plus one: the list's children read by name.
    assert counts[0] == counts[1] <= 41, counts
    assert set(ListEntry.objects.filter(handover_list=lists[1]).values_list("claim_count", "last_outcome")) == {
        (2, Outcome.LOCATED)}


def test_moving_cases_costs_the_same_for_one_or_many(case_worker):
    groups = [[CaseFactory() for _ in range(size)] for size in (1, LARGE)]
    closing = StatusStep(Case.Status.CLOSED, message="closed in bulk", closing_reason=Case.ClosingReason.OTHER)
    counts = [statements(partial(cases_move, cases=group, steps=lambda case: [closing], actor=case_worker))
              for group in groups]
    assert counts[0] == counts[1] <= 8, counts
    assert Case.history.filter(status=Case.Status.CLOSED).count() == 1 + LARGE


def test_a_merge_costs_the_same_whatever_the_duplicate_carries(case_worker):
    def duplicate_pair(lists: int) -> tuple[Child, Child]:
        kept, duplicate = ChildFactory(), ChildFactory()
        kept_case, old_case = CaseFactory(child=kept), CaseFactory(child=duplicate)
        cases_move(cases=[old_case], steps=lambda case: [StatusStep(Case.Status.CLOSED,
                   closing_reason=Case.ClosingReason.OTHER)], actor=None)
        live = CaseFactory(child=duplicate)
        for index in range(lists):
            handover_list = HandoverListFactory()
            on_it = [live] if index % 2 else [live, kept_case]
            list_add_cases(handover_list=handover_list, cases=on_it, actor=None)
        return kept, duplicate

    pairs = [duplicate_pair(lists) for lists in (2, 12)]
    counts = [statements(partial(child_merge, keep=pair[0], merge=pair[1], actor=case_worker)) for pair in pairs]
    assert counts[0] == counts[1] <= 40, counts
    kept, duplicate = pairs[1]
    assert Case.objects.filter(child=kept).count() == 3
    assert ListEntry.objects.filter(child=kept).count() == 12
    assert ListEntry.objects.filter(child=duplicate, reply_state=ListEntry.ReplyState.WITHDRAWN).count() == 6


def new_name(n: int) -> str:
    """A made-up family name per number, letters only, far from the stored ones."""
    letters = "бвгджзклмнпрстфх"
    return f"Ново{letters[n // len(letters) % len(letters)]}{letters[n % len(letters)]}енко"


def test_importing_a_list_costs_the_same_for_few_or_many_rows(case_worker):
    sender, recipient = OrganisationFactory(name="Ukrainian delegation"), OrganisationFactory(name="Russian delegation")
    stored = [ChildFactory(family_name=f"Калиненко{chr(0x430 + n)}", given_name="Орест") for n in range(LARGE // 2)]

    def file_of(rows: int, stored_share: int) -> bytes:
        lines = ["№;Прізвище;Ім'я;Дата народження"]
        for n in range(rows):
            if n < stored_share:
                child = stored[n]
                lines.append(f"{n + 1};{child.family_name};{child.given_name};{child.birth_date:%d.%m.%Y}")
            else:
                lines.append(f"{n + 1};{new_name(n)};Тарас;{1 + n % 28:02d}.{1 + n % 12:02d}.{2006 + n % 15}")
        return ("\r\n".join(lines) + "\r\n").encode()

    counts = []
    for number, (rows, share) in enumerate(((SMALL, SMALL // 2), (LARGE, LARGE // 2))):
        batch = import_batch_create(kind="list", content=file_of(rows, share), file_name=f"list{number}.csv",
                                    actor=case_worker, sender=sender, recipient=recipient,
                                    reference=f"UA-RU/{number}", handed_over_on=HANDED_OVER, response_due_on=DUE)
        validated = import_batch_validate(batch_id=batch.pk)
        assert validated.status == validated.Status.VALIDATED, validated.errors
        # The second file lists the first one's stored children again, to the same recipient.
        import_batch_start(batch=validated, actor=case_worker, proposed="accept", repeats_confirmed=True)
        counts.append(statements(partial(import_batch_run, batch_id=batch.pk, actor=case_worker)))
    assert counts[0] == counts[1] <= 70, counts
    assert ListEntry.objects.filter(handover_list__reference="UA-RU/1",
                                    reply_state=ListEntry.ReplyState.AWAITING).count() == LARGE


def test_the_sweep_costs_the_same_for_few_or_many_overdue_entries(case_worker):
    counts = []
    for size in (SMALL, LARGE):
        handed_over(size, case_worker)
        counts.append(statements(lambda: sweep_deadlines(today=DUE + datetime.timedelta(days=40))))
    assert counts[0] == counts[1] <= 20, counts
