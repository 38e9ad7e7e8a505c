"""Django's makemessages, adding the names Django derives for the project's models and fields
(`core.i18n.model_labels`), which no source file spells out, to each catalogue it writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.commands import makemessages

from core.i18n import model_labels


class Command(makemessages.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        super().handle(*args, **options)
        if options.get("domain", "django") != "django":
            return
        import polib  # a development tool, as gettext itself is

        labels = model_labels()
        for po_path in sorted(Path(settings.LOCALE_PATHS[0]).glob("*/LC_MESSAGES/django.po")):
            catalogue = polib.pofile(str(po_path), wrapwidth=10_000)
            known = {entry.msgid: entry for entry in catalogue if not entry.msgctxt}
            added = 0
            for text, where in sorted(labels.items()):
                entry = known.get(text)
                if entry is None:
                    catalogue.append(polib.POEntry(msgid=text, msgstr="", occurrences=[(where, "")]))
                    added += 1
                elif entry.obsolete:
                    # msgmerge found it in no source file: it is still a model's name.
                    entry.obsolete = False
                    entry.occurrences = [(where, "")]
            # What is in no source file and names no model or field any more goes.
            for entry in [entry for entry in catalogue if entry.obsolete]:
                catalogue.remove(entry)
            catalogue.save()
            self.stdout.write(f"{po_path}: {added} model and field names added")
