"""Second factor for staff: an authenticator app (TOTP) and ten single-use recovery codes, via django-otp.

The codes themselves are django-otp's: a TOTP device per user and a static device holding the
recovery codes. This module only decides when a second factor is needed and makes a user's set of
devices anew (at enrolment in the admin, or from `manage.py create_totp_device`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django_otp import user_has_device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

RECOVERY_CODES = 10
APP_DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"


def two_factor_required() -> bool:
    """Read on every request, so that a test (or an operator's restart) can change it."""
    return bool(settings.TRACKER_REQUIRE_2FA)


def is_verified(user: Any) -> bool:
    """Whether this session's user passed a second factor (set by django-otp's middleware)."""
    check = getattr(user, "is_verified", None)
    return bool(check and check())


def has_device(user: Any) -> bool:
    return user_has_device(user, confirmed=True)


def may_enrol(user: Any) -> bool:
    """Who may make themselves a new authenticator: a staff user with no device yet, when self-enrolment
    is on (the password alone got them here, so that is the only case it may be trusted for), or one
    this session already verified with a second factor (replacing a phone), or anyone while the second
    factor is not required."""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    if not two_factor_required() or is_verified(user):
        return True
    return bool(settings.TRACKER_2FA_SELF_ENROL) and not has_device(user)


def pending_app_device(user: Any) -> TOTPDevice:
    """The unconfirmed authenticator being set up: the same secret on every reload of the enrolment
    page, so that what the user scanned stays valid until they confirm it."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=APP_DEVICE_NAME, confirmed=False)
    return device


@dataclass(frozen=True)
class Enrolment:
    device: TOTPDevice
    recovery_codes: list[str]


def _replace_devices(user: Any, device: TOTPDevice) -> Enrolment:
    """`device` becomes the user's only authenticator, with a fresh set of recovery codes; every
    earlier device and code stops working."""
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    StaticDevice.objects.filter(user=user).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    recovery = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=recovery, token=code) for code in codes])
    return Enrolment(device=device, recovery_codes=codes)


def app_device_confirm(*, device: TOTPDevice, token: str) -> Enrolment | None:
    """Confirm a pending authenticator with a code it shows; None if the code is wrong (django-otp
    counts the failure and slows further tries)."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        if not device.verify_token(token.strip()):
            return None
        return _replace_devices(device.user, device)


@transaction.atomic
def app_device_create(user: Any) -> Enrolment:
    """A new, confirmed authenticator for `user` at once (for the management command, run by an
    operator who hands the secret over in person)."""
    device = TOTPDevice.objects.create(user=user, name=APP_DEVICE_NAME, confirmed=False)
    return _replace_devices(user, device)


def qr_svg(data: str) -> str:
    """A QR code of `data` as inline SVG markup (qrcode's pure-Python SVG writer: no image library,
    and no style attributes that the Content Security Policy would drop)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    out = io.BytesIO()
    image.save(out)
    svg = out.getvalue().decode()
    # The XML declaration is for a stand-alone file; inside HTML it is noise.
    return svg.split("?>", 1)[1].strip() if svg.startswith("<?xml") else svg
