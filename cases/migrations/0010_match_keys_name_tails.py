"""Children are also filed under each name with the other name's tail (``t:`` keys), so that a slip in
a name's first letter still finds them: add those keys, a batch of children at a time."""

from itertools import islice

from django.db import migrations

BATCH = 2000


def add_tail_keys(apps, schema_editor):
    from cases.matching.candidates import child_match_keys
    from core.bulk import insert_rows

    Child = apps.get_model("cases", "Child")
    ChildMatchKey = apps.get_model("cases", "ChildMatchKey")
    # Safe to run again: the tail keys are filed anew.
    ChildMatchKey.objects.filter(key__startswith="t:").delete()
    children = Child.objects.filter(merged_into__isnull=True).order_by("pk").iterator(chunk_size=BATCH)
    while chunk := list(islice(children, BATCH)):
        insert_rows(ChildMatchKey, ("child_id", "key"),
                    ((child.pk, key) for child in chunk for key in child_match_keys(child) if key.startswith("t:")))


def drop_tail_keys(apps, schema_editor):
    apps.get_model("cases", "ChildMatchKey").objects.filter(key__startswith="t:").delete()


class Migration(migrations.Migration):
    dependencies = [("cases", "0009_restricted_fields_and_anonymising")]

    operations = [migrations.RunPython(add_tail_keys, drop_tail_keys, elidable=True)]
