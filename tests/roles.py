"""A case worker as the tests sign in: staff in the shipped Case worker group (`tracker.roles`), never
a superuser, with a password to sign in with through the login form."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User

from tracker.roles import CASE_WORKER

PASSWORD = "a case worker's passphrase"


def make_case_worker(username: str = "olena.case.worker", **extra: object) -> User:
    """A staff user who is a case worker by the shipped role, and nothing more."""
    user = get_user_model().objects.create_user(username=username, password=PASSWORD, is_staff=True,
                                                email=f"{username}@example.org", **extra)
    user.groups.add(Group.objects.get(name=CASE_WORKER))
    return user
