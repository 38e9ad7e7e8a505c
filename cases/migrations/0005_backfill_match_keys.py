"""File every existing child under its blocking keys, so the candidate search finds children made
before the `ChildMatchKey` table existed."""

from django.db import migrations


def file_children(apps, schema_editor):
    # The engine is pure Python on a child's fields, which the historical model has too; calling it
    # here files the children exactly as `Child.save` does from now on.
    from cases.matching.candidates import backfill_match_keys

    Child = apps.get_model("cases", "Child")
    backfill_match_keys(Child.objects.filter(merged_into__isnull=True).order_by("pk").iterator(chunk_size=2000))


class Migration(migrations.Migration):
    dependencies = [("cases", "0004_child_merged_into_childmatchkey")]

    operations = [migrations.RunPython(file_children, migrations.RunPython.noop, elidable=True)]
