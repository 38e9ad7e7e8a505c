"""The read log's hash chain: how each row's hash is made, the trigger that makes it, and the walk that checks it.

Each row of the read log (`RecordAccess`) carries `prev_hash`, the hash of the row before it in id
order (`GENESIS` for the first), and `row_hash`, SHA-256 over `prev_hash`, a newline and the row's
content (`content`). Changing a row's content breaks its own hash; removing a row, or rewriting a
row's hash to match a change, breaks the next row's `prev_hash`. Only rewriting every hash from the
change to the end goes unseen, and only by someone who holds the head as it was (`verify` takes
such an anchor) can that be told.

On PostgreSQL the database makes the hashes (`chain_trigger`), so the rows of many processes writing
at once form one chain and no client can write a hash of its own choosing. On SQLite (`make run`)
`link` makes them in Python, as the writer inserts; SQLite lets one writer in at a time.

Nothing here may ever change: a different formula would break every chain already written.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pgtrigger

GENESIS = "0" * 64
# The content of a row, in this order, as hashed.
CONTENT_FIELDS = ("child_id", "user_id", "channel", "partner_id", "api_key_prefix", "client", "path", "accessed_at")
# One transaction-level advisory lock serialises the writers of the chain; the number only has to be
# one no other code takes ("readlog" in ASCII).
CHAIN_LOCK = 0x726561646C6F67
# Transaction-local settings the trigger keeps between the rows of one transaction (`chain_trigger`).
HEAD_SETTING = "tracker.read_chain_head"
SEQUENCE_SETTING = "tracker.read_chain_sequence"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        # UTC to the microsecond, as the trigger writes it with to_char.
        return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(value)


def content(values: Sequence[Any]) -> str:
    """The row's content as hashed: each of `CONTENT_FIELDS` as text, prefixed with its length, so
    that no path or client string can pass for another split of the fields."""
    texts = [_text(value) for value in values]
    return "|".join(f"{len(text)}:{text}" for text in texts)


def row_hash(prev_hash: str, values: Sequence[Any]) -> str:
    """The hash of a row whose content is `values` (in `CONTENT_FIELDS` order), after a row hashed `prev_hash`."""
    return hashlib.sha256(f"{prev_hash}\n{content(values)}".encode()).hexdigest()


def _sql_content() -> str:
    """`content` in SQL, over the new row (`accessed`: its time as `_text` writes it)."""
    parts = [f"NEW.{{columns.{name}}}" for name in ("child", "user", "channel", "partner_id", "api_key_prefix",
                                                    "client", "path")]
    texts = [f"COALESCE({part}::text, '')" for part in (*parts, "accessed")]
    return " || '|' || ".join(f"length({text}) || ':' || {text}" for text in texts)


def chain_trigger() -> pgtrigger.Trigger:
    """The BEFORE INSERT trigger that chains each new row of the read log.

    Under one transaction-level advisory lock, held to commit, each row takes the next key of the
    table's sequence, reads the hash of the last row and hashes itself after it. The key is taken
    under the lock (replacing the one the column's default drew before the trigger ran) so that id
    order is chain order: otherwise two writers could draw 10 and 11 and chain 11 first (ids so step
    by two; a gap in them says nothing, the chain says what is missing). Rows of the
    same statement see the ones before them. In REPEATABLE READ or SERIALIZABLE a transaction would
    not see rows committed after its snapshot and would fork the chain: refused.

    The hash of the row just written is kept in a transaction-local setting (`HEAD_SETTING`), and
    the sequence's name beside it: while the lock is held no other writer can add a row, so the next
    row of the same transaction (a page of 100 children is 100 rows) chains after it without reading
    the table. Rolling back to a savepoint undoes the setting with the rows, so a row rolled back is
    never chained to.
    """
    return pgtrigger.Trigger(
        name="read_chain",
        when=pgtrigger.Before,
        operation=pgtrigger.Insert,
        declare=[("previous", "varchar(64)"), ("accessed", "text"), ("sequence", "text")],
        func=pgtrigger.Func(f"""
            IF current_setting('transaction_isolation') <> 'read committed' THEN
                RAISE EXCEPTION 'the read log is written in READ COMMITTED transactions only, not %',
                    current_setting('transaction_isolation');
            END IF;
            PERFORM pg_advisory_xact_lock({CHAIN_LOCK});
            sequence := current_setting('{SEQUENCE_SETTING}', true);
            IF sequence IS NULL OR sequence = '' THEN
                sequence := pg_get_serial_sequence('{{meta.db_table}}', '{{columns.id}}');
                PERFORM set_config('{SEQUENCE_SETTING}', sequence, true);
            END IF;
            NEW.{{columns.id}} := nextval(sequence);
            previous := current_setting('{HEAD_SETTING}', true);
            IF previous IS NULL OR previous = '' THEN
                SELECT {{columns.row_hash}} INTO previous FROM {{meta.db_table}}
                    ORDER BY {{columns.id}} DESC LIMIT 1;
            END IF;
            NEW.{{columns.prev_hash}} := COALESCE(previous, '{GENESIS}');
            accessed := to_char(NEW.{{columns.accessed_at}} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
            NEW.{{columns.row_hash}} := encode(sha256(convert_to(
                NEW.{{columns.prev_hash}} || E'\\n' || {_sql_content()}, 'UTF8')), 'hex');
            PERFORM set_config('{HEAD_SETTING}', NEW.{{columns.row_hash}}, true);
            RETURN NEW;
        """),  # noqa: S608 the trigger's own SQL, from the model's metadata and constants
    )


class Chained(Protocol):
    prev_hash: str
    row_hash: str


def link(rows: Iterable[Chained], previous: str | None) -> None:
    """Chain new rows in Python, in the order given, after the row hashed `previous` (None: the
    first rows of the log). For databases without the trigger; the caller holds the write lock."""
    for row in rows:
        row.prev_hash = previous or GENESIS
        row.row_hash = row_hash(row.prev_hash, [getattr(row, name) for name in CONTENT_FIELDS])
        previous = row.row_hash


@dataclass(frozen=True)
class Break:
    """The first link that does not hold: the row, what its hash should be and what it is."""

    row_id: int
    expected: str
    found: str
    reason: str

    def __str__(self) -> str:
        expected, found = self.expected or "(nothing)", self.found or "(nothing)"
        return f"row {self.row_id}: {self.reason}; expected {expected}, found {found}"


@dataclass(frozen=True)
class Verdict:
    """What a walk found: how many rows held, the last of them (the head), and the first break if any."""

    rows: int
    head_id: int | None
    head_hash: str
    broken: Break | None


# A row as `verify` reads it: id, the content fields in order, prev_hash, row_hash.
VERIFY_FIELDS = ("id", *CONTENT_FIELDS, "prev_hash", "row_hash")


def verify(rows: Iterable[Sequence[Any]], anchor: tuple[int, str] | None = None) -> Verdict:
    """Walk the chain over `rows` (`VERIFY_FIELDS` each, in id order) and stop at the first break.

    `anchor` is a row id and the hash it had when someone wrote it down: the row must still be there
    with that hash, which is what tells a rewritten or cut-off chain from an intact one.
    """
    count, previous_id, previous = 0, None, GENESIS
    anchor_id, anchor_hash = anchor if anchor is not None else (None, "")

    def broken(row_id: int, expected: str, found: str, reason: str) -> Verdict:
        return Verdict(count, previous_id, previous, Break(row_id, expected, found, reason))

    for row_id, *values, prev_hash, stored in rows:
        if anchor_id is not None and row_id > anchor_id:
            return broken(anchor_id, anchor_hash, "", "the anchored row is gone")
        if prev_hash != previous:
            before = f"row {previous_id}" if previous_id is not None else "the start of the log"
            return broken(row_id, previous, prev_hash,
                          f"does not follow {before}: a row between them was removed, or {before} was changed")
        expected = row_hash(prev_hash, values[: len(CONTENT_FIELDS)])
        if stored != expected:
            return broken(row_id, expected, stored, "its content does not match its hash: the row was changed")
        if row_id == anchor_id:
            if stored != anchor_hash:
                return broken(row_id, anchor_hash, stored,
                              "its hash is not the anchor's: the chain was rewritten up to here")
            anchor_id = None
        count, previous_id, previous = count + 1, row_id, stored
    if anchor_id is not None:
        return broken(anchor_id, anchor_hash, "", "the anchored row is gone: the log ends before it")
    return Verdict(count, previous_id, previous, None)


def in_key_order(fetch_after: Callable[[int, int], Iterable[Sequence[Any]]], size: int) -> Iterator[Sequence[Any]]:
    """Rows `fetch_after(last_id, size)` hands back a chunk at a time, in key order, never more than
    one chunk in memory: each chunk starts after the last key of the one before (no OFFSET, no
    server-side cursor, so a walk over millions of rows costs the same per row at the end as at the start)."""
    last = 0
    while True:
        chunk = list(fetch_after(last, size))
        yield from chunk
        if len(chunk) < size:
            return
        last = chunk[-1][0]
