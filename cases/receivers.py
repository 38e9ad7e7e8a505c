"""Receivers of the cases app's own model signals; connected when the app is ready (`CasesConfig.ready`)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from cases.matching.candidates import sync_match_keys
from cases.models import MATCH_FIELDS, Child


@receiver(post_save, sender=Child)
def match_keys_follow_the_child(sender: Any, instance: Child, created: bool,
                                update_fields: frozenset[str] | None = None, **kwargs: Any) -> None:
    """Every save of a child passes here (admin, API, imports, factories), so the candidate search can
    never miss a child whose name or birth date just changed. Bulk writes file their keys themselves."""
    if update_fields is None or not MATCH_FIELDS.isdisjoint(update_fields):
        sync_match_keys(instance, adding=created)
