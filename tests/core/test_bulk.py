"""The bulk writes of large imports give the rows the ORM and django-simple-history would give."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection, models, transaction
from django.utils import timezone

from cases.models import Case, CaseEvent, Child
from core.bulk import CHANGED, CREATED, insert_instances, insert_recorded, insert_rows, keys_in, record_history
from tests.factories import CaseFactory, ChildFactory, UserFactory

pytestmark = pytest.mark.django_db

# What simple_history adds to each row; the rest of a history row is a copy of the record.
HISTORY_ONLY = {"history_id", "history_date", "history_type", "history_user_id", "history_change_reason"}


def copied(row: models.Model) -> dict[str, object]:
    fields = type(row)._meta.concrete_fields
    return {f.attname: getattr(row, f.attname) for f in fields if f.attname not in HISTORY_ONLY}


def test_a_history_row_copied_by_the_database_equals_the_one_simple_history_writes():
    worker = UserFactory()
    case = CaseFactory(priority=Case.Priority.HIGH)
    case.closing_note = "kept as written, ünïcode too"
    case._change_reason = "by the ORM"  # type: ignore[attr-defined]
    case.save()
    by_orm = case.history.order_by("-history_id").first()

    assert record_history(Case, [case.pk], history_type=CHANGED, user=worker, reason="x" * 150) == 1

    by_copy = case.history.order_by("-history_id").first()
    assert by_copy.history_id != by_orm.history_id
    assert copied(by_copy) == copied(by_orm)
    assert (by_copy.history_type, by_copy.history_user_id) == ("~", worker.pk)
    assert by_copy.history_change_reason == "x" * 100, "simple_history's column keeps 100 characters"
    assert by_copy.history_date >= by_orm.history_date


def test_record_history_takes_a_query_of_keys_and_thousands_of_keys():
    cases = [CaseFactory() for _ in range(3)]
    assert record_history(Case, Case.objects.filter(pk__in=[c.pk for c in cases[:2]]).values("pk"),
                          history_type=CHANGED, user=None, reason="two") == 2
    assert record_history(Case, [cases[2].pk, *range(10**9, 10**9 + 5000)], history_type=CHANGED, user=None,
                          reason="one of 5001 keys exists") == 1
    assert record_history(Case, [], history_type=CHANGED, user=None, reason="none") == 0
    assert Case.history.filter(history_change_reason="two").count() == 2


def test_insert_instances_saves_every_field_and_gives_each_record_its_key():
    before = timezone.now()
    children = [Child(family_name="Коваленко", given_name=f"Дарина{i}", aliases=["Kovalenko Daryna"],
                      birth_date=datetime.date(2012, 4, 9), birth_date_precision=Child.DatePrecision.DAY)
                for i in range(3)]
    for child in children:
        child.fill_derived()

    made = insert_recorded(children, Child, user=None, reason="bulk")

    assert all(child.pk for child in made) and len({child.pk for child in made}) == 3
    stored = Child.objects.get(pk=made[1].pk)
    assert (stored.given_name, stored.aliases, stored.search_names) == ("Дарина1", ["Kovalenko Daryna"],
                                                                       made[1].search_names)
    assert stored.created_at >= before and stored.updated_at >= before
    assert [h.history_type for h in stored.history.all()] == [CREATED]
    # The next record saved one at a time takes the next key of the same sequence.
    assert ChildFactory().pk > max(child.pk for child in made)


def test_insert_rows_fills_the_defaults_a_new_instance_would_have():
    case = CaseFactory()
    insert_rows(CaseEvent, ("case_id", "kind", "message"), [(case.pk, CaseEvent.Kind.NOTE, "in bulk")])
    orm = CaseEvent.objects.create(case=case, kind=CaseEvent.Kind.NOTE, message="by the ORM")

    bulk = CaseEvent.objects.get(message="in bulk")
    assert (bulk.from_status, bulk.to_status, bulk.actor_id, bulk.data) == ("", "", None, {})
    assert abs(bulk.happened_at - orm.happened_at) < datetime.timedelta(seconds=5)


def test_rows_given_ready_are_stored_as_the_prepared_ones_and_their_json_still_prepared():
    case, actor = CaseFactory(), UserFactory()
    at = timezone.now()
    data = {"list": "UA-RU-7", "note": "у двох рядках"}
    fields = ("case_id", "kind", "from_status", "to_status", "actor_id", "message", "data", "happened_at")
    for message, ready in (("prepared", False), ("ready", True)):
        insert_rows(CaseEvent, fields, [(case.pk, CaseEvent.Kind.STATUS_CHANGED, Case.Status.OPEN,
                                         Case.Status.ON_LIST, actor.pk, message, data, at)], ready=ready)

    def stored(message: str) -> dict[str, object]:
        return {name: value for name, value in copied(CaseEvent.objects.get(message=message)).items()
                if name not in ("id", "message")}

    assert stored("ready") == stored("prepared")
    assert stored("ready")["data"] == data
    assert stored("ready")["happened_at"] == at


def test_a_row_of_too_few_values_is_refused_ready_or_not():
    case = CaseFactory()
    for ready in (False, True):
        # The copy is abandoned, and with it the write it was part of.
        with pytest.raises(ValueError, match="fields"), transaction.atomic():
            insert_rows(CaseEvent, ("case_id", "kind", "message"),
                        [(case.pk, CaseEvent.Kind.NOTE, "whole"), (case.pk, CaseEvent.Kind.NOTE)], ready=ready)
    assert not CaseEvent.objects.filter(kind=CaseEvent.Kind.NOTE, case=case).exists()


def test_keys_in_selects_exactly_the_keys_given():
    cases = [CaseFactory() for _ in range(4)]
    wanted = [cases[0].pk, cases[2].pk]
    assert set(Case.objects.filter(pk__in=keys_in(wanted)).values_list("pk", flat=True)) == set(wanted)
    assert not Case.objects.filter(pk__in=keys_in([])).exists()
    if connection.vendor == "postgresql":
        assert "string_to_array" in str(Case.objects.filter(pk__in=keys_in(wanted)).query)


def test_texts_in_selects_exactly_the_texts_given_and_refuses_its_separator():
    from cases.models import ChildMatchKey
    from core.bulk import TEXT_SEPARATOR, texts_in

    child = ChildFactory()
    insert_rows(ChildMatchKey, ("child_id", "key"), [(child.pk, "n:a|b"), (child.pk, "y:a:2012:b"), (child.pk, "z")])
    found = ChildMatchKey.objects.filter(key__in=texts_in(["n:a|b", "y:a:2012:b", "unknown"]))
    assert set(found.values_list("key", flat=True)) == {"n:a|b", "y:a:2012:b"}
    if connection.vendor == "postgresql":
        with pytest.raises(ValueError, match="separator"):
            texts_in([f"a{TEXT_SEPARATOR}b"])


def test_a_copy_the_database_refuses_half_way_raises_and_leaves_nothing():
    from django.db import IntegrityError

    from cases.models import ChildMatchKey

    child = ChildFactory()
    # Enough rows that the refused one goes in while earlier ones are still being sent.
    rows = [(child.pk, f"q:{n}") for n in range(30_000)]
    rows.insert(20_000, (child.pk, "q:7"))
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(ChildMatchKey, ("child_id", "key"), rows, ready=True)
    assert not ChildMatchKey.objects.filter(child=child, key__startswith="q:").exists()


def test_insert_instances_of_nothing_writes_nothing():
    assert insert_instances([], Child) == []


def test_a_bulk_job_raises_the_collector_threshold_and_puts_it_back_after_the_last_one():
    import gc

    from core.bulk import BULK_GC_THRESHOLD, bulk_job

    before = gc.get_threshold()
    with bulk_job():
        assert gc.get_threshold()[0] == max(before[0], BULK_GC_THRESHOLD)
        with bulk_job():
            pass
        assert gc.get_threshold()[0] == max(before[0], BULK_GC_THRESHOLD), "an inner job leaves the outer's"
    assert gc.get_threshold() == before
    try:
        with bulk_job():
            raise RuntimeError("a failed job")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before


@pytest.mark.skipif(connection.vendor != "postgresql", reason="planner statistics are PostgreSQL's")
def test_statistics_are_refreshed_after_commit_so_the_planner_sees_a_bulk_write(django_capture_on_commit_callbacks):
    from cases.models import ChildMatchKey
    from core.bulk import refresh_statistics

    child = ChildFactory()
    insert_rows(ChildMatchKey, ("child_id", "key"), [(child.pk, f"t:{n}") for n in range(3000)])

    def estimated() -> float:
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = 'cases_childmatchkey'::regclass")
            return cursor.fetchone()[0]

    with django_capture_on_commit_callbacks(execute=False) as waiting:
        refresh_statistics(ChildMatchKey)
    assert len(waiting) == 1 and estimated() < 3000, "nothing runs before the commit"
    waiting[0]()
    assert estimated() >= 3000


def test_update_instances_writes_each_its_own_values_to_the_microsecond():
    from core.bulk import update_instances

    children = [ChildFactory(aliases=[]) for _ in range(3)]
    stamp = timezone.now().replace(microsecond=123456)
    children[0].aliases, children[0].updated_at = ["Ткаченко Марія", "Tkachenko Mariia"], stamp
    children[1].aliases, children[1].updated_at = ["O'Neil \\ \"quoted\""], stamp + datetime.timedelta(days=1)

    assert update_instances(children[:2], Child, ["aliases", "updated_at"]) == 2

    stored = {c.pk: c for c in Child.objects.filter(pk__in=[c.pk for c in children])}
    assert stored[children[0].pk].aliases == ["Ткаченко Марія", "Tkachenko Mariia"]
    assert stored[children[0].pk].updated_at == stamp
    assert stored[children[1].pk].aliases == ["O'Neil \\ \"quoted\""]
    assert stored[children[2].pk].aliases == [] and stored[children[2].pk].updated_at != stamp
    assert update_instances([], Child, ["aliases"]) == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="writes built before they are sent: PostgreSQL's")
def test_rows_built_first_and_sent_after_are_stored_as_insert_rows_stores_them():
    from core.bulk import Writes

    case, actor = CaseFactory(), UserFactory()
    at = timezone.now()
    # What COPY's text must escape, and what it must tell from an empty text.
    awkward = "таб\tрядок\nі\\скісна\r, «лапки» ' \"; NULL \\N"
    data = {"list": "UA-RU-7", "note": awkward}
    fields = ("case_id", "kind", "from_status", "to_status", "actor_id", "message", "data", "happened_at")
    insert_rows(CaseEvent, fields, [(case.pk, CaseEvent.Kind.NOTE, "", "", actor.pk, f"sent {awkward}", data, at),
                                     (case.pk, CaseEvent.Kind.NOTE, "", "", None, "sent", {}, at)])
    writes = Writes()
    assert writes.insert_rows(CaseEvent, fields, [
        (case.pk, CaseEvent.Kind.NOTE, "", "", actor.pk, f"built {awkward}", data, at),
        (case.pk, CaseEvent.Kind.NOTE, "", "", None, "built", {}, at)], ready=True) == 2
    assert not CaseEvent.objects.filter(message__startswith="built").exists(), "nothing is sent while building"
    writes.record_history(Case, [case.pk], history_type=CHANGED, user=actor, reason="built")
    writes.send()

    def stored(prefix: str) -> list[dict[str, object]]:
        return [{name: value for name, value in copied(event).items() if name not in ("id", "message")}
                for event in CaseEvent.objects.filter(message__startswith=prefix).order_by("pk")]

    assert stored("built") == stored("sent")
    assert CaseEvent.objects.get(message=f"built {awkward}").data == data
    assert Case.history.filter(id=case.pk, history_change_reason="built", history_user_id=actor.pk).count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="writes sent behind: PostgreSQL's")
def test_writes_sent_behind_are_in_the_callers_transaction_in_order_and_followed_by_their_sequel():
    from cases.models import ChildMatchKey
    from core.bulk import Writes, WritesBehind

    child = ChildFactory()
    heard: list[int] = []
    with transaction.atomic(), WritesBehind() as behind:
        for chunk in range(3):
            writes = Writes()
            writes.insert_rows(ChildMatchKey, ("child_id", "key"),
                               [(child.pk, f"b:{chunk}:{n}") for n in range(20_000)], ready=True)
            def count(chunk: int = chunk) -> None:
                heard.append(ChildMatchKey.objects.filter(child=child, key__startswith=f"b:{chunk}:").count())

            # What follows a batch sees it written.
            behind.send(writes, then=count)
            # The caller's own statements go on meanwhile, on the same connection.
            assert Child.objects.filter(pk=child.pk).exists()
    assert heard == [20_000] * 3
    assert ChildMatchKey.objects.filter(child=child, key__startswith="b:").count() == 60_000


@pytest.mark.skipif(connection.vendor != "postgresql", reason="writes sent behind: PostgreSQL's")
def test_a_batch_refused_behind_is_raised_to_the_caller_and_nothing_is_written():
    from django.db import IntegrityError

    from cases.models import ChildMatchKey
    from core.bulk import Writes, WritesBehind

    child = ChildFactory()
    heard: list[str] = []
    with pytest.raises(IntegrityError), transaction.atomic(), WritesBehind() as behind:
        good, refused = Writes(), Writes()
        good.insert_rows(ChildMatchKey, ("child_id", "key"), [(child.pk, f"c:{n}") for n in range(5000)], ready=True)
        behind.send(good, then=lambda: heard.append("good"))
        refused.insert_rows(ChildMatchKey, ("child_id", "key"), [(child.pk, "c:1")], ready=True)
        behind.send(refused, then=lambda: heard.append("refused"))
        # The caller goes on and finds the transaction aborted: the helper's refusal is what it is told.
        list(Child.objects.filter(pk=child.pk))
    assert heard == ["good"]
    assert not ChildMatchKey.objects.filter(child=child, key__startswith="c:").exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="writes sent behind: PostgreSQL's")
def test_foreign_keys_checked_at_once_while_writes_go_behind_are_deferred_again_after():
    from django.db import IntegrityError

    from core.bulk import Writes, WritesBehind

    missing = CaseFactory().pk + 1000
    line = (missing, CaseEvent.Kind.NOTE, "a line of a case not yet written")
    with pytest.raises(IntegrityError), transaction.atomic(), WritesBehind() as behind:
        writes = Writes()
        writes.insert_rows(CaseEvent, ("case_id", "kind", "message"), [line], ready=True)
        behind.send(writes)
        behind.wait()
    with transaction.atomic():
        with WritesBehind():
            pass
        # Deferred again: a line may come before its case within the transaction, as the schema allows.
        insert_rows(CaseEvent, ("case_id", "kind", "message"), [line], ready=True)
        CaseFactory(pk=missing)
    assert CaseEvent.objects.filter(case_id=missing).count() == 1
