"""The admin's exports: a handover list as the document handed over, and the filtered cases as a file.

Mixed into the list's and the case's admin pages in tracker/admin.py. What each file may carry is
decided in tracker/exports.py; every child written to a file is logged as read through "export".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from cases.admin import ModelAdminMixin
from cases.models import Case, RecordAccess
from cases.services import log_child_reads
from core.users import signed_in_user
from tracker.models import HandoverList
from tracker.services.exports import (
    CSV_CONTENT_TYPE,
    PDF_CONTENT_TYPE,
    XLSX_CONTENT_TYPE,
    attachment,
    cases_csv,
    cases_for_export,
    cases_xlsx,
    handover_list_pdf,
    handover_list_xlsx,
    in_chunks,
)

HANDOVER_FORMATS: dict[str, tuple[Callable[[HandoverList], bytes], str]] = {
    "xlsx": (handover_list_xlsx, XLSX_CONTENT_TYPE),
    "pdf": (handover_list_pdf, PDF_CONTENT_TYPE),
}


def log_exported(request: HttpRequest, child_ids: Iterable[int]) -> None:
    log_child_reads(child_ids, channel=RecordAccess.Channel.EXPORT, path=request.get_full_path(),
                    user=signed_in_user(request))


class HandoverListExportMixin(ModelAdminMixin):
    """`<id>/export/xlsx/` and `<id>/export/pdf/`, linked from the list's page (its change_form template)."""

    admin_site: admin.AdminSite
    model: type[HandoverList]

    def get_urls(self) -> list[URLPattern]:
        # Before the admin's own "<id>/" pattern, which would otherwise take "<id>/export/…" as a bad id.
        return [
            path("<path:object_id>/export/<str:fmt>/", self.admin_site.admin_view(self.export_view),
                 name="tracker_handoverlist_export"),
            *super().get_urls(),
        ]

    def export_view(self, request: HttpRequest, object_id: str, fmt: str) -> HttpResponse:
        if fmt not in HANDOVER_FORMATS:
            raise Http404(gettext("No export as %(format)s.") % {"format": fmt})
        handover_list = self.get_object(request, unquote(object_id))
        if handover_list is None:
            raise Http404(gettext("No such list."))
        # The document names every child on the list: it needs the right to see children, too.
        if not (self.has_view_permission(request, handover_list)
                and request.user.has_perm("cases.view_child")):
            raise PermissionDenied
        render, content_type = HANDOVER_FORMATS[fmt]
        content = render(handover_list)
        log_exported(request, handover_list.entries.values_list("child_id", flat=True))
        return HttpResponse(content, content_type=content_type,
                            headers=attachment(f"{handover_list.reference}.{fmt}"))


class CaseExportActionsMixin:
    """"Export selected cases" as CSV or XLSX: the selection, or with "select all" every case the
    current filters and search show. No restricted field, whoever exports (tracker/exports.py)."""

    @admin.action(description=_("Export selected cases (CSV)"), permissions=["view"])
    def export_cases_csv(self, request: HttpRequest, queryset: QuerySet[Case]) -> StreamingHttpResponse:
        cases = self._cases_logged(request, queryset)
        return StreamingHttpResponse(cases_csv(cases, include_restricted=False), content_type=CSV_CONTENT_TYPE,
                                     headers=attachment(f"cases-{timezone.localdate():%Y-%m-%d}.csv"))

    @admin.action(description=_("Export selected cases (XLSX)"), permissions=["view"])
    def export_cases_xlsx(self, request: HttpRequest, queryset: QuerySet[Case]) -> HttpResponse:
        cases = self._cases_logged(request, queryset)
        return HttpResponse(cases_xlsx(cases, include_restricted=False), content_type=XLSX_CONTENT_TYPE,
                            headers=attachment(f"cases-{timezone.localdate():%Y-%m-%d}.xlsx"))

    def _cases_logged(self, request: HttpRequest, queryset: QuerySet[Case]) -> Iterator[Case]:
        cases = cases_for_export(queryset, lists=HandoverList.objects.all())
        return in_chunks(cases, lambda chunk: log_exported(request, [case.child_id for case in chunk]))
