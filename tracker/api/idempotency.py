"""Idempotency-Key for POSTs: the same key twice gives one record and the first answer again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from django.db import transaction
from rest_framework.request import Request
from rest_framework.response import Response

from tracker.api.errors import IdempotencyKeyReused, problem
from tracker.models import ApiKey, IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200


def _scope(request: Request) -> str:
    if isinstance(request.auth, ApiKey):
        return f"org:{request.auth.organisation_id}"
    return f"user:{request.user.pk}"


def _fingerprint(request: Request) -> str:
    body = json.dumps(request.data, sort_keys=True, default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def idempotent(request: Request, create: Callable[[], Response]) -> Response:
    """Run `create` once per key. A successful answer is stored in the same transaction as the write,
    so a retry after a lost connection gets it back; a refused request stores nothing and may be
    corrected and sent again under the same key. A concurrent twin waits on the key's row and then
    gets the stored answer."""
    key = request.headers.get(HEADER)
    if key is None:
        return create()
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        return problem(400, f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters.", request=request,
                       errors=[{"field": HEADER, "message": "invalid length"}])
    fingerprint = _fingerprint(request)
    with transaction.atomic():
        record, created = IdempotencyRecord.objects.select_for_update().get_or_create(
            scope=_scope(request), key=key, defaults={"request_fingerprint": fingerprint}
        )
        if not created:
            if record.request_fingerprint != fingerprint:
                raise IdempotencyKeyReused(f"this {HEADER} was used for a different request")
            return Response(record.response_body, status=record.response_status,
                            headers={"Idempotent-Replayed": "true"})
        response = create()
        if response.status_code >= 300:
            transaction.set_rollback(True)
            return response
        record.response_status = response.status_code
        record.response_body = response.data
        record.save(update_fields=["response_status", "response_body"])
        return response
