"""The brief for a round of talks, as a page of the admin and a PDF in Ukrainian or English, linked from
the round's page. It names the children still without an answer: each of them is logged as read."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils.translation import gettext

from cases.models import RecordAccess
from cases.services import log_child_reads
from core.users import signed_in_user
from tracker.models import Round
from tracker.services.briefs import child_name, round_brief, round_brief_pdf, summary_sentence
from tracker.services.exports import PDF_CONTENT_TYPE, attachment, safe_name


def round_brief_view(request: HttpRequest, round_id: int, language: str | None = None) -> HttpResponse:
    user = request.user
    if not (user.has_perm("tracker.view_round") and user.has_perm("tracker.view_handoverlist")
            and user.has_perm("cases.view_child")):
        raise PermissionDenied
    round_ = get_object_or_404(Round, pk=round_id)
    brief = round_brief(round_=round_)
    children = [entry.child_id for entry in brief.awaiting]
    if language is not None:
        if language not in dict(settings.LANGUAGES):
            raise Http404(gettext("No brief in that language."))
        content = round_brief_pdf(brief, language=language)
        log_child_reads(children, channel=RecordAccess.Channel.EXPORT, path=request.get_full_path(),
                        user=signed_in_user(request))
        return HttpResponse(content, content_type=PDF_CONTENT_TYPE,
                            headers=attachment(f"{safe_name(round_.name)}-{language}.pdf"))
    log_child_reads(children, channel=RecordAccess.Channel.ADMIN, path=request.get_full_path(),
                    user=signed_in_user(request))
    context = {
        **admin.site.each_context(request),
        "title": gettext("Brief for the next round: %(round)s") % {"round": round_.name},
        "opts": Round._meta,
        "round": round_,
        "brief": brief,
        "summary": summary_sentence(brief),
        "awaiting_groups": [(hl, [(entry, child_name(entry)) for entry in entries])
                            for hl, entries in brief.awaiting_by_list()],
        "overdue": [(bl, brief.days_overdue(bl.overdue_since)) for bl in brief.overdue],
        "languages": settings.LANGUAGES,
    }
    return TemplateResponse(request, "admin/tracker/round/brief.html", context)
