"""The interface in Ukrainian and English: the models' own names and their fields' names translated
without a migration, and the labels `make messages` adds to the catalogue for them.

Django names a model and a field after the code when no verbose name is given ("handover list",
"family name"), as a plain string that no catalogue reaches. Rather than write each one out again on
every model (and a migration for each), the apps mark the names they derive as translatable when they
are ready; `model_labels` lists them for the catalogue, and the catalogue's test fails on any left
untranslated, so a field added later is caught the day it is added.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.apps import AppConfig, apps
from django.db import models
from django.utils import translation
from django.utils.translation import gettext_lazy

# The apps whose models' names are ours to translate (Django's and the libraries' carry their own).
PROJECT_APPS = ("cases", "tracker")


def _derived(model: type[models.Model]) -> Iterator[tuple[object, str, str]]:
    """(holder, attribute, text) for each name Django derived from the code rather than was given."""
    meta = model._meta
    if "verbose_name" not in meta.original_attrs:
        yield meta, "verbose_name", str(meta.verbose_name)
    if "verbose_name_plural" not in meta.original_attrs:
        yield meta, "verbose_name_plural", str(meta.verbose_name_plural)
    for field in meta.get_fields(include_hidden=False):
        if isinstance(field, models.Field) and getattr(field, "_verbose_name", "") is None:
            yield field, "verbose_name", str(field.verbose_name)


_translated: set[type[models.Model]] = set()


def translate_model_labels(app_config: AppConfig) -> None:
    """Make the app's derived model and field names translatable: called from the app's ready()."""
    for model in app_config.get_models(include_auto_created=True):
        if model in _translated:
            continue
        _translated.add(model)
        # A derived plural is itself lazy ("{}s" of the name), so whether it is already translatable
        # cannot be told from its type: each model is done once.
        for holder, attribute, text in list(_derived(model)):
            setattr(holder, attribute, gettext_lazy(text))


def model_labels() -> dict[str, str]:
    """Every derived name of the project's models, each with where it comes from, for the catalogue."""
    labels: dict[str, str] = {}
    with translation.override(None):
        _collect(labels)
    return labels


def _collect(labels: dict[str, str]) -> None:
    for label in PROJECT_APPS:
        for model in apps.get_app_config(label).get_models(include_auto_created=True):
            for holder, attribute, text in _derived(model):
                where = model._meta.label if holder is model._meta else f"{model._meta.label}.{holder.name}"  # type: ignore[attr-defined]
                labels.setdefault(text, f"{where} ({attribute})")
