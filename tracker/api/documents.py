"""Records written as JSON by PostgreSQL: the same documents the serializers write, without a model
instance or a serializer call per row.

A page of 100 cases holds the cases, their children, about five entries each and their open flags:
thousands of values. Built into model instances and written out by DRF, that was most of the page's
time. Here the page's own query asks PostgreSQL for each case's JSON text (`json_build_object`, the
entries and flags by `json_agg` in scalar subqueries), and the view joins the texts into the answer.

What goes into each document is read from the serializer itself: its fields, their sources, and how
DRF writes each kind of value (a datetime in the current time zone as `isoformat` gives it, `Z` for
UTC; a date as ISO; a number or a text as it is). A method field has no source to read: each one is
given here as SQL, and a serializer with a method field this module does not know is refused when the
query is built, so a new field cannot go missing from the API unseen. The rows chosen (which entries
and flags the caller may see) come from the same querysets the serializer path uses.
`tests/tracker/test_api_documents.py` compares the two paths' JSON on records of every kind.

PostgreSQL only: on SQLite (`make run`) the view writes through the serializers.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any, cast

from django.contrib.postgres.aggregates.mixins import OrderableAggMixin
from django.db import models
from django.db.models import Aggregate, Case, Expression, F, Func, OuterRef, QuerySet, Subquery, When
from django.db.models.expressions import Combinable, RawSQL
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone
from rest_framework import fields as f
from rest_framework import serializers

JSON = models.JSONField()
EMPTY_LIST = RawSQL("'[]'::json", ())
# A time zone name goes into the SQL as a parameter; this only keeps out what no zone is called.
ZONE_NAME = re.compile(r"^[A-Za-z0-9_+\-/]+$")


class JSONObject(Expression):
    """`json_build_object` over named expressions, in the order given (a `json`, not a `jsonb`, so
    the keys keep the serializer's order)."""

    output_field = JSON

    def __init__(self, pairs: Sequence[tuple[str, Any]]) -> None:
        super().__init__()
        for key, _ in pairs:
            if not key.isidentifier():
                raise ValueError(f"not a field name: {key!r}")
        self.keys = [key for key, _ in pairs]
        self.values = [value if hasattr(value, "resolve_expression") else F(value) for _, value in pairs]

    def get_source_expressions(self) -> list[Any]:
        return self.values

    def replace(self, wrappers: dict[str, Callable[[Any], Any]]) -> None:
        """Each named value wrapped: `{"entry": lambda value: ...}`."""
        for key, wrap in wrappers.items():
            index = self.keys.index(key)
            self.values[index] = wrap(self.values[index])

    def set_source_expressions(self, expressions: Sequence[Any]) -> None:
        self.values = list(expressions)

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, Any]:
        parts: list[str] = []
        params: list[Any] = []
        for key, value in zip(self.keys, self.values, strict=True):
            sql, more = compiler.compile(value)
            parts.append(f"'{key}', {sql}")
            params.extend(more)
        return f"json_build_object({', '.join(parts)})", params


class JSONAgg(OrderableAggMixin, Aggregate):
    """`json_agg` in a given order."""

    function = "JSON_AGG"
    template = "%(function)s(%(distinct)s%(expressions)s %(order_by)s)"
    output_field = JSON


class DRFDateTime(Expression):
    """A timestamp as DRF's `DateTimeField` writes it: in the given zone, `isoformat` (microseconds only
    when there are some), `Z` for an offset of zero; null stays null."""

    output_field = models.TextField()

    def __init__(self, source: Any, zone: str) -> None:
        super().__init__()
        if not ZONE_NAME.match(zone):
            raise ValueError(f"not a time zone name: {zone!r}")
        self.source = source if hasattr(source, "resolve_expression") else F(source)
        self.zone = zone

    def get_source_expressions(self) -> list[Any]:
        return [self.source]

    def set_source_expressions(self, expressions: Sequence[Any]) -> None:
        (self.source,) = expressions

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, Any]:
        value, value_params = compiler.compile(self.source)
        sql: list[str] = []
        params: list[Any] = []

        def put(*pieces: str) -> None:
            # "V" is the value, "L" the value in the zone, "U" in UTC (both without a zone, so that
            # their difference is the zone's offset); anything else is SQL.
            for piece in pieces:
                if piece == "V":
                    sql.append(f"({value})")
                    params.extend(value_params)
                elif piece == "L":
                    sql.append(f"(({value}) AT TIME ZONE %s)")
                    params.extend([*value_params, self.zone])
                elif piece == "U":
                    sql.append(f"(({value}) AT TIME ZONE 'UTC')")
                    params.extend(value_params)
                else:
                    sql.append(piece)

        # The microseconds are always written, then taken out when they are all zero ('.000000' can
        # stand nowhere else); the offset is the difference of the two local times, written as hours
        # and minutes after its sign (seconds of an offset, which only old local mean times have, are
        # left out). Half the cost of taking the offset apart in seconds, for the same text.
        put("CASE WHEN ", "V", " IS NULL THEN NULL ELSE replace(to_char(", "L",
            ", 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), '.000000', '') || CASE WHEN ", "L", " = ", "U",
            " THEN 'Z' WHEN ", "L", " < ", "U", " THEN '-' || to_char(", "U", " - ", "L",
            ", 'HH24:MI') ELSE '+' || to_char(", "L", " - ", "U", ", 'HH24:MI') END END")
        return "".join(sql), params


# SQL for a serializer's method fields, by serializer class and field name: each takes the path to
# the record (`""` for the queried model itself, `"child__"` for a case's child) and gives an expression.
MethodSQL = Callable[[str], Any]


def birth_date_sql(path: str) -> Any:
    """`Child.birth_date_display`, as precise as known; null when unknown (as the serializer writes it)."""
    date, precision = F(f"{path}birth_date"), f"{path}birth_date_precision"
    return Case(
        When(**{f"{path}birth_date__isnull": True}, then=None),
        When(**{precision: "year"}, then=to_char(date, "YYYY")),
        When(**{precision: "month"}, then=to_char(date, "YYYY-MM")),
        default=to_char(date, "YYYY-MM-DD"),
        output_field=models.TextField(),
    )


def to_char(date: Any, pattern: str) -> Func:
    """PostgreSQL's `to_char(date, 'pattern')`; the pattern, capitals and dashes only, is written into the SQL."""
    if not re.fullmatch(r"[A-Z-]+", pattern):
        raise ValueError(f"not a date pattern: {pattern!r}")
    return Func(date, template=f"to_char(%(expressions)s, '{pattern}')", output_field=models.TextField())


def current_zone() -> str:
    return timezone.get_current_timezone_name()


def value_sql(field: f.Field, model: type[models.Model], path: str, zone: str,
              methods: dict[str, MethodSQL]) -> Any:
    """The SQL writing one serializer field of a record reached by `path`, as DRF writes it."""
    if isinstance(field, serializers.SerializerMethodField):
        if field.field_name not in methods:
            raise LookupError(f"{type(field.parent).__name__}.{field.field_name} is written by a method: "
                              "give its SQL to tracker.api.documents")
        return methods[field.field_name](path)
    lookup = "__".join(field.source_attrs)
    target: Any = model
    model_field: Any = None
    for attr in field.source_attrs:
        model_field = next((one for one in target._meta.concrete_fields if attr in (one.name, one.attname)), None)
        if model_field is None:
            raise LookupError(f"{model.__name__}.{field.source}: not a stored field")
        if model_field.is_relation and attr == model_field.name:
            # A related record given by its key, as DRF's primary-key fields write it.
            if attr == field.source_attrs[-1]:
                lookup = lookup[: -len(attr)] + model_field.attname
                return F(f"{path}{lookup}")
            target = model_field.related_model
    if isinstance(field, f.DateTimeField):
        return DRFDateTime(F(f"{path}{lookup}"), zone)
    if isinstance(field, f.CharField | f.IntegerField | f.ChoiceField | f.DateField | f.JSONField
                  | f.BooleanField | f.EmailField | f.URLField):
        return F(f"{path}{lookup}")
    raise LookupError(f"{model.__name__}.{field.source}: no SQL for a {type(field).__name__}")


def document(serializer: serializers.Serializer, model: type[models.Model], zone: str, *, path: str = "",
             methods: dict[str, MethodSQL] | None = None,
             nested: dict[str, Any] | None = None) -> JSONObject:
    """The JSON object the serializer writes for one record, as an expression over the record's row.
    `nested` gives the expression of each nested serializer's field (subqueries, chosen children)."""
    pairs: list[tuple[str, Any]] = []
    for field in serializer.fields.values():
        if field.write_only:
            continue
        name = cast(str, field.field_name)
        if nested and name in nested:
            pairs.append((name, nested[name]))
        elif isinstance(field, serializers.BaseSerializer):
            raise LookupError(f"{type(serializer).__name__}.{name}: a nested serializer needs its SQL")
        else:
            pairs.append((name, value_sql(field, model, path, zone, methods or {})))
    return JSONObject(pairs)


def aggregated(rows: QuerySet[Any], outer: str, doc: JSONObject, order_by: Sequence[str | Combinable]) -> Any:
    """The documents of `rows` whose `outer` key is the outer query's record, as a JSON array in
    `order_by`'s order, `[]` when there are none."""
    grouped = (rows.filter(**{outer: OuterRef("pk")}).order_by().values(outer)
               .annotate(documents=JSONAgg(doc, order_by=order_by)).values("documents"))
    return Coalesce(Subquery(grouped, output_field=JSON), EMPTY_LIST, output_field=JSON)


def as_text(doc: Expression) -> Cast:
    """The document as JSON text, which the view passes on as it is."""
    return Cast(doc, models.TextField())


class Keys:
    """Where a statement's record keys go: compiled once with this in place of the keys, and run with
    each page's keys put where it stands among the parameters."""

    def sql(self) -> RawSQL:
        return RawSQL("SELECT unnest(%s::bigint[])", [self])


class Statements:
    """Compiled statements by key, at most `size` of them (the least recently used goes first).

    Building a page's documents as ORM expressions and compiling them costs more than running them,
    and the result differs only by who asks (their organisation, whether they see restricted fields)
    and the time zone. Nothing in such a statement may depend on the time or the data: the same key
    must always build the same SQL.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self.compiled: OrderedDict[Hashable, tuple[str, list[Any], int]] = OrderedDict()
        self.lock = threading.Lock()

    def statement(self, key: Hashable, build: Callable[[Keys], QuerySet[Any]],
                  ids: list[int]) -> tuple[str, list[Any]]:
        with self.lock:
            found = self.compiled.get(key)
            if found is not None:
                self.compiled.move_to_end(key)
        if found is None:
            keys = Keys()
            sql, params = build(keys).query.sql_with_params()
            places = [n for n, param in enumerate(params) if param is keys]
            if len(places) != 1:
                raise ValueError("the statement must take its keys in one place")
            found = (sql, list(params), places[0])
            with self.lock:
                self.compiled[key] = found
                while len(self.compiled) > self.size:
                    self.compiled.popitem(last=False)
        sql, compiled_params, place = found
        given = list(compiled_params)
        given[place] = [int(one) for one in ids]
        return sql, given


STATEMENTS = Statements()

