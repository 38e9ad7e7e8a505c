"""Why a pair of records was missed or wrongly joined, in a few words: what the two records show that
makes the pair hard. The same classification for the engine's errors and Splink's, so that the two can
be set side by side (docs/matching.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from cases.matching.engine import PersonRecord, comparison_levels


def cause_of(a: PersonRecord, b: PersonRecord) -> str:
    comparison = comparison_levels(a, b)
    levels = dict(comparison.levels)
    family, given, date = levels.get("family", ""), levels.get("given", ""), levels.get("date", "")
    swapped = any(reason.startswith("family and given names swapped") for reason in comparison.reasons)
    first_letters = {(a.family.sounds[:1], b.family.sounds[:1]), (a.given.sounds[:1], b.given.sounds[:1])}
    if family in ("different", "") or given in ("different", "another name", ""):
        return "a name beyond a typo, or missing"
    if family in ("typo", "short typo") and any(x != y for x, y in first_letters if x and y):
        return "a slip in a name's first letter"
    if family == "part":
        return "double family name, one half"
    if date in ("year-only, a year apart", "year apart, same day", "year apart, same month"):
        return "birth year one apart"
    if date in ("different", "same year, other day", "same year, other month", "one digit apart"):
        return "birth dates disagree"
    if swapped:
        return "family and given names swapped"
    if not date:
        return "names agree, no date in one record"
    if date == "year-only, same year":
        return "names agree, year-only date"
    return "names and date agree (the grouping)"


def causes(pairs: Iterable[tuple[PersonRecord, PersonRecord]]) -> Counter[str]:
    return Counter(cause_of(a, b) for a, b in pairs)


def cause_table(title: str, counted: Counter[str]) -> str:
    total = sum(counted.values())
    lines = [f"{title}: {total}"]
    lines += [f"  {count:4d}  {cause}" for cause, count in counted.most_common()]
    return "\n".join(lines)
