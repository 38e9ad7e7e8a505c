"""Flags and deadlines: the sweep and the flag digest, plain functions of a date called by Celery and by
commands; and flags raised or dismissed by hand.

The sweep is a handful of set-based statements. Each is idempotent on its own and the partial
unique index on open flags turns a concurrent duplicate into a no-op, so the sweep may run twice,
in two workers at once, or be killed half-way and run again.
"""

from __future__ import annotations

import datetime
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.db.models import F
from django.utils import formats, timezone, translation
from django.utils.translation import gettext, ngettext

from cases.models import Case, CaseEvent
from cases.services import (
    case_add_event,
)
from core.bulk import (
    ANALYZE_AFTER_ROWS,
    refresh_statistics,
)
from tracker.events import flags_swept
from tracker.models import Flag, ListEntry
from tracker.services.exchange import (
    ExchangeError,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResult:
    flagged: int
    escalated: int
    reminded: int
    resolved: int

    def __str__(self) -> str:
        return (
            f"flagged {self.flagged}, escalated {self.escalated}, "
            f"reminded {self.reminded}, resolved {self.resolved}"
        )


def _level_sql(due_column: str, thresholds: Sequence[int], today: datetime.date) -> tuple[str, list[datetime.date]]:
    """SQL for a flag's level: 1, plus one for each escalation threshold the due date is past."""
    parts = ["1"]
    params: list[datetime.date] = []
    for days in sorted(thresholds):
        parts.append(f"CASE WHEN {due_column} <= %s THEN 1 ELSE 0 END")
        params.append(today - datetime.timedelta(days=days))
    return " + ".join(parts), params


def sweep_deadlines(
    *,
    today: datetime.date,
    now: datetime.datetime | None = None,
    escalation_days: Sequence[int] | None = None,
    reminder_days: int | None = None,
) -> SweepResult:
    """Flag, escalate, remind and clear, as things stand on `today`."""
    now = now or timezone.now()
    thresholds = list(escalation_days if escalation_days is not None else settings.TRACKER_ESCALATION_DAYS)
    remind_within = reminder_days if reminder_days is not None else settings.TRACKER_REMINDER_DAYS
    flag_t = Flag._meta.db_table
    entry_t = ListEntry._meta.db_table
    awaiting = ListEntry.ReplyState.AWAITING
    overdue, due_soon = Flag.Kind.OVERDUE, Flag.Kind.DUE_SOON
    R = Flag.Resolution

    with transaction.atomic(), connection.cursor() as cursor:
        resolved = 0
        # Clear what no longer needs attention. The reply service clears its own flags; this
        # catches entries answered or withdrawn by any other path, and changed deadlines.
        # A disputed claim's flag waits for a further reply, whatever its entry's deadline does.
        waiting_kinds = [overdue, due_soon, Flag.Kind.DISPUTED]
        for resolution, kinds, condition, params in (
            (R.ANSWERED, waiting_kinds, "e.reply_state = %s", ["answered"]),
            (R.WITHDRAWN, waiting_kinds, "e.reply_state = %s", ["withdrawn"]),
            (R.DEADLINE_CHANGED, [overdue, due_soon], f"(e.due_on IS NULL OR e.due_on <> {flag_t}.due_on)", []),
            (R.SUPERSEDED, [overdue, due_soon], f"{flag_t}.kind = %s AND e.due_on < %s", [due_soon, today]),
        ):
            cursor.execute(
                f"""
                UPDATE {flag_t} SET resolved_at = %s, resolution = %s
                WHERE resolved_at IS NULL AND kind IN ({", ".join(["%s"] * len(kinds))}) AND EXISTS (
                    SELECT 1 FROM {entry_t} e WHERE e.id = {flag_t}.entry_id AND {condition}
                )
                """,  # noqa: S608 identifiers from the models' own _meta, quoted; every value is a parameter
                [now, resolution, *kinds, *params],
            )
            resolved += cursor.rowcount

        level_sql, level_params = _level_sql("e.due_on", thresholds, today)
        cursor.execute(
            f"""
            INSERT INTO {flag_t}
                (kind, entry_id, case_id, level, due_on, note, raised_at, resolution, notified_level)
            SELECT %s, e.id, e.case_id, {level_sql}, e.due_on, '', %s, '', 0
            FROM {entry_t} e
            WHERE e.reply_state = %s AND e.due_on < %s AND NOT EXISTS (
                SELECT 1 FROM {flag_t} f WHERE f.entry_id = e.id AND f.kind = %s AND f.due_on = e.due_on
            )
            ON CONFLICT DO NOTHING
            """,  # noqa: S608 identifiers from the models' own _meta, quoted; every value is a parameter
            [overdue, *level_params, now, awaiting, today, overdue],
        )
        flagged = cursor.rowcount

        flag_level_sql, flag_level_params = _level_sql("due_on", thresholds, today)
        cursor.execute(
            f"""
            UPDATE {flag_t} SET level = {flag_level_sql}, escalated_at = %s
            WHERE resolved_at IS NULL AND kind = %s AND entry_id IS NOT NULL AND {flag_level_sql} > level
            """,  # noqa: S608 identifiers from the models' own _meta, quoted; every value is a parameter
            [*flag_level_params, now, overdue, *flag_level_params],
        )
        escalated = cursor.rowcount

        cursor.execute(
            f"""
            INSERT INTO {flag_t}
                (kind, entry_id, case_id, level, due_on, note, raised_at, resolution, notified_level)
            SELECT %s, e.id, e.case_id, 1, e.due_on, '', %s, '', 0
            FROM {entry_t} e
            WHERE e.reply_state = %s AND e.due_on >= %s AND e.due_on <= %s AND NOT EXISTS (
                SELECT 1 FROM {flag_t} f WHERE f.entry_id = e.id AND f.kind = %s AND f.due_on = e.due_on
            )
            ON CONFLICT DO NOTHING
            """,  # noqa: S608 identifiers from the models' own _meta, quoted; every value is a parameter
            [due_soon, now, awaiting, today, today + datetime.timedelta(days=remind_within), due_soon],
        )
        reminded = cursor.rowcount
        flags_swept.send(sender=Flag, raised_at=now, escalated_at=now)
        if flagged + escalated + reminded + resolved >= ANALYZE_AFTER_ROWS:
            # The next sweep plans on the flags' statistics: thousands of new flags must be in them.
            refresh_statistics(Flag)

    result = SweepResult(flagged=flagged, escalated=escalated, reminded=reminded, resolved=resolved)
    log.info("deadline sweep for %s: %s", today, result)
    return result


@dataclass(frozen=True)
class DigestResult:
    emails: int
    flags: int


DIGEST_LINES = 200


def send_flag_digests(*, now: datetime.datetime | None = None) -> DigestResult:
    """Email each assignee the flags raised or escalated since they were last told.

    A flag is marked as told in the transaction that sends it: a send that fails rolls the marks
    back and the next run tries again. Rows another worker is sending are skipped, not waited on.
    """
    now = now or timezone.now()
    unassigned_to = list(settings.TRACKER_UNASSIGNED_DIGEST_TO)
    with transaction.atomic():
        pending = (
            Flag.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(resolved_at__isnull=True, notified_level__lt=F("level"))
            .select_related("case__child", "case__assignee", "entry__handover_list")
            .order_by("-level", "entry__due_on", "id")
        )
        if not unassigned_to:
            pending = pending.filter(case__assignee__isnull=False)
        by_recipient: dict[str, list[Flag]] = defaultdict(list)
        for flag in pending:
            assignee = flag.case.assignee
            if assignee is not None and assignee.email:
                by_recipient[assignee.email].append(flag)
            elif unassigned_to:
                by_recipient[",".join(unassigned_to)].append(flag)
        messages = []
        for recipient, flags in by_recipient.items():
            subject, body = _digest(flags)
            messages.append(EmailMessage(subject=subject, body=body, to=recipient.split(",")))
        told = [flag.pk for flags in by_recipient.values() for flag in flags]
        if messages:
            get_connection(fail_silently=False).send_messages(messages)
            Flag.objects.filter(pk__in=told).update(notified_level=F("level"))
    return DigestResult(emails=len(messages), flags=len(told))


def _digest(flags: list[Flag]) -> tuple[str, str]:
    """The digest's subject and body, in Ukrainian and then English (the tracker keeps no language per
    user, and the mail is read by both), one language after the other."""
    subjects, bodies = [], []
    for language, _name in settings.LANGUAGES:
        with translation.override(language):
            lines = [_digest_line(flag) for flag in flags[:DIGEST_LINES]]
            if len(flags) > DIGEST_LINES:
                lines.append(gettext("… and %(n)d more: see the tracker's start page.")
                             % {"n": len(flags) - DIGEST_LINES})
            subjects.append(ngettext("%(n)d flag needs your attention", "%(n)d flags need your attention",
                                     len(flags)) % {"n": len(flags)})
            bodies.append(gettext("New and escalated flags on your cases:") + "\n\n" + "\n".join(lines) + "\n")
    return gettext("Case tracker") + ": " + " / ".join(subjects), "\n\n".join(bodies)


def _digest_line(flag: Flag) -> str:
    where = (f"{flag.entry.handover_list.reference} №{flag.entry.position}" if flag.entry is not None
             else gettext("case flag"))
    due = gettext(", due %(date)s") % {"date": formats.date_format(flag.due_on, "SHORT_DATE_FORMAT")} \
        if flag.due_on else ""
    return gettext("- [%(kind)s, level %(level)d] %(child)s (case %(case)s), %(where)s%(due)s") % {
        "kind": flag.get_kind_display(), "level": flag.level, "child": flag.case.child, "case": flag.case_id,
        "where": where, "due": due}


def flag_raise(*, case: Case, note: str, actor: User | None) -> Flag:
    """A case worker's own flag on a case: something needs attention that no deadline shows."""
    if not note.strip():
        raise ExchangeError([("note", gettext("say what needs attention"))])
    with transaction.atomic():
        flag = Flag.objects.create(kind=Flag.Kind.MANUAL, case=case, note=note, raised_by=actor)
        case_add_event(case=case, kind=CaseEvent.Kind.FLAG_RAISED, actor=actor, message=note, data={"flag": flag.pk})
    return flag


def flag_dismiss(*, flag: Flag, actor: User | None, note: str = "") -> Flag:
    """Close an open flag by hand; the sweep will not raise it again for the same deadline."""
    with transaction.atomic():
        locked = Flag.objects.select_for_update().get(pk=flag.pk)
        if locked.resolved_at is not None:
            return locked
        locked.resolved_at = timezone.now()
        locked.resolution = Flag.Resolution.DISMISSED
        locked.resolved_by = actor
        locked.note = "\n".join(p for p in (locked.note, note) if p)
        locked.save(update_fields=["resolved_at", "resolution", "resolved_by", "note"])
        with translation.override("en"):  # stored in English; the case page says it in the reader's language
            kind = locked.get_kind_display()
        case_add_event(case=locked.case, kind=CaseEvent.Kind.FLAG_RESOLVED, actor=actor,
                       message=f"{kind} dismissed" + (f": {note}" if note else ""),
                       data={"flag": locked.pk})
    return locked
