"""Tables the database lets rows be added to but never changed or removed: the history and the read log.

On PostgreSQL each such table carries two triggers (django-pgtrigger, declared in the model's Meta, so
that migrations install them): one refuses UPDATE and DELETE of any row, one refuses TRUNCATE. They
hold whatever the road to the database: the ORM, `core.bulk`, a raw statement, a psql session. The
ORM's `delete()` of these models was already refused in Python; the triggers make it a property of
the database. On other databases (SQLite, for `make run`) pgtrigger installs nothing.

A role that owns a table can still disable its triggers; what it does then is what the read log's
hash chain (`cases.read_chain`) is for.
"""

from __future__ import annotations

from typing import Any

import pgtrigger
from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

# Trigger names (in pgtrigger's URIs "app.Model:name"); the test suite's flush passes the TRUNCATE one.
APPEND_ONLY = "append_only"
NO_TRUNCATE = "no_truncate"


def append_only_triggers() -> list[pgtrigger.Trigger]:
    """The triggers that make a table append-only; new objects for each model that declares them."""
    return [
        pgtrigger.Protect(name=APPEND_ONLY, operation=pgtrigger.Update | pgtrigger.Delete),
        # pgtrigger.Protect cannot guard TRUNCATE (a statement-level Protect needs transition tables,
        # which TRUNCATE has none of), hence a trigger of its own.
        pgtrigger.Trigger(
            name=NO_TRUNCATE,
            level=pgtrigger.Statement,
            when=pgtrigger.Before,
            operation=pgtrigger.Truncate,
            func="RAISE EXCEPTION 'pgtrigger: Cannot truncate % table: it is append-only', TG_TABLE_NAME; "
                 "RETURN NULL;",
        ),
    ]


def trigger_uris(name: str, *, history_only: bool = False) -> list[str]:
    """pgtrigger's URIs of the triggers called `name` on every model (or only on simple_history's
    historical models), for `pgtrigger.ignore`."""
    return [trigger.get_uri(model) for model, trigger in pgtrigger.registered() if trigger.name == name
            and (not history_only or getattr(model, "instance_type", None) is not None)]


class AppendOnlyHistory(HistoricalRecords):
    """simple_history's `HistoricalRecords` whose historical table is append-only.

    The triggers go into the generated model's Meta, so that `makemigrations` writes them for each
    historical table as it does for a model of our own. The user a history row names is protected:
    deleting that user would have had the ORM blank the column in every row they made (simple_history's
    default), an UPDATE the triggers refuse; now the ORM refuses it first, with the usual "protected"
    message. Accounts that acted are deactivated, not deleted.
    """

    def get_meta_options(self, model: type[models.Model]) -> dict[str, Any]:
        options = super().get_meta_options(model)
        options["triggers"] = append_only_triggers()
        return options

    def _get_history_user_fields(self) -> dict[str, Any]:
        fields = super()._get_history_user_fields()
        if isinstance(fields.get("history_user"), models.ForeignKey):
            fields["history_user"] = models.ForeignKey(
                self.user_model or settings.AUTH_USER_MODEL,
                null=True,
                related_name=self.user_related_name,
                on_delete=models.PROTECT,
                db_constraint=self.user_db_constraint,
            )
        return fields
