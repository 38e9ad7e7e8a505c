"""The signed-in user behind a request, typed as the user model the records point to."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from rest_framework.request import Request


def signed_in_user(request: HttpRequest | Request) -> User:
    """The user of a request only a signed-in user can make: the admin's pages (active staff) and the
    API's views (a key's service account, or a signed-in case worker). An anonymous request never gets
    this far; were one to, it is refused rather than written down as made by nobody."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied("Sign in first.")
    return user
