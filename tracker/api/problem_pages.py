"""The error catalogue: a page for each problem type the API answers with, at the URI in its `type`."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe
from django.views.defaults import page_not_found
from rest_framework.renderers import JSONRenderer

from tracker.api.errors import PROBLEM_CONTENT_TYPE, PROBLEM_TYPES, problem


@require_safe
def problem_index(request: HttpRequest) -> HttpResponse:
    return render(request, "api/problems.html", {"problems": PROBLEM_TYPES})


@require_safe
def problem_page(request: HttpRequest, slug: str) -> HttpResponse:
    if slug not in PROBLEM_TYPES:
        raise Http404(slug)
    return render(request, "api/problem.html", {"slug": slug, "problem": PROBLEM_TYPES[slug]})


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 for a path no view answers: problem details under /api/, the usual page elsewhere."""
    if not request.path.startswith("/api/"):
        return page_not_found(request, exception)
    answer = problem(404, "There is no such endpoint.", slug="not-found", request=request)
    return HttpResponse(JSONRenderer().render(answer.data), status=404, content_type=PROBLEM_CONTENT_TYPE)
