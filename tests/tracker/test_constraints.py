"""Rules the database itself enforces, whatever path a write takes."""

from __future__ import annotations

import datetime

import pytest
from django.db import IntegrityError, transaction

from tests.factories import CaseFactory, HandoverListFactory, ListEntryFactory
from tracker.models import Flag, HandoverList, ReplyOutcome

pytestmark = pytest.mark.django_db


def refused(write) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        write()


def test_a_child_appears_once_per_list():
    entry = ListEntryFactory()
    refused(lambda: ListEntryFactory(handover_list=entry.handover_list, case=entry.case, position=99))


def test_the_same_child_may_be_on_several_lists():
    entry = ListEntryFactory()
    ListEntryFactory(case=entry.case, handover_list=HandoverListFactory())
    assert entry.case.list_entries.count() == 2


def test_each_number_on_a_list_is_used_once():
    entry = ListEntryFactory(position=1)
    refused(lambda: ListEntryFactory(handover_list=entry.handover_list, position=1))


def test_a_reply_cannot_be_due_before_the_hand_over():
    refused(lambda: HandoverListFactory(status=HandoverList.Status.HANDED_OVER,
                                        handed_over_on=datetime.date(2025, 6, 2),
                                        response_due_on=datetime.date(2025, 6, 1)))
    same_day = HandoverListFactory(status=HandoverList.Status.HANDED_OVER, handed_over_on=datetime.date(2025, 6, 2),
                                   response_due_on=datetime.date(2025, 6, 2))
    assert same_day.pk


def test_a_handed_over_list_has_its_date():
    refused(lambda: HandoverListFactory(status=HandoverList.Status.HANDED_OVER, handed_over_on=None))


def test_one_open_flag_of_a_kind_per_entry():
    entry = ListEntryFactory()
    Flag.objects.create(kind=Flag.Kind.OVERDUE, entry=entry, case=entry.case)
    refused(lambda: Flag.objects.create(kind=Flag.Kind.OVERDUE, entry=entry, case=entry.case))
    Flag.objects.create(kind=Flag.Kind.DUE_SOON, entry=entry, case=entry.case)
    Flag.objects.filter(kind=Flag.Kind.OVERDUE).update(resolved_at=datetime.datetime.now(datetime.UTC),
                                                       resolution=Flag.Resolution.DISMISSED)
    Flag.objects.create(kind=Flag.Kind.OVERDUE, entry=entry, case=entry.case)
    assert Flag.objects.filter(entry=entry).count() == 3


def test_several_manual_flags_may_stand_on_one_case():
    case = CaseFactory()
    Flag.objects.create(kind=Flag.Kind.MANUAL, case=case, note="a")
    Flag.objects.create(kind=Flag.Kind.MANUAL, case=case, note="b")
    assert case.flags.count() == 2


def test_outcomes_and_statuses_come_from_their_choices():
    entry = ListEntryFactory()
    refused(lambda: Flag.objects.create(kind="someday", entry=entry, case=entry.case))
    refused(lambda: HandoverListFactory(status="lost"))
    from tracker.models import Reply

    reply = Reply.objects.create(handover_list=entry.handover_list, received_from=entry.handover_list.recipient,
                                 received_on=datetime.date(2025, 7, 1))
    refused(lambda: ReplyOutcome.objects.create(reply=reply, entry=entry, outcome="probably_fine"))
    refused(lambda: ReplyOutcome.objects.create(reply=reply, entry=entry, outcome="located", verification="maybe"))
