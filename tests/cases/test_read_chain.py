"""The read log's hash chain: made by the database as rows go in, from any number of writers at once,
and checked by `verify_audit_log`, which names the first row that was changed or the gap a removed one left."""

from __future__ import annotations

import importlib
import io
import threading

import pgtrigger
import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from cases import read_chain
from cases.models import RecordAccess
from cases.services import log_child_reads
from core.append_only import APPEND_ONLY
from tests.factories import ChildFactory, UserFactory

ADMIN, API = RecordAccess.Channel.ADMIN, RecordAccess.Channel.API


def verify(*args: str) -> str:
    out = io.StringIO()
    call_command("verify_audit_log", *args, stdout=out)
    return out.getvalue().strip()


def broken(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        verify(*args)
    return str(caught.value)


def rows() -> list[RecordAccess]:
    return list(RecordAccess.objects.order_by("pk"))


def disable_trigger(name: str) -> None:
    """Turn one of the read log's triggers off until the test's transaction is rolled back: what someone
    who owns the table can do."""
    trigger = next(t for t in RecordAccess._meta.triggers if t.name == name)  # type: ignore[attr-defined]
    with connection.cursor() as cursor:
        # The foreign keys' checks wait for the commit, and ALTER TABLE refuses a table with checks pending.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE cases_recordaccess DISABLE TRIGGER {trigger.get_pgid(RecordAccess)}")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


@pytest.fixture
def logged() -> list[RecordAccess]:
    """Seven reads through three doors, in four statements; paths and clients with the separators."""
    user, children = UserFactory(), [ChildFactory() for _ in range(4)]
    ids = [child.pk for child in children]
    log_child_reads(ids[:2], channel=ADMIN, path="/admin/cases/child/1/change/?q=a|b:c", user=user)
    log_child_reads(ids[2:3], channel=API, path="/api/v1/cases/", user=None, partner_id=7,
                    api_key_prefix="ctk_ab12", client="Tracing Network · key ab12")
    log_child_reads(ids[:3], channel=RecordAccess.Channel.EXPORT, path="/api/v1/cases/export/?format=csv",
                    user=user)
    log_child_reads(ids[3:], channel=ADMIN, path="/admin/Шевченко/", user=user)
    return rows()


@pytest.mark.django_db
def test_each_row_is_chained_to_the_one_before_in_id_order(logged):
    assert len(logged) == 7
    previous = read_chain.GENESIS
    for row in logged:
        assert row.prev_hash == previous
        assert row.row_hash == read_chain.row_hash(row.prev_hash, [getattr(row, f) for f in read_chain.CONTENT_FIELDS])
        previous = row.row_hash


@pytest.mark.django_db
def test_a_clean_chain_verifies_with_its_count_and_head(logged):
    head = logged[-1]
    assert verify() == f"OK: 7 rows, head {head.pk}:{head.row_hash}"
    # Read two rows a time: the chunks' seams are links like any other.
    assert verify("--chunk", "2") == f"OK: 7 rows, head {head.pk}:{head.row_hash}"
    assert verify("--anchor", f"{logged[3].pk}:{logged[3].row_hash}").startswith("OK: 7 rows")


@pytest.mark.django_db
def test_an_empty_log_verifies():
    assert verify() == "OK: 0 rows, the read log is empty"


@pytest.mark.django_db
def test_the_database_writes_the_hashes_whatever_the_client_sends():
    forged = RecordAccess.objects.create(child=ChildFactory(), channel=ADMIN, path="/", prev_hash="f" * 64,
                                         row_hash="e" * 64)
    stored = RecordAccess.objects.get()
    assert (stored.pk, stored.prev_hash) == (forged.pk, read_chain.GENESIS)
    assert stored.row_hash == read_chain.row_hash(read_chain.GENESIS, [getattr(stored, f) for f in
                                                                        read_chain.CONTENT_FIELDS])


@pytest.mark.django_db
def test_a_raw_update_of_the_read_log_is_refused(logged):
    with pytest.raises(DatabaseError, match="Cannot update or delete rows from cases_recordaccess"), \
            transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE cases_recordaccess SET path = 'x'")
    assert rows() == logged and not RecordAccess.objects.filter(path="x").exists()


@pytest.mark.django_db
def test_a_changed_path_is_named_by_its_row(logged):
    changed = logged[3]
    disable_trigger(APPEND_ONLY)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE cases_recordaccess SET path = '/somewhere/else/' WHERE id = %s", [changed.pk])
    values = [getattr(changed, f) for f in read_chain.CONTENT_FIELDS]
    values[read_chain.CONTENT_FIELDS.index("path")] = "/somewhere/else/"
    message = broken()
    assert message.startswith(f"BROKEN at row {changed.pk}: its content does not match its hash")
    assert f"expected {read_chain.row_hash(changed.prev_hash, values)}, found {changed.row_hash}" in message
    assert "(3 rows before it hold)" in message


@pytest.mark.django_db
def test_a_row_deleted_from_the_middle_is_named_by_the_gap_it_leaves(logged):
    before, gone, after = logged[2:5]
    with pgtrigger.ignore(f"cases.RecordAccess:{APPEND_ONLY}"):
        RecordAccess.objects.filter(pk=gone.pk)._raw_delete(using="default")
    assert RecordAccess.objects.count() == 6
    message = broken()
    assert message.startswith(f"BROKEN at row {after.pk}: does not follow row {before.pk}: a row between them was "
                              f"removed")
    assert f"expected {before.row_hash}, found {gone.row_hash}" in message


@pytest.mark.django_db
def test_a_change_with_its_hash_made_again_is_named_by_the_next_row(logged):
    changed, following = logged[1], logged[2]
    values = [getattr(changed, f) for f in read_chain.CONTENT_FIELDS]
    values[read_chain.CONTENT_FIELDS.index("user_id")] = None
    remade = read_chain.row_hash(changed.prev_hash, values)
    disable_trigger(APPEND_ONLY)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE cases_recordaccess SET user_id = NULL, row_hash = %s WHERE id = %s",
                       [remade, changed.pk])
    assert broken().startswith(f"BROKEN at row {following.pk}: does not follow row {changed.pk}")


@pytest.mark.django_db
def test_a_cut_off_or_rewritten_chain_is_told_by_its_anchor(logged):
    head = logged[-1]
    disable_trigger(APPEND_ONLY)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM cases_recordaccess WHERE id = %s", [head.pk])
    assert verify().startswith("OK: 6 rows"), "the rest of the chain holds: only the anchor tells"
    assert broken("--anchor", f"{head.pk}:{head.row_hash}").startswith(
        f"BROKEN at row {head.pk}: the anchored row is gone")
    middle = logged[3]
    assert broken("--anchor", f"{middle.pk}:{'0' * 64}").startswith(
        f"BROKEN at row {middle.pk}: its hash is not the anchor's")


@pytest.mark.django_db
def test_a_row_written_past_the_chain_trigger_is_named(logged):
    disable_trigger("read_chain")
    log_child_reads([logged[0].child_id], channel=ADMIN, path="/admin/", user=None)
    unchained = RecordAccess.objects.order_by("pk").last()
    assert unchained is not None and unchained.row_hash == ""
    assert broken().startswith(f"BROKEN at row {unchained.pk}: does not follow row {logged[-1].pk}")


@pytest.mark.django_db
def test_the_command_refuses_a_malformed_anchor():
    with pytest.raises(CommandError, match="an anchor is ROW_ID:HASH"):
        verify("--anchor", "12:abc")


@pytest.mark.django_db
def test_the_migration_chains_the_rows_already_logged(logged):
    # Rows as they stood before the chain: no hashes. The migration's step chains them in id order.
    migration = importlib.import_module("cases.migrations.0008_read_log_chain_and_append_only")
    with pgtrigger.ignore(f"cases.RecordAccess:{APPEND_ONLY}"):
        RecordAccess.objects.update(prev_hash="", row_hash="")
        assert broken().startswith(f"BROKEN at row {logged[0].pk}")
        with connection.schema_editor() as editor:
            migration.chain_existing_rows(apps, editor)
    assert [(r.prev_hash, r.row_hash) for r in rows()] == [(r.prev_hash, r.row_hash) for r in logged]
    assert verify().startswith("OK: 7 rows")


@pytest.mark.django_db(transaction=True)
def test_writers_in_many_threads_at_once_make_one_chain():
    # Each thread its own connection and transactions, as web processes and workers are: the trigger's
    # lock orders them, and the ids follow the chain.
    children = [ChildFactory().pk for _ in range(20)]
    writers, batches = 6, 8
    start = threading.Barrier(writers)
    failures: list[BaseException] = []

    def write(n: int) -> None:
        try:
            start.wait()
            for batch in range(batches):
                with transaction.atomic():
                    log_child_reads(children[batch:batch + 10], channel=API, path=f"/api/v1/{n}/{batch}/",
                                    user=None, partner_id=n)
        except BaseException as error:  # reported in the test's own thread
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert RecordAccess.objects.count() == writers * batches * 10
    assert verify().startswith(f"OK: {writers * batches * 10} rows")


@pytest.mark.django_db(transaction=True)
def test_a_transaction_that_could_fork_the_chain_is_refused():
    # REPEATABLE READ would not see rows committed after its snapshot, and would chain after an old head.
    child = ChildFactory()
    with pytest.raises(DatabaseError, match="READ COMMITTED transactions only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        log_child_reads([child.pk], channel=ADMIN, path="/admin/", user=None)
    assert not RecordAccess.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_rows_rolled_back_to_a_savepoint_are_never_chained_to():
    # The trigger keeps the last hash of its transaction between rows; a savepoint rolled back takes
    # its rows and that hash with it, and the next row chains after the last row that stayed.
    children = [ChildFactory().pk for _ in range(3)]
    with transaction.atomic():
        log_child_reads(children[:2], channel=ADMIN, path="/kept/", user=None)
        with pytest.raises(RuntimeError), transaction.atomic():
            log_child_reads(children, channel=ADMIN, path="/rolled-back/", user=None)
            raise RuntimeError("the reader's request failed")
        log_child_reads(children[2:], channel=ADMIN, path="/after/", user=None)
    log_child_reads(children[:1], channel=API, path="/next-transaction/", user=None)
    kept = rows()
    assert [row.path for row in kept] == ["/kept/", "/kept/", "/after/", "/next-transaction/"]
    assert [row.prev_hash for row in kept[1:]] == [row.row_hash for row in kept[:-1]]
    assert verify().startswith("OK: 4 rows")
