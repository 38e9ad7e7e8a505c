"""Give a staff user a new authenticator (TOTP) and ten recovery codes, and print them once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.two_factor import app_device_create


class Command(BaseCommand):
    help = ("Create a confirmed TOTP device and 10 recovery codes for a user, replacing any earlier ones, "
            "and print the otpauth URI (to scan or type into an authenticator app) and the codes. Neither is "
            "shown again: hand them to the user in person.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        try:
            user = User.objects.get_by_natural_key(options["username"])
        except User.DoesNotExist as exc:
            raise CommandError(f"no user is called {options['username']!r}") from exc
        if not user.is_staff:
            self.stderr.write(f"note: {user.get_username()} is not staff and cannot open the admin")
        enrolment = app_device_create(user)
        self.stdout.write(f"otpauth URI: {enrolment.device.config_url}")
        self.stdout.write("Recovery codes (each works once):")
        for code in enrolment.recovery_codes:
            self.stdout.write(f"  {code}")
