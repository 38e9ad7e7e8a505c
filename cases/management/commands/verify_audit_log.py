"""Checks the read log's hash chain from its first row to its last, and names the first link that does not hold.

    python manage.py verify_audit_log [--anchor ID:HASH] [--chunk 10000]

Prints "OK: N rows, head ID:HASH" and exits 0, or names the first broken row (its id, the hash
expected and the one found) and exits 1. Write the head down somewhere outside the database (the
minutes of a review, a signed letter) and give it as `--anchor` next time: a chain rewritten from some
row to the end, or cut off after it, is told only that way.

The rows are read a chunk at a time in id order, so the walk takes the same memory over millions
of rows as over a few.
"""

from __future__ import annotations

import re
from argparse import ArgumentParser, ArgumentTypeError
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from cases import read_chain
from cases.models import RecordAccess

ANCHOR = re.compile(r"^(\d+):([0-9a-f]{64})$")


def anchor(value: str) -> tuple[int, str]:
    match = ANCHOR.match(value.strip().lower())
    if not match:
        raise ArgumentTypeError("an anchor is ROW_ID:HASH, the hash 64 hexadecimal digits, as the command printed it")
    return int(match[1]), match[2]


class Command(BaseCommand):
    help = "Walk the read log's hash chain; print OK with the count, or name the first broken row and exit 1."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--anchor", type=anchor, help="ROW_ID:HASH of a head printed before: that row must "
                                                          "still be there with that hash")
        parser.add_argument("--chunk", type=int, default=10_000, help="rows read per query (default 10000)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["chunk"] < 1:
            raise CommandError("--chunk must be at least 1")
        rows = RecordAccess.objects.order_by("pk").values_list(*read_chain.VERIFY_FIELDS)

        def after(last: int, size: int) -> Iterable[Sequence[Any]]:
            return rows.filter(pk__gt=last)[:size]

        verdict = read_chain.verify(read_chain.in_key_order(after, options["chunk"]), anchor=options["anchor"])
        if verdict.broken is not None:
            raise CommandError(f"BROKEN at {verdict.broken} ({verdict.rows} rows before it hold)")
        if verdict.head_id is None:
            self.stdout.write("OK: 0 rows, the read log is empty")
        else:
            self.stdout.write(f"OK: {verdict.rows} rows, head {verdict.head_id}:{verdict.head_hash}")
