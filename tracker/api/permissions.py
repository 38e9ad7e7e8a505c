"""Who may call the API: partners through a key with the right scope, and case workers (staff)."""

from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

from core.two_factor import is_verified, two_factor_required
from tracker.models import ApiKey, ApiScope
from tracker.selectors import Viewer


def viewer_of(request: Request) -> Viewer:
    if isinstance(request.auth, ApiKey):
        return Viewer(organisation=request.auth.organisation, key=request.auth)
    return Viewer(organisation=None)


def staff_permissions_needed(request: Request, view: Any) -> tuple[str, ...] | None:
    """The model permissions a signed-in case worker needs for this request, as the view declares
    them by action (`staff_permissions`), else by method; None when the view declares nothing, which
    refuses: a door nobody listed is closed."""
    declared: dict[str, tuple[str, ...]] = getattr(view, "staff_permissions", {})
    action = getattr(view, "action", None)
    if action in declared:
        return declared[action]
    method = "read" if request.method in permissions.SAFE_METHODS else "write"
    return declared.get(method)


class PartnerOrStaff(permissions.BasePermission):
    """Partners: reads need the key's `read` scope, writes `contribute` (and what each may see is their
    shares). Case workers signed in to the admin: staff, whose session passed the second factor where
    one is required, with the same model permissions of their role that the admin asks for the same
    records; no blanket pass for being staff."""

    message = "This API key's scopes do not allow this request."

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, ApiKey):
            needed = ApiScope.READ if request.method in permissions.SAFE_METHODS else ApiScope.CONTRIBUTE
            return needed in request.auth.scopes
        user = request.user
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            return False
        # The session comes from the admin's login: a password alone must not open the API either.
        if two_factor_required() and not is_verified(user):
            self.message = "Sign in to the admin with your second factor first."
            return False
        wanted = staff_permissions_needed(request, view)
        if wanted is None:
            self.message = "This request is not open to case workers."
            return False
        if not user.has_perms(wanted):
            self.message = "Your role does not allow this: it needs " + ", ".join(wanted) + "."
            return False
        return True


def may_see_restricted_fields(request: Request) -> bool:
    """A case worker whose role reads guardians, relatives, contacts and notes."""
    return bool(request.user and request.user.is_authenticated
                and request.user.has_perm("cases.view_restricted_fields"))
