"""Cursor pagination in a stable order, so that a sync never skips or repeats a record; a page size
or cursor the API did not issue is refused, naming the parameter."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import DateTimeField, QuerySet
from django.utils.translation import gettext
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request


class StableCursorPagination(CursorPagination):
    ordering: tuple[str, ...] = ("updated_at", "id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request: Request) -> int:
        given = request.query_params.get(self.page_size_query_param)
        if given is None:
            return self.page_size
        if not given.isascii() or not given.isdigit() or not 1 <= int(given) <= self.max_page_size:
            raise ValidationError({self.page_size_query_param: [
                gettext("a whole number from 1 to %(most)d") % {"most": self.max_page_size}]})
        return int(given)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": self.max_page_size})
            elif parameter["name"] == self.cursor_query_param:
                parameter["description"] = gettext("A page's position, as given in `next` or `previous`: "
                                                   "follow those links as they are.")
        return parameters

    def paginate_queryset(self, queryset: QuerySet | Sequence[Any], request: Request,
                          view: Any = None) -> list[Any] | None:
        assert isinstance(queryset, QuerySet)  # noqa: S101 the API pages querysets only
        self.model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Request) -> Cursor | None:
        invalid = ValidationError({self.cursor_query_param: [
            gettext("not a cursor this API gave: follow the `next` and `previous` links as they are")]})
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise invalid from None
        if cursor is None or cursor.position is None:
            return cursor
        # The position goes into the page's WHERE clause: it must be a value of the ordering's field.
        name = self.ordering[0].lstrip("-")
        try:
            field = self.model._meta.get_field(name)
            value = field.clean(cursor.position, None)
            if isinstance(field, DateTimeField):
                if not isinstance(value, datetime.datetime) or value.tzinfo is None:
                    raise invalid
                value = value.astimezone(datetime.UTC)
        except (FieldDoesNotExist, DjangoValidationError, OverflowError, ValueError, TypeError):
            raise invalid from None
        # The stubs type a position as a number; DRF takes the ordering field's value as text.
        return Cursor(offset=cursor.offset, reverse=cursor.reverse, position=str(value))  # type: ignore[arg-type]


class RemovalCursorPagination(StableCursorPagination):
    """Removals in the order they happened."""

    ordering = ("occurred_at", "id")


class DeliveryCursorPagination(StableCursorPagination):
    """Deliveries, newest first."""

    ordering = ("-id",)
