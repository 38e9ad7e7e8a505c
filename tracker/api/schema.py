"""The schema as the contract: what drf-spectacular reads from the views, completed with what every
endpoint shares (the problem details of each error status, the rate-limit headers on every answer,
Retry-After on 429) so that a client generated from it knows every answer it can get."""

from __future__ import annotations

from typing import Any

from tracker.api.errors import PROBLEM_CONTENT_TYPE
from tracker.api.idempotency import MAX_KEY_LENGTH

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")

COMPONENT_SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details: every error the API answers.",
        "properties": {
            "type": {"type": "string", "format": "uri",
                     "description": "The address of this problem's page in the error catalogue, "
                                    "/api/v1/problems/<slug>/: what it means and what to do."},
            "title": {"type": "string", "description": "The problem's type, in words."},
            "status": {"type": "integer", "description": "The HTTP status of the answer."},
            "detail": {"type": "string", "description": "What went wrong with this request."},
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/ProblemFieldError"},
                       "description": "For invalid requests: each field, parameter or header that was wrong."},
        },
        "required": ["type", "title", "status", "detail"],
    },
    "ProblemFieldError": {
        "type": "object",
        "properties": {
            "field": {"type": "string",
                      "description": "Where: a body field (`outcomes[1].outcome`), a query parameter or a header."},
            "message": {"type": "string"},
        },
        "required": ["field", "message"],
    },
}

COMPONENT_HEADERS: dict[str, Any] = {
    "RateLimit-Limit": {"description": "Requests allowed in the current window (per key; per address for "
                                       "requests that fail to authenticate).",
                        "required": True, "schema": {"type": "integer", "minimum": 0}},
    "RateLimit-Remaining": {"description": "Requests left in the current window.",
                            "required": True, "schema": {"type": "integer", "minimum": 0}},
    "RateLimit-Reset": {"description": "Seconds until the current window ends and the count starts again.",
                        "required": True, "schema": {"type": "integer", "minimum": 0}},
    "Retry-After": {"description": "Seconds to wait before trying again.",
                    "required": True, "schema": {"type": "integer", "minimum": 0}},
    "ETag": {"description": "The record's version: send it in If-Match to update the record, or in "
                            "If-None-Match to be answered 304 while it is unchanged.",
             "required": True, "schema": {"type": "string"}},
    "Idempotent-Replayed": {"description": "`true` when this is the stored answer to an earlier request with "
                                           "the same Idempotency-Key: nothing new was created.",
                            "required": False, "schema": {"type": "string", "enum": ["true"]}},
}

# Each error status an operation may answer, and when.
ERROR_WHEN = {
    400: "Invalid request: a body field, query parameter or header missing, unknown or of a value not allowed "
         "(each named in `errors`), or a body that is not JSON.",
    401: "No API key, or a malformed, unknown, revoked or expired one.",
    403: "The key's scopes, or the share, do not allow this.",
    404: "No such record, or not shared with you.",
    406: "The Accept header asks for a format this endpoint does not give.",
    409: "The request conflicts with the record's current state.",
    412: "If-Match holds no current ETag of the record: it changed since you read it. Nothing was changed.",
    413: "The body is larger than the API takes.",
    415: "The body is not sent as application/json.",
    422: "This Idempotency-Key was already used for a different request.",
    428: "If-Match is missing.",
    429: "Too many requests: wait the seconds in Retry-After.",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def names_of(operation: dict[str, Any]) -> set[str]:
    return {parameter.get("name") for parameter in operation.get("parameters", [])}


def _statuses(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    statuses = {400, 401, 403, 406, 429}
    if "{" in path:
        statuses.add(404)
    if method in ("post", "put", "patch"):
        statuses |= {413, 415}
    names = names_of(operation)
    if "Idempotency-Key" in names:
        statuses |= {409, 422}
    if "If-Match" in names:
        statuses |= {409, 412, 428}
    return statuses


def document_the_contract(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular post-processing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update(COMPONENT_SCHEMAS)
    components.setdefault("headers", {}).update(COMPONENT_HEADERS)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            for parameter in operation.get("parameters", []):
                # Record ids in paths are numbers (the URLs take digits only).
                if parameter.get("in") == "path" and parameter.get("schema", {}).get("pattern") == "^[0-9]+$":
                    parameter["schema"] = {"type": "integer", "minimum": 0}
                if parameter.get("in") == "header" and parameter.get("name") == "Idempotency-Key":
                    parameter["schema"] = {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH,
                                           "pattern": r"\S"}
            responses = operation.setdefault("responses", {})
            for status in sorted(_statuses(path, method, operation)):
                answer = responses.setdefault(str(status), {})
                answer["description"] = answer.get("description") or ERROR_WHEN[status]
                answer["content"] = {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM_REF}}
            conditional = bool(names_of(operation) & {"If-Match", "If-None-Match"})
            for status, answer in responses.items():
                headers = answer.setdefault("headers", {})
                if conditional and status in ("200", "304"):
                    headers["ETag"] = _ref("ETag")
                if "Idempotency-Key" in names_of(operation) and status.startswith("2"):
                    headers["Idempotent-Replayed"] = _ref("Idempotent-Replayed")
                # A path no endpoint takes is answered before any count.
                if status == "404":
                    headers.update({name: {**COMPONENT_HEADERS[name], "required": False}
                                    for name in RATE_LIMIT_HEADERS})
                else:
                    headers.update({name: _ref(name) for name in RATE_LIMIT_HEADERS})
                if status == "429":
                    headers["Retry-After"] = _ref("Retry-After")
    return result
