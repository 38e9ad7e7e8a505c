"""What the tracker's admin pages share: outcomes in words, refusals reported field by field."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest

from tracker.models import ListEntry, Outcome
from tracker.services.exchange import (
    ExchangeError,
)


def outcome_label(entry: ListEntry) -> str:
    """The outcome last claimed for an entry in words: the column stores only its code."""
    return str(Outcome(entry.last_outcome).label) if entry.last_outcome else "—"


def report_refusal(modeladmin: admin.ModelAdmin, request: HttpRequest, exc: ExchangeError) -> None:
    for where, why in exc.problems:
        modeladmin.message_user(request, f"{where}: {why}", messages.ERROR)
