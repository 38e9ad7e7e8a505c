"""What holds the API to its published contract on every endpoint: nothing sent is silently ignored
(unknown query parameters, unknown body fields and bad orderings are refused, naming them), requests
are counted against their rate limits before anything else is decided, and every answer carries the
caller's rate-limit standing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


# A body's keys must each be a field the request may set: a misspelt or read-only field is an error
# naming it, reported together with any other error of the same body. (A comment, not a docstring:
# the schema would show a docstring as each request body's description.)
class RefusesUnknownFields(serializers.Serializer):

    def to_internal_value(self, data: Any) -> Any:
        unknown: dict[str, Any] = {}
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = {str(name): [gettext("not a field of this request")] for name in data if name not in writable}
        try:
            value = super().to_internal_value(data)
        except ValidationError as refused:
            if unknown and isinstance(refused.detail, dict):
                raise ValidationError({**refused.detail, **unknown}) from refused
            raise
        if unknown:
            raise ValidationError(unknown)
        return value


class StrictOrderingFilter(OrderingFilter):
    """`ordering` as DRF reads it, but a term it does not offer is an error rather than dropped."""

    def remove_invalid_fields(self, queryset: Any, fields: Iterable[str], view: Any, request: Request) -> list[str]:
        fields = list(fields)
        valid = super().remove_invalid_fields(queryset, fields, view, request)
        refused = [term for term in fields if term not in valid]
        if refused:
            offered = ", ".join(item[0] for item in self.get_valid_fields(queryset, view, {"request": request}))
            raise ValidationError({self.ordering_param: [
                gettext("cannot order by %(terms)s; choose from %(offered)s, each optionally with a leading -")
                % {"terms": ", ".join(refused), "offered": offered}]})
        return valid


def query_parameters_taken(view: Any) -> set[str]:
    """The query parameters this endpoint reads, for the action being served."""
    taken = set(ALWAYS_ALLOWED)
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
