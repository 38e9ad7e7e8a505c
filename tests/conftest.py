"""Shared fixtures: a handed-over list built through the services, as case workers build one; Django's
flush passing the append-only tables' TRUNCATE guard."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pgtrigger
import pytest
from django.conf import settings
from django.core.management.commands import flush
from django.utils import translation

from cases.models import Case
from core.append_only import NO_TRUNCATE, trigger_uris
from tests.factories import CaseFactory, HandoverListFactory, UserFactory, role_user
from tracker.models import HandoverList
from tracker.roles import ADMINISTRATOR
from tracker.services.exchange import list_add_cases, list_hand_over

HANDED_OVER = datetime.date(2025, 6, 2)
DUE = datetime.date(2025, 7, 2)


@pytest.fixture(autouse=True, scope="session")
def flush_empties_append_only_tables():
    """Transactional tests end with Django's flush, which empties every table with TRUNCATE; the
    append-only tables refuse TRUNCATE (`core.append_only`), so their guard is passed for the flush
    alone. UPDATE and DELETE stay refused throughout."""
    handle = flush.Command.handle

    def handle_passing_the_guard(self: flush.Command, *args: Any, **options: Any) -> Any:
        with pgtrigger.ignore(*trigger_uris(NO_TRUNCATE)):
            return handle(self, *args, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(flush.Command, "handle", handle_passing_the_guard)
        yield


@pytest.fixture(autouse=True)
def the_default_language():
    """Each test starts in the default language: a page asked for in Ukrainian leaves Ukrainian active
    in the thread (the locale middleware does not switch it back), which later code would then speak."""
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def admin_user(db):
    """The admin's pages are tried as a member of the Administrator role, never as a superuser."""
    return role_user(ADMINISTRATOR, "admin")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


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
