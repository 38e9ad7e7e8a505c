"""A serializer's output written the way DRF writes it, with the per-field work planned once.

DRF's `Serializer.to_representation` walks the serializer's fields for every record: it filters them,
resolves each field's source through a general lookup that catches and re-raises, and calls the
field's `to_representation`. For a page of 100 cases with their children, entries and flags that is
thousands of calls, most of the request once the SQL is lean. Here the walk is planned once per
serializer instance (a page shares one): plain attributes are read with `operator.attrgetter`, and
the field types whose output is the value itself or its ISO form (text, integers, choices, dates)
are written without a call into the field. Any other field (datetimes with their time zone, method
fields, nested serializers, related keys) goes through DRF's own `get_attribute` and
`to_representation`, so the output is DRF's, byte for byte; `tests/tracker/test_api_representation.py`
compares the two on every serializer that uses this.
"""

from __future__ import annotations

import datetime
import operator
from collections.abc import Callable
from typing import Any

from rest_framework import ISO_8601
from rest_framework import fields as f
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject
from rest_framework.settings import api_settings

Plan = list[tuple[str, Callable[[Any], Any] | None, Callable[[Any], Any] | None, f.Field]]


def _same_text(field: f.Field) -> Callable[[Any], Any]:
    return lambda value: value if type(value) is str else field.to_representation(value)


def _same_int(field: f.Field) -> Callable[[Any], Any]:
    return lambda value: value if type(value) is int else field.to_representation(value)


def _choice(field: f.ChoiceField) -> Callable[[Any], Any]:
    known = field.choice_strings_to_values
    return lambda value: value if type(value) is str and known.get(value) == value else field.to_representation(value)


def _iso_date(field: f.DateField) -> Callable[[Any], Any] | None:
    output = getattr(field, "format", api_settings.DATE_FORMAT)
    if not isinstance(output, str) or output.lower() != ISO_8601:
        return None
    return lambda value: value.isoformat() if type(value) is datetime.date else field.to_representation(value)


def _writer(field: f.Field) -> Callable[[Any], Any] | None:
    """How to write a value of this field without DRF's call, or None to let the field write it. Only
    the exact classes: a subclass may write its values otherwise."""
    kind = type(field)
    if kind in (f.CharField, f.EmailField, f.URLField):
        return _same_text(field)
    if kind is f.IntegerField:
        return _same_int(field)
    if kind is f.ChoiceField:
        return _choice(field)  # type: ignore[arg-type]
    if kind is f.DateField:
        return _iso_date(field)  # type: ignore[arg-type]
    return None


def _model_attributes(serializer: Any) -> frozenset[str]:
    """The names under which the serializer's model keeps a stored value: read with a plain attribute
    lookup, never a method to call (DRF calls what it finds callable)."""
    model = getattr(getattr(serializer, "Meta", None), "model", None)
    if model is None:
        return frozenset()
    return frozenset(field.attname for field in model._meta.concrete_fields)


class PlannedRepresentation:
    """Mixed in before a DRF serializer class: the same output as its `to_representation`, faster."""

    def _representation_plan(self) -> Plan:
        plan: Plan | None = self.__dict__.get("_planned")
        if plan is None:
            stored = _model_attributes(self)
            plan = []
            for field in self._readable_fields:  # type: ignore[attr-defined]
                attrs = field.source_attrs
                plain = len(attrs) == 1 and attrs[0] in stored and type(field).get_attribute is f.Field.get_attribute
                writer = _writer(field) if plain else None
                plan.append((field.field_name, operator.attrgetter(attrs[0]) if writer else None, writer, field))
            self.__dict__["_planned"] = plan
        return plan

    def to_representation(self, instance: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, getter, writer, field in self._representation_plan():
            if getter is not None and writer is not None:
                value = getter(instance)
                out[name] = None if value is None else writer(value)
                continue
            try:
                value = field.get_attribute(instance)
            except SkipField:
                continue
            present = value.pk if isinstance(value, PKOnlyObject) else value
            out[name] = None if present is None else field.to_representation(value)
        return out


def drf_representation(serializer: Any, instance: Any) -> Any:
    """What DRF's own `Serializer.to_representation` writes for `instance`, for comparing in tests."""
    from rest_framework.serializers import Serializer

    return Serializer.to_representation(serializer, instance)
