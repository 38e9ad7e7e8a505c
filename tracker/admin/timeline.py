"""A case's timeline in the reader's language. The services store each line's text in English ("Added to
list … as #2", "Claim disputed: “Located” in the reply of 2025-07-10 (#3)", `tracker/services/exchange.py`,
`cases/services.py`, `tracker/services/flags.py`); the lines they write are read back into their parts here
and said again in the language of the page, dates as written in Ukraine. Lines written before verdicts were
stored in English carry an outcome's or a flag's label in the writer's language; those are read in any of
the interface's languages. A line of any other shape (a note typed by a case worker, a closing's note as
typed) is shown as it was written."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable

from django.conf import settings
from django.contrib import admin
from django.db import models
from django.utils import translation
from django.utils.formats import date_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from cases.admin import CaseEventInline
from cases.models import CaseEvent
from tracker.models import Flag, Outcome, Verification


def _date(iso: str) -> str:
    return date_format(datetime.date.fromisoformat(iso), "SHORT_DATE_FORMAT")


def _outcome(code: str, written: str) -> str:
    return str(Outcome(code).label) if code in Outcome.values else written


def _added(m: re.Match[str], event: CaseEvent) -> str:
    return gettext("Added to list %(list)s as #%(position)s") % {"list": m["list"], "position": m["position"]}


def _handed_over(m: re.Match[str], event: CaseEvent) -> str:
    return gettext("List %(list)s handed over to %(recipient)s on %(date)s") % {
        "list": m["list"], "recipient": m["recipient"], "date": _date(m["date"])}


def _reply(m: re.Match[str], event: CaseEvent) -> str:
    return gettext("Reply of %(date)s to %(list)s #%(position)s: %(outcome)s") % {
        "date": _date(m["date"]), "list": m["list"], "position": m["position"],
        "outcome": _outcome(str(event.data.get("outcome", "")), m["outcome"])}


def _claim(m: re.Match[str], event: CaseEvent) -> str:
    # The label was written in the language of whoever verified the claim.
    by_label = {}
    for language, _name in settings.LANGUAGES:
        with translation.override(language):
            by_label.update({str(label): code for code, label in Outcome.choices})
    code = str(event.data.get("verification", ""))
    verification = str(Verification(code).label).lower() if code in Verification.values else m["verification"]
    said = gettext("Claim “%(outcome)s” marked %(verification)s") % {
        "outcome": _outcome(by_label.get(m["outcome"], ""), m["outcome"]), "verification": verification}
    return f"{said}: {m['note']}" if m["note"] else said


def _label_code(choices: type[models.TextChoices], written: str) -> str:
    """The code of a label written in any of the interface's languages (lines from before were
    written in the writer's language), or "" when it is none of them."""
    for language, _name in settings.LANGUAGES:
        with translation.override(language):
            for code, label in choices.choices:
                if str(label) == written:
                    return str(code)
    return ""


def _judged(m: re.Match[str], event: CaseEvent) -> str:
    """A verdict on a claim: verified, marked unverified or disputed, with its note, the further
    reply's date a dispute sets, or the dispute taken back."""
    outcome = _outcome(_label_code(Outcome, m["outcome"]), m["outcome"])
    claim = gettext("“%(outcome)s” in the reply of %(date)s (#%(position)s)") % {
        "outcome": outcome, "date": _date(m["date"]), "position": m["position"]}
    said = {
        "verified": gettext("Claim verified: %(claim)s"),
        "marked unverified": gettext("Claim marked unverified: %(claim)s"),
        "disputed": gettext("Claim disputed: %(claim)s"),
    }[m["verdict"]] % {"claim": claim}
    if m["note"]:
        said += ": " + m["note"]
    if m["due"]:
        said += gettext(". A further reply is due by %(date)s.") % {"date": _date(m["due"])}
    if m["back"]:
        said += gettext("; no longer disputed, the entry is answered by this claim again")
    return said


def _reassigned(m: re.Match[str], event: CaseEvent) -> str:
    def who(name: str) -> str:
        return gettext("nobody") if name == "nobody" else name

    return gettext("Reassigned from %(before)s to %(after)s: %(reason)s") % {
        "before": who(m["before"]), "after": who(m["after"]), "reason": m["reason"]}


def _dismissed(m: re.Match[str], event: CaseEvent) -> str:
    code = _label_code(Flag.Kind, m["kind"])
    said = gettext("Flag dismissed: %(kind)s") % {"kind": Flag.Kind(code).label if code else m["kind"]}
    return f"{said}: {m['note']}" if m["note"] else said


_ISO = r"\d{4}-\d{2}-\d{2}"
_VERDICT = re.compile(
    rf"^Claim (?P<verdict>verified|marked unverified|disputed): “(?P<outcome>.+?)” in the reply of (?P<date>{_ISO}) "
    rf"\(#(?P<position>\d+)\)(?:: (?P<note>.*?))?(?:\. A further reply is due by (?P<due>{_ISO})\.)?"
    r"(?P<back>; no longer disputed, the entry is answered by this claim again)?$", re.S)

# The shapes the exchange's services write, each with how to say it again.
LINES: list[tuple[str, re.Pattern[str], Callable[[re.Match[str], CaseEvent], str]]] = [
    (CaseEvent.Kind.ADDED_TO_LIST, re.compile(r"^Added to list (?P<list>.+) as #(?P<position>\d+)$"), _added),
    (CaseEvent.Kind.LIST_HANDED_OVER,
     re.compile(r"^List (?P<list>.+) handed over to (?P<recipient>.+) on (?P<date>\d{4}-\d{2}-\d{2})$"), _handed_over),
    (CaseEvent.Kind.REPLY_RECORDED,
     re.compile(r"^Reply of (?P<date>\d{4}-\d{2}-\d{2}) to (?P<list>.+) #(?P<position>\d+): (?P<outcome>.+)$"), _reply),
    (CaseEvent.Kind.REPLY_VERIFIED, _VERDICT, _judged),
    (CaseEvent.Kind.CLAIM_DISPUTED, _VERDICT, _judged),
    # The shape of lines from before verdicts named the reply.
    (CaseEvent.Kind.REPLY_VERIFIED,
     re.compile(r"^Claim “(?P<outcome>.+?)” marked (?P<verification>\w+)(?:: (?P<note>.*))?$", re.S), _claim),
    (CaseEvent.Kind.ASSIGNED, re.compile(r"^Reassigned from (?P<before>.+?) to (?P<after>.+?): (?P<reason>.*)$", re.S),
     _reassigned),
    (CaseEvent.Kind.FLAG_RESOLVED, re.compile(r"^(?P<kind>.+?) dismissed(?:: (?P<note>.*))?$", re.S), _dismissed),
]
# Whole lines the services write as they are.
FIXED = {"Opened with the child's record": _("Opened with the child's record")}


def timeline_text(event: CaseEvent) -> str:
    """The line's text in the active language, or as it was written when its shape is not known."""
    message = event.message
    for kind, pattern, say in LINES:
        if event.kind == kind and (match := pattern.match(message)):
            return say(match, event)
    return str(FIXED.get(message, message))


class TimelineInline(CaseEventInline):
    """The case's timeline, each line in the reader's language."""

    fields = ("happened_at", "kind", "channel", "from_status", "to_status", "actor", "said", "attachment_link")
    restricted = ("said", "attachment_link")

    @admin.display(description=_("message"))
    def said(self, event: CaseEvent) -> str:
        return timeline_text(event)
