"""Writes to children and their case files; every status change goes through `case_change_status`."""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from cases.matching.names import latin_key
from cases.models import Case, CaseEvent, Child, RecordAccess
from cases.signals import case_status_changed, child_merged
from core.bulk import CHANGED, insert_recorded, insert_rows, keys_in, record_history, update_instances

Status = Case.Status

# The case's road: open → on a list → awaiting reply → reply received → located / verifying →
# return in progress → returned, and closed with a reason from anywhere. A reply that claims the
# child was located or returned jumps straight to verifying, since every claim is checked.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    Status.OPEN: frozenset({Status.ON_LIST, Status.CLOSED}),
    Status.ON_LIST: frozenset({Status.AWAITING_REPLY, Status.OPEN, Status.CLOSED}),
    Status.AWAITING_REPLY: frozenset({Status.REPLY_RECEIVED, Status.VERIFYING, Status.ON_LIST, Status.CLOSED}),
    Status.REPLY_RECEIVED: frozenset({Status.VERIFYING, Status.ON_LIST, Status.AWAITING_REPLY, Status.CLOSED}),
    Status.VERIFYING: frozenset({Status.RETURN_IN_PROGRESS, Status.REPLY_RECEIVED, Status.ON_LIST, Status.CLOSED}),
    Status.RETURN_IN_PROGRESS: frozenset({Status.RETURNED, Status.VERIFYING, Status.CLOSED}),
    Status.RETURNED: frozenset({Status.CLOSED}),
    Status.CLOSED: frozenset({Status.OPEN}),
}


class TransitionNotAllowed(Exception):
    """A status change the case's road does not allow; names both ends so the user can see why."""

    def __init__(self, case: Case, to_status: str, reason: str = "") -> None:
        self.case = case
        self.to_status = to_status
        allowed = ", ".join(Status(s).label for s in sorted(ALLOWED_TRANSITIONS[case.status])) or "none"
        message = reason or (
            f"case {case.pk} cannot move from “{Status(case.status).label}” to “{Status(to_status).label}”; "
            f"allowed next: {allowed}"
        )
        super().__init__(message)


def can_transition(from_status: str, to_status: str) -> bool:
    return to_status in ALLOWED_TRANSITIONS.get(from_status, frozenset())


def case_open(*, child: Child, actor: User | None, assignee: Any = None, priority: int | None = None,
              note: str = "") -> Case:
    """Open a case for a child that has no live case; the timeline starts with who opened it."""
    with transaction.atomic():
        case = Case.objects.create(
            child=child, assignee=assignee, priority=priority or Case.Priority.NORMAL, status=Status.OPEN
        )
        CaseEvent.objects.create(
            case=case, kind=CaseEvent.Kind.OPENED, to_status=Status.OPEN, actor=actor, message=note
        )
    return case


def case_change_status(
    *,
    case: Case,
    to_status: str,
    actor: User | None,
    note: str = "",
    closing_reason: str = "",
    kind: str = CaseEvent.Kind.STATUS_CHANGED,
    data: dict[str, Any] | None = None,
    on: datetime.date | None = None,
) -> Case:
    """Move a case to `to_status` if its road allows it, and write the timeline event with it.

    The case row is locked for the transaction, so two workers or two case workers changing the
    same case one after the other each see the status the other left.
    """
    if to_status not in Status.values:
        raise TransitionNotAllowed(case, Status.OPEN, reason=f"“{to_status}” is not a case status")
    with transaction.atomic():
        locked = Case.objects.select_for_update().get(pk=case.pk)
        if not can_transition(locked.status, to_status):
            raise TransitionNotAllowed(locked, to_status)
        if to_status == Status.CLOSED and closing_reason not in Case.ClosingReason.values:
            raise TransitionNotAllowed(locked, to_status, reason="closing a case needs a reason from the list")
        from_status = locked.status
        if from_status == Status.CLOSED and (
            Case.objects.filter(child_id=locked.child_id).exclude(status=Status.CLOSED).exclude(pk=locked.pk).exists()
        ):
            raise TransitionNotAllowed(locked, to_status, reason=f"child {locked.child_id} already has a live case")
        locked.status = to_status
        if to_status == Status.CLOSED:
            locked.closed_on = on or timezone.localdate()
            locked.closing_reason = closing_reason
            locked.closing_note = note
        elif from_status == Status.CLOSED:
            locked.closed_on = None
            locked.closing_reason = ""
            locked.closing_note = ""
        # simple_history keeps 100 characters of a reason (a longer note failed the whole change);
        # the timeline event below keeps the note whole.
        reason = note or f"{Status(from_status).label} → {Status(to_status).label}"
        locked._change_reason = reason[:100]  # type: ignore[attr-defined]
        locked.save(update_fields=["status", "closed_on", "closing_reason", "closing_note", "updated_at"])
        CaseEvent.objects.create(
            case=locked,
            kind=kind,
            from_status=from_status,
            to_status=to_status,
            actor=actor,
            message=note,
            data={**(data or {}), **({"closing_reason": closing_reason} if closing_reason else {})},
        )
        case_status_changed.send(sender=Case, changes=[(locked, from_status, to_status)], actor=actor)
    case.refresh_from_db()
    return case


# A timeline line as `cases_move_many` and `cases_open_many` write them, many at once.
EVENT_FIELDS = ("case_id", "kind", "from_status", "to_status", "actor_id", "message", "data", "happened_at")


@dataclass(frozen=True)
class StatusStep:
    """One step of many cases moved together: the status reached, and the timeline line for it."""

    to_status: str
    kind: str
    message: str


def cases_move_many(
    *,
    cases: Sequence[Case],
    steps: Callable[[Case], Sequence[StatusStep]],
    actor: User | None,
    data: dict[str, Any] | None = None,
) -> int:
    """Move many cases at once, each along the steps `steps(case)` gives it (a step to the status the
    case already has is a timeline line only), in a handful of statements whatever their number.

    The same road as `case_change_status`: the rows are locked, every step must be allowed, and
    each step leaves its timeline event; history rows and the status-change signal go in bulk.
    Returns how many cases moved.
    """
    with transaction.atomic():
        # The rows are locked and their statuses read afresh; the caller's instances carry them
        # (reading thousands of cases back as new instances cost more than the rest of the move).
        statuses = dict(Case.objects.select_for_update().filter(pk__in=keys_in(c.pk for c in cases)).values_list(
            "pk", "status"))
        locked: dict[int, Case] = {}
        for case in cases:
            locked.setdefault(case.pk, case).status = statuses[case.pk]
        moved: list[Case] = []
        events: list[tuple[Any, ...]] = []
        actor_id = actor.pk if actor is not None else None
        changes: list[tuple[Case, str, str]] = []
        now = timezone.now()
        for case in cases:
            current = locked[case.pk]
            start = current.status
            for step in steps(current):
                if step.to_status == current.status:
                    # A line on the timeline that moves nothing (a case further along, listed again).
                    events.append((current.pk, step.kind, "", "", actor_id, step.message, data or {}, now))
                    continue
                if not can_transition(current.status, step.to_status):
                    raise TransitionNotAllowed(current, step.to_status)
                events.append((current.pk, step.kind, current.status, step.to_status, actor_id, step.message,
                               data or {}, now))
                current.status = step.to_status
            if current.status != start:
                current.updated_at = now
                moved.append(current)
                changes.append((current, start, current.status))
            case.status = current.status
        # One UPDATE per status reached (Django's bulk_update builds a CASE per row, far slower here),
        # then the history rows in bulk.
        by_status: dict[str, list[int]] = defaultdict(list)
        for case in moved:
            by_status[case.status].append(case.pk)
        for status, ids in by_status.items():
            Case.objects.filter(pk__in=keys_in(ids)).update(status=status, updated_at=now)
        record_history(Case, [case.pk for case in moved], history_type=CHANGED, user=actor,
                       reason="Moved with its list")
        insert_rows(CaseEvent, EVENT_FIELDS, events)
        if changes:
            case_status_changed.send(sender=Case, changes=changes, actor=actor)
    return len(moved)


def children_create_many(*, children: Sequence[Child], actor: User | None, note: str) -> list[Case]:
    """New children and their opened cases, in bulk: the same records `child_create` makes one by one
    (derived names, match keys, history, an "opened" line on each timeline)."""
    from cases.matching.candidates import backfill_match_keys

    with transaction.atomic():
        for child in children:
            child.fill_derived()
        created = insert_recorded(children, Child, user=actor, reason=note)
        backfill_match_keys(created)
        return cases_open_many(children=created, actor=actor, note=note)


def cases_open_many(*, children: Sequence[Child], actor: User | None, note: str) -> list[Case]:
    """A case opened for each child, in bulk, each with its first timeline line."""
    with transaction.atomic():
        cases = insert_recorded([Case(child=child, status=Status.OPEN) for child in children], Case,
                                user=actor, reason=note)
        now, actor_id = timezone.now(), actor.pk if actor is not None else None
        opened: Iterable[Sequence[Any]] = (
            (case.pk, CaseEvent.Kind.OPENED, "", Status.OPEN, actor_id, note, {}, now) for case in cases)
        insert_rows(CaseEvent, EVENT_FIELDS, opened)
    return cases


def children_add_spellings(*, spellings: Sequence[tuple[Child, str, str, str]], source: str,
                           actor: User | None) -> int:
    """Keep each spelling of a child's name seen elsewhere as an alias, unless one already known (by its
    folded Latin key, so "Shevchenko" and "Шевченко" are one): (child, family, given, patronymic) each,
    for many children in bulk. Returns how many spellings were new."""
    from cases.matching.candidates import sync_match_keys_many

    changed: dict[int, Child] = {}
    for child, family_name, given_name, patronymic in spellings:
        spelling = " ".join(part for part in (family_name, given_name, patronymic) if part).strip()
        if spelling and not _spelling_known(child, spelling):
            child.aliases = [*(child.aliases or []), spelling]
            changed[child.pk] = child
    if changed:
        with transaction.atomic():
            now = timezone.now()
            for child in changed.values():
                child.fill_derived()
                child.updated_at = now
            update_instances(list(changed.values()), Child, ["aliases", "search_names", "updated_at"])
            record_history(Child, list(changed), history_type=CHANGED, user=actor, reason=f"Spelling from {source}")
            sync_match_keys_many(list(changed.values()))
    return len(changed)


def case_close(*, case: Case, actor: User | None, reason: str, note: str = "") -> Case:
    return case_change_status(case=case, to_status=Status.CLOSED, actor=actor, closing_reason=reason, note=note)


def case_add_event(
    *, case: Case, kind: str, actor: User | None, message: str = "", data: dict[str, Any] | None = None
) -> CaseEvent:
    """A timeline line that changes no status: a note, a list the case was put on, a flag."""
    return CaseEvent.objects.create(case=case, kind=kind, actor=actor, message=message, data=data or {})


class StaleRecord(Exception):
    """The record changed after the caller read it; nothing was written."""


def child_update_last_known(
    *,
    child: Child,
    actor: User | None,
    source: str,
    expected_updated_at: datetime.datetime | None = None,
    **changes: Any,
) -> Child:
    """Record where the child was last known to be, on the timeline of each live case.

    With `expected_updated_at`, the write happens only if the child is still as the caller read it.
    """
    allowed = {"last_known_location", "last_known_on"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"cannot update {', '.join(sorted(unknown))} here")
    with transaction.atomic():
        locked = Child.objects.select_for_update().get(pk=child.pk)
        if expected_updated_at is not None and locked.updated_at != expected_updated_at:
            raise StaleRecord(f"child {child.pk} changed since it was read")
        for field, value in changes.items():
            setattr(locked, field, value)
        locked._change_reason = f"Last known whereabouts from {source}"  # type: ignore[attr-defined]
        locked.save(update_fields=[*changes, "updated_at"])
        said = ", ".join(f"{field.replace('_', ' ')}: {value or '—'}" for field, value in changes.items())
        for case in Case.objects.filter(child=locked).exclude(status=Status.CLOSED):
            case_add_event(case=case, kind=CaseEvent.Kind.NOTE, actor=actor,
                           message=f"Last known whereabouts from {source}: {said}", data={"source": source})
            # The case's ETag covers its child: a new timeline line is a change of the case too.
            case.save(update_fields=["updated_at"])
    child.refresh_from_db()
    return child


def _spelling_known(child: Child, spelling: str) -> bool:
    known = {latin_key(" ".join(p for p in names if p)) for names in (
        (child.family_name, child.given_name, child.patronymic),
        (child.family_name, child.given_name),
        (child.family_name_latin, child.given_name_latin, child.patronymic_latin),
        (child.family_name_latin, child.given_name_latin),
    )}
    known |= {latin_key(str(alias)) for alias in child.aliases or []}
    return latin_key(spelling) in known


# Fields a merge copies from the duplicate when the record kept leaves them blank.
MERGE_FILLS_BLANK = ("patronymic", "home_settlement", "home_oblast", "last_known_location", "last_known_on",
                     "icrc_reference", "nib_reference", "guardian_name", "guardian_contact", "relatives")


class MergeRefused(Exception):
    """A merge that cannot be made; nothing was written."""


def child_merge(*, keep: Child, merge: Child, actor: User | None, note: str = "") -> Child:
    """Make `merge` a duplicate of `keep`: its cases, list entries, names and siblings go to `keep`.

    Nothing is deleted. The duplicate's record stays, pointing at the child kept (`merged_into`),
    with its history; its names become aliases of the kept child; its cases move with their whole
    timeline, and when both children have a live case, the duplicate's is closed as a duplicate.
    Its list entries move through the `child_merged` signal (the tracker owns them).
    """
    if keep.pk == merge.pk:
        raise MergeRefused("a child cannot be merged into itself")
    with transaction.atomic():
        # Locked in id order, so that two merges of the same pair cannot deadlock.
        locked = {c.pk: c for c in Child.objects.select_for_update().filter(pk__in=[keep.pk, merge.pk]).order_by("pk")}
        kept, duplicate = locked[keep.pk], locked[merge.pk]
        for child in (kept, duplicate):
            if child.merged_into_id is not None:
                raise MergeRefused(f"child {child.pk} was already merged into child {child.merged_into_id}")
        said = f"Child {duplicate.pk} ({duplicate}) merged into child {kept.pk} ({kept})"
        said += f": {note}" if note else ""

        for spelling in (
            (duplicate.family_name, duplicate.given_name, duplicate.patronymic),
            (duplicate.family_name_latin, duplicate.given_name_latin, duplicate.patronymic_latin),
        ):
            words = " ".join(part for part in spelling if part)
            if words and not _spelling_known(kept, words):
                kept.aliases = [*(kept.aliases or []), words]
        for alias in duplicate.aliases or []:
            if not _spelling_known(kept, str(alias)):
                kept.aliases = [*(kept.aliases or []), alias]
        for field_name in MERGE_FILLS_BLANK:
            if not getattr(kept, field_name) and getattr(duplicate, field_name):
                setattr(kept, field_name, getattr(duplicate, field_name))
        if kept.birth_date is None and duplicate.birth_date is not None:
            kept.birth_date, kept.birth_date_precision = duplicate.birth_date, duplicate.birth_date_precision
        # simple_history keeps 100 characters of a reason; the timeline keeps the whole message.
        reason = f"Child {duplicate.pk} merged into child {kept.pk}"
        kept._change_reason = reason  # type: ignore[attr-defined]
        kept.save()
        kept.siblings.add(*duplicate.siblings.exclude(pk=kept.pk))

        live = Case.objects.filter(child=kept).exclude(status=Status.CLOSED).first()
        for case in Case.objects.filter(child=duplicate).order_by("pk"):
            if live is not None and case.status != Status.CLOSED:
                case = case_change_status(case=case, to_status=Status.CLOSED, actor=actor,
                                          closing_reason=Case.ClosingReason.DUPLICATE,
                                          note=f"Duplicate of case {live.pk}: {said}")
            case.child = kept
            case._change_reason = reason  # type: ignore[attr-defined]
            case.save(update_fields=["child", "updated_at"])
            case_add_event(case=case, kind=CaseEvent.Kind.NOTE, actor=actor, message=said,
                           data={"merged_child": duplicate.pk, "kept_child": kept.pk})
        if live is not None:
            case_add_event(case=live, kind=CaseEvent.Kind.NOTE, actor=actor, message=said,
                           data={"merged_child": duplicate.pk, "kept_child": kept.pk})

        duplicate.merged_into = kept
        duplicate._change_reason = reason  # type: ignore[attr-defined]
        duplicate.save(update_fields=["merged_into", "updated_at"])
        child_merged.send(sender=Child, keep=kept, merged=duplicate, actor=actor)
    keep.refresh_from_db()
    merge.refresh_from_db()
    return keep


def log_child_reads(child_ids: Iterable[int], *, channel: str, path: str, user: User | None,
                    partner_id: int | None = None, api_key_prefix: str = "", client: str = "") -> int:
    """One read-log row per child shown, exported or opened, in one statement, whatever the door:
    the admin, an export, the partner API (which names the partner and its key). Returns the rows written."""
    rows = RecordAccess.objects.bulk_create([
        RecordAccess(child_id=child_id, user=user if user is not None and user.is_authenticated else None,
                     channel=channel, partner_id=partner_id, api_key_prefix=api_key_prefix, client=client,
                     path=path[:500])
        for child_id in dict.fromkeys(child_ids)
    ])
    return len(rows)
