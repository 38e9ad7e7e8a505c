"""The four roles as groups (Read-only, Case worker, Supervisor, Administrator) with their permissions.

The permissions themselves are normally made after the whole migrate, so they are made here first for
every app. Later migrates keep the groups in step through a post_migrate receiver (tracker.receivers).
"""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations

from tracker.roles import roles_sync


def groups_with_permissions(apps, schema_editor):
    for app_config in global_apps.get_app_configs():
        # create_permissions skips an app whose models module is not loaded yet, as in a migration.
        loaded = app_config.models_module
        app_config.models_module = loaded or True
        try:
            create_permissions(app_config, apps=apps, verbosity=0)
        finally:
            app_config.models_module = loaded
    roles_sync(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0010_share_events_and_webhook_rotation_and_deletion"),
        ("cases", "0011_aliases_into_rows"),
        ("auth", "__latest__"),
        ("contenttypes", "__latest__"),
        ("admin", "__latest__"),
        ("django_celery_beat", "__latest__"),
        ("axes", "__latest__"),
        ("otp_totp", "__latest__"),
        ("otp_static", "__latest__"),
    ]

    operations = [migrations.RunPython(groups_with_permissions, migrations.RunPython.noop, elidable=False)]
