"""Logging in to the admin, as a browser does it: repeated wrong passwords lock one username at one
address out for a while (django-axes), and where a second factor is required a password alone opens
nothing, an authenticator's code or a recovery code does (django-otp), and a staff user without a
device enrols one from the admin."""

from __future__ import annotations

import datetime
import re
from html import unescape
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.db.models import F
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
LOGIN = "/admin/login/"
INDEX = "/admin/"
ENROL = "/admin/two-factor/"


@pytest.fixture(autouse=True)
def fast_passwords(settings) -> None:
    # Many logins here; the real hasher's cost is not what is tested.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def staff(username: str) -> Any:
    user = UserFactory(username=username, is_superuser=True)
    user.set_password(PASSWORD)
    user.save()
    return user


def log_in(client: Client, username: str, password: str = PASSWORD, **fields: Any) -> Any:
    """Post the admin's login form; upper-case keywords (REMOTE_ADDR, HTTP_X_FORWARDED_FOR) go to the request."""
    request = {key: fields.pop(key) for key in list(fields) if key.isupper()}
    return client.post(LOGIN, {"username": username, "password": password, "next": INDEX, **fields}, **request)


def logged_in(response: Any) -> bool:
    return response.status_code == 302 and response["Location"] == INDEX


def wait_out_throttling(device: Any) -> None:
    """django-otp slows tries after a wrong code (1 s, 2 s, 4 s…); act as if that time had passed."""
    type(device).objects.filter(pk=device.pk).update(
        throttling_failure_timestamp=F("throttling_failure_timestamp") - datetime.timedelta(minutes=5))


def found(pattern: str, text: str, flags: int = 0) -> str:
    match = re.search(pattern, text, flags)
    assert match, f"{pattern!r} not found"
    return match.group(1)


def totp_code(device: TOTPDevice) -> str:
    """The code the user's phone shows now, worked out by django-otp's own TOTP."""
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


# ---------------------------------------------------------------------------------------------
# Lockout after repeated failures
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def worker() -> Any:
    return staff("case.worker")


def fail_five_times(client: Client, username: str, **headers: Any) -> list[int]:
    return [log_in(client, username, "wrong password", **headers).status_code for _ in range(5)]


def test_five_wrong_passwords_lock_out_even_the_right_one(client, worker):
    statuses = fail_five_times(client, "case.worker")
    assert statuses[:4] == [200] * 4, "the first four are ordinary wrong passwords"
    assert statuses[4] == 429, "the fifth locks the account out"
    refused = log_in(client, "case.worker")
    assert refused.status_code == 429 and not logged_in(refused)
    assert "too many login attempts" in refused.content.decode().lower()
    assert client.get(INDEX).status_code == 302, "still not signed in"


def test_the_lockout_holds_for_that_username_from_that_address_only(client, worker):
    staff("another.worker")
    fail_five_times(client, "case.worker")
    assert logged_in(log_in(Client(), "another.worker")), "another user is not locked out"
    assert logged_in(log_in(Client(), "case.worker", REMOTE_ADDR="127.0.0.2")), \
        "nor the same user from another address: guessing at a name cannot lock its owner out everywhere"
    assert log_in(client, "case.worker").status_code == 429


def minutes_pass(minutes: int) -> None:
    """Move every recorded attempt back in time, as if that long had passed."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - datetime.timedelta(minutes=minutes))


def test_after_the_cool_off_the_right_password_works_again(client, worker, settings):
    assert datetime.timedelta(minutes=30) == settings.AXES_COOLOFF_TIME
    fail_five_times(client, "case.worker")
    minutes_pass(31)
    assert logged_in(log_in(client, "case.worker"))
    assert client.get(INDEX).status_code == 200


def test_a_try_during_the_lockout_starts_the_wait_again(client, worker):
    fail_five_times(client, "case.worker")
    minutes_pass(29)
    assert log_in(client, "case.worker").status_code == 429
    minutes_pass(2)  # 31 minutes after the failures, but 2 after the last try
    assert log_in(client, "case.worker").status_code == 429
    minutes_pass(31)
    assert logged_in(log_in(client, "case.worker"))


def test_a_success_clears_the_count_of_failures(client, worker):
    for _ in range(4):
        log_in(client, "case.worker", "wrong password")
    assert logged_in(log_in(client, "case.worker"))
    client.logout()
    assert fail_five_times(client, "case.worker")[:4] == [200] * 4, "four earlier failures were forgotten"


def test_behind_a_proxy_the_address_counted_is_the_clients(client, worker, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    # Every request arrives from the proxy; the proxy appends the client's address to X-Forwarded-For.
    attacker = {"REMOTE_ADDR": "127.0.0.10", "HTTP_X_FORWARDED_FOR": "203.0.113.7"}
    fail_five_times(client, "case.worker", **attacker)
    assert log_in(Client(), "case.worker", **attacker).status_code == 429
    assert logged_in(log_in(Client(), "case.worker", REMOTE_ADDR="127.0.0.10", HTTP_X_FORWARDED_FOR="198.51.100.4"))
    # What the client wrote itself, left of the proxy's entry, changes nothing.
    spoofed = {"REMOTE_ADDR": "127.0.0.10", "HTTP_X_FORWARDED_FOR": "198.51.100.4, 203.0.113.7"}
    assert log_in(Client(), "case.worker", **spoofed).status_code == 429


def test_a_failed_attempt_keeps_no_code_or_password_in_its_record(client, worker):
    log_in(client, "case.worker", "wrong password", otp_token="abcdefgh")
    record = AccessAttempt.objects.get()
    assert "abcdefgh" not in record.post_data and "wrong password" not in record.post_data


# ---------------------------------------------------------------------------------------------
# The second factor
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def required(settings) -> None:
    settings.TRACKER_REQUIRE_2FA = True


@pytest.fixture
def enrolled(required, capsys) -> dict[str, Any]:
    """A staff user given an authenticator by the management command, with what it printed."""
    user = staff("case.worker")
    call_command("create_totp_device", "case.worker")
    out = capsys.readouterr().out
    uri = found(r"^otpauth URI: (otpauth://\S+)$", out, re.M)
    codes = re.findall(r"^  ([a-z2-7]{8})$", out, re.M)
    return {"user": user, "uri": uri, "codes": codes, "app": TOTPDevice.objects.get(user=user),
            "recovery": StaticDevice.objects.get(user=user)}


def test_the_command_prints_the_otpauth_uri_and_ten_recovery_codes(enrolled):
    uri = urlparse(enrolled["uri"])
    assert uri.scheme == "otpauth" and uri.netloc == "totp" and unquote(uri.path) == "/Case tracker:case.worker"
    query = parse_qs(uri.query)
    assert query["issuer"] == ["Case tracker"] and query["digits"] == ["6"] and query["period"] == ["30"]
    device = enrolled["app"]
    assert device.confirmed and device.config_url == enrolled["uri"]
    assert len(enrolled["codes"]) == len(set(enrolled["codes"])) == 10
    assert sorted(enrolled["codes"]) == sorted(StaticToken.objects.filter(device=enrolled["recovery"])
                                               .values_list("token", flat=True))


def test_the_command_again_replaces_the_device_and_the_codes(enrolled, capsys):
    call_command("create_totp_device", "case.worker")
    capsys.readouterr()
    assert TOTPDevice.objects.filter(user=enrolled["user"]).get().pk != enrolled["app"].pk
    assert not StaticToken.objects.filter(token__in=enrolled["codes"]).exists()


def test_with_2fa_required_a_password_alone_does_not_open_the_admin(client, enrolled):
    response = log_in(client, "case.worker")
    assert not logged_in(response) and response.status_code == 200
    assert "Second factor" in response.content.decode(), "the form now asks which device and its code"
    assert client.get(INDEX).status_code == 302
    # A session signed in by password alone (as after enrolment was skipped) opens nothing either.
    client.force_login(enrolled["user"])
    assert client.get(INDEX)["Location"].startswith(LOGIN)
    assert client.get(reverse("admin:cases_child_changelist"))["Location"].startswith(LOGIN)
    assert client.get("/api/v1/cases/").status_code == 403


def test_a_password_and_a_valid_totp_code_open_the_admin(client, enrolled):
    device = enrolled["app"]
    response = log_in(client, "case.worker", otp_device=device.persistent_id, otp_token=totp_code(device))
    assert logged_in(response)
    assert client.get(INDEX).status_code == 200
    assert client.get(reverse("admin:cases_child_changelist")).status_code == 200
    assert client.get("/api/v1/cases/").status_code == 200, "the API's staff session is verified too"


def test_a_code_typed_without_choosing_a_device_picks_its_own(client, enrolled):
    # The first form shows no device list: six digits are the app's code, anything else a recovery code.
    assert logged_in(log_in(client, "case.worker", otp_token=totp_code(enrolled["app"])))
    client.post(reverse("admin:logout"))
    assert logged_in(log_in(client, "case.worker", otp_token=enrolled["codes"][0]))
    client.post(reverse("admin:logout"))
    assert enrolled["recovery"].token_set.count() == 9
    assert not logged_in(log_in(client, "case.worker", otp_token="not-a-code"))


def test_a_wrong_or_reused_code_is_refused(client, enrolled):
    device = enrolled["app"]
    code = totp_code(device)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert not logged_in(log_in(client, "case.worker", otp_device=device.persistent_id, otp_token=wrong))
    throttled = log_in(client, "case.worker", otp_device=device.persistent_id, otp_token=code)
    assert not logged_in(throttled) and "temporarily disabled" in throttled.content.decode(), \
        "right after a wrong code even the right one waits"
    wait_out_throttling(device)
    assert logged_in(log_in(client, "case.worker", otp_device=device.persistent_id, otp_token=code))
    client.logout()
    assert not logged_in(log_in(Client(), "case.worker", otp_device=device.persistent_id, otp_token=code)), \
        "a code seen once is not accepted again"


def test_a_recovery_code_works_once_only(client, enrolled):
    recovery, code = enrolled["recovery"], enrolled["codes"][0]
    assert logged_in(log_in(client, "case.worker", otp_device=recovery.persistent_id, otp_token=code.upper()))
    assert client.get(INDEX).status_code == 200
    client.post(reverse("admin:logout"))
    assert client.get(INDEX).status_code == 302

    again = log_in(client, "case.worker", otp_device=recovery.persistent_id, otp_token=code)
    assert not logged_in(again) and "Invalid token" in again.content.decode()
    wait_out_throttling(recovery)
    other = enrolled["codes"][1]
    assert logged_in(log_in(Client(), "case.worker", otp_device=recovery.persistent_id, otp_token=other))


def test_another_users_device_is_no_second_factor(client, enrolled, capsys):
    staff("intruder")
    call_command("create_totp_device", "intruder")
    capsys.readouterr()
    device = enrolled["app"]
    response = log_in(client, "intruder", otp_device=device.persistent_id, otp_token=totp_code(device))
    assert not logged_in(response)
    assert client.get(INDEX).status_code == 302


def enrolment_secret(page: str) -> tuple[str, str]:
    """The otpauth URI the enrolment page shows, and its secret: what the phone reads off the QR code."""
    uri = unescape(found(r'class="two-factor-uri">([^<]+)<', page))
    return uri, parse_qs(urlparse(uri).query)["secret"][0]


def test_a_staff_user_without_a_device_enrols_from_the_admin(client, required):
    user = staff("new.worker")
    response = log_in(client, "new.worker")
    assert logged_in(response), "the password alone is taken once, to reach the enrolment"
    assert client.get(INDEX)["Location"] == ENROL, "every admin page leads to the enrolment"
    assert client.get(reverse("admin:cases_child_changelist"))["Location"] == ENROL
    assert client.get("/api/v1/cases/").status_code == 403

    page = client.get(ENROL)
    html = page.content.decode()
    assert page.status_code == 200 and "<svg" in html, "the QR code, drawn inline"
    uri, secret = enrolment_secret(html)
    assert unquote(uri).startswith("otpauth://totp/Case tracker:new.worker?")
    assert client.get(ENROL).content.decode().count(secret) >= 1, "a reload shows the same secret"
    device = TOTPDevice.objects.get(user=user)
    assert not device.confirmed and device.config_url == uri

    refused = client.post(ENROL, {"otp_token": "000000" if totp_code(device) != "000000" else "111111"})
    assert "not accepted" in refused.content.decode()
    assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()

    wait_out_throttling(device)
    done = client.post(ENROL, {"otp_token": totp_code(device)})
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", done.content.decode())
    assert len(set(codes)) == 10
    assert client.get(INDEX).status_code == 200, "the session is now verified"
    assert client.get("/api/v1/cases/").status_code == 200

    client.post(reverse("admin:logout"))
    recovery = StaticDevice.objects.get(user=user)
    assert logged_in(log_in(client, "new.worker", otp_device=recovery.persistent_id, otp_token=codes[0]))


def test_a_user_with_a_device_cannot_make_another_with_the_password_alone(client, enrolled):
    client.force_login(enrolled["user"])  # as a stolen password would
    assert client.get(ENROL)["Location"].startswith(LOGIN)
    assert client.post(ENROL, {"otp_token": "123456"})["Location"].startswith(LOGIN)
    assert list(TOTPDevice.objects.filter(user=enrolled["user"])) == [enrolled["app"]]


def test_a_verified_user_replaces_their_device(client, enrolled):
    device = enrolled["app"]
    assert logged_in(log_in(client, "case.worker", otp_device=device.persistent_id, otp_token=totp_code(device)))
    page = client.get(ENROL).content.decode()
    assert "replaces your current authenticator" in page
    new = TOTPDevice.objects.get(user=enrolled["user"], confirmed=False)
    client.post(ENROL, {"otp_token": totp_code(new)})
    assert list(TOTPDevice.objects.filter(user=enrolled["user"])) == [new]
    assert not StaticToken.objects.filter(token__in=enrolled["codes"]).exists(), "the old codes stop working"
    assert client.get(INDEX).status_code == 200


def test_without_self_enrolment_a_user_without_a_device_is_turned_away(client, required, settings):
    settings.TRACKER_2FA_SELF_ENROL = False
    staff("new.worker")
    response = log_in(client, "new.worker")
    assert not logged_in(response) and "create_totp_device" in response.content.decode()


def test_logging_out_works_before_the_second_factor(client, required):
    client.force_login(staff("new.worker"))
    assert client.get(INDEX)["Location"] == ENROL
    client.post(reverse("admin:logout"))
    assert client.get(ENROL)["Location"].startswith(LOGIN), "signed out"


def test_without_2fa_required_the_password_is_enough(client, settings):
    settings.TRACKER_REQUIRE_2FA = False
    staff("case.worker")
    assert logged_in(log_in(client, "case.worker"))
    assert client.get(INDEX).status_code == 200


def test_the_session_lasts_session_hours(client, settings):
    assert settings.SESSION_COOKIE_AGE == 9 * 60 * 60, "a working day unless SESSION_HOURS says otherwise"
    staff("case.worker")
    log_in(client, "case.worker")
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["max-age"] == 9 * 60 * 60
    assert cookie["httponly"] and client.cookies[settings.CSRF_COOKIE_NAME]["httponly"]
