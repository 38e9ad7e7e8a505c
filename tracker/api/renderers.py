"""Renderers for the export endpoint: `?format=csv|xlsx` picks one, and errors still come as problem JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.renderers import BaseRenderer, JSONRenderer

from tracker.services.exports import XLSX_CONTENT_TYPE


class FileRenderer(BaseRenderer):
    """Passes a file's bytes through as they are.

    The view answers with the file itself, so these render only what DRF sends on an error (a dict of
    problem details), which is written as JSON under the problem's own content type.
    """

    def render(self, data: Any, accepted_media_type: str | None = None,
               renderer_context: Mapping[str, Any] | None = None) -> bytes:
        if isinstance(data, bytes):
            return data
        return JSONRenderer().render(data, accepted_media_type, renderer_context)


class CSVRenderer(FileRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"


class XLSXRenderer(FileRenderer):
    media_type = XLSX_CONTENT_TYPE
    format = "xlsx"
    charset = None
