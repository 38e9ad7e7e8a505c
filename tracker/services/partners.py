"""Partner organisations' keys (issued, checked, revoked) and the shares of cases with them."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from cases.models import Case
from core.bulk import CHANGED, record_history, update_instances
from core.prepared import ModelColumns, run_prepared
from tracker.events import shares_changed
from tracker.models import ApiKey, ApiScope, CaseShare, Organisation, ShareEvent

KEY_PREFIX = "ctk"
# last_used_at is written at most this often per key, so that reads do not each cost a write.
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


class KeyRefused(Exception):
    """A key that does not open the API; the message is safe to show to the caller."""


def _hash_secret(secret: str) -> str:
    # The secret is 256 random bits, so a plain SHA-256 cannot be reversed by guessing.
    return hashlib.sha256(secret.encode()).hexdigest()


def organisation_service_user(organisation: Organisation) -> User:
    """The account an organisation's keys act as: no password, no admin access."""
    if organisation.service_user is not None:
        return organisation.service_user
    user = get_user_model().objects.create(username=f"partner-{organisation.pk}", first_name=str(organisation)[:150],
                               is_staff=False, is_active=True)
    user.set_unusable_password()
    user.save(update_fields=["password"])
    organisation.service_user = user
    organisation.save(update_fields=["service_user", "updated_at"])
    return user


def api_key_issue(
    *,
    organisation: Organisation,
    name: str,
    scopes: Iterable[str],
    actor: User | None,
    expires_at: datetime.datetime | None = None,
) -> tuple[ApiKey, str]:
    """Make a key and return it with its full text, which is shown once and never stored."""
    scopes = sorted(set(scopes))
    unknown = [s for s in scopes if s not in ApiScope.values]
    if unknown or not scopes:
        raise ValueError(gettext("scopes must be among %(known)s; got %(got)s") % {
            "known": ", ".join(ApiScope.values), "got": ", ".join(unknown) or gettext("none")})
    with transaction.atomic():
        organisation_service_user(organisation)
        prefix = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        key = ApiKey.objects.create(organisation=organisation, name=name, prefix=prefix,
                                    secret_hash=_hash_secret(secret), scopes=scopes, expires_at=expires_at,
                                    created_by=actor)
    return key, f"{KEY_PREFIX}_{prefix}_{secret}"


@cache
def _key_lookup() -> tuple[str, ModelColumns[ApiKey], ModelColumns[Organisation], ModelColumns[User]]:
    """The statement that finds a key by its prefix, with its organisation and the organisation's
    account, all three whole; and the columns each of them takes in its row."""
    key, organisation, user = (ModelColumns(ApiKey, "k"), ModelColumns(Organisation, "o"),
                               ModelColumns(get_user_model(), "u"))
    quote = connection.ops.quote_name
    sql = (f"SELECT {key.sql()}, {organisation.sql()}, {user.sql()} "  # noqa: S608 names from the models' metadata
           f"FROM {quote(ApiKey._meta.db_table)} k "
           f"JOIN {quote(Organisation._meta.db_table)} o ON o.{quote('id')} = k.{quote('organisation_id')} "
           f"LEFT JOIN {quote(get_user_model()._meta.db_table)} u ON u.{quote('id')} = o.{quote('service_user_id')} "
           f"WHERE k.{quote('prefix')} = %s")
    return sql, key, organisation, user


def _key_by_prefix(prefix: str) -> ApiKey | None:
    """The key with this prefix, its organisation and that one's account loaded with it: one statement,
    prepared on the connection, read from the database on every request (a key revoked a moment ago
    is refused at once)."""
    sql, key_columns, organisation_columns, user_columns = _key_lookup()
    rows = run_prepared(sql, [prefix])
    if not rows:
        return None
    row = rows[0]
    split, end = len(key_columns), len(key_columns) + len(organisation_columns)
    key, organisation = key_columns.instance(row[:split]), organisation_columns.instance(row[split:end])
    assert key is not None and organisation is not None  # noqa: S101 an inner join's rows
    user = user_columns.instance(row[end:])
    # Related as select_related relates them, the account knowing its organisation too.
    account = Organisation._meta.get_field("service_user")
    account.set_cached_value(organisation, user)
    if user is not None:
        account.remote_field.set_cached_value(user, organisation)
    ApiKey._meta.get_field("organisation").set_cached_value(key, organisation)
    return key


def api_key_authenticate(raw: str, *, now: datetime.datetime | None = None) -> ApiKey:
    """The usable key for a presented key text, or KeyRefused saying why in terms safe to show."""
    now = now or timezone.now()
    parts = raw.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        raise KeyRefused(gettext("malformed API key"))
    key = _key_by_prefix(parts[1])
    if key is None or not hmac.compare_digest(key.secret_hash, _hash_secret(parts[2])):
        raise KeyRefused(gettext("unknown API key"))
    if key.revoked_at is not None:
        raise KeyRefused(gettext("this API key was revoked"))
    if key.expires_at is not None and key.expires_at <= now:
        raise KeyRefused(gettext("this API key has expired"))
    if not key.organisation.is_active or key.organisation.service_user is None:
        raise KeyRefused(gettext("this organisation's access is suspended"))
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def api_key_revoke(*, key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


# --- Shares of cases ------------------------------------------------------------------------------
# The one road for sharing a case with a partner, changing what a share grants, and ending it: each
# writes a `ShareEvent` in the same transaction, which the partner's incremental sync reads (a new
# or widened share brings the case into `updated_since`, a revoked one lists it as removed) and
# which its webhooks hear of (`case.shared`, `case.unshared`).


def _record_share_events(shares: list[CaseShare], kind: str, actor: User | None) -> list[ShareEvent]:
    now = timezone.now()
    events = ShareEvent.objects.bulk_create([
        ShareEvent(share=share, case_id=share.case_id, organisation_id=share.organisation_id, kind=kind,
                   include_restricted=share.include_restricted and kind != ShareEvent.Kind.REVOKED,
                   can_contribute=share.can_contribute and kind != ShareEvent.Kind.REVOKED,
                   occurred_at=now, actor=actor)
        for share in shares
    ])
    shares_changed.send(sender=ShareEvent, events=events)
    return events


def case_share_grant(
    *,
    case: Case,
    organisation: Organisation,
    actor: User | None,
    include_restricted: bool = False,
    can_contribute: bool = False,
) -> CaseShare:
    """Share a case with an organisation, or change what its live share grants (the restricted fields,
    contributing). Granting what is already granted changes nothing and tells no one."""
    with transaction.atomic():
        share = (CaseShare.objects.select_for_update()
                 .filter(case=case, organisation=organisation, revoked_at__isnull=True).first())
        if share is None:
            share = CaseShare(case=case, organisation=organisation, shared_by=actor)
            kind = ShareEvent.Kind.SHARED
        elif (share.include_restricted, share.can_contribute) == (include_restricted, can_contribute):
            return share
        else:
            kind = ShareEvent.Kind.CHANGED
        share.include_restricted, share.can_contribute = include_restricted, can_contribute
        share._history_user = actor  # type: ignore[attr-defined]
        share.save()
        _record_share_events([share], kind, actor)
    return share


def case_shares_revoke(*, share_ids: Iterable[int], actor: User | None) -> int:
    """Stop sharing: the shares stay as a record, revoked now. Returns how many were live."""
    with transaction.atomic():
        shares = list(CaseShare.objects.select_for_update().filter(pk__in=list(share_ids), revoked_at__isnull=True)
                      .order_by("pk"))
        if not shares:
            return 0
        now = timezone.now()
        for share in shares:
            share.revoked_at = share.updated_at = now
        update_instances(shares, CaseShare, ["revoked_at", "updated_at"])
        record_history(CaseShare, [share.pk for share in shares], history_type=CHANGED, user=actor,
                       reason="Share revoked")
        _record_share_events(shares, ShareEvent.Kind.REVOKED, actor)
    return len(shares)
