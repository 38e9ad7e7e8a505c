"""Every error in one shape: RFC 9457 problem details, naming the field that was wrong, each of a
type whose URI is a page of the API's error catalogue (`/api/v1/problems/<slug>/`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from cases.services import StaleRecord, TransitionNotAllowed
from tracker.services.exchange import ExchangeError

PROBLEM_CONTENT_TYPE = "application/problem+json"


@dataclass(frozen=True)
class ProblemType:
    status: int
    title: str | Promise
    description: str | Promise


# The catalogue: each problem's `type` is the URI of its page here, and the page says what to do.
PROBLEM_TYPES: dict[str, ProblemType] = {
    "invalid-request": ProblemType(400, _("Invalid request"), _(
        "A field of the body, a query parameter or a header was missing, unknown or had a value that is not "
        "allowed. Nothing was changed. `errors` names each field (`outcomes[1].outcome`, `page_size`, "
        "`cursor`) with what was wrong; correct them and send the request again.")),
    "malformed-body": ProblemType(400, _("Malformed body"), _(
        "The body is not JSON the API reads: not valid JSON, nested more deeply than allowed, or not the "
        "encoding announced. Request bodies are JSON objects sent as `application/json`.")),
    "not-authenticated": ProblemType(401, _("Not authenticated"), _(
        "No API key was sent, or the key was malformed, unknown, revoked or expired. Send "
        "`Authorization: Bearer <your API key>`; ask the tracker's case workers for a new key if yours "
        "no longer works. Failed attempts from one address are rate-limited.")),
    "not-allowed": ProblemType(403, _("Not allowed"), _(
        "The key is valid but may not do this: its scopes do not include the one needed (`read` for "
        "reads, `contribute` for writes), the case is shared with you to read only, or the list was not "
        "handed to your organisation.")),
    "not-found": ProblemType(404, _("Not found"), _(
        "There is no such record, or it is not shared with your organisation: the API does not say "
        "which.")),
    "method-not-allowed": ProblemType(405, _("Method not allowed"), _(
        "This endpoint does not take this HTTP method; the `Allow` header lists those it takes.")),
    "not-acceptable": ProblemType(406, _("Not acceptable"), _(
        "The `Accept` header asks for a format this endpoint does not give. The API answers JSON; the "
        "export answers CSV or XLSX (`format=csv|xlsx`).")),
    "conflict": ProblemType(409, _("Conflict"), _(
        "The request conflicts with the record's current state, for instance a status change the "
        "case's status does not allow. Fetch the record again and decide afresh.")),
    "precondition-failed": ProblemType(412, _("Precondition failed"), _(
        "The record changed since you read it: the `If-Match` header holds no current ETag of it. "
        "Nothing was changed. Fetch the record again and retry with its new `ETag`.")),
    "request-too-large": ProblemType(413, _("Request too large"), _(
        "The body is larger than the API takes. Send fewer records per request.")),
    "unsupported-media-type": ProblemType(415, _("Unsupported media type"), _(
        "Request bodies must be JSON sent with `Content-Type: application/json`; forms and multipart "
        "bodies are refused.")),
    "idempotency-key-reused": ProblemType(422, _("Idempotency key reused"), _(
        "This `Idempotency-Key` was already used by your organisation for a different request. Use a "
        "new key for each new request, and the same key only to send the very same request again.")),
    "precondition-required": ProblemType(428, _("Precondition required"), _(
        "An update needs the record's `ETag`, as last read, in an `If-Match` header, so that it cannot "
        "overwrite a change you have not seen.")),
    "rate-limited": ProblemType(429, _("Too many requests"), _(
        "Your key (or, for failed authentication, your address) has used up its requests for the "
        "current window. Wait the number of seconds in `Retry-After`; `RateLimit-Remaining` and "
        "`RateLimit-Reset` on every answer tell you where you stand.")),
}

# DRF's error codes, and the product's own, to the catalogue's types.
CODE_TYPES = {
    "invalid": "invalid-request", "parse_error": "malformed-body", "not_authenticated": "not-authenticated",
    "authentication_failed": "not-authenticated", "permission_denied": "not-allowed", "not_found": "not-found",
    "method_not_allowed": "method-not-allowed", "not_acceptable": "not-acceptable",
    "unsupported_media_type": "unsupported-media-type", "throttled": "rate-limited",
    "precondition_failed": "precondition-failed", "precondition_required": "precondition-required",
    "conflict": "conflict", "transition_not_allowed": "conflict", "request_too_large": "request-too-large",
    "idempotency_key_reused": "idempotency-key-reused",
}
STATUS_TYPES = {problem.status: slug for slug, problem in reversed(PROBLEM_TYPES.items())}


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = _("The record changed since you read it: fetch it again and retry with its new ETag.")
    default_code = "precondition_failed"


class PreconditionRequired(exceptions.APIException):
    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_detail = _("Send the record's ETag in an If-Match header to update it.")
    default_code = "precondition_required"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The request conflicts with the record's current state.")
    default_code = "conflict"


class IdempotencyKeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"


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


def problem_type_uri(slug: str, request: HttpRequest | None = None) -> str:
    path = reverse("api-v1:problem", kwargs={"slug": slug})
    return request.build_absolute_uri(path) if request is not None else path


def problem(status_code: int, detail: str, *, slug: str | None = None, request: HttpRequest | None = None,
            errors: list[dict[str, str]] | None = None, headers: dict[str, str] | None = None) -> Response:
    slug = slug or STATUS_TYPES.get(status_code, "invalid-request")
    kind = PROBLEM_TYPES[slug]
    body: dict[str, Any] = {"type": problem_type_uri(slug, request), "title": str(kind.title),
                            "status": status_code, "detail": detail}
    if errors:
        body["errors"] = errors
    return Response(body, status=status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    request = context.get("request")
    if isinstance(exc, ExchangeError):
        return problem(400, "The request was refused; nothing was changed.", request=request,
                       errors=[{"field": where, "message": why} for where, why in exc.problems])
    if isinstance(exc, StaleRecord):
        exc = PreconditionFailed()
    if isinstance(exc, TransitionNotAllowed):
        return problem(409, str(exc), slug="conflict", request=request)
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
    codes = exc.get_codes()
    slug = CODE_TYPES.get(codes) if isinstance(codes, str) else None
    if slug is None or PROBLEM_TYPES[slug].status != response.status_code:
        slug = STATUS_TYPES.get(response.status_code, "invalid-request")
    headers = {k: v for k, v in response.items() if k in ("WWW-Authenticate", "Retry-After", "Allow")}
    return problem(response.status_code, detail, slug=slug, request=request, errors=errors, headers=headers)
