"""The demo story on PostgreSQL: one account per role, none a superuser, and timelines on the story's dates."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from cases.models import Case, CaseEvent, ClosingRequest
from tracker.management.commands.seed_demo import DEMO_USERS, ISTANBUL_LIST
from tracker.models import HandoverList
from tracker.roles import ROLES

pytestmark = pytest.mark.django_db


def test_the_demo_has_an_account_per_role_and_the_istanbul_timelines_show_the_story_dates():
    # 100 children on the Istanbul list: enough for the reply to reach its claims of a death.
    call_command("seed_demo", children=100, no_sweep=True, verbosity=0)
    call_command("seed_demo", children=100, no_sweep=True, verbosity=0)  # the second run adds nothing

    users = get_user_model().objects.filter(username__in=[name for name, *_ in DEMO_USERS])
    assert {group.name for user in users for group in user.groups.all()} == set(ROLES)
    assert all(user.is_staff and not user.is_superuser and user.groups.count() == 1 for user in users)

    istanbul = HandoverList.objects.get(reference=ISTANBUL_LIST)
    events = CaseEvent.objects.filter(case__list_entries__handover_list=istanbul)

    def days(kind: str) -> set[datetime.date]:
        return {timezone.localdate(at) for at in events.filter(kind=kind).values_list("happened_at", flat=True)}

    assert days(CaseEvent.Kind.OPENED) == {datetime.date(2025, 5, 12)}
    assert days(CaseEvent.Kind.ADDED_TO_LIST) == {datetime.date(2025, 5, 28)}
    assert days(CaseEvent.Kind.LIST_HANDED_OVER) == {datetime.date(2025, 6, 2)}
    assert days(CaseEvent.Kind.REPLY_RECORDED) == {datetime.date(2025, 7, 28)}
    assert set(Case.objects.filter(list_entries__handover_list=istanbul).values_list("opened_on", flat=True)) == {
        datetime.date(2025, 5, 12)}

    waiting = ClosingRequest.objects.get()
    assert (waiting.state, waiting.closing_reason) == ("pending", Case.ClosingReason.CONFIRMED_DECEASED)
    assert waiting.requested_by == waiting.case.assignee
    assert waiting.case.status != Case.Status.CLOSED
