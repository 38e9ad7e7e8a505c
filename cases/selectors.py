"""Reads of children and cases that the admin and the API share."""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model, Q, QuerySet

from cases.matching import names

M = TypeVar("M", bound=Model)


def search_by_name(queryset: QuerySet[M], path: str, text: str) -> QuerySet[M]:
    """Keep the rows whose child has every word of `text` in some spelling, Cyrillic or Latin.

    Each word is folded to the same Latin key as the stored names, so "Shevchenko", "Шевченко"
    and "Schewtschenko" look for the same thing; on PostgreSQL a trigram index serves the match.
    """
    contains = f"{path}__contains"
    # Word by word of the folded key, so that a hyphenated name (Анна-Марія) is two words, as stored.
    for key in names.latin_key(text).split():
        matches = Q(**{contains: key})
        # The canonical form lets the Russian form of a given name (Aleksandr, Александр) find the
        # Ukrainian one (Oleksandr). Only for a known given name: a surname one typo from a name
        # (Petrov, Petro) stays itself.
        canonical = names.canonical_given_name(key) if names.is_known_given_name(key) else key
        if canonical != key:
            matches |= Q(**{contains: canonical})
        queryset = queryset.filter(matches)
    return queryset
