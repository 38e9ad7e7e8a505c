"""Who may call the API: partners through a key with the right scope, and case workers (staff)."""

from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

from tracker.models import ApiKey, ApiScope
from tracker.selectors import Viewer


def viewer_of(request: Request) -> Viewer:
    if isinstance(request.auth, ApiKey):
        return Viewer(organisation=request.auth.organisation, key=request.auth)
    return Viewer(organisation=None)


class PartnerOrStaff(permissions.BasePermission):
    """Reads need the `read` scope, writes `contribute`; a signed-in case worker may do both."""

    message = "This API key's scopes do not allow this request."

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, ApiKey):
            needed = ApiScope.READ if request.method in permissions.SAFE_METHODS else ApiScope.CONTRIBUTE
            return needed in request.auth.scopes
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)
