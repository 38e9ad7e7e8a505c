"""A case worker as the tests sign in: staff, never a superuser, with the model permissions the
case worker's work needs. When the roles arrive as groups, this is where the tests take the group."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission, User
from django.db.models import Q

# (app, codename) the reply letters and their verification need, and the pages around them.
CASE_WORKER_PERMISSIONS = (
    ("tracker", "view_handoverlist"), ("tracker", "view_listentry"), ("tracker", "change_listentry"),
    ("tracker", "view_reply"), ("tracker", "add_reply"), ("tracker", "change_reply"),
    ("tracker", "view_replyoutcome"), ("tracker", "change_replyoutcome"),
    ("tracker", "view_flag"), ("tracker", "add_flag"), ("tracker", "change_flag"),
    ("tracker", "view_organisation"),
    ("cases", "view_case"), ("cases", "change_case"), ("cases", "view_caseevent"), ("cases", "view_child"),
)
PASSWORD = "a case worker's passphrase"


def make_case_worker(username: str = "olena.case.worker", **extra: object) -> User:
    """A staff user who is a case worker by the permissions granted, with a password to sign in with."""
    user = get_user_model().objects.create_user(username=username, password=PASSWORD, is_staff=True,
                                                email=f"{username}@example.org", **extra)
    wanted = Q()
    for app, codename in CASE_WORKER_PERMISSIONS:
        wanted |= Q(content_type__app_label=app, codename=codename)
    user.user_permissions.add(*Permission.objects.filter(wanted))
    return user
