"""Shared fixtures: a handed-over list built through the services, as case workers build one."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest

from cases.models import Case
from tests.factories import CaseFactory, HandoverListFactory, UserFactory
from tracker.models import HandoverList
from tracker.services.exchange import list_add_cases, list_hand_over

HANDED_OVER = datetime.date(2025, 6, 2)
DUE = datetime.date(2025, 7, 2)


@pytest.fixture
def case_worker():
    return UserFactory(username="case.worker")


@pytest.fixture
def make_handed_over_list(case_worker) -> Callable[..., HandoverList]:
    def make(size: int = 5, *, handed_over_on: datetime.date = HANDED_OVER, due: datetime.date | None = DUE,
             assignee=None) -> HandoverList:
        handover_list = HandoverListFactory()
        cases: list[Case] = [CaseFactory(assignee=assignee or case_worker) for _ in range(size)]
        list_add_cases(handover_list=handover_list, cases=cases, actor=case_worker)
        return list_hand_over(handover_list=handover_list, handed_over_on=handed_over_on, response_due_on=due,
                              actor=case_worker)

    return make
