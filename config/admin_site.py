"""The case workers' admin site, whose start page shows what needs attention today."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone

START_PAGE_ROWS = 15


class TrackerAdminSite(admin.AdminSite):
    site_header = "Case tracker: deported and displaced children"
    site_title = "Case tracker"
    index_title = "Needs attention"
    index_template = "admin/tracker_index.html"

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        from tracker import selectors

        today = timezone.localdate()
        context = {
            "today": today,
            "flag_counts": selectors.open_flag_counts(),
            "overdue_flags": selectors.overdue_entries(limit=START_PAGE_ROWS),
            "waiting_lists": selectors.lists_awaiting_replies(today=today, limit=START_PAGE_ROWS),
            "recent_replies": selectors.recent_replies(limit=START_PAGE_ROWS),
            **(extra_context or {}),
        }
        return super().index(request, context)
