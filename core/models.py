"""Abstract model bases every app's models build on."""

from __future__ import annotations

from typing import NoReturn

from django.db import models
from django.utils import timezone


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        abstract = True


class RecordDeletionRefused(Exception):
    """A child's record and its case file are never deleted: they are closed or merged instead."""


class UndeletableQuerySet(models.QuerySet):
    def delete(self) -> NoReturn:
        raise RecordDeletionRefused(f"{self.model._meta.verbose_name_plural} are never deleted")
