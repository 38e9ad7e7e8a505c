"""Writes to children and their case files; every status change, of one case or many, goes through
`cases_move`."""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from django.contrib.auth.models import User
from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.models import CharField, Exists, OuterRef, Value
from django.db.models.functions import Cast, Concat, TruncYear
from django.utils import timezone
from django.utils.translation import gettext

from cases import read_chain
from cases.matching.candidates import backfill_match_keys, child_match_keys, sync_match_keys_many
from cases.matching.names import latin_key
from cases.models import (
    BirthDatePrecision,
    Case,
    CaseEvent,
    Child,
    ChildAlias,
    ChildMatchKey,
    ClosingRequest,
    RecordAccess,
    derived_names,
    guess_script,
)
from cases.signals import case_status_changed, child_merged, children_anonymised
from core.audit import history_rewrite
from core.bulk import (
    CHANGED,
    CREATED,
    Writes,
    allocate_keys,
    concrete_field,
    insert_recorded,
    insert_rows,
    keys_in,
    on_postgresql,
    record_history,
    update_instances,
)

Status = Case.Status
# The statuses as a set: `Status.values` builds its list anew on each call, and a move of a hundred
# thousand cases asks for it twice a case.
STATUSES = frozenset(Status.values)

# The case's road: open → on a list → awaiting reply → reply received → located / verifying →
# return in progress → returned, and closed with a reason from anywhere. A reply that claims the
# child was located or returned jumps straight to verifying, since every claim is checked.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    Status.OPEN: frozenset({Status.ON_LIST, Status.CLOSED}),
    Status.ON_LIST: frozenset({Status.AWAITING_REPLY, Status.OPEN, Status.CLOSED}),
    Status.AWAITING_REPLY: frozenset({Status.REPLY_RECEIVED, Status.VERIFYING, Status.ON_LIST, Status.CLOSED}),
    Status.REPLY_RECEIVED: frozenset({Status.VERIFYING, Status.ON_LIST, Status.AWAITING_REPLY, Status.CLOSED}),
    # Back to awaiting a reply when the claim being verified is disputed.
    Status.VERIFYING: frozenset({Status.RETURN_IN_PROGRESS, Status.REPLY_RECEIVED, Status.AWAITING_REPLY,
                                 Status.ON_LIST, Status.CLOSED}),
    Status.RETURN_IN_PROGRESS: frozenset({Status.RETURNED, Status.VERIFYING, Status.CLOSED}),
    Status.RETURNED: frozenset({Status.CLOSED}),
    Status.CLOSED: frozenset({Status.OPEN}),
}


class TransitionNotAllowed(Exception):
    """A status change the case's road does not allow; names both ends so the user can see why."""

    def __init__(self, case: Case, to_status: str, reason: str = "") -> None:
        self.case = case
        self.to_status = to_status
        allowed = ", ".join(str(Status(s).label) for s in sorted(ALLOWED_TRANSITIONS[case.status])) or gettext("none")
        message = reason or gettext(
            "case %(case)s cannot move from “%(from)s” to “%(to)s”; allowed next: %(allowed)s"
        ) % {"case": case.pk, "from": Status(case.status).label, "to": Status(to_status).label, "allowed": allowed}
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


@dataclass(frozen=True)
class StatusStep:
    """One step of a case along its road: the status it reaches and the timeline line that says so.

    A step to the status the case already has moves nothing and writes its line alone (a case
    further along, listed again). A step to "closed" needs a reason from `Case.ClosingReason`;
    its message is kept as the closing note. `data` is added to the line's data.
    """

    to_status: str
    kind: str = CaseEvent.Kind.STATUS_CHANGED
    message: str = ""
    closing_reason: str = ""
    data: dict[str, Any] | None = None


# A timeline line as `cases_move` and `cases_open_many` write them, many at once.
EVENT_FIELDS = ("case_id", "kind", "from_status", "to_status", "actor_id", "message", "data", "happened_at")
# What a move writes on the case row itself.
MOVED_FIELDS = ("status", "closed_on", "closing_reason", "closing_note", "updated_at")


@dataclass(frozen=True)
class Moved:
    """What `cases_move` did: each case that changed status, from where to where, and the lines written."""

    changes: list[tuple[Case, str, str]]
    lines: int

    def __len__(self) -> int:
        return len(self.changes)


def cases_move(
    *,
    cases: Sequence[Case],
    steps: Callable[[Case], Sequence[StatusStep]],
    actor: User | None,
    data: dict[str, Any] | None = None,
    reason: str = "",
    on: datetime.date | None = None,
) -> Moved:
    """The one road every status change takes, for one case or ten thousand: each case goes along the
    steps `steps(case)` gives it, asked with the case as it stands under the lock.

    The rows are locked (in key order, so that two movers cannot deadlock) and their statuses read
    afresh; every step must be one the road allows, or nothing at all is written. Each step leaves
    its timeline line; each case moved gets one history row (`reason`, or "from → to"); the
    status-change signal goes once for all. The number of statements does not grow with the number
    of cases. The caller's instances are updated in place.
    """
    if not cases:
        return Moved(changes=[], lines=0)
    with transaction.atomic():
        # Locked and read afresh; the caller's instances carry what was read (reading thousands of
        # cases back as new instances cost more than the rest of the move).
        rows = Case.objects.select_for_update().filter(pk__in=keys_in(c.pk for c in cases)).order_by("pk").values_list(
            "pk", "status", "child_id", "closed_on", "closing_reason", "closing_note")
        fresh: dict[int, tuple[Any, ...]] = {row[0]: tuple(row[1:]) for row in rows}
        locked: dict[int, Case] = {}
        for case in cases:
            if case.pk not in fresh:
                raise Case.DoesNotExist(f"case {case.pk} does not exist")
            if case.pk not in locked:
                current = locked[case.pk] = case
                current.status, current.child_id, current.closed_on, current.closing_reason, current.closing_note = (
                    fresh[case.pk])
            elif locked[case.pk] is not case:
                raise ValueError(f"case {case.pk} is given twice")
        now, today = timezone.now(), on or timezone.localdate()
        actor_id = actor.pk if actor is not None else None
        events: list[tuple[Any, ...]] = []
        changes: list[tuple[Case, str, str]] = []
        for case in locked.values():
            start = case.status
            for step in steps(case):
                line = {**(data or {}), **(step.data or {})}
                if step.to_status == case.status:
                    events.append((case.pk, step.kind, "", "", actor_id, step.message, line, now))
                    continue
                _check_step(case, step)
                if step.to_status == Status.CLOSED:
                    case.closed_on, case.closing_reason, case.closing_note = today, step.closing_reason, step.message
                    line["closing_reason"] = step.closing_reason
                elif case.status == Status.CLOSED:
                    case.closed_on, case.closing_reason, case.closing_note = None, "", ""
                events.append((case.pk, step.kind, case.status, step.to_status, actor_id, step.message, line, now))
                case.status = step.to_status
            if case.status != start:
                case.updated_at = now
                changes.append((case, start, case.status))
        _refuse_second_live_case(changes)
        update_instances([case for case, _, _ in changes], Case, MOVED_FIELDS)
        _closing_requests_superseded(changes, actor=actor, now=now)
        # One history statement per distinct reason: the caller's, or one per pair of statuses.
        by_reason: dict[str, list[int]] = defaultdict(list)
        for case, from_status, to_status in changes:
            by_reason[reason or f"{Status(from_status).label} → {Status(to_status).label}"].append(case.pk)
        for said, ids in by_reason.items():
            record_history(Case, ids, history_type=CHANGED, user=actor, reason=said)
        insert_rows(CaseEvent, EVENT_FIELDS, events)
        if changes:
            case_status_changed.send(sender=Case, changes=changes, actor=actor)
    return Moved(changes=changes, lines=len(events))


def _check_step(case: Case, step: StatusStep) -> None:
    if step.to_status not in STATUSES:
        raise TransitionNotAllowed(case, Status.OPEN, reason=f"“{step.to_status}” is not a case status")
    if not can_transition(case.status, step.to_status):
        raise TransitionNotAllowed(case, step.to_status)
    if step.to_status == Status.CLOSED and step.closing_reason not in Case.ClosingReason.values:
        raise TransitionNotAllowed(case, step.to_status, reason=gettext("closing a case needs a reason from the list"))


def _closing_requests_superseded(changes: Sequence[tuple[Case, str, str]], *, actor: User | None,
                                 now: datetime.datetime) -> None:
    """A case closed by any other road (a supervisor's own closing, a merge) answers the closing that
    awaited approval on it: the request leaves the queue, said to be closed otherwise."""
    closed = [case.pk for case, _, to_status in changes if to_status == Status.CLOSED]
    if closed:
        ClosingRequest.objects.filter(case_id__in=keys_in(closed), state=ClosingRequest.State.PENDING).update(
            state=ClosingRequest.State.SUPERSEDED, decided_by=actor, decided_at=now, updated_at=now)


def _refuse_second_live_case(changes: Sequence[tuple[Case, str, str]]) -> None:
    """A child has at most one live case: a closed case reopened must not be a second one."""
    reopened = {case.child_id: case for case, from_status, to_status in changes
                if from_status == Status.CLOSED and to_status != Status.CLOSED}
    if not reopened:
        return
    moving = [case.pk for case, _, _ in changes]
    taken = Case.objects.filter(child_id__in=keys_in(reopened)).exclude(status=Status.CLOSED).exclude(
        pk__in=keys_in(moving)).values_list("child_id", flat=True).first()
    if taken is not None:
        case = reopened[taken]
        raise TransitionNotAllowed(case, case.status,
                                   reason=gettext("child %(child)s already has a live case") % {"child": taken})


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
    """One case one step along its road (`cases_move` with one case): the case worker's change on the
    case page. The note is the timeline line's message and the history's reason."""
    if to_status not in STATUSES:
        raise TransitionNotAllowed(case, Status.OPEN, reason=f"“{to_status}” is not a case status")
    step = StatusStep(to_status, kind=kind, message=note, closing_reason=closing_reason, data=data)

    def steps(current: Case) -> list[StatusStep]:
        if current.status == to_status:
            # Asked for the status it has: refused as a move to itself, not written as a line alone.
            raise TransitionNotAllowed(current, to_status)
        return [step]

    cases_move(cases=[case], steps=steps, actor=actor, reason=note, on=on)
    case.refresh_from_db()
    return case


def children_create_many(*, children: Sequence[Child], actor: User | None, note: str) -> list[Case]:
    """New children and their opened cases, in bulk: the same records `child_create` makes one by one
    (derived names, match keys, history, an "opened" line on each timeline)."""
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


# A new child's fields as `children_insert` takes them: any of these, the model's defaults for the rest.
NEW_CHILD_FIELDS = ("family_name", "given_name", "patronymic", "family_name_latin", "given_name_latin",
                    "patronymic_latin", "birth_date", "birth_date_precision", "sex", "home_settlement",
                    "home_oblast", "circumstances", "category", "last_known_location", "last_known_on",
                    "icrc_reference", "nib_reference", "notes")


class _NewChild(NamedTuple):
    """What the engine files a new child under, before any instance of it exists."""

    pk: int
    family_name: str
    given_name: str
    patronymic: str
    family_name_latin: str
    given_name_latin: str
    patronymic_latin: str
    birth_date: datetime.date | None
    birth_date_precision: str
    sex: str
    home_settlement: str
    aliases: tuple[str, ...] = ()
    merged_into_id: None = None


def children_insert(*, children: Sequence[dict[str, Any]], actor: User | None, note: str) -> list[int]:
    """New children from their fields (names from `NEW_CHILD_FIELDS`), in bulk: the records
    `children_create_many` writes (derived names, match keys, a "created" history row each), made
    from the values without a model instance for each, as a register of a hundred thousand new
    children needs. Returns their keys, in the order given. Opens no case."""
    unknown = {name for fields in children for name in fields} - set(NEW_CHILD_FIELDS)
    if unknown:
        raise ValueError(f"children_insert takes no {sorted(unknown)}")
    if not children:
        return []
    if not on_postgresql():
        made = [Child(**fields) for fields in children]
        with transaction.atomic():
            for child in made:
                child.fill_derived()
            insert_recorded(made, Child, user=actor, reason=note)
            backfill_match_keys(made)
        return [child.pk for child in made]
    writes = Writes()
    keys = children_planned(writes, children=children, actor=actor, note=note)
    with transaction.atomic():
        writes.send()
    return keys


def children_planned(writes: Writes, *, children: Sequence[dict[str, Any]], actor: User | None,
                     note: str, keys: Sequence[int] | None = None) -> list[int]:
    """The writes of `children_insert` on PostgreSQL, built for the caller to send: the children's keys
    taken (or `keys`, taken by the caller from the table's sequence), their names and match keys
    worked out, their rows prepared. Returns the keys."""
    defaults = {name: concrete_field(Child, name).get_default() for name in NEW_CHILD_FIELDS}
    keys = list(keys) if keys is not None else allocate_keys(Child, len(children))
    if len(keys) != len(children):
        raise ValueError("give one key per child")
    filed: list[tuple[int, str]] = []

    def rows() -> Iterator[tuple[Any, ...]]:
        for pk, fields in zip(keys, children, strict=True):
            values = {**defaults, **fields}
            (values["family_name_latin"], values["given_name_latin"], values["patronymic_latin"],
             search) = derived_names(values["family_name"], values["given_name"], values["patronymic"],
                                     values["family_name_latin"], values["given_name_latin"],
                                     values["patronymic_latin"], None)
            named = _NewChild(pk, values["family_name"], values["given_name"], values["patronymic"],
                              values["family_name_latin"], values["given_name_latin"], values["patronymic_latin"],
                              values["birth_date"], values["birth_date_precision"], values["sex"],
                              values["home_settlement"])
            filed.extend((pk, key) for key in child_match_keys(named))
            yield (pk, *(values[name] for name in NEW_CHILD_FIELDS), search)

    writes.insert_rows(Child, ("id", *NEW_CHILD_FIELDS, "search_names"), rows())
    writes.record_history(Child, keys, history_type=CREATED, user=actor, reason=note)
    # In the order of the candidate search's index (key, child): each key's entries go in side by
    # side instead of at a random leaf each; the other index (child, key) is filled in order anyway.
    filed.sort(key=lambda pair: pair[1])
    writes.insert_rows(ChildMatchKey, ("child_id", "key"), filed, ready=True)
    return keys


# What the status signal's cases carry when `cases_open_listed` sends it: the rest is read on demand,
# as for any case loaded with some of its fields (a hundred thousand full instances took seconds).
_SIGNALLED_FIELDS = ("id", "child_id", "status")


def cases_open_listed(*, child_ids: Sequence[int], steps: Sequence[Sequence[StatusStep]], actor: User | None,
                      note: str, data: dict[str, Any] | None = None, reason: str = "") -> list[int]:
    """A case opened for each of these children, just created (none has a case), and taken at once
    along its own steps (`steps[i]` for `child_ids[i]`; no step may close it): the rows
    `cases_open_many` and then `cases_move` write, checked against the same road, for a hundred
    thousand cases in a fixed number of statements. Each case is written at the status it reaches,
    with its "created" history row at "open" (`note`), its opened line, a line per step (`data`
    added to each), one history row at the status reached (`reason`, or "from → to"), and the
    status-change signal once for all. Returns the cases' keys, in the order given."""
    if len(steps) != len(child_ids):
        raise ValueError("give the steps of each case")
    if not child_ids:
        return []
    if not on_postgresql():
        children = Child.objects.in_bulk(list(child_ids))
        with transaction.atomic():
            opened = cases_open_many(children=[children[pk] for pk in child_ids], actor=actor, note=note)
            by_case = {case.pk: list(case_steps) for case, case_steps in zip(opened, steps, strict=True)}
            cases_move(cases=opened, steps=lambda case: by_case[case.pk], actor=actor, data=data, reason=reason)
        return [case.pk for case in opened]
    writes = Writes()
    keys, changes = cases_listed_planned(writes, child_ids=child_ids, steps=steps, actor=actor, note=note, data=data,
                                         reason=reason)
    with transaction.atomic():
        writes.send()
        cases_listed_signal(changes, actor=actor)
    return keys


def cases_listed_planned(writes: Writes, *, child_ids: Sequence[int], steps: Sequence[Sequence[StatusStep]],
                         actor: User | None, note: str, data: dict[str, Any] | None = None, reason: str = "",
                         keys: Sequence[int] | None = None) -> tuple[list[int], list[tuple[Case, str, str]]]:
    """The writes of `cases_open_listed` on PostgreSQL, built for the caller to send, and the changes
    its status signal carries (`cases_listed_signal`, once they are written). Returns the cases' keys
    (taken from the sequence, or `keys` taken by the caller) and the changes."""
    if len(steps) != len(child_ids) or (keys is not None and len(keys) != len(child_ids)):
        raise ValueError("give the steps and a key of each case")
    now, actor_id = timezone.now(), actor.pk if actor is not None else None
    keys = list(keys) if keys is not None else allocate_keys(Case, len(child_ids))
    reached: list[str] = []
    events: list[tuple[Any, ...]] = []
    # One data object for the lines that share it: the rows' JSON is then written out once.
    opened_data: dict[str, Any] = {}
    shared_data = dict(data or {})
    # The lines go to COPY as built (`ready`): the caller's texts as texts (a translated one may be lazy).
    opened_note = str(note)
    for pk, child_id, case_steps in zip(keys, child_ids, steps, strict=True):
        events.append((pk, CaseEvent.Kind.OPENED, "", Status.OPEN, actor_id, opened_note, opened_data, now))
        status: str = Status.OPEN
        for step in case_steps:
            line = {**shared_data, **step.data} if step.data else shared_data
            message = str(step.message)
            if step.to_status == status:
                events.append((pk, step.kind, "", "", actor_id, message, line, now))
                continue
            if step.to_status == Status.CLOSED:
                raise ValueError("cases_open_listed closes no case")
            if step.to_status not in STATUSES or not can_transition(status, step.to_status):
                _check_step(Case(pk=pk, child_id=child_id, status=status), step)  # says why
            events.append((pk, step.kind, status, step.to_status, actor_id, message, line, now))
            status = step.to_status
        reached.append(status)
    writes.insert_rows(Case, ("id", "child_id", "status"), zip(keys, child_ids, reached, strict=True), ready=True)
    writes.record_history(Case, keys, history_type=CREATED, user=actor, reason=note, stood={"status": Status.OPEN})
    writes.insert_rows(CaseEvent, EVENT_FIELDS, events, ready=True)
    by_reason: dict[str, list[int]] = defaultdict(list)
    changes: list[tuple[Case, str, str]] = []
    for pk, child_id, status in zip(keys, child_ids, reached, strict=True):
        if status != Status.OPEN:
            by_reason[reason or f"{Status.OPEN.label} → {Status(status).label}"].append(pk)
            changes.append((Case.from_db(DEFAULT_DB_ALIAS, _SIGNALLED_FIELDS, (pk, child_id, status)),
                            Status.OPEN, status))
    for said, ids in by_reason.items():
        writes.record_history(Case, ids, history_type=CHANGED, user=actor, reason=said)
    return keys, changes


def cases_listed_signal(changes: list[tuple[Case, str, str]], *, actor: User | None) -> None:
    """The status signal of cases written by `cases_listed_planned`, once they are written."""
    if changes:
        case_status_changed.send(sender=Case, changes=changes, actor=actor)


def children_add_spellings(*, spellings: Sequence[tuple[Child, str, str, str]], source: str,
                           actor: User | None) -> int:
    """Keep each spelling of a child's name seen elsewhere as an alias, unless one already known (by its
    folded Latin key, so "Shevchenko" and "Шевченко" are one): (child, family, given, patronymic) each,
    for many children in bulk. Returns how many spellings were new."""
    changed: dict[int, Child] = {}
    rows: list[tuple[int, str, str, str]] = []
    for child, family_name, given_name, patronymic in spellings:
        spelling = " ".join(" ".join(part for part in (family_name, given_name, patronymic) if part).split())
        if spelling and not _spelling_known(child, spelling):
            child.aliases = [*(child.aliases or []), spelling]
            changed[child.pk] = child
            rows.append((child.pk, spelling, guess_script(spelling), source[:200]))
    if changed:
        with transaction.atomic():
            now = timezone.now()
            for child in changed.values():
                child.fill_derived()
                child.updated_at = now
            insert_rows(ChildAlias, ALIAS_FIELDS, rows)
            update_instances(list(changed.values()), Child, ["aliases", "search_names", "updated_at"])
            record_history(Child, list(changed), history_type=CHANGED, user=actor, reason=f"Spelling from {source}")
            sync_match_keys_many(list(changed.values()))
    return len(changed)


# An alias row as the bulk writers insert them.
ALIAS_FIELDS = ("child_id", "name", "script", "source")


def child_aliases_refresh(*, child: Child, actor: User | None, reason: str = "") -> Child:
    """The child's `aliases` made to follow its alias rows (after they were edited on the child's page),
    in one save: its history keeps the spellings, and its search text and match keys follow."""
    child.aliases = list(ChildAlias.objects.filter(child=child).order_by("pk").values_list("name", flat=True))
    child._change_reason = reason or gettext("Other spellings changed")  # type: ignore[attr-defined]
    child.save(update_fields=["aliases", "updated_at"])
    return child


def case_close(*, case: Case, actor: User | None, reason: str, note: str = "") -> Case:
    return case_change_status(case=case, to_status=Status.CLOSED, actor=actor, closing_reason=reason, note=note)


def cases_add_events(*, lines: Iterable[tuple[int, str, dict[str, Any]]], kind: str, actor: User | None) -> int:
    """`case_add_event` for many cases at once: timeline lines that change no status, each (case id,
    message, data), written in one statement. Returns how many."""
    now, actor_id = timezone.now(), actor.pk if actor is not None else None
    return insert_rows(CaseEvent, EVENT_FIELDS, ((case_id, kind, "", "", actor_id, message, data, now)
                                                 for case_id, message, data in lines))


def case_add_event(
    *, case: Case, kind: str, actor: User | None, message: str = "", data: dict[str, Any] | None = None
) -> CaseEvent:
    """A timeline line that changes no status: a note, a list the case was put on, a flag."""
    return CaseEvent.objects.create(case=case, kind=kind, actor=actor, message=message, data=data or {})


class CaseFileRefused(Exception):
    """A change to a case file that cannot be made as asked (the message says why); nothing was written."""


def case_add_note(*, case: Case, actor: User | None, text: str, channel: str = "",
                  on: datetime.date | None = None, attachment: Any = None) -> CaseEvent:
    """A note on the case's timeline: what was said or learnt, by which channel (a call, a letter, a
    meeting, a message), on which day, with a file if one came with it."""
    text = text.strip()
    if not text:
        raise CaseFileRefused(gettext("A note needs its text."))
    if channel and channel not in CaseEvent.Channel.values:
        raise CaseFileRefused(gettext("“%(channel)s” is not a channel.") % {"channel": channel})
    now = timezone.now()
    today = timezone.localdate(now)
    day = on or today
    if day > today:
        raise CaseFileRefused(gettext("A note cannot be dated after today."))
    # A note of an earlier day stands at that day's noon on the timeline, today's at the time it is written.
    happened_at = now if day == today else timezone.make_aware(datetime.datetime.combine(day, datetime.time(12)))
    with transaction.atomic():
        event = CaseEvent(case=case, kind=CaseEvent.Kind.NOTE, actor=actor, message=text, channel=channel,
                          happened_at=happened_at, data={"on": day.isoformat()})
        if attachment:
            event.attachment = attachment
        event.save()
        Case.objects.filter(pk=case.pk).update(updated_at=now)
    return event


def case_reassign(*, case: Case, assignee: User | None, actor: User | None, reason: str) -> Case:
    """Give the case to another case worker (or to nobody): the timeline says who did it, from whom to
    whom, and why; the case's history keeps the same."""
    reason = reason.strip()
    if not reason:
        raise CaseFileRefused(gettext("Say why the case is reassigned."))
    with transaction.atomic():
        locked = Case.objects.select_for_update(of=("self",)).select_related("assignee").get(pk=case.pk)
        before = locked.assignee
        if (before.pk if before else None) == (assignee.pk if assignee else None):
            raise CaseFileRefused(gettext("The case is already assigned to %(who)s.") % {
                "who": assignee or gettext("nobody")})
        locked.assignee = assignee
        locked._change_reason = reason[:100]  # type: ignore[attr-defined]
        locked.save(update_fields=["assignee", "updated_at"])
        # Stored in English like every line the services write; the case page says it in the reader's language.
        said = f"Reassigned from {before or 'nobody'} to {assignee or 'nobody'}: {reason}"
        case_add_event(case=locked, kind=CaseEvent.Kind.ASSIGNED, actor=actor, message=said,
                       data={"from": before.pk if before else None, "to": assignee.pk if assignee else None,
                             "reason": reason})
    case.assignee, case.updated_at = assignee, locked.updated_at
    return case


def case_request_closing(*, case: Case, actor: User | None, reason: str, note: str = "") -> ClosingRequest:
    """A case worker's closing: recorded, not applied. The case stays where it is until a supervisor
    approves (`closing_approve`, which closes it through `cases_move`) or sends it back."""
    if reason not in Case.ClosingReason.values:
        raise CaseFileRefused(gettext("Closing a case needs a reason from the list."))
    with transaction.atomic():
        locked = Case.objects.select_for_update().get(pk=case.pk)
        if locked.status == Status.CLOSED:
            raise CaseFileRefused(gettext("Case %(id)s is already closed.") % {"id": locked.pk})
        if ClosingRequest.objects.filter(case=locked, state=ClosingRequest.State.PENDING).exists():
            raise CaseFileRefused(gettext("A closing of case %(id)s already awaits approval.") % {"id": locked.pk})
        request = ClosingRequest.objects.create(case=locked, closing_reason=reason, note=note.strip(),
                                                requested_by=actor)
        case_add_event(case=locked, kind=CaseEvent.Kind.CLOSING_REQUESTED, actor=actor, message=note.strip(),
                       data={"closing_request": request.pk, "closing_reason": reason})
        Case.objects.filter(pk=locked.pk).update(updated_at=timezone.now())
    return request


def _pending_locked(request: ClosingRequest) -> ClosingRequest:
    locked = ClosingRequest.objects.select_for_update().select_related("case").get(pk=request.pk)
    if locked.state != ClosingRequest.State.PENDING:
        raise CaseFileRefused(gettext("This closing was already decided: %(state)s.") % {
            "state": locked.get_state_display()})
    return locked


def closing_approve(*, request: ClosingRequest, actor: User | None, note: str = "") -> Case:
    """A supervisor approves a requested closing: the case closes through the one road, with the
    reason and note the case worker gave, and the timeline line says who asked and who approved."""
    with transaction.atomic():
        locked = _pending_locked(request)
        now = timezone.now()
        locked.state, locked.decided_by, locked.decided_at = ClosingRequest.State.APPROVED, actor, now
        locked.decision_note = note.strip()
        locked.save(update_fields=["state", "decided_by", "decided_at", "decision_note", "updated_at"])
        step = StatusStep(Status.CLOSED, kind=CaseEvent.Kind.CLOSING_APPROVED, message=locked.note,
                          closing_reason=locked.closing_reason,
                          data={"closing_request": locked.pk, "requested_by": locked.requested_by_id,
                                "approval_note": locked.decision_note})
        case = locked.case
        try:
            cases_move(cases=[case], steps=lambda current: [step], actor=actor,
                       reason=gettext("Closing approved"))
        except TransitionNotAllowed as exc:
            raise CaseFileRefused(str(exc)) from exc
    request.refresh_from_db()
    case.refresh_from_db()
    return case


def closing_send_back(*, request: ClosingRequest, actor: User | None, note: str) -> ClosingRequest:
    """A supervisor sends a requested closing back to the case worker, saying why; the case stays open."""
    note = note.strip()
    if not note:
        raise CaseFileRefused(gettext("Say why the closing is sent back."))
    with transaction.atomic():
        locked = _pending_locked(request)
        locked.state, locked.decided_by, locked.decided_at = ClosingRequest.State.SENT_BACK, actor, timezone.now()
        locked.decision_note = note
        locked.save(update_fields=["state", "decided_by", "decided_at", "decision_note", "updated_at"])
        case_add_event(case=locked.case, kind=CaseEvent.Kind.CLOSING_SENT_BACK, actor=actor, message=note,
                       data={"closing_request": locked.pk, "requested_by": locked.requested_by_id})
    request.refresh_from_db()
    return request


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
        raise MergeRefused(gettext("a child cannot be merged into itself"))
    with transaction.atomic():
        # Locked in id order, so that two merges of the same pair cannot deadlock.
        locked = {c.pk: c for c in Child.objects.select_for_update().filter(pk__in=[keep.pk, merge.pk]).order_by("pk")}
        kept, duplicate = locked[keep.pk], locked[merge.pk]
        for child in (kept, duplicate):
            if child.merged_into_id is not None:
                raise MergeRefused(gettext("child %(child)s was already merged into child %(kept)s")
                                   % {"child": child.pk, "kept": child.merged_into_id})
        said = f"Child {duplicate.pk} ({duplicate}) merged into child {kept.pk} ({kept})"
        said += f": {note}" if note else ""

        seen_in = gettext("merged record of child %(id)s") % {"id": duplicate.pk}
        new_aliases: list[tuple[int, str, str, str]] = []
        for spelling in (
            (duplicate.family_name, duplicate.given_name, duplicate.patronymic),
            (duplicate.family_name_latin, duplicate.given_name_latin, duplicate.patronymic_latin),
            *([str(alias)] for alias in duplicate.aliases or []),
        ):
            words = " ".join(" ".join(part for part in spelling if part).split())
            if words and not _spelling_known(kept, words):
                kept.aliases = [*(kept.aliases or []), words]
                new_aliases.append((kept.pk, words, guess_script(words), seen_in))
        if new_aliases:
            insert_rows(ChildAlias, ALIAS_FIELDS, new_aliases)
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

        # The duplicate's cases, all at once: a live one closed as a duplicate where the kept child
        # has a live case, then every one moved to the kept child with its timeline.
        live = Case.objects.filter(child=kept).exclude(status=Status.CLOSED).first()
        theirs = list(Case.objects.filter(child=duplicate).order_by("pk"))
        if live is not None:
            closing = StatusStep(Status.CLOSED, message=f"Duplicate of case {live.pk}: {said}",
                                 closing_reason=Case.ClosingReason.DUPLICATE)
            cases_move(cases=[case for case in theirs if case.status != Status.CLOSED],
                       steps=lambda case: [closing], actor=actor, reason=reason)
        now = timezone.now()
        ids = [case.pk for case in theirs]
        Case.objects.filter(pk__in=keys_in(ids)).update(child=kept, updated_at=now)
        record_history(Case, ids, history_type=CHANGED, user=actor, reason=reason)
        told = [*theirs, *([live] if live is not None else [])]
        cases_add_events(lines=[(case.pk, said, {"merged_child": duplicate.pk, "kept_child": kept.pk})
                                for case in told], kind=CaseEvent.Kind.NOTE, actor=actor)

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
    the admin, an export, the partner API (which names the partner and its key). Returns the rows written.

    Each row is chained to the one before it (`cases.read_chain`): by the database on PostgreSQL, and
    here on SQLite, whose immediate transactions let one writer in at a time, so the last hash read
    is still the last when the rows go in.
    """
    ids = list(dict.fromkeys(int(child_id) for child_id in child_ids))
    if not ids:
        return 0
    user_id = user.pk if user is not None and user.is_authenticated else None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(*read_log_insert(ids, channel=channel, path=path, user=user, partner_id=partner_id,
                                            api_key_prefix=api_key_prefix, client=client))
            return cursor.rowcount
    rows = [RecordAccess(child_id=child_id, user_id=user_id, channel=channel, partner_id=partner_id,
                         api_key_prefix=api_key_prefix, client=client, path=path[:500]) for child_id in ids]
    with transaction.atomic():
        read_chain.link(rows, RecordAccess.objects.order_by("-pk").values_list("row_hash", flat=True).first())
        return len(RecordAccess.objects.bulk_create(rows))


def read_log_insert(child_ids: Iterable[int], *, channel: str, path: str, user: User | None,
                    partner_id: int | None = None, api_key_prefix: str = "", client: str = "") -> tuple[str, list[Any]]:
    """`log_child_reads`'s statement on PostgreSQL, with its parameters, for a caller that runs it
    itself: by `log_child_reads`, or as a part of the statement that reads the records (the API's
    page of cases), so that the reads and their log are one statement. One row per child, in the
    order given, from one array parameter: no model instance per row, and the database's trigger
    chains each row as it goes in."""
    ids = list(dict.fromkeys(int(child_id) for child_id in child_ids))
    user_id = user.pk if user is not None and user.is_authenticated else None
    return ("INSERT INTO cases_recordaccess (child_id, user_id, channel, partner_id, api_key_prefix, "
            "client, path, accessed_at, prev_hash, row_hash) "
            "SELECT r.child_id, %s, %s, %s, %s, %s, %s, %s, '', '' "
            "FROM unnest(%s::bigint[]) WITH ORDINALITY AS r (child_id, n) ORDER BY r.n",
            [user_id, channel, partner_id, api_key_prefix, client, path[:500], timezone.now(), ids])


# What a child's record keeps once anonymised: sex, oblast, circumstances, category, the birth year
# and every case, list entry and date, so that counts and statistics hold; names, exact birth date,
# places, references, contacts and every free text that may name the child or a relative are blanked.
ANONYMISED_FAMILY_NAME = "Anonymised"
ANONYMISED_CHILD_FIELDS: dict[str, Any] = {
    "family_name": ANONYMISED_FAMILY_NAME, "patronymic": "", "family_name_latin": ANONYMISED_FAMILY_NAME,
    "given_name_latin": "", "patronymic_latin": "", "aliases": [], "search_names": "", "home_settlement": "",
    "last_known_location": "", "last_known_on": None, "icrc_reference": "", "nib_reference": "",
    "guardian_name": "", "guardian_contact": "", "relatives": "", "notes": "",
}


def children_due_for_anonymising(*, closed_before: datetime.date) -> list[int]:
    """Children every case of whom closed before `closed_before` (none live, none closed since), not yet
    anonymised; with the duplicate records merged into them, which carry the same names."""
    cases = Case.objects.filter(child=OuterRef("pk"))
    kept = list(Child.objects.filter(anonymised_at__isnull=True, merged_into__isnull=True).filter(
        Exists(cases)).exclude(Exists(cases.exclude(status=Status.CLOSED))).exclude(
        Exists(cases.filter(closed_on__gte=closed_before))).values_list("pk", flat=True))
    merged = list(Child.objects.filter(merged_into_id__in=keys_in(kept), anonymised_at__isnull=True).values_list(
        "pk", flat=True)) if kept else []
    return kept + merged


def children_anonymise_closed(*, closed_before: datetime.date, actor: User | None) -> int:
    """Anonymise the children whose cases all closed before `closed_before`: the retention policy
    (docs/retention.md). Set-based, in one transaction, and safe to run again (an anonymised child is
    not taken twice). The history rows of those records are blanked the same way, or the names would
    stay in them. Returns how many children were anonymised."""
    with transaction.atomic():
        ids = children_due_for_anonymising(closed_before=closed_before)
        if not ids:
            return 0
        now = timezone.now()
        blanked = {**ANONYMISED_CHILD_FIELDS, "given_name": Concat(Value("#"), Cast("id", CharField())),
                   "birth_date": TruncYear("birth_date"),
                   "birth_date_precision": Value(BirthDatePrecision.YEAR)}
        Child.objects.filter(pk__in=keys_in(ids)).update(**blanked, anonymised_at=now, updated_at=now)
        with history_rewrite():
            Child.history.filter(id__in=keys_in(ids)).update(**blanked, anonymised_at=now)
            Case.history.filter(child_id__in=keys_in(ids)).update(closing_note="")
            ClosingRequest.history.filter(case__child_id__in=keys_in(ids)).update(note="", decision_note="")
        record_history(Child, ids, history_type=CHANGED, user=actor, reason="Anonymised after the retention period")
        ChildMatchKey.objects.filter(child_id__in=keys_in(ids)).delete()
        ChildAlias.objects.filter(child_id__in=keys_in(ids)).delete()
        ClosingRequest.objects.filter(case__child_id__in=keys_in(ids)).update(note="", decision_note="")
        Case.objects.filter(child_id__in=keys_in(ids)).update(closing_note="")
        CaseEvent.objects.filter(case__child_id__in=keys_in(ids)).update(message="")
        children_anonymised.send(sender=Child, child_ids=ids, actor=actor)
    return len(ids)
