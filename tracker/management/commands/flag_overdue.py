"""Run the deadline sweep once and say what it did."""

from __future__ import annotations

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from tracker.services.flags import sweep_deadlines


class Command(BaseCommand):
    help = "Flag overdue list entries, escalate, remind and clear, as things stand on a date."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--today", help="The date to sweep for, YYYY-MM-DD (default: today).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            today = datetime.date.fromisoformat(options["today"]) if options["today"] else timezone.localdate()
        except ValueError as exc:
            raise CommandError(f"--today: {options['today']!r} is not a date in the form YYYY-MM-DD") from exc
        self.stdout.write(str(sweep_deadlines(today=today)))
