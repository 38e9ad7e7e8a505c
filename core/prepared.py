"""Statements written once and run many times: bound by the server and prepared on each PostgreSQL
connection, and the model instances their rows hold made as the ORM makes them.

For the few statements of a hot path (the API's key check, its page of cases) the ORM's cost per
call, building and compiling the query, and PostgreSQL's, parsing and planning it (Django binds on
the client, so nothing it sends can be prepared), come to more than running them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import lru_cache, partial
from typing import Any, Generic, TypeVar, cast

import psycopg
from django.conf import settings
from django.db import connection, models
from django.db.backends.postgresql.psycopg_any import register_tzloader
from psycopg.pq import Format

M = TypeVar("M", bound=models.Model)


def run_prepared(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of `sql` with `params` (written with `%s`). On PostgreSQL its parameters are bound by
    the server and its plan prepared once per connection where API_PREPARED_STATEMENTS allows it
    (not behind a pooler that cannot keep prepared statements); elsewhere through Django's cursor."""
    if connection.vendor != "postgresql":
        with connection.cursor() as django_cursor:
            django_cursor.execute(sql, params)
            return django_cursor.fetchall()
    # What Django's own cursor does before a statement: check the connection, make sure of one.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    started = time.monotonic()
    try:
        with connection.wrap_database_errors, psycopg.RawCursor(connection.connection) as cursor:
            # As Django's cursors: times in the connection's zone, should the settings have changed it.
            timestamptz = connection.connection.adapters.types["timestamptz"].oid
            if connection.timezone != cast(Any, cursor.adapters.get_loader(timestamptz, Format.TEXT)).timezone:
                register_tzloader(connection.timezone, cursor)

            def execute(sql: str, params: Sequence[Any], many: bool, context: dict[str, Any]) -> None:
                cursor.execute(numbered(sql, len(params)), params,
                               prepare=getattr(settings, "API_PREPARED_STATEMENTS", False))

            # Through the connection's execute wrappers (connection.execute_wrapper), as Django's cursors
            # run every statement: whatever instruments or guards the database sees this one too.
            for wrapper in reversed(connection.execute_wrappers):
                execute = partial(wrapper, execute)
            execute(sql, params, False, {"connection": connection, "cursor": cursor})
            return cursor.fetchall()
    finally:
        if connection.queries_logged:
            # Counted and timed with the ORM's own statements (debug pages, query budgets in tests),
            # with its values in place so that a query log can explain it.
            with psycopg.ClientCursor(connection.connection) as shown:
                connection.queries_log.append({"sql": shown.mogrify(sql, params),
                                               "time": f"{time.monotonic() - started:.3f}"})


@lru_cache(maxsize=512)
def numbered(sql: str, count: int) -> str:
    """`sql` with its `count` placeholders (`%s`, a literal `%` written `%%`) numbered as PostgreSQL
    takes them (`$1`, `$2`, …), once per statement: psycopg's own conversion of a statement this long
    is not cached, and parsing 13 kB of SQL on each page of cases cost a quarter of a millisecond."""
    return sql % tuple(f"${n}" for n in range(1, count + 1))


class ModelColumns(Generic[M]):
    """A model's columns in a statement written by hand, under a table alias, and its instances made
    from them: every concrete field selected (none left to load later) and converted by the same
    converters the ORM applies, then `Model.from_db`, so an instance is the one a queryset gives."""

    def __init__(self, model: type[M], alias: str) -> None:
        self.model = model
        self.alias = alias
        self.fields = list(model._meta.concrete_fields)
        self.names = [field.attname for field in self.fields]
        self.pk_index = self.fields.index(model._meta.pk)
        self._converters: dict[str, list[tuple[int, Any, list[Any]]]] = {}

    def __len__(self) -> int:
        return len(self.fields)

    def sql(self) -> str:
        quote = connection.ops.quote_name
        return ", ".join(f"{quote(self.alias)}.{quote(cast(str, field.column))}" for field in self.fields)

    def instance(self, values: Sequence[Any]) -> M | None:
        """The instance of a row's values in `sql()`'s order; None for the NULLs of an outer join
        that found nothing."""
        if values[self.pk_index] is None:
            return None
        converted = list(values)
        for n, column, converters in self.converters():
            for converter in converters:
                converted[n] = converter(converted[n], column, connection)
        return self.model.from_db(connection.alias, self.names, converted)

    def converters(self) -> list[tuple[int, Any, list[Any]]]:
        """Each column that has converters on this database, with them in the ORM's order (the
        backend's, then the field's)."""
        found = self._converters.get(connection.vendor)
        if found is None:
            found = []
            for n, field in enumerate(self.fields):
                column = field.get_col(self.alias)
                converters = [*connection.ops.get_db_converters(column), *column.get_db_converters(connection)]
                if converters:
                    found.append((n, column, converters))
            self._converters[connection.vendor] = found
        return found
