"""What holds the API to its published contract on every endpoint: nothing sent is silently ignored
(unknown query parameters, unknown body fields and bad orderings are refused, naming them), requests
are counted against their rate limits before anything else is decided, and every answer carries the
caller's rate-limit standing."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.http import Http404
from django.utils.translation import gettext
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed, Throttled, ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tracker.api.throttling import RateWindow, count_failed_authentication

# Read by DRF on any endpoint: the browsable API's and the export's choice of format.
ALWAYS_ALLOWED = frozenset({"format"})


def json_type_problem(field: serializers.Field, value: Any) -> str | None:
    """What is wrong with a value's JSON type for a field, if anything: DRF takes "5" for a number,
    0 for false and 5 for a text, which a client's mistake should not pass for."""
    if value is None:
        return None if field.allow_null else gettext("may not be null")
    expected: tuple[type, ...]
    if isinstance(field, serializers.BooleanField):
        expected, name = (bool,), gettext("a JSON boolean (true or false)")
    elif isinstance(field, serializers.IntegerField | serializers.FloatField | serializers.DecimalField):
        expected, name = (int, float), gettext("a JSON number")
        if isinstance(value, bool):
            return gettext("must be %(name)s") % {"name": name}
    elif isinstance(field, serializers.ListField | serializers.ListSerializer | serializers.MultipleChoiceField):
        expected, name = (list,), gettext("a JSON array")
    elif isinstance(field, serializers.Serializer | serializers.DictField | serializers.JSONField):
        expected, name = (dict,), gettext("a JSON object")
    elif isinstance(field, serializers.CharField | serializers.ChoiceField | serializers.DateField
                    | serializers.DateTimeField):
        expected, name = (str,), gettext("a JSON string")
    else:
        return None
    return None if isinstance(value, expected) else gettext("must be %(name)s") % {"name": name}


# A body is taken as the schema shows it: each key a field the request may set (a misspelt or
# read-only field is an error naming it), each value of its field's JSON type; reported together
# with any other error of the same body. (A comment, not a docstring: the schema would show a
# docstring as each request body's description.)
class StrictJSONBody(serializers.Serializer):
    def to_internal_value(self, data: Any) -> Any:
        problems: dict[str, Any] = {}
        if isinstance(data, Mapping):
            writable = {name: field for name, field in self.fields.items() if not field.read_only}
            for name, value in data.items():
                field = writable.get(name)
                wrong = gettext("not a field of this request") if field is None else json_type_problem(field, value)
                if wrong:
                    problems[str(name)] = [wrong]
        try:
            value = super().to_internal_value(data)
        except ValidationError as refused:
            if problems and isinstance(refused.detail, dict):
                raise ValidationError({**refused.detail, **problems}) from refused
            raise
        if problems:
            raise ValidationError(problems)
        return value


class StrictOrderingFilter(OrderingFilter):
    """`ordering=term[,term…]`, each term a field the endpoint offers, optionally after a `-`: anything
    else (an unknown field, a space, an empty value) is an error rather than dropped."""

    def offered(self, view: Any, request: Request | None = None) -> list[str]:
        # Every view here lists its ordering_fields, so no queryset is needed to read them.
        return [str(item[0]) for item in self.get_valid_fields(None, view, {"request": request})]  # type: ignore[arg-type]

    def get_ordering(self, request: Request, queryset: Any, view: Any) -> Any:
        given = request.query_params.get(self.ordering_param)
        if given is None:
            return self.get_default_ordering(view)
        offered = self.offered(view, request)
        terms = given.split(",")
        refused = [term for term in terms if term.removeprefix("-") not in offered]
        if refused:
            raise ValidationError({self.ordering_param: [
                gettext("cannot order by “%(terms)s”; choose from %(offered)s, each optionally after a -, "
                        "separated by commas") % {"terms": ",".join(refused), "offered": ", ".join(offered)}]})
        return terms

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        terms = "|".join(re.escape(name) for name in self.offered(view))
        return [{
            "name": self.ordering_param, "required": False, "in": "query",
            "description": gettext("Order by these fields (%(offered)s), each optionally after a - for "
                                   "descending, separated by commas.") % {"offered": ", ".join(self.offered(view))},
            "schema": {"type": "string", "pattern": f"^-?({terms})(,-?({terms}))*$"},
        }]


def query_parameters_taken(view: Any) -> set[str]:
    """The query parameters this endpoint reads, for the action being served."""
    taken = set(ALWAYS_ALLOWED) | set(getattr(view, "extra_query_parameters", ()))
    for backend in getattr(view, "filter_backends", None) or []:
        if issubclass(backend, DjangoFilterBackend) and getattr(view, "filterset_class", None):
            taken |= set(view.filterset_class.base_filters)
        elif issubclass(backend, OrderingFilter):
            taken.add(backend.ordering_param)
    pagination = getattr(view, "pagination_class", None)
    if pagination is not None:
        taken |= {name for name in (getattr(pagination, "cursor_query_param", None),
                                    getattr(pagination, "page_size_query_param", None)) if name}
    return taken


class ContractView(APIView):
    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # DRF's own steps, with the rate limit counted first: a request refused for want of a key, or
        # for the format it asks for, still counts (against its address, or its key).
        self.format_kwarg = self.get_format_suffix(**kwargs)
        request.version, request.versioning_scheme = self.determine_version(request, *args, **kwargs)
        self.perform_authentication(request)
        self.check_throttles(request)
        request.accepted_renderer, request.accepted_media_type = self.perform_content_negotiation(request)
        self.check_permissions(request)
        unknown = sorted(set(request.query_params) - query_parameters_taken(self))
        if unknown:
            raise ValidationError({name: [gettext("not a query parameter of this endpoint")] for name in unknown})

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[Any, str]:
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:  # DRF's answer to a `format` none of the endpoint's renderers has
            raise ValidationError({"format": [gettext("not a format this endpoint gives")]}) from None

    def perform_authentication(self, request: Request) -> None:
        try:
            super().perform_authentication(request)
        except AuthenticationFailed:
            window = count_failed_authentication(request)
            if not window.admitted:
                raise Throttled(wait=window.reset_seconds) from None
            raise

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        window: RateWindow | None = getattr(request, "rate_window", None)
        if window is not None:
            for header, value in window.headers().items():
                response[header] = value
        return response
