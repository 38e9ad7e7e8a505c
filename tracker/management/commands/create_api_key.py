"""Make an API key for a partner organisation from the command line and print it once."""

from __future__ import annotations

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from tracker.models import ApiScope, Organisation
from tracker.services.partners import api_key_issue


class Command(BaseCommand):
    help = "Create an API key for an organisation (by name or short name) and print it; it is not stored."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("organisation", help="The organisation's name or short name.")
        parser.add_argument("--name", default="API access", help="What the key is for.")
        parser.add_argument("--scopes", default="read", help=f"Comma-separated: {', '.join(ApiScope.values)}.")
        parser.add_argument("--expires-in-days", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        wanted = options["organisation"]
        organisation = (Organisation.objects.filter(name=wanted).first()
                        or Organisation.objects.filter(short_name=wanted).first())
        if organisation is None:
            raise CommandError(f"no organisation is called {wanted!r}")
        days = options["expires_in_days"]
        expires_at = timezone.now() + datetime.timedelta(days=days) if days else None
        try:
            _, full_text = api_key_issue(organisation=organisation, name=options["name"], actor=None,
                                         scopes=[s.strip() for s in options["scopes"].split(",") if s.strip()],
                                         expires_at=expires_at)
        except ValueError as exc:
            raise CommandError(f"--scopes: {exc}") from exc
        self.stdout.write(full_text)
