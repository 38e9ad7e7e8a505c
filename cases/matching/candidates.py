"""The matching engine against the database: which stored children a record may describe.

One path for every caller (the import, the admin's "possible duplicates", the API's name search,
a command): the records' blocking keys are looked up in the indexed `ChildMatchKey` table, in one
query per thousand records however many records come, and only the children found that way are
judged by `cases.matching.compare`. No caller ever reads the whole table of children.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol

from django.db import connection
from django.db.models import Count, F, Window
from django.db.models.expressions import RawSQL

from cases.matching.engine import (
    MatchScore,
    NameFrequencies,
    PersonRecord,
    birth_date_text,
    blocking_keys,
    compare,
    search_keys,
)
from cases.matching.names import is_known_given_name, latin_key, search_key, typo_distance
from cases.matching.parameters import model_parameters
from cases.models import Child, ChildMatchKey
from core.bulk import insert_rows, keys_in, texts_in

# Records per candidate query: bounds the size of the IN lists, not the number of queries per row.
QUERY_BATCH = 1000
# A key shared by more children than this (a very common name with a common birth year) says too
# little to be worth comparing every child under it; the record's other keys still find the child.
# Higher than the engine's in-file block limit, since here one record meets the block, not all pairs.
DB_MAX_BLOCK_SIZE = 1000
KEY_LENGTH = 80

# What the candidate search reads of a child: the fields the engine compares, and what a preview shows.
_CHILD_FIELDS = ("id", "family_name", "given_name", "patronymic", "family_name_latin", "given_name_latin",
                 "patronymic_latin", "aliases", "birth_date", "birth_date_precision", "sex", "home_settlement",
                 "home_oblast")


@dataclass(frozen=True)
class Candidate:
    """A stored child a record may describe, with the engine's verdict and reasons."""

    child: Child
    score: MatchScore

    @property
    def verdict(self) -> str:
        return self.score.verdict


class NamedChild(Protocol):
    """What the engine reads of a child to file it: a stored `Child`, or the values of one not yet
    built as an instance (`cases.services.children_insert`)."""

    @property
    def pk(self) -> Any: ...
    @property
    def merged_into_id(self) -> int | None: ...
    @property
    def family_name(self) -> str: ...
    @property
    def given_name(self) -> str: ...
    @property
    def patronymic(self) -> str: ...
    @property
    def family_name_latin(self) -> str: ...
    @property
    def given_name_latin(self) -> str: ...
    @property
    def patronymic_latin(self) -> str: ...
    @property
    def aliases(self) -> Any: ...
    @property
    def birth_date(self) -> datetime.date | None: ...
    @property
    def birth_date_precision(self) -> str: ...
    @property
    def sex(self) -> str: ...
    @property
    def home_settlement(self) -> str: ...


def child_birth_date(child: NamedChild) -> str:
    """The child's birth date to the precision it is known, as the engine reads dates."""
    return "" if child.birth_date is None else birth_date_text(child.birth_date, child.birth_date_precision)


def child_records(child: NamedChild) -> list[PersonRecord]:
    """Every spelling of a child as a record: the family's, the Latin one when it is not just the
    transliteration, and each alias.

    An alias is a full name ("Шевченко Александр Иванович": family, given, patronymic) or one
    word, which stands in for the given name when it is a known given name and for the family name
    otherwise (aliases hold Russian forms of given names and other spellings of family names).
    """
    common = {"birth_date": child_birth_date(child), "sex": child.sex if child.sex != "U" else "",
              "settlement": child.home_settlement, "record_id": str(child.pk or "")}
    names = (child.family_name, child.given_name, child.patronymic)
    records = [PersonRecord(family_name=names[0], given_name=names[1], patronymic=names[2], **common)]
    latin = (child.family_name_latin, child.given_name_latin, child.patronymic_latin)
    if any(latin) and [latin_key(n) for n in latin] != [latin_key(n) for n in names]:
        records.append(PersonRecord(family_name=latin[0] or names[0], given_name=latin[1] or names[1],
                                    patronymic=latin[2] or names[2], **common))
    for alias in child.aliases or []:
        words = str(alias).split()
        if not words:
            continue
        if len(words) == 1:
            family, given, patronymic = (names[0], words[0], names[2]) if is_known_given_name(words[0]) else (
                words[0], names[1], names[2])
        else:
            family, given, patronymic = words[0], words[1], " ".join(words[2:]) or names[2]
        records.append(PersonRecord(family_name=family, given_name=given, patronymic=patronymic, **common))
    return records


def child_match_keys(child: NamedChild) -> set[str]:
    """The keys a child is filed under; none for a merged record, which is nobody's candidate."""
    if child.merged_into_id is not None:
        return set()
    return {key[:KEY_LENGTH] for record in child_records(child) for key in blocking_keys(record)}


def sync_match_keys(child: Child, *, adding: bool = False) -> None:
    """Bring the child's rows in `ChildMatchKey` in line with its names and birth date."""
    wanted = child_match_keys(child)
    stored = set() if adding else set(ChildMatchKey.objects.filter(child=child).values_list("key", flat=True))
    if stored - wanted:
        ChildMatchKey.objects.filter(child=child, key__in=stored - wanted).delete()
    if wanted - stored:
        # Two saves of one child at once may both add a key: the second one's insert is a no-op.
        ChildMatchKey.objects.bulk_create([ChildMatchKey(child=child, key=key) for key in wanted - stored],
                                          ignore_conflicts=True)


def sync_match_keys_many(children: Sequence[Child]) -> None:
    """`sync_match_keys` for many children in at most three statements: the keys they are filed under
    read, the ones they no longer have deleted, the new ones added. A spelling added or a blank filled
    changes a few of a child's keys; deleting and filing all of them again wrote every key twice.

    The children's rows are locked by the caller (written in its transaction), so no other writer
    files keys of theirs in between."""
    wanted = {child.pk: child_match_keys(child) for child in children}
    if not wanted:
        return
    stored: dict[int, set[str]] = defaultdict(set)
    gone: list[int] = []
    for pk, child_id, key in ChildMatchKey.objects.filter(child_id__in=keys_in(wanted)).values_list(
            "pk", "child_id", "key"):
        stored[child_id].add(key)
        if key not in wanted[child_id]:
            gone.append(pk)
    if gone:
        ChildMatchKey.objects.filter(pk__in=keys_in(gone)).delete()
    added = [(child_id, key) for child_id, keys in wanted.items() for key in keys - stored[child_id]]
    if added:
        insert_rows(ChildMatchKey, ("child_id", "key"), added)


def backfill_match_keys(children: Iterable[Child], *, batch_size: int = 2000) -> int:
    """File children that have no keys yet (children made before the table, or in bulk), or whose keys
    were just deleted in this transaction, with their rows locked: no key of theirs can be there."""
    made = 0
    iterator = iter(children)
    while chunk := list(islice(iterator, batch_size)):
        made += insert_rows(ChildMatchKey, ("child_id", "key"),
                            ((child.pk, key) for child in chunk for key in child_match_keys(child)))
    return made


def find_candidates(records: Sequence[PersonRecord], *, exclude: Iterable[int] = ()) -> list[list[Candidate]]:
    """For each record, the stored children it may describe ('same' or 'possible'), best first.

    Two queries per thousand records: the children filed under the records' keys (blocks larger
    than `DB_MAX_BLOCK_SIZE` left out by the database) with what a quick test needs to set aside the
    ones that cannot match, then the fields of the rest.
    """
    excluded = set(exclude)
    minimum_register = model_parameters().frequency_min_records
    record_keys = [{key[:KEY_LENGTH] for key in search_keys(record)} for record in records]
    results: list[list[Candidate]] = [[] for _ in records]
    children: dict[int, Child] = {}
    spellings: dict[int, list[PersonRecord]] = {}
    for start in range(0, len(records), QUERY_BATCH):
        positions = range(start, min(start + QUERY_BATCH, len(records)))
        keys = sorted(set().union(*(record_keys[i] for i in positions)))
        if not keys:
            continue
        # With each child filed under the keys comes what the quick test below needs of it (its name
        # keys and birth date): a join here is much cheaper than reading those children by id. The
        # blocks are counted with count(*), so the key index alone answers (an index-only scan).
        filed = (
            ChildMatchKey.objects.filter(key__in=texts_in(keys))
            .annotate(block_size=Window(Count("*"), partition_by=[F("key")]))
            .filter(block_size__lte=DB_MAX_BLOCK_SIZE)
            .annotate(register=_register_size())
            .values_list("key", "child_id", "child__search_names", "child__birth_date", "block_size", "register")
        )
        children_by_key: dict[str, set[int]] = defaultdict(set)
        light: dict[int, tuple[set[str], datetime.date | None]] = {}
        # How many children carry each pair of names: the names' term frequencies.
        name_counts: dict[str, int] = {}
        register = 0
        # Every row carries the register's size; the loop leaves the last one in `register`.
        for key, child_id, search_names, born, block_size, register in filed:  # noqa: B007
            if key[0] == "n":
                name_counts[key] = block_size
            if child_id not in excluded:
                children_by_key[key].add(child_id)
                if child_id not in light:
                    light[child_id] = (set(search_names.split()), born)
        worth: list[list[int]] = []
        for i in positions:
            by_name = set().union(*(children_by_key.get(key, set()) for key in record_keys[i] if key[0] == "n"))
            by_year = set().union(*(children_by_key.get(key, set()) for key in record_keys[i] if key[0] != "n"))
            named = latin_key(f"{records[i].family_name} {records[i].given_name}")
            wanted = [search_key(word) for word in named.split()]
            worth.append([pk for pk in by_name | by_year if pk in light and _may_be(
                records[i], wanted, light[pk], names_agree=pk in by_name, year_agrees=pk in by_year)])
        # Common names bring the same children back batch after batch: each is read and spelled once.
        missing = set().union(*worth) - children.keys()
        for child in Child.objects.filter(pk__in=keys_in(missing)).only(*_CHILD_FIELDS) if missing else ():
            children[child.pk] = child
            spellings[child.pk] = child_records(child)
        frequencies = NameFrequencies(name_counts, int(register), uncounted=DB_MAX_BLOCK_SIZE + 1) \
            if register and register >= minimum_register else None
        for i, child_ids in zip(positions, worth, strict=True):
            found: list[Candidate] = []
            for child_id in child_ids:
                best = max((compare(records[i], spelling, frequencies=frequencies) for spelling in spellings[child_id]),
                           key=lambda score: score.points)
                if best.verdict != "different":
                    found.append(Candidate(children[child_id], best))
            found.sort(key=lambda candidate: (-candidate.score.points, candidate.child.pk))
            results[i] = found
    return results


def _register_size() -> RawSQL:
    """How many children the register holds, for the names' frequencies, as a scalar the candidate
    query carries (computed once per query): PostgreSQL's own estimate once the table is large,
    counted while it is small."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT CASE WHEN c.reltuples >= 100000 THEN c.reltuples::bigint "
                      "ELSE (SELECT count(*) FROM cases_child) END FROM pg_class c "
                      "WHERE c.oid = 'cases_child'::regclass", ())
    return RawSQL("SELECT count(*) FROM cases_child", ())


# Birth years further apart than this are not one child's year written twice.
YEARS_APART = 2
# A name written with more slips than this is not taken for the same name.
NAME_TYPOS = 2


def _may_be(record: PersonRecord, wanted: list[str], light: tuple[set[str], datetime.date | None], *,
            names_agree: bool, year_agrees: bool) -> bool:
    """A quick, generous test of whether the engine could judge a candidate the same child or a
    possible one; what fails it would be judged different, so it is not weighed at all.

    The blocks say why the candidate came: both names (then the birth years must be near), or one
    name with the birth year (then the other name may only carry typos). Comparing every member of a
    common name's block in full was most of an import's time.
    """
    words, born = light
    if names_agree and year_agrees:
        return True
    if names_agree:
        year = record.date.year
        return year is None or born is None or abs(born.year - year) <= YEARS_APART
    # One name and the year agree: each word of both names (`wanted`, the record's folded words) must
    # be near a word the child is known by.
    return all(any(typo_distance(word, known, NAME_TYPOS) <= NAME_TYPOS for known in words) for word in wanted)


def possible_duplicates(child: Child) -> list[Candidate]:
    """Other children the engine finds alike to this one under any of its spellings, best first."""
    best: dict[int, Candidate] = {}
    for found in find_candidates(child_records(child), exclude=[child.pk]):
        for candidate in found:
            held = best.get(candidate.child.pk)
            if held is None or candidate.score.points > held.score.points:
                best[candidate.child.pk] = candidate
    return sorted(best.values(), key=lambda candidate: (-candidate.score.points, candidate.child.pk))
