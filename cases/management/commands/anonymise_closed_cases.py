"""Anonymise the children whose cases all closed longer ago than the retention period (docs/retention.md)."""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from cases.services import children_anonymise_closed, children_due_for_anonymising


class Command(BaseCommand):
    help = ("Blank the names, exact birth dates, places, contacts and free text of children whose every case "
            "closed more than TRACKER_RETENTION_DAYS_AFTER_CLOSING days ago; records and counts stay.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=settings.TRACKER_RETENTION_DAYS_AFTER_CLOSING,
                            help="days after the last case closed (default: the setting)")
        parser.add_argument("--dry-run", action="store_true", help="say how many, change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        closed_before = timezone.localdate() - datetime.timedelta(days=options["days"])
        if options["dry_run"]:
            due = len(children_due_for_anonymising(closed_before=closed_before))
            self.stdout.write(f"{due} children are due: every case closed before {closed_before}; nothing changed")
            return
        done = children_anonymise_closed(closed_before=closed_before, actor=None)
        self.stdout.write(f"anonymised {done} children whose every case closed before {closed_before}")
