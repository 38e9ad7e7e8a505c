"""The history tables and the read log are append-only in the database: every one of them, however reached."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.db import DatabaseError, connection, models, transaction
from django.db.models.deletion import ProtectedError
from pgtrigger import core as pgtrigger_core
from simple_history.models import HistoricalChanges

from cases.models import Case, Child, RecordAccess
from cases.services import log_child_reads
from core.append_only import APPEND_ONLY, NO_TRUNCATE
from tests.factories import ChildFactory, UserFactory
from tracker.models import ListEntry

PROJECT_APPS = {"core", "cases", "tracker"}

# Every historical model simple_history made for the project's apps, found afresh on each run: a
# model given a history tomorrow is in this list without anyone adding it.
HISTORICAL_MODELS = sorted(
    (model for model in apps.get_models()
     if issubclass(model, HistoricalChanges) and model._meta.app_label in PROJECT_APPS),
    key=lambda model: model._meta.label,
)
AUDIT_MODELS = [*HISTORICAL_MODELS, RecordAccess]


def label(model: type[models.Model]) -> str:
    return model._meta.label


def refused(sql: str, params: list[Any] | None = None) -> str:
    """The database's refusal of `sql` (which must be refused), rolled back to before it."""
    with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    return str(caught.value)


def test_every_history_the_project_keeps_is_found():
    # The finder itself: the histories known today are all among those it finds.
    assert {"cases.HistoricalChild", "cases.HistoricalCase", "tracker.HistoricalHandoverList",
            "tracker.HistoricalListEntry", "tracker.HistoricalReply", "tracker.HistoricalReplyOutcome",
            "tracker.HistoricalOrganisation", "tracker.HistoricalCaseShare"} <= {label(m) for m in HISTORICAL_MODELS}


@pytest.mark.django_db
@pytest.mark.parametrize("model", AUDIT_MODELS, ids=label)
def test_every_audit_table_has_its_append_only_triggers_installed_current_and_enabled(model):
    declared = {trigger.name: trigger for trigger in model._meta.triggers}
    assert {APPEND_ONLY, NO_TRUNCATE} <= set(declared), f"{label(model)} is not declared append-only"
    for trigger in declared.values():
        # INSTALLED (not OUTDATED): the trigger in the database is the one declared, and it is enabled.
        assert trigger.get_installation_status(model) == (pgtrigger_core.INSTALLED, True), trigger.name


@pytest.mark.django_db
@pytest.mark.parametrize("model", AUDIT_MODELS, ids=label)
def test_every_audit_table_refuses_truncate(model):
    assert "Cannot truncate" in refused(f"TRUNCATE {model._meta.db_table} CASCADE")


@pytest.fixture
def audit_rows(make_handed_over_list, case_worker) -> None:
    """Rows in the histories of children, cases and list entries, and in the read log."""
    handover_list = make_handed_over_list(size=2)
    log_child_reads(handover_list.entries.values_list("child_id", flat=True), channel=RecordAccess.Channel.ADMIN,
                    path="/admin/", user=case_worker)


@pytest.mark.django_db
@pytest.mark.parametrize("model", [Child.history.model, Case.history.model, ListEntry.history.model, RecordAccess],
                         ids=label)
def test_raw_update_and_delete_of_audit_rows_are_refused(audit_rows, model):
    table, pk = model._meta.db_table, model._meta.pk.column
    before = list(model._base_manager.order_by("pk").values())
    assert len(before) >= 2
    assert "Cannot update or delete rows" in refused(f"UPDATE {table} SET {pk} = {pk}")
    assert "Cannot update or delete rows" in refused(f"DELETE FROM {table} WHERE {pk} = %s", [before[0][pk]])
    assert list(model._base_manager.order_by("pk").values()) == before


@pytest.mark.django_db
def test_delete_from_historical_case_is_refused(audit_rows):
    rows = Case.history.count()
    assert "cases_historicalcase" in refused("DELETE FROM cases_historicalcase")
    assert Case.history.count() == rows


@pytest.mark.django_db
def test_the_orm_cannot_rewrite_history_either(audit_rows):
    with pytest.raises(DatabaseError), transaction.atomic():
        Case.history.update(history_change_reason="rewritten")
    with pytest.raises(DatabaseError), transaction.atomic():
        RecordAccess.objects.update(path="/elsewhere/")
    assert not Case.history.filter(history_change_reason="rewritten").exists()
    assert not RecordAccess.objects.filter(path="/elsewhere/").exists()


@pytest.mark.django_db
def test_a_user_named_in_the_history_cannot_be_deleted():
    # simple_history would blank the user in each history row they made, an UPDATE the database
    # refuses; the ORM refuses first, with its "protected" message, and the history still names them.
    user = UserFactory()
    child = ChildFactory()
    child._history_user = user  # type: ignore[attr-defined]
    child.save()
    with pytest.raises(ProtectedError):
        user.delete()
    assert child.history.filter(history_user=user).exists()
