"""Fills the benchmark's database fast: every large table is written with COPY (psycopg's
`cursor.copy`), with its secondary indexes dropped while it loads and built once at the end.

What is written, for `size` children and `size * entries_per_child` list entries:

- children, each with the product's own derived columns (`Child.fill_derived`: Latin forms and the
  search column) and match keys (`cases.matching.candidates.child_match_keys`, the function
  `backfill_match_keys` files them with): the same rows the product writes, made in this process
  and copied in;
- one case per child, its status following the child's entries (awaiting a reply, reply received,
  verifying, on a list, open; some closed), with a priority and, for most, an assignee;
- handover lists of 100 to 5,000 entries (a few thousand at a million children), handed over on
  days spread over the past year with replies due 30 to 90 days later, so that a good share is
  overdue, some are due within the week, some are still drafts; replies to many of them (all
  answered, or part), with one outcome row per answered entry;
- a partner organisation with a fifth of the cases shared with it (`CaseShare`) and a tenth of
  the lists (`ListShare`); a few flags raised by hand;
- the rows the product keeps beside these: one history row ("created") for each child, case, list,
  entry, reply, outcome and share (django-simple-history's tables), and the "opened" line of each
  case's timeline. The deadline sweep's flags are not written: the sweep measured makes them.

Names are synthetic (see `bench_common.Population`); no real register is read.
"""

from __future__ import annotations

import datetime
import json
import random
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from scripts.bench_common import SETTLEMENTS, Population

COPY_CHUNK = 1 << 20  # characters per write to COPY
CHILD_BATCH = 20_000

_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

# Not "more_information_requested": at 26 characters it does not fit ListEntry.last_outcome (24).
OUTCOMES = [("not_found", 30), ("located", 20), ("no_information", 22), ("never_on_territory", 8),
            ("now_adult", 5), ("left_country", 4), ("returned", 5), ("deceased", 1), ("refused", 5)]
REPORTED_PLACES = ["Таганрог", "Ростов-на-Дону", "Москва", "Підмосков'я", "Анапа", "Євпаторія", "Кемерово"]
CIRCUMSTANCES = [("deported", 55), ("forcibly_transferred", 20), ("held_in_occupied_territory", 15),
                 ("placed_with_family", 5), ("in_institution", 4), ("other", 1)]
CATEGORIES = [("with_parents", 20), ("without_parental_care", 35), ("orphan", 15), ("institution_pupil", 20),
              ("unknown", 10)]
# What a child's entries say of its case: the case's status is the highest rank among them.
RANK_OPEN, RANK_ON_LIST, RANK_REPLIED, RANK_VERIFYING, RANK_AWAITING = range(5)
RANK_STATUS = {RANK_OPEN: "open", RANK_ON_LIST: "on_list", RANK_REPLIED: "reply_received",
               RANK_VERIFYING: "verifying", RANK_AWAITING: "awaiting_reply"}

PARTIES = {
    "Ukrainian delegation": ("party", "UA"),
    "Russian delegation": ("party", "RU"),
    "Central Tracing Agency (synthetic)": ("mediator", "CTA"),
    "Mediator office (synthetic)": ("mediator", "MED"),
    "Demo Tracing Network": ("partner", "DTN"),
}
PARTNER = "Demo Tracing Network"


def esc(text: str) -> str:
    return text.translate(_ESCAPE)


def text(value: Any) -> str:
    """A value as COPY's text format writes it."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, list | dict):
        return esc(json.dumps(value))
    return esc(str(value))


def weighted(rng: random.Random, pairs: list[tuple[str, int]]) -> Any:
    items = [item for item, _ in pairs]
    cumulative, total = [], 0
    for _, weight in pairs:
        total += weight
        cumulative.append(total)
    return lambda: rng.choices(items, cum_weights=cumulative)[0]


class Copier:
    """COPY into a model's table: the caller gives the first columns of each row as text, the rest
    take the model's defaults (one text for every row). Each table must be written in full."""

    def __init__(self, model: Any, given: Sequence[str], now: datetime.datetime) -> None:
        meta = model._meta
        fields = [meta.get_field(name) for name in given]
        others = [f for f in meta.concrete_fields if f not in fields]
        for f in others:
            if not f.null and not f.has_default() and not f.blank:
                raise ValueError(f"{meta.db_table}.{f.column} needs a value: the benchmark's fill is out of date")
        self.table = meta.db_table
        self.columns = [f.column for f in (*fields, *others)]
        self.tail = "".join("\t" + text(_default(f, now)) for f in others) + "\n"

    def copy(self, conn: psycopg.Connection, rows: Iterable[str]) -> int:
        """`rows`: the given columns of each row, tab-separated, without the line end."""
        count, buffer, size = 0, [], 0
        tail = self.tail
        with conn.cursor() as cursor, cursor.copy(
                f"COPY {self.table} ({', '.join(self.columns)}) FROM STDIN") as copy:
            for row in rows:
                line = row + tail
                buffer.append(line)
                size += len(line)
                count += 1
                if size >= COPY_CHUNK:
                    copy.write("".join(buffer))
                    buffer, size = [], 0
            if buffer:
                copy.write("".join(buffer))
        return count


def _default(field: Any, now: datetime.datetime) -> Any:
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return now
    if field.has_default():
        value = field.get_default()
        return value
    if field.null:
        return None
    return ""


# --- Indexes built after the load ----------------------------------------------------------


def drop_indexes(conn: psycopg.Connection, tables: Sequence[str]) -> list[tuple[str, str]]:
    """Drop every index of these tables but the primary key; returns the statements that make them again."""
    saved: list[tuple[str, str]] = []
    with conn.cursor() as cursor:
        for table in tables:
            cursor.execute("""
                SELECT ci.relname, pg_get_indexdef(i.indexrelid), c.conname, pg_get_constraintdef(c.oid)
                FROM pg_index i
                JOIN pg_class ci ON ci.oid = i.indexrelid
                LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
                     AND c.contype IN ('u', 'x')
                WHERE i.indrelid = %s::regclass AND NOT i.indisprimary
                ORDER BY ci.relname
            """, [table])
            for name, definition, constraint, constraint_definition in cursor.fetchall():
                if constraint:
                    cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint}"')
                    saved.append((table, f'ALTER TABLE {table} ADD CONSTRAINT "{constraint}" {constraint_definition}'))
                else:
                    cursor.execute(f'DROP INDEX "{name}"')
                    saved.append((table, definition))
    conn.commit()
    return saved


def build_indexes(conn: psycopg.Connection, saved: list[tuple[str, str]]) -> None:
    started = time.perf_counter()
    with conn.cursor() as cursor:
        for _, statement in saved:
            cursor.execute(statement)
    conn.commit()
    print(f"  {len(saved)} indexes built on {len({t for t, _ in saved})} tables in "
          f"{time.perf_counter() - started:.1f} s", flush=True)


# --- The fill ------------------------------------------------------------------------------------


@dataclass
class Filled:
    children: int
    entries: int
    lists: int
    replies: int
    outcomes: int
    shares: int
    match_keys: int
    history: int
    sample: list[dict[str, object]]


def make_database(url: str, *, recreate: bool) -> bool:
    """Make the database if missing (or anew); returns whether it was made."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and recreate:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        if not exists or recreate:
            conn.execute(f'CREATE DATABASE "{name}"')
            return True
    return False


def fill(url: str, population: Population, *, size: int, entries_per_child: int, seed: int,
         today: datetime.date) -> Filled:
    """Fill the (migrated, empty) database; see the module's docstring."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from cases.matching.candidates import child_match_keys
    from cases.models import Case, CaseEvent, Child, ChildMatchKey, age_on
    from tracker.models import (
        CaseShare,
        Flag,
        HandoverList,
        ListEntry,
        ListShare,
        Organisation,
        Reply,
        ReplyOutcome,
        Round,
    )

    rng = random.Random(seed)
    now = timezone.now()
    started = time.perf_counter()

    # Small tables through the ORM: case workers, organisations, rounds.
    User = get_user_model()
    workers = User.objects.bulk_create([
        User(username=f"caseworker{n:02d}", first_name="Case", last_name=f"Worker {n:02d}",
             email=f"caseworker{n:02d}@example.org", is_staff=True, password="!") for n in range(1, 21)])
    orgs = {name: Organisation.objects.create(name=name, short_name=short, kind=kind)
            for name, (kind, short) in PARTIES.items()}
    months = sorted({(today - datetime.timedelta(days=d)).replace(day=1) for d in range(0, 370, 10)})
    rounds = {month: Round.objects.create(name=f"Round of {month:%B %Y} (synthetic)", held_on=month,
                                          place="Istanbul" if month.month % 2 else "Abu Dhabi")
              for month in months}

    conn = psycopg.connect(url, autocommit=False)
    with conn.cursor() as cursor:
        # Rows are made consistent here: the foreign keys' triggers are off while they load.
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute("SET work_mem = '256MB'")
    historical = [m.history.model for m in (Child, Case, HandoverList, ListEntry, Reply, ReplyOutcome, CaseShare)]
    big = [m._meta.db_table for m in (Child, ChildMatchKey, Case, CaseEvent, ListEntry, Reply, ReplyOutcome,
                                      CaseShare, *historical)]
    saved = drop_indexes(conn, big)

    # --- Children and their match keys --------------------------------------------------------
    circumstances = weighted(rng, CIRCUMSTANCES)
    category = weighted(rng, CATEGORIES)
    days = [now - datetime.timedelta(days=d, hours=rng.randint(0, 9)) for d in range(400, 1200)]
    stamps = [d.isoformat() for d in days]
    child_copier = Copier(Child, ("id", "created_at", "updated_at", "family_name", "given_name", "patronymic",
                                  "family_name_latin", "given_name_latin", "patronymic_latin", "search_names",
                                  "birth_date", "birth_date_precision", "sex", "home_settlement", "home_oblast",
                                  "circumstances", "category"), now)
    key_copier = Copier(ChildMatchKey, ("id", "child_id", "key"), now)
    births: list[tuple[datetime.date, str]] = [(datetime.date(2000, 1, 1), "day")]  # index = child id
    created: list[int] = [0]  # index of each child's creation stamp
    sample: list[dict[str, object]] = []
    every = max(1, size // 20000)
    key_id = 0
    made = 0
    while made < size:
        people = [population.child() for _ in range(min(CHILD_BATCH, size - made))]
        child_rows, key_rows = [], []
        for person in people:
            made += 1
            person["id"] = made
            born = person["birth_date"]
            assert isinstance(born, datetime.date)
            child = Child(id=made, family_name=str(person["family_name"]), given_name=str(person["given_name"]),
                          patronymic=str(person["patronymic"]), birth_date=born,
                          birth_date_precision=str(person["birth_date_precision"]), sex=str(person["sex"]),
                          home_settlement=str(person["home_settlement"]))
            child.fill_derived()
            stamp = rng.randrange(len(stamps))
            created.append(stamp)
            births.append((child.birth_date, child.birth_date_precision))  # type: ignore[arg-type]
            settlement = str(person["home_settlement"])
            child_rows.append("\t".join((
                str(made), stamps[stamp], stamps[stamp], esc(child.family_name), esc(child.given_name),
                esc(child.patronymic), esc(child.family_name_latin), esc(child.given_name_latin),
                esc(child.patronymic_latin), esc(child.search_names), child.birth_date.isoformat(),  # type: ignore[union-attr]
                child.birth_date_precision, child.sex, esc(settlement), SETTLEMENTS[settlement],
                circumstances(), category())))
            for key in sorted(child_match_keys(child)):
                key_id += 1
                key_rows.append(f"{key_id}\t{made}\t{esc(key)}")
            if made % every == 0:
                sample.append(person)
        child_copier.copy(conn, child_rows)
        key_copier.copy(conn, key_rows)
        conn.commit()
        rate = made / (time.perf_counter() - started)
        print(f"\r  {made:,} children, {key_id:,} match keys ({rate:,.0f} children/s)", end="", file=sys.stderr,
              flush=True)
    print(file=sys.stderr)
    print(f"  children and match keys copied: {made:,} and {key_id:,} in {time.perf_counter() - started:.1f} s",
          flush=True)

    # --- Lists, entries, replies, outcomes ------------------------------------------------------
    step = time.perf_counter()
    total_entries = size * entries_per_child
    sizes: list[int] = []
    remaining = total_entries
    while remaining > 0:
        length = min(rng.randint(100, 5000), size, remaining)
        if 0 < remaining - length < 100:
            length = remaining if remaining <= min(5000, size) else length - 100
        sizes.append(length)
        remaining -= length
    party, other, mediators = orgs["Ukrainian delegation"], orgs["Russian delegation"], [
        orgs["Central Tracing Agency (synthetic)"], orgs["Mediator office (synthetic)"]]
    outcome = weighted(rng, OUTCOMES)
    rank = bytearray(size + 1)
    list_rows: list[str] = []
    reply_rows: list[str] = []
    list_share_rows: list[str] = []
    entry_copier = Copier(ListEntry, ("id", "created_at", "updated_at", "handover_list_id", "child_id", "case_id",
                                      "position", "due_on", "reply_state", "age_at_listing", "last_outcome",
                                      "answered_on"), now)
    outcome_copier = Copier(ReplyOutcome, ("id", "created_at", "updated_at", "reply_id", "entry_id", "outcome",
                                           "reported_location", "verification", "verified_at"), now)
    # Outcomes wait in a file while the entries they answer are copied; closed (and gone) after their COPY.
    outcomes_file = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
    entry_id = reply_id = outcome_id = 0
    children = range(1, size + 1)
    partner = orgs[PARTNER]

    def entries() -> Iterable[str]:
        nonlocal entry_id, reply_id, outcome_id
        for list_id, length in enumerate(sizes, start=1):
            draft = rng.random() < 0.02
            recipient = other if rng.random() < 0.85 else rng.choice(mediators)
            if draft:
                handed = due = None
                status, share = "draft", 0.0
                made_on = today - datetime.timedelta(days=rng.randint(1, 30))
            else:
                handed = today - datetime.timedelta(days=rng.randint(1, 365))
                due = handed + datetime.timedelta(days=rng.choice((30, 30, 45, 60, 90)))
                made_on = handed - datetime.timedelta(days=rng.randint(1, 20))
                draw = rng.random()
                if due < today:
                    share = 1.0 if draw < 0.30 else rng.uniform(0.2, 0.8) if draw < 0.70 else 0.0
                else:
                    share = rng.uniform(0.05, 0.3) if draw < 0.10 else 0.0
                status = "answered" if share >= 1.0 else "partially_answered" if share > 0 else "handed_over"
            stamp = datetime.datetime.combine(made_on, datetime.time(10), tzinfo=datetime.UTC).isoformat()
            round_id = rounds[handed.replace(day=1)].pk if handed and handed.replace(day=1) in rounds else None
            list_rows.append("\t".join((
                str(list_id), stamp, stamp, f"BENCH-{(handed or made_on):%Y-%m-%d}/{list_id}",
                f"Synthetic list {list_id}", str(party.pk), str(recipient.pk), text(round_id), status,
                text(handed), text(due))))
            if handed and rng.random() < 0.10:
                list_share_rows.append(f"{len(list_share_rows) + 1}\t{stamp}\t{stamp}\t{list_id}\t{partner.pk}")
            replies: list[tuple[int, datetime.date, str]] = []
            if share > 0:
                assert handed is not None and due is not None
                last = min(today, due + datetime.timedelta(days=60))
                for _ in range(rng.choice((1, 1, 2, 3))):
                    reply_id += 1
                    received = handed + datetime.timedelta(days=rng.randint(min(7, (last - handed).days),
                                                                            (last - handed).days))
                    at = datetime.datetime.combine(received, datetime.time(12), tzinfo=datetime.UTC).isoformat()
                    replies.append((reply_id, received, at))
                    reply_rows.append("\t".join((str(reply_id), at, at, str(list_id), str(recipient.pk),
                                                 received.isoformat())))
            due_text = text(due)
            later_text = text(due + datetime.timedelta(days=30)) if due else "\\N"
            for position, child_id in enumerate(rng.sample(children, length), start=1):
                entry_id += 1
                born, precision = births[child_id]
                if handed is None:
                    yield (f"{entry_id}\t{stamp}\t{stamp}\t{list_id}\t{child_id}\t{child_id}\t{position}"
                           f"\t\\N\tnot_sent\t\\N\t\t\\N")
                    rank[child_id] = max(rank[child_id], RANK_ON_LIST)
                    continue
                age = age_on(born, precision, handed)
                own_due = later_text if rng.random() < 0.05 else due_text
                draw = rng.random()
                if draw < 0.005:
                    state, last_outcome, answered = "withdrawn", "", "\\N"
                elif draw < 0.005 + share * 0.995:
                    reply = replies[rng.randrange(len(replies))]
                    said = outcome()
                    state, last_outcome, answered = "answered", said, reply[1].isoformat()
                    outcome_id += 1
                    verified = rng.random() < 0.25
                    outcomes_file.write("\t".join((
                        str(outcome_id), reply[2], reply[2], str(reply[0]), str(entry_id), said,
                        esc(rng.choice(REPORTED_PLACES)) if said == "located" else "",
                        "verified" if verified else "unverified", reply[2] if verified else "\\N")) + "\n")
                    new_rank = RANK_VERIFYING if said in ("located", "returned") else RANK_REPLIED
                    if rank[child_id] < new_rank:
                        rank[child_id] = new_rank
                else:
                    state, last_outcome, answered = "awaiting", "", "\\N"
                    rank[child_id] = RANK_AWAITING
                yield (f"{entry_id}\t{stamp}\t{stamp}\t{list_id}\t{child_id}\t{child_id}\t{position}\t{own_due}"
                       f"\t{state}\t{age}\t{last_outcome}\t{answered}")

    copied = entry_copier.copy(conn, entries())
    Copier(HandoverList, ("id", "created_at", "updated_at", "reference", "title", "sender_id", "recipient_id",
                          "round_id", "status", "handed_over_on", "response_due_on"), now).copy(conn, list_rows)
    Copier(Reply, ("id", "created_at", "updated_at", "handover_list_id", "received_from_id", "received_on"),
           now).copy(conn, reply_rows)
    Copier(ListShare, ("id", "created_at", "updated_at", "handover_list_id", "organisation_id"),
           now).copy(conn, list_share_rows)
    outcomes_file.seek(0)
    outcome_copier.copy(conn, (line.rstrip("\n") for line in outcomes_file))
    outcomes_file.close()
    conn.commit()
    print(f"  {len(sizes):,} lists, {copied:,} entries, {reply_id:,} replies, {outcome_id:,} outcomes copied in "
          f"{time.perf_counter() - step:.1f} s", flush=True)

    # --- Cases, shares, flags raised by hand ------------------------------------------------------
    step = time.perf_counter()
    priority = weighted(rng, [("1", 10), ("2", 60), ("3", 25), ("4", 5)])
    worker_ids = [str(w.pk) for w in workers]
    reasons = ["reunified", "reached_adulthood", "family_withdrew", "other"]
    case_copier = Copier(Case, ("id", "created_at", "updated_at", "child_id", "status", "assignee_id", "priority",
                                "opened_on", "closed_on", "closing_reason"), now)
    recent = [(now - datetime.timedelta(days=d, hours=rng.randint(0, 23))).isoformat() for d in range(0, 365)]

    def cases() -> Iterable[str]:
        for child_id in range(1, size + 1):
            status = RANK_STATUS[rank[child_id]]
            closed_on, reason = "\\N", ""
            if rank[child_id] in (RANK_REPLIED, RANK_VERIFYING) and rng.random() < 0.15:
                status, reason = "closed", rng.choice(reasons)
                closed_on = (today - datetime.timedelta(days=rng.randint(1, 200))).isoformat()
            opened = days[created[child_id]]
            assignee = rng.choice(worker_ids) if rng.random() < 0.75 else "\\N"
            yield (f"{child_id}\t{stamps[created[child_id]]}\t{recent[rng.randrange(365)]}\t{child_id}\t{status}"
                   f"\t{assignee}\t{priority()}\t{opened.date().isoformat()}\t{closed_on}\t{reason}")

    case_copier.copy(conn, cases())
    shared = sorted(rng.sample(range(1, size + 1), size // 5))
    Copier(CaseShare, ("id", "created_at", "updated_at", "case_id", "organisation_id", "include_restricted",
                       "can_contribute"), now).copy(conn, (
        f"{n}\t{recent[n % 365]}\t{recent[n % 365]}\t{case_id}\t{partner.pk}\t{'t' if n % 10 == 0 else 'f'}"
        f"\t{'t' if n % 3 == 0 else 'f'}" for n, case_id in enumerate(shared, start=1)))
    Copier(Flag, ("id", "kind", "case_id", "note", "raised_at", "raised_by_id"), now).copy(conn, (
        f"{n}\tmanual\t{rng.randint(1, size)}\tSynthetic: ask the family for a recent photo\t{recent[n]}"
        f"\t{rng.choice(worker_ids)}" for n in range(1, 51)))
    conn.commit()
    print(f"  {size:,} cases, {len(shared):,} case shares copied in {time.perf_counter() - step:.1f} s", flush=True)

    # --- Timelines and history, copied by the database from the rows as stored -------------------
    step = time.perf_counter()
    with conn.cursor() as cursor:
        cursor.execute(f"""
            INSERT INTO {CaseEvent._meta.db_table} (case_id, kind, from_status, to_status, actor_id, happened_at,
                                                    message, data, attachment, channel)
            SELECT id, 'opened', '', 'open', NULL, created_at, '', '{{}}', '', '' FROM {Case._meta.db_table}""")
        history = 0
        for model in (Child, Case, HandoverList, ListEntry, Reply, ReplyOutcome, CaseShare):
            history += _history_created(cursor, model)
    conn.commit()
    print(f"  case timelines and {history:,} history rows written in {time.perf_counter() - step:.1f} s", flush=True)

    # --- Keys, indexes, statistics ------------------------------------------------------------------
    with conn.cursor() as cursor:
        for numbered in (Child, ChildMatchKey, Case, HandoverList, ListEntry, Reply, ReplyOutcome, CaseShare,
                         ListShare, Flag):
            table = numbered._meta.db_table
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                           f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)")
    conn.commit()
    build_indexes(conn, saved)
    conn.autocommit = True
    step = time.perf_counter()
    # As autovacuum would leave the tables after months of use: visibility map set, statistics fresh.
    conn.execute("VACUUM (ANALYZE)")
    print(f"  VACUUM ANALYZE in {time.perf_counter() - step:.1f} s", flush=True)
    conn.close()
    return Filled(children=size, entries=copied, lists=len(sizes), replies=reply_id, outcomes=outcome_id,
                  shares=len(shared), match_keys=key_id, history=history, sample=sample)


def _history_created(cursor: psycopg.Cursor, model: Any) -> int:
    """One "created" history row per stored row of `model`, as simple_history writes it."""
    historical = model.history.model
    base = {f.attname: f.column for f in model._meta.concrete_fields}
    copied = [f for f in historical._meta.concrete_fields if f.attname in base]
    columns = ", ".join(f.column for f in copied)
    source = ", ".join(base[f.attname] for f in copied)
    cursor.execute(f"""
        INSERT INTO {historical._meta.db_table} ({columns}, history_date, history_type, history_user_id,
                                                 history_change_reason)
        SELECT {source}, created_at, '+', NULL, 'Synthetic register (benchmark)' FROM {model._meta.db_table}""")
    return cursor.rowcount


def stored_sample(limit: int = 20000) -> tuple[int, list[dict[str, object]]]:
    """With --keep: how many children are stored, and some of them to search for and list again."""
    from cases.models import Child
    from scripts.bench_common import CHILD_COLUMNS

    fields = ("pk", *CHILD_COLUMNS)
    rows = Child.objects.order_by("?").values_list(*fields)[:limit]
    sample = [dict(zip(("id", *CHILD_COLUMNS), row, strict=True)) for row in rows]
    for person in sample:
        person["given_russian"] = person["given_name"]
    return Child.objects.count(), sample


def meta_write(url: str, filled: Filled, *, entries_per_child: int, seed: int, today: datetime.date) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
        conn.execute("CREATE TABLE IF NOT EXISTS bench.fill (children int, entries bigint, entries_per_child int, "
                     "lists int, seed int, filled_on date, filled_at timestamptz DEFAULT now())")
        conn.execute("TRUNCATE bench.fill")
        conn.execute("INSERT INTO bench.fill (children, entries, entries_per_child, lists, seed, filled_on) "
                     "VALUES (%s, %s, %s, %s, %s, %s)",
                     [filled.children, filled.entries, entries_per_child, filled.lists, seed, today])


def meta_read(url: str) -> dict[str, Any] | None:
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT children, entries, entries_per_child, lists, seed, filled_on, filled_at "
                               "FROM bench.fill").fetchone()
    except psycopg.Error:
        return None
    if row is None:
        return None
    return dict(zip(("children", "entries", "entries_per_child", "lists", "seed", "filled_on", "filled_at"), row,
                    strict=True))


def ensure_filled(url: str, *, size: int, entries_per_child: int, seed: int,
                  keep: bool) -> tuple[Population, list[dict[str, object]]]:
    """The benchmark's database with `size` children, migrated: reused when `keep` and the last fill was
    of this size, filled anew otherwise. Returns the population to draw new names from and a sample of
    stored children."""
    from django.core.management import call_command
    from django.db import connections
    from django.utils import timezone

    name = url.rsplit("/", 1)[1]
    meta = meta_read(url) if keep else None
    if meta and meta["children"] == size and meta["entries_per_child"] == entries_per_child:
        print(f"  reusing {name}: filled {meta['filled_at']:%Y-%m-%d %H:%M} UTC with {meta['children']:,} "
              f"children, {meta['entries']:,} entries, {meta['lists']:,} lists", flush=True)
        call_command("migrate", verbosity=0)
        stored, sample = stored_sample()
        return Population(seed=seed + stored), sample
    connections.close_all()
    make_database(url, recreate=True)
    call_command("migrate", verbosity=0)
    population = Population(seed=seed)
    today = timezone.localdate()
    filled = fill(url, population, size=size, entries_per_child=entries_per_child, seed=seed, today=today)
    meta_write(url, filled, entries_per_child=entries_per_child, seed=seed, today=today)
    print(f"  filled: {filled.children:,} children, {filled.match_keys:,} match keys, {filled.lists:,} "
          f"lists, {filled.entries:,} entries, {filled.replies:,} replies, {filled.outcomes:,} outcomes, "
          f"{filled.shares:,} case shares, {filled.history:,} history rows", flush=True)
    return population, filled.sample


# --- For the measurements: an account, and lists of a given length ---------------------------------


def bench_superuser() -> Any:
    """The benchmark's own superuser, for the admin's pages and the reply (not a test of roles)."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    user = User.objects.filter(username="bench-admin").first()
    if user is None:
        user = User.objects.create_superuser("bench-admin", "bench-admin@example.org", None)
    return user


def make_list(conn: psycopg.Connection, *, entries: int, reference: str, handed: datetime.date,
              due: datetime.date, rng: random.Random) -> int:
    """A handed-over list of `entries` children whose cases await a reply, written directly (COPY),
    with the overdue flags the hourly sweep would have raised on it; returns its id. For the reply and
    the entries page, which need lists of a given length."""
    from tracker.models import Organisation

    sender = Organisation.objects.get(name="Ukrainian delegation")
    recipient = Organisation.objects.get(name="Russian delegation")
    with conn.transaction(), conn.cursor() as cursor:
        cursor.execute("""
            INSERT INTO tracker_handoverlist (created_at, updated_at, reference, title, sender_id, recipient_id,
                round_id, status, handed_over_on, response_due_on, document, notes, created_by_id)
            VALUES (now(), now(), %s, 'Made by the benchmark', %s, %s, NULL, 'handed_over', %s, %s, '', '', NULL)
            RETURNING id""", [reference, sender.pk, recipient.pk, handed, due])
        list_id = cursor.fetchone()[0]  # type: ignore[index]
        # Children whose case awaits a reply, drawn at random by key.
        cursor.execute("SELECT max(id) FROM cases_case")
        top = cursor.fetchone()[0]  # type: ignore[index]
        picked: dict[int, int] = {}
        for _ in range(100):
            if len(picked) >= entries:
                break
            ids = [rng.randint(1, top) for _ in range(entries * 3)]
            cursor.execute("SELECT id, child_id FROM cases_case WHERE id = ANY(%s) AND status = 'awaiting_reply'",
                           [ids])
            for case_id, child_id in cursor.fetchall():
                if len(picked) < entries:
                    picked.setdefault(child_id, case_id)
        if len(picked) < entries:
            raise RuntimeError(f"only {len(picked)} cases await a reply; a list of {entries} needs more children")
        now = datetime.datetime.now(datetime.UTC)
        with cursor.copy("COPY tracker_listentry (created_at, updated_at, handover_list_id, child_id, case_id, "
                         "position, due_on, reply_state, age_at_listing, last_outcome, answered_on) "
                         "FROM STDIN") as copy:
            for position, (child_id, case_id) in enumerate(picked.items(), start=1):
                copy.write_row((now, now, list_id, child_id, case_id, position, due, "awaiting", 10, "", None))
        cursor.execute("""
            INSERT INTO tracker_flag (kind, entry_id, case_id, level, due_on, note, raised_at, resolution,
                                      notified_level)
            SELECT 'overdue', id, case_id, 1, due_on, '', now(), '', 0 FROM tracker_listentry
            WHERE handover_list_id = %s AND due_on < current_date""", [list_id])
    with conn.cursor() as cursor:
        cursor.execute("ANALYZE tracker_listentry")
    return int(list_id)


if __name__ == "__main__":  # pragma: no cover - run through benchmark.py
    sys.exit("run scripts/benchmark.py")
