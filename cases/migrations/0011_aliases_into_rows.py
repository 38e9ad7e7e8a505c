"""Each spelling in a child's `aliases` list becomes an alias row (name, script, source), which is what
case workers now edit; the list stays, written from the rows."""

from django.db import migrations

UKRAINIAN_LETTERS = frozenset("іїєґІЇЄҐ")
RUSSIAN_LETTERS = frozenset("ыэъёЫЭЪЁ")
BATCH = 2000


def script_of(name):
    # The model's guess_script as it stood when this migration was written.
    letters = {ch for ch in name if ch.isalpha()}
    if not letters:
        return "other"
    if letters & UKRAINIAN_LETTERS:
        return "uk"
    if letters & RUSSIAN_LETTERS:
        return "ru"
    if all("\u0400" <= ch <= "\u04ff" for ch in letters):
        return "cyrillic"
    if all(ch.isascii() or "\u00c0" <= ch <= "\u024f" for ch in letters):
        return "latin"
    return "other"


def aliases_into_rows(apps, schema_editor):
    Child = apps.get_model("cases", "Child")
    ChildAlias = apps.get_model("cases", "ChildAlias")
    rows = []
    for child_id, aliases in Child.objects.exclude(aliases=[]).values_list("pk", "aliases").iterator(
            chunk_size=BATCH):
        seen = set()
        for alias in aliases or []:
            name = " ".join(str(alias).split())[:255]
            if name and name not in seen:
                seen.add(name)
                rows.append(ChildAlias(child_id=child_id, name=name, script=script_of(name),
                                       source="before other spellings were kept as rows"))
        if len(rows) >= BATCH:
            ChildAlias.objects.bulk_create(rows, ignore_conflicts=True)
            rows = []
    ChildAlias.objects.bulk_create(rows, ignore_conflicts=True)


def rows_back_into_aliases(apps, schema_editor):
    # The list was never emptied: going back leaves it as it stands and drops the rows with their table.
    pass


class Migration(migrations.Migration):
    dependencies = [("cases", "0010_alias_rows_notes_and_closing_approval")]

    operations = [migrations.RunPython(aliases_into_rows, rows_back_into_aliases, elidable=False)]
