"""Reads of children and cases that the admin and the API share."""

from __future__ import annotations

from typing import TypeVar

from django.contrib.postgres.search import TrigramWordSimilarity
from django.db import connection
from django.db.models import Model, Q, QuerySet

from cases.matching import names
from cases.models import Child

M = TypeVar("M", bound=Model)


def search_by_name(queryset: QuerySet[M], path: str, text: str) -> QuerySet[M]:
    """Keep the rows whose child has every word of `text` in some spelling, Cyrillic or Latin.

    The admin's search and the API's ``q=`` both come here. Each word is folded to the same search
    keys as the stored names (`names.search_forms`: any romanisation, і/е/и, the Russian form of a
    given name, a short form's full names), so "Shevchenko", "Шевченко" and "Schewtschenko", or
    "Белоус" and "Білоус", look for the same thing; on PostgreSQL a trigram index serves the match.
    """
    contains = f"{path}__contains"
    for keys in names.search_forms(text):
        matches = Q()
        for key in sorted(keys):
            matches |= Q(**{contains: key})
        queryset = queryset.filter(matches)
    return queryset


# How many children "did you mean" offers.
CLOSEST_CHILDREN = 5


def closest_children(text: str, *, limit: int = CLOSEST_CHILDREN) -> list[Child]:
    """The children whose names come closest to a search that found nothing, closest first: "did you
    mean". Closeness is trigram word similarity between the folded query and the stored search keys
    (PostgreSQL's pg_trgm, served by the search column's trigram index); elsewhere nothing is offered.
    """
    forms = names.search_forms(text)
    if not forms or connection.vendor != "postgresql":
        return []
    query = " ".join(names.search_key(word) for word in names.latin_key(text).split())
    return list(
        Child.objects.filter(merged_into__isnull=True, search_names__trigram_word_similar=query)
        .annotate(closeness=TrigramWordSimilarity(query, "search_names"))
        .order_by("-closeness", "pk")[:limit]
    )
