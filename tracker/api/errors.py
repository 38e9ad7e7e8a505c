"""Every error in one shape: RFC 9457 problem details, naming the field that was wrong."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from cases.services import StaleRecord, TransitionNotAllowed
from tracker.services.exchange import ExchangeError

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://case-tracker.invalid/problems/"


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The record changed since you read it: fetch it again and retry with its new ETag."
    default_code = "precondition_failed"


class PreconditionRequired(exceptions.APIException):
    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_detail = "Send the record's ETag in an If-Match header to update it."
    default_code = "precondition_required"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the record's current state."
    default_code = "conflict"


class UnprocessableRequest(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "unprocessable"


def flatten_errors(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """DRF's nested error dicts and lists as a flat list of {field, message}: `outcomes[2].outcome`."""
    if isinstance(detail, dict):
        found = []
        for key, value in detail.items():
            if key == "non_field_errors":
                name = prefix
            elif isinstance(key, int) or str(key).isdigit():
                name = f"{prefix}[{key}]"
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            found += flatten_errors(value, name)
        return found
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return [{"field": prefix, "message": str(item)} for item in detail]
        found = []
        for index, item in enumerate(detail):
            if item:
                found += flatten_errors(item, f"{prefix}[{index}]")
        return found
    return [{"field": prefix, "message": str(detail)}]


def problem(status_code: int, title: str, detail: str, *, code: str,
            errors: list[dict[str, str]] | None = None, headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"type": PROBLEM_BASE + code, "title": title, "status": status_code, "detail": detail}
    if errors:
        body["errors"] = errors
    return Response(body, status=status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


TITLES = {
    400: "Invalid request", 401: "Not authenticated", 403: "Not allowed", 404: "Not found",
    405: "Method not allowed", 406: "Not acceptable", 409: "Conflict", 412: "Precondition failed",
    415: "Unsupported media type", 422: "Unprocessable request", 428: "Precondition required",
    429: "Too many requests",
}


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ExchangeError):
        return problem(400, TITLES[400], "The request was refused; nothing was changed.", code="invalid",
                       errors=[{"field": where, "message": why} for where, why in exc.problems])
    if isinstance(exc, StaleRecord):
        exc = PreconditionFailed()
    if isinstance(exc, TransitionNotAllowed):
        return problem(409, TITLES[409], str(exc), code="transition_not_allowed")
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    errors = None
    if isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail)
        detail = "The request was refused; nothing was changed. See `errors` for each field."
    else:
        detail = str(exc.detail) if not isinstance(exc.detail, dict | list) else "See `errors`."
    code = exc.get_codes() if isinstance(exc.get_codes(), str) else "invalid"
    headers = {k: v for k, v in response.items() if k in ("WWW-Authenticate", "Retry-After", "Allow")}
    return problem(response.status_code, TITLES.get(response.status_code, "Error"), detail, code=str(code),
                   errors=errors, headers=headers)
