"""Give the demo's accounts (one per role, see seed_demo) passwords and print their logins: for `make run`
on the embedded defaults only. The passwords are kept in var/demo-logins.txt, so each start prints
the same ones."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tracker.management.commands.seed_demo import DEMO_USERS, demo_users

PASSWORD_FILE = settings.VAR_DIR / "demo-logins.txt"


def stored_passwords() -> dict[str, str]:
    if not PASSWORD_FILE.exists():
        return {}
    pairs = (line.split(" ", 1) for line in PASSWORD_FILE.read_text().splitlines() if " " in line)
    return {username: password.strip() for username, password in pairs}


class Command(BaseCommand):
    help = "Give each demo account (one per role) a password if it has none that works, and print the logins."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("refusing to set demo passwords with DJANGO_DEBUG off; use createsuperuser")
        users = demo_users()
        passwords = stored_passwords()
        for username, user in users.items():
            if not user.check_password(passwords.get(username, "")):
                passwords[username] = secrets.token_urlsafe(9)
                user.set_password(passwords[username])
                user.save(update_fields=["password"])
        PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True)
        PASSWORD_FILE.write_text("".join(f"{name} {passwords[name]}\n" for name in users))
        PASSWORD_FILE.chmod(0o600)
        self.stdout.write("Demo logins (one per role; synthetic data):")
        for username, _, _, role in DEMO_USERS:
            self.stdout.write(f"  {role:<14} {username} / {passwords[username]}")
