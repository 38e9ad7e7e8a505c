"""The roles the product ships: four groups, each with the model and custom permissions its work needs.

Kept up to date by a migration (`tracker/migrations/…_roles`) and again after every `migrate`
(`tracker.receivers`), so that a model added later gets its permissions into the groups the day it
is migrated. A group's permissions are set to exactly these: one given by hand to a shipped group is
taken away at the next migrate; give extra rights to a person or to a group of one's own instead.

- Read-only: sees children (without guardian, relatives, contacts, notes), cases, lists, replies, flags.
- Case worker: edits children and cases, notes, lists, replies, flags and imports; sees the restricted
  fields; asks for a case to be closed.
- Supervisor: what a case worker does, and closes cases, approves or sends back closings, shares with
  partners, reads the record-access log.
- Administrator: everything, including API keys, webhooks, periodic tasks and user accounts.
"""

from __future__ import annotations

from typing import Any

from django.apps.registry import Apps

READ_ONLY = "Read-only"
CASE_WORKER = "Case worker"
SUPERVISOR = "Supervisor"
ADMINISTRATOR = "Administrator"

VIEW = ("view",)
EDIT = ("view", "add", "change")
ALL = ("view", "add", "change", "delete")

# Per role: "app_label.model" → the model permissions' actions, and custom permissions "app_label.codename".
_READ_ONLY_MODELS: dict[str, tuple[str, ...]] = {
    "cases.child": VIEW, "cases.case": VIEW, "cases.caseevent": VIEW, "cases.childalias": VIEW,
    "cases.closingrequest": VIEW,
    "tracker.organisation": VIEW, "tracker.round": VIEW, "tracker.handoverlist": VIEW, "tracker.listentry": VIEW,
    "tracker.reply": VIEW, "tracker.replyoutcome": VIEW, "tracker.flag": VIEW,
}
_CASE_WORKER_MODELS: dict[str, tuple[str, ...]] = {
    **_READ_ONLY_MODELS,
    "cases.child": EDIT, "cases.case": EDIT, "cases.caseevent": ("view", "add"), "cases.childalias": ALL,
    "cases.closingrequest": ("view", "add"),
    "tracker.round": EDIT, "tracker.handoverlist": EDIT, "tracker.listentry": EDIT, "tracker.reply": EDIT,
    "tracker.replyoutcome": EDIT, "tracker.flag": EDIT, "tracker.importbatch": EDIT, "tracker.importrow": VIEW,
    "tracker.importmapping": EDIT, "tracker.caseshare": VIEW, "tracker.listshare": VIEW,
}
_SUPERVISOR_MODELS: dict[str, tuple[str, ...]] = {
    **_CASE_WORKER_MODELS,
    "cases.closingrequest": EDIT, "cases.recordaccess": VIEW,
    "tracker.organisation": EDIT, "tracker.caseshare": EDIT, "tracker.listshare": ALL,
}
_ADMINISTRATOR_MODELS: dict[str, tuple[str, ...]] = {
    **_SUPERVISOR_MODELS,
    "tracker.apikey": EDIT, "tracker.webhookendpoint": EDIT, "tracker.webhookdelivery": VIEW,
    "tracker.outboxevent": VIEW,
    "auth.user": ALL, "auth.group": ALL,
    "django_celery_beat.periodictask": ALL, "django_celery_beat.intervalschedule": ALL,
    "django_celery_beat.crontabschedule": ALL, "django_celery_beat.solarschedule": ALL,
    "django_celery_beat.clockedschedule": ALL,
    "axes.accessattempt": ("view", "delete"), "axes.accesslog": VIEW, "axes.accessfailurelog": VIEW,
    "otp_totp.totpdevice": ALL, "otp_static.staticdevice": ALL, "otp_static.statictoken": ALL,
    "admin.logentry": VIEW,
}

RESTRICTED = "cases.view_restricted_fields"
CLOSE = "cases.close_case"
APPROVE_CLOSING = "cases.approve_closing"

ROLES: dict[str, tuple[dict[str, tuple[str, ...]], tuple[str, ...]]] = {
    READ_ONLY: (_READ_ONLY_MODELS, ()),
    CASE_WORKER: (_CASE_WORKER_MODELS, (RESTRICTED,)),
    SUPERVISOR: (_SUPERVISOR_MODELS, (RESTRICTED, CLOSE, APPROVE_CLOSING)),
    ADMINISTRATOR: (_ADMINISTRATOR_MODELS, (RESTRICTED, CLOSE, APPROVE_CLOSING)),
}


def role_permissions(role: str) -> set[str]:
    """The permissions of a role as "app_label.codename"."""
    models, custom = ROLES[role]
    wanted = {f"{name.split('.')[0]}.{action}_{name.split('.')[1]}" for name, actions in models.items()
              for action in actions}
    return wanted | set(custom)


def roles_sync(apps: Apps | Any) -> dict[str, int]:
    """Create the four groups where missing and set each one's permissions to its role's, as far as
    they exist yet (an app not migrated yet joins at a later sync). `apps` is a migration's registry
    or the project's. Returns how many permissions each group holds."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    existing = {f"{app_label}.{codename}": pk for pk, app_label, codename in
                Permission.objects.values_list("pk", "content_type__app_label", "codename")}
    held = {}
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        ids = [existing[name] for name in sorted(role_permissions(role)) if name in existing]
        group.permissions.set(ids)
        held[role] = len(ids)
    return held
