"""The one body format the API reads: a JSON document, within a size and a nesting depth."""

from __future__ import annotations

import codecs
import json
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from django.utils.translation import gettext
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.json import strict_constant

# Deeper than any body the API takes (a reply's outcomes are three levels down); a deeper document is
# refused before anything walks it.
MAX_DEPTH = 16


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"


def nesting_depth(document: Any) -> int:
    """How deep lists and objects nest, counted without recursion."""
    deepest, pending = 0, [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            return deepest
        pending.extend((child, depth + 1) for child in children)
    return deepest


class BoundedJSONParser(BaseParser):
    """Strict JSON (no NaN or Infinity), refusing a body over `API_MAX_BODY_BYTES` (413) before reading
    it whole, and one nested past `MAX_DEPTH` (400) rather than letting the decoder recurse until Python
    stops it. Not a subclass of DRF's JSONParser, which DRF hands the whole body read at once."""

    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(self, stream: IO[Any], media_type: str | None = None,
              parser_context: Mapping[str, Any] | None = None) -> Any:
        limit: int = settings.API_MAX_BODY_BYTES
        too_large = RequestTooLarge(gettext("The body is larger than %(limit)d bytes.") % {"limit": limit})
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise too_large
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise too_large
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.decode(raw, encoding)
            document = json.loads(text, parse_constant=strict_constant)
        except RecursionError as exc:
            raise ParseError(gettext("The JSON document is nested too deeply.")) from exc
        except (ValueError, LookupError) as exc:
            raise ParseError(gettext("JSON parse error: %(error)s") % {"error": exc}) from exc
        if nesting_depth(document) > MAX_DEPTH:
            raise ParseError(gettext("The JSON document is nested more than %(depth)d levels deep.")
                             % {"depth": MAX_DEPTH})
        return document
