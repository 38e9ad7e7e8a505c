"""Writes of many rows at once, for imports of thousands of rows: inserts and history rows.

The ORM's `bulk_create` builds one SQL text with every value quoted into it, and
django-simple-history's bulk helpers build each historical row as a model instance first; at ten
thousand rows both cost seconds. Here, on PostgreSQL, new rows go in with COPY (values encoded by
psycopg's C code) and history rows are copied by the database from the rows as stored
(`INSERT … SELECT`). Other databases (SQLite for local use) take the plain ORM road. The rows
written are the same either way: the same defaults, timestamps and history columns.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import gc
import io
import json
import operator
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone
from psycopg.copy import Copy, FileWriter

# The columns simple_history adds to each historical table; every other column is a copy.
HISTORY_COLUMNS = ("history_date", "history_type", "history_user_id", "history_change_reason")
REASON_LENGTH = 100  # simple_history's history_change_reason keeps this many characters
CHUNK = 2000

CREATED, CHANGED = "+", "~"


# While a bulk job runs, the cyclic garbage collector's youngest generation is collected after this
# many new objects instead of 700: a 10,000-row import makes millions of short-lived objects, and
# at the default about a fifth of its time went to collections that found next to nothing.
BULK_GC_THRESHOLD = 50_000
_gc_lock = threading.Lock()
_gc_jobs = 0
_gc_saved: tuple[int, int, int] = (700, 10, 10)


@contextmanager
def bulk_job() -> Iterator[None]:
    """Run a job that builds many objects with the garbage collector's first threshold raised; the
    thresholds are put back when the last such job in the process ends."""
    global _gc_jobs, _gc_saved
    with _gc_lock:
        if _gc_jobs == 0:
            _gc_saved = gc.get_threshold()
            gc.set_threshold(max(_gc_saved[0], BULK_GC_THRESHOLD), *_gc_saved[1:])
        _gc_jobs += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_jobs -= 1
            if _gc_jobs == 0:
                gc.set_threshold(*_gc_saved)


# A bulk write of at least this many rows refreshes the planner's statistics of its table.
ANALYZE_AFTER_ROWS = 1000


def refresh_statistics(*models_written: type[models.Model]) -> None:
    """Have PostgreSQL's planner statistics of these tables refreshed once the transaction commits.

    After thousands of rows arrive at once, the statistics describe the table as it was: a set-based
    statement planned on them may take a nested loop over what it thinks is an empty table (the
    deadline sweep right after a large import took seconds instead of a fraction of one, and the
    sweep after that twenty seconds). Autovacuum catches up within minutes; this closes the gap. It runs
    after commit, outside the writer's transaction, so it holds no lock on the writer's behalf.
    """
    if not on_postgresql() or not models_written:
        return
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models_written)

    def analyze() -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {tables}")

    transaction.on_commit(analyze)


def on_postgresql() -> bool:
    """Where the fast roads (COPY, copies made by the database, one-parameter lists) are taken."""
    return connection.vendor == "postgresql"


def concrete_field(model: type[models.Model], name: str) -> models.Field:
    """The field of `model` with this name or attname (not a relation's reverse side)."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise ValueError(f"{model.__name__}.{name} is not a field of its own")
    return field


def _column(field: models.Field) -> str:
    """A concrete field's column (Django's types leave room for fields that have none)."""
    if field.column is None:
        raise ValueError(f"{field} has no column")
    return field.column


def _copy_statement(model: type[models.Model], fields: Sequence[models.Field]) -> str:
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(_column(field)) for field in fields)
    return f"COPY {table} ({columns}) FROM STDIN"


def _copy(model: type[models.Model], fields: Sequence[models.Field], rows: Iterable[Sequence[Any]]) -> int:
    # Django's own exceptions (IntegrityError ...) for what the database refuses, as for any query.
    count = 0
    with (connection.cursor() as cursor, connection.wrap_database_errors,
          cursor.cursor.copy(_copy_statement(model, fields)) as copy):
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def allocate_keys(model: type[models.Model], count: int) -> list[int]:
    """`count` new primary keys from the table's own sequence, as its inserts would take them."""
    with connection.cursor() as cursor:
        # The sequence looked up once: named inside the query, it was looked up for every key (ten
        # times slower).
        cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [model._meta.db_table, model._meta.pk.column])
        (sequence,) = cursor.fetchone()
        cursor.execute("SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [sequence, count])
        return [key for (key,) in cursor.fetchall()]


def insert_instances(objs: Sequence[models.Model], model: type[models.Model]) -> list[Any]:
    """Save new model instances, as `bulk_create` does (no `save()`, no signals); each gets its key."""
    objs = list(objs)
    if not objs:
        return objs
    if not on_postgresql():
        created = model._default_manager.bulk_create(objs, batch_size=1000)
        if any(obj.pk is None for obj in created):
            raise RuntimeError(f"the database did not return the keys of the new {model._meta.verbose_name_plural}")
        return created
    fields = list(model._meta.concrete_fields)
    for obj, key in zip(objs, allocate_keys(model, len(objs)), strict=True):
        # A private step of bulk_create's (the keys of related objects saved since), absent from the stubs.
        obj._prepare_related_fields_for_save(operation_name="bulk_create")  # type: ignore[attr-defined]
        obj.pk = key
    # What each field writes: its value as it stands, or what its own pre_save makes of it (the
    # timestamps, a file saved), prepared for the database.
    plain = [field.attname for field in fields if type(field).pre_save is models.Field.pre_save]
    own = [(index, field) for index, field in enumerate(fields) if type(field).pre_save is not models.Field.pre_save]
    prepare = [_preparer(field) for field in fields]

    def prepared() -> Iterator[list[Any]]:
        pick = operator.attrgetter(*plain) if len(plain) > 1 else lambda obj: (getattr(obj, plain[0]),)
        for obj in objs:
            values = list(pick(obj))
            for index, field in own:
                values.insert(index, field.pre_save(obj, True))
            yield [prep(value) for prep, value in zip(prepare, values, strict=True)]

    _copy(model, fields, prepared())
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
    return objs


def insert_rows(model: type[models.Model], names: Sequence[str], rows: Iterable[Sequence[Any]], *,
                ready: bool = False) -> int:
    """Insert rows given as values of the fields `names` (attnames: "case_id", not "case"), without
    building a model instance for each; the other fields take their defaults, as a new instance's
    would. For records nobody reads back at once: timeline lines, match keys.

    `ready` says the caller built every value of a plain field (text, number, date, time, choice) in
    the type the database takes for it (a text for a text, a whole number for a key, an aware time):
    those values go as they are, without the check of each one; JSON and other fields are prepared
    as always. A million match keys spend seconds in those checks."""
    if not on_postgresql():
        objs = [model(**dict(zip(names, row, strict=True))) for row in _whole(rows, len(names))]
        model._default_manager.bulk_create(objs, batch_size=1000)
        return len(objs)
    fields, prepared = _rows_prepared(model, names, rows, ready=ready)
    return _copy(model, fields, prepared)


def _rows_prepared(model: type[models.Model], names: Sequence[str], rows: Iterable[Sequence[Any]], *,
                   ready: bool) -> tuple[list[models.Field], Iterator[Sequence[Any]]]:
    """The fields a COPY of `insert_rows` names, and its rows as the database takes them (prepared as
    they are read)."""
    given = [concrete_field(model, name) for name in names]
    others = [field for field in model._meta.concrete_fields
              if field not in given and not field.primary_key]
    fields = [*given, *others]
    rows = _whole(rows, len(given))
    db = connections[DEFAULT_DB_ALIAS]
    now = timezone.now()
    # The same default for every row (COPY encodes each row as it is written, so one value serves all).
    defaults = [field.get_db_prep_save(now if _stamped(field) else field.get_default(), db) for field in others]
    prepare = [_preparer(field) for field in given]
    # With `ready`, only the fields that are not plain are prepared.
    own = [(index, prep) for index, (field, prep) in enumerate(zip(given, prepare, strict=True))
           if not _native_types(field)]

    def prepared() -> Iterator[Sequence[Any]]:
        for row in rows:
            if not ready:
                yield [*(prep(value) for prep, value in zip(prepare, row, strict=True)), *defaults]
            elif own:
                values = [*row, *defaults]
                for index, prep in own:
                    values[index] = prep(values[index])
                yield values
            else:
                yield (*row, *defaults)

    return fields, prepared()


def _whole(rows: Iterable[Sequence[Any]], width: int) -> Iterator[Sequence[Any]]:
    """The rows, each checked to hold a value for every field named."""
    for row in rows:
        if len(row) != width:
            raise ValueError(f"a row of {len(row)} values for {width} fields")
        yield row


def _native_types(field: models.Field) -> frozenset[type]:
    """The types of value a field's preparation for PostgreSQL returns unchanged, and psycopg writes as
    they are (none for a field whose preparation does more than check the type)."""
    if isinstance(field, models.ForeignKey):
        return _native_types(field.target_field)
    if isinstance(field, models.fields.AutoFieldMixin):
        # PostgreSQL takes any whole number as a key (the check of a key's value is MySQL's).
        own = (type(field).get_db_prep_value is not models.fields.AutoFieldMixin.get_db_prep_value
               or type(field).get_prep_value is not models.IntegerField.get_prep_value)
        return frozenset() if own else frozenset({int})
    if isinstance(field, models.DateTimeField):
        # An aware time only (see `_preparer`): a naive one is made aware, with a warning, by Django.
        own = (type(field).get_db_prep_value is not models.DateTimeField.get_db_prep_value
               or type(field).get_prep_value is not models.DateTimeField.get_prep_value)
        return frozenset() if own else frozenset({datetime.datetime})
    kinds: tuple[tuple[type[models.Field], frozenset[type]], ...] = (
        (models.CharField, frozenset({str})), (models.TextField, frozenset({str})),
        (models.IntegerField, frozenset({int})), (models.BooleanField, frozenset({bool})),
        (models.DateField, frozenset({datetime.date})),
    )
    for kind, types in kinds:
        if isinstance(field, kind):
            # A field of the project's own that prepares its values otherwise takes the slow road.
            own = (type(field).get_db_prep_save is not models.Field.get_db_prep_save
                   or type(field).get_db_prep_value is not kind.get_db_prep_value
                   or type(field).get_prep_value is not kind.get_prep_value)
            return frozenset() if own else types
    return frozenset()


def _preparer(field: models.Field) -> Callable[[Any], Any]:
    """A field's value as the database takes it, as `field.get_db_prep_save` gives it. Ten thousand
    rows of ten fields are a hundred thousand of these calls: a value of a type the driver writes as
    it is (a text for a text column, a number for a number's) skips Django's checks of its type."""
    db = connections[DEFAULT_DB_ALIAS]
    prepare = field.get_db_prep_save
    if _plain_json(field):
        return _json_text()
    native = _native_types(field)
    if not native:
        return lambda value: prepare(value, db)

    def prepared(value: Any) -> Any:
        if value is None or (type(value) in native
                             and (type(value) is not datetime.datetime or value.tzinfo is not None)):
            return value
        if isinstance(value, enum.Enum) and type(value.value) in native:
            # A choice (`Case.Status.OPEN`): its value, as Django's preparation would give it.
            return value.value
        return prepare(value, db)

    return prepared


def _plain_json(field: models.Field) -> bool:
    """A JSON field as Django's own writes it (`json.dumps`, no encoder of the project's)."""
    return (isinstance(field, models.JSONField) and field.encoder is None
            and type(field).get_db_prep_save is models.JSONField.get_db_prep_save
            and type(field).get_db_prep_value is models.JSONField.get_db_prep_value)


def _json_text() -> Callable[[Any], Any]:
    """A JSON value as COPY's text takes it: the text `json.dumps` gives, which is what Django's
    adapter would have sent. Rows that share one value (the same timeline data on ten thousand
    lines) have it written out once."""
    last: list[Any] = [_json_text, None]

    def prepared(value: Any) -> Any:
        if value is None:
            return None
        if value is not last[0]:
            last[0], last[1] = value, json.dumps(value)
        return last[1]

    return prepared


def _stamped(field: models.Field) -> bool:
    return bool(getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False))


def update_instances(objs: Sequence[models.Model], model: type[models.Model], names: Sequence[str]) -> int:
    """Write the fields `names` of many instances, each its own values (`bulk_update`). On PostgreSQL
    in one statement, the values travelling as one JSON document the database reads as rows; the
    ORM's form is a CASE per row and field, slow to build. Returns how many rows were written."""
    objs = list(objs)
    if not objs:
        return 0
    if not on_postgresql():
        return model._default_manager.bulk_update(objs, list(names), batch_size=1000)
    quote = connection.ops.quote_name
    fields = [concrete_field(model, name) for name in names]
    key = model._meta.pk
    payload = json.dumps([{_column(key): obj.pk, **{_column(field): getattr(obj, field.attname) for field in fields}}
                          for obj in objs], default=_json_value)
    shape = ", ".join(f"{quote(_column(field))} {field.db_type(connection)}" for field in (key, *fields))
    table = quote(model._meta.db_table)
    with connection.cursor() as cursor:
        assignments = ", ".join(f"{quote(_column(field))} = v.{quote(_column(field))}" for field in fields)
        cursor.execute(f"UPDATE {table} SET {assignments} FROM jsonb_to_recordset(%s::jsonb) AS v({shape}) "  # noqa: S608 identifiers from the models' own _meta, quoted; every value is a parameter
                       f"WHERE {table}.{quote(_column(key))} = v.{quote(_column(key))}", [payload])
        return cursor.rowcount


def _json_value(value: Any) -> Any:
    # Full precision: a timestamp read back must equal the one written (optimistic checks compare them).
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} cannot be written by update_instances")


def keys_in(keys: Iterable[int]) -> list[int] | RawSQL:
    """Integer keys for an `__in` filter. On PostgreSQL they travel as one text parameter that the
    database splits: thousands of keys each prepared by the ORM and quoted by the driver cost more
    than the statement they select for."""
    keys = [int(key) for key in keys]
    if not on_postgresql() or not keys:
        return keys
    return RawSQL("SELECT unnest(string_to_array(%s, ',')::bigint[])", [",".join(map(str, keys))])


# Never part of a text given to `texts_in`: a control character no name or key holds.
TEXT_SEPARATOR = "\x1f"


def texts_in(texts: Iterable[str]) -> list[str] | RawSQL:
    """`keys_in` for texts (such as match keys), which must not hold `TEXT_SEPARATOR`."""
    texts = list(texts)
    if not on_postgresql() or not texts:
        return texts
    if any(TEXT_SEPARATOR in text for text in texts):
        raise ValueError("a text for texts_in holds its separator")
    return RawSQL("SELECT unnest(string_to_array(%s, %s))", [TEXT_SEPARATOR.join(texts), TEXT_SEPARATOR])


def _tracked(model: type[models.Model]) -> list[str]:
    historical = model.history.model  # type: ignore[attr-defined]
    base = {field.attname for field in model._meta.concrete_fields}
    tracked = []
    for field in historical._meta.concrete_fields:
        if field.attname in base:
            tracked.append(field.attname)
        elif field.attname not in (*HISTORY_COLUMNS, "history_id"):
            raise ValueError(f"{historical.__name__}.{field.attname} is neither a copy nor a history column")
    return tracked


def record_history(model: type[models.Model], pks: Sequence[Any] | models.QuerySet, *, history_type: str,
                   user: AbstractBaseUser | None, reason: str, stood: dict[str, Any] | None = None) -> int:
    """One history row for each record of `model` whose key is in `pks` (a list, or a query giving
    keys), as the record now stands: the row simple_history would write. Returns how many.

    `stood` gives fields the rows had then and no longer have (a case written at the status it
    reached, whose "created" row says where it started): those values stand in for the stored ones."""
    written = 0
    with connection.cursor() as cursor:
        for statement, params in _history_statements(model, pks, history_type=history_type, user=user, reason=reason,
                                                     stood=stood):
            cursor.execute(statement, params)
            written += cursor.rowcount
    return written


def _history_statements(model: type[models.Model], pks: Sequence[Any] | models.QuerySet, *, history_type: str,
                        user: AbstractBaseUser | None, reason: str,
                        stood: dict[str, Any] | None) -> list[tuple[str, list[Any]]]:
    """The statements (SQL and parameters) of `record_history`."""
    historical = model.history.model  # type: ignore[attr-defined]
    tracked = _tracked(model)
    stood = stood or {}
    unknown = set(stood) - set(tracked)
    if unknown:
        raise ValueError(f"{model.__name__} keeps no history of {sorted(unknown)}")
    table = connection.ops.quote_name(historical._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(historical._meta.get_field(name).column)
                        for name in (*tracked, *HISTORY_COLUMNS))
    db = connections[DEFAULT_DB_ALIAS]
    quote = connection.ops.quote_name
    picked = "src.*" if not stood else ", ".join(
        "%s" if name in stood else f"src.{quote(_column(concrete_field(model, name)))}" for name in tracked)
    replaced = [concrete_field(model, name).get_db_prep_save(stood[name], db) for name in tracked if name in stood]
    constants = [connection.ops.adapt_datetimefield_value(timezone.now()), history_type,
                 user.pk if user is not None else None, reason[:REASON_LENGTH]]
    if isinstance(pks, models.QuerySet):
        chunks: list[Any] = [pks]
    elif on_postgresql():
        chunks = [keys_in(pks)] if pks else []
    else:
        iterator = iter(pks)
        chunks = list(iter(lambda: list(islice(iterator, CHUNK)), []))
    statements = []
    for chunk in chunks:
        source = model._base_manager.filter(pk__in=chunk).order_by().values_list(*tracked)
        select, params = source.query.sql_with_params()
        statements.append((f"INSERT INTO {table} ({columns}) SELECT {picked}, %s, %s, %s, %s FROM ({select}) AS src",  # noqa: S608 identifiers from the models' own _meta, quoted; every value is a parameter
                           [*replaced, *constants, *params]))
    return statements


class Writes:
    """The statements of a bulk write, built first and sent after, in order: rows for COPY (prepared as
    `insert_rows` prepares them) and history rows (`record_history`). On PostgreSQL only.

    Built, they need nothing more of Python but to be sent: `send` sends them on this thread,
    `WritesBehind` on a helper thread while this one builds the next."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Any]] = []

    def insert_rows(self, model: type[models.Model], names: Sequence[str], rows: Iterable[Sequence[Any]], *,
                    ready: bool = False) -> int:
        """`insert_rows`, to be sent. The rows are prepared and encoded for COPY now, by psycopg's own
        encoding with the connection's adapters, so that sending them is only sending. Returns how many."""
        fields, prepared = _rows_prepared(model, names, rows, ready=ready)
        connection.ensure_connection()
        encoded = io.BytesIO()
        count = 0
        with connection.connection.cursor() as cursor, Copy(cursor, writer=FileWriter(encoded)) as copy:
            for row in prepared:
                copy.write_row(row)
                count += 1
        self._steps.append((_copy_statement(model, fields), encoded.getvalue()))
        return count

    def record_history(self, model: type[models.Model], pks: Sequence[Any], *, history_type: str,
                       user: AbstractBaseUser | None, reason: str, stood: dict[str, Any] | None = None) -> None:
        """`record_history`, to be sent (after the rows it copies)."""
        self._steps += _history_statements(model, pks, history_type=history_type, user=user, reason=reason,
                                           stood=stood)

    def send(self) -> None:
        with connection.cursor() as cursor, connection.wrap_database_errors:
            self._send(cursor.cursor)

    def _send(self, cursor: Any) -> None:
        """Send the statements on a psycopg cursor."""
        for statement, values in self._steps:
            if statement.startswith("COPY "):
                with cursor.copy(statement) as copy:
                    copy.write(values)
            else:
                cursor.execute(statement, values)
        self._steps = []


class WritesBehind:
    """Bulk writes sent by a helper thread, on the caller's own connection and in its transaction, while
    the caller goes on to build the next ones: the database stores one chunk of a register while
    Python works out the next, instead of each waiting for the other.

    One batch of writes at a time: `send` waits for the one before. What must follow a batch (a
    signal whose receivers read what it wrote) is given as `then` and runs on the caller's thread
    once the batch is written. The caller's own statements in between wait for the helper's
    statement of the moment (psycopg's connection lock) and must not depend on the batch still
    being sent: the caller reads only what the batch does not write (new keys, the next rows), and
    opens no savepoint, until `wait`. With the foreign keys checked as each statement ends (not at
    commit, where no Python work is left to overlap), their checks are the helper's work too; they
    are deferred again on leaving.

    Used as a context manager: leaving waits for the last batch; on an error, the helper's failure
    (the cause of the caller's, which then finds the transaction aborted) is the one raised.
    Elsewhere than on PostgreSQL, entering and leaving do nothing, and nothing is sent."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._failed: BaseException | None = None
        self._then: Callable[[], None] | None = None

    def __enter__(self) -> WritesBehind:
        if on_postgresql():
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: Any) -> None:
        if error is not None:
            self._join()
            if self._failed is not None:
                failed, self._failed = self._failed, None
                with connection.wrap_database_errors:
                    raise failed from error
            return
        self.wait()
        if on_postgresql():
            with connection.cursor() as cursor:
                # Every foreign key of the schema is deferrable and deferred at first (none is only
                # deferrable): the transaction's own setting, back as it was.
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    def send(self, writes: Writes, *, then: Callable[[], None] | None = None) -> None:
        """Have `writes` (built on PostgreSQL, as every `Writes` is) sent, once the batch before is."""
        self.wait()
        connection.ensure_connection()
        raw = connection.connection

        def sending() -> None:
            try:
                with raw.cursor() as cursor:
                    writes._send(cursor)
            except BaseException as error:  # handed to the caller's thread, which raises it
                self._failed = error

        self._then = then
        self._thread = threading.Thread(target=sending, name="bulk-writes", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Wait for the batch being sent, raise its failure, and run what follows it."""
        self._join()
        if self._failed is not None:
            failed, self._failed, self._then = self._failed, None, None
            with connection.wrap_database_errors:
                raise failed
        then, self._then = self._then, None
        if then is not None:
            then()

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def insert_recorded(objs: Sequence[models.Model], model: type[models.Model], *,
                    user: AbstractBaseUser | None, reason: str) -> list[Any]:
    """New records (`insert_instances`), each with its "created" history row."""
    created = insert_instances(objs, model)
    record_history(model, [obj.pk for obj in created], history_type=CREATED, user=user, reason=reason)
    return created
