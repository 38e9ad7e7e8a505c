"""Names are folded anew: search keys fold і / е / и (Білоус, Белоус), Czech, Polish, German and GOST
spellings read as their tables do, and children are also filed under each name with the other name's
tail (``t:`` keys, which survive a slip in a first letter). Every child's search column and match keys
are worked out again, a batch of children at a time."""

from itertools import islice

from django.db import migrations

BATCH = 2000
NAME_FIELDS = ("family_name", "given_name", "patronymic", "family_name_latin", "given_name_latin",
               "patronymic_latin", "aliases")


def refold(apps, schema_editor):
    from cases.matching.candidates import child_match_keys
    from cases.matching.names import search_text
    from core.bulk import insert_rows, update_instances

    Child = apps.get_model("cases", "Child")
    ChildMatchKey = apps.get_model("cases", "ChildMatchKey")
    ChildMatchKey.objects.all().delete()
    children = Child.objects.order_by("pk").only("pk", "merged_into", "search_names", "birth_date",
                                                 "birth_date_precision", "sex", "home_settlement",
                                                 *NAME_FIELDS).iterator(chunk_size=BATCH)
    while chunk := list(islice(children, BATCH)):
        changed = []
        for child in chunk:
            folded = search_text(child.family_name, child.given_name, child.patronymic, child.family_name_latin,
                                 child.given_name_latin, child.patronymic_latin, *(child.aliases or []))
            if folded != child.search_names:
                child.search_names = folded
                changed.append(child)
        update_instances(changed, Child, ["search_names"])
        insert_rows(ChildMatchKey, ("child_id", "key"),
                    ((child.pk, key) for child in chunk for key in child_match_keys(child)))


class Migration(migrations.Migration):
    dependencies = [("cases", "0011_aliases_into_rows")]

    operations = [migrations.RunPython(refold, migrations.RunPython.noop, elidable=True)]
