"""The match keys' year blocks now carry the other name's first letter: file every child anew."""

from django.db import migrations


def rebuild(apps, schema_editor):
    from cases.matching.candidates import backfill_match_keys

    Child = apps.get_model("cases", "Child")
    apps.get_model("cases", "ChildMatchKey").objects.all().delete()
    backfill_match_keys(Child.objects.filter(merged_into__isnull=True).order_by("pk").iterator(chunk_size=2000))


class Migration(migrations.Migration):
    dependencies = [("cases", "0005_backfill_match_keys")]

    operations = [migrations.RunPython(rebuild, migrations.RunPython.noop, elidable=True)]
