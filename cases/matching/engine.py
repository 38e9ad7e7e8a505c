"""Matching engine: decides whether two records describe the same child, and groups records by child.

Pure Python at its core, so that imports, the command line and later a search against PostgreSQL
(through the indexed blocking keys) all use the same rules.

How a pair is judged: each piece of evidence adds or takes away points, in the spirit of
Fellegi-Sunter record linkage: agreement on a name or on the full birth date adds, a different
given name, birth date, patronymic or sex takes away a lot.  What only looks alike is kept apart
by those negative weights: twins share everything but the given name, siblings share the family
name and the patronymic, and a common name elsewhere has another settlement and no shared date.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import combinations
from typing import Literal

from cases.matching.names import (
    canonical_given_name,
    given_name_sex,
    is_known_given_name,
    latin_key,
    name_sounds,
    patronymic_father,
    patronymic_sex,
    settlement_key,
    transliterate_uk,
    typo_distance,
)

__all__ = [
    "BirthDate",
    "MatchScore",
    "PersonRecord",
    "blocking_keys",
    "candidate_pairs",
    "cluster",
    "compare",
    "search_keys",
]

Verdict = Literal["same", "possible", "different"]

# Points at and above which a pair is judged the same child, or possibly the same child.
SAME_POINTS = 7.5
POSSIBLE_POINTS = 4.0
# A block this large says nothing about identity (a very common name with no date); comparing
# all its pairs would only cost time.
MAX_BLOCK_SIZE = 400


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------

_DATE_FORMS = (
    re.compile(r"^(?P<year>\d{4})(?:[-./](?P<month>\d{1,2})(?:[-./](?P<day>\d{1,2}))?)?$"),
    re.compile(r"^(?P<day>\d{1,2})[./-](?P<month>\d{1,2})[./-](?P<year>\d{4})$"),
)


@dataclass(frozen=True)
class BirthDate:
    """A birth date known to the year, the month or the day."""

    year: int | None = None
    month: int | None = None
    day: int | None = None

    @property
    def precision(self) -> Literal["day", "month", "year", "unknown"]:
        if self.year is None:
            return "unknown"
        if self.month is None:
            return "year"
        return "month" if self.day is None else "day"

    @classmethod
    def parse(cls, text: str | BirthDate | None) -> BirthDate:
        """Read 'YYYY', 'YYYY-MM', 'YYYY-MM-DD' or 'DD.MM.YYYY'; anything else is unknown."""
        if isinstance(text, BirthDate):
            return text
        text = (text or "").strip()
        for form in _DATE_FORMS:
            found = form.match(text)
            if found:
                year = int(found["year"])
                month = int(found["month"]) if found["month"] else None
                day = int(found["day"]) if found.groupdict().get("day") else None
                if not 1800 < year < 2200 or (month is not None and not 1 <= month <= 12):
                    return cls()
                if day is not None and not 1 <= day <= 31:
                    return cls(year, month)
                return cls(year, month, day)
        return cls()

    def __str__(self) -> str:
        return self.iso

    @cached_property
    def iso(self) -> str:
        """'YYYY', 'YYYY-MM' or 'YYYY-MM-DD'; '' when unknown."""
        parts = [f"{self.year:04d}" if self.year else "", f"{self.month:02d}" if self.month else "",
                 f"{self.day:02d}" if self.day else ""]
        return "-".join(part for part in parts if part)


_SEX_WORDS = {
    "m": "M", "male": "M", "м": "M", "ч": "M", "чол": "M", "муж": "M", "boy": "M",
    "f": "F", "female": "F", "ж": "F", "жін": "F", "жен": "F", "girl": "F", "w": "F",
}


@dataclass(frozen=True)
class _NameField:
    """One name as the comparison needs it: its sounds, its plain Latin letters and, when it is a
    given name, its canonical key."""

    text: str
    sounds: str
    plain: str
    canonical: str
    known: bool

    @cached_property
    def identity(self) -> tuple[str, str, str, bool]:
        # The text itself does not change how a name compares; equal spellings share cache entries.
        return (self.sounds, self.plain, self.canonical, self.known)

    @classmethod
    def of(cls, text: str, sex: str = "") -> _NameField:
        return _name_field(text, sex)

    @classmethod
    def build(cls, text: str, sex: str) -> _NameField:
        canonical = canonical_given_name(text)
        known = is_known_given_name(text)
        if sex and given_name_sex(text) not in ("", sex):
            # A girl's record saying Мар'ян is a slip of Мар'яна, not the boy's name.
            canonical, known = latin_key(text), False
        plain = re.sub(r"[^a-z]", "", transliterate_uk(text).lower())
        return cls(text, name_sounds(text), plain, canonical, known)


# The same given and family names come back on row after row and candidate after candidate.
@lru_cache(maxsize=1 << 16)
def _name_field(text: str, sex: str) -> _NameField:
    return _NameField.build(text, sex)


@dataclass(frozen=True)
class PersonRecord:
    """A child as one source writes it; any field may be empty."""

    family_name: str = ""
    given_name: str = ""
    patronymic: str = ""
    birth_date: str | BirthDate = ""
    sex: str = ""
    settlement: str = ""
    record_id: str = field(default="", compare=False)

    @cached_property
    def date(self) -> BirthDate:
        return BirthDate.parse(self.birth_date)

    @cached_property
    def family(self) -> _NameField:
        return _NameField.of(self.family_name or "", self.stated_sex)

    @cached_property
    def given(self) -> _NameField:
        return _NameField.of(self.given_name or "", self.stated_sex)

    @cached_property
    def father(self) -> str:
        return patronymic_father(self.patronymic or "")

    @cached_property
    def patronymic_sounds(self) -> str:
        return name_sounds(self.patronymic or "")

    @cached_property
    def place(self) -> str:
        return settlement_key(self.settlement or "")

    @cached_property
    def stated_sex(self) -> str:
        return _SEX_WORDS.get((self.sex or "").strip().lower().rstrip("."), "")

    # Its blocking keys (see `blocking_keys`), worked out once: the import asks for them twice.
    @cached_property
    def name_keys(self) -> frozenset[str]:
        return frozenset(_name_keys(self))

    @cached_property
    def year_keys(self) -> frozenset[str]:
        return frozenset(_date_keys(self, month=False))

    @cached_property
    def month_keys(self) -> frozenset[str]:
        return frozenset(_date_keys(self, month=True))

    @cached_property
    def implied_sex(self) -> str:
        """The sex the patronymic or a known given name implies, when the record does not state it."""
        for sex in (patronymic_sex(self.patronymic or ""), given_name_sex(self.given_name or ""),
                    given_name_sex(self.family_name or "")):
            if sex:
                return sex
        return ""


# ---------------------------------------------------------------------------------------------
# Comparing the parts of two records
# ---------------------------------------------------------------------------------------------

def _typos_allowed(length: int) -> int:
    return 1 if length <= 8 else 2


def _within_typos(first: _NameField, second: _NameField, allowed: int) -> bool:
    return (typo_distance(first.sounds.replace(" ", ""), second.sounds.replace(" ", ""), allowed) <= allowed
            or typo_distance(first.plain, second.plain, allowed) <= allowed)


_AGREEMENTS: dict[tuple[object, ...], str] = {}


def _cached(agreement: Callable[[_NameField, _NameField], str], first: _NameField, second: _NameField) -> str:
    """The agreement of two names, remembered by what the names are (not by which records hold them)."""
    key = (agreement, first.identity, second.identity)
    if key not in _AGREEMENTS:
        if len(_AGREEMENTS) > 500_000:
            _AGREEMENTS.clear()
        _AGREEMENTS[key] = agreement(first, second)
    return _AGREEMENTS[key]


def _family_agreement(first: _NameField, second: _NameField) -> str:
    """'exact', 'part' (one of a double family name), 'typo', 'short typo' or 'different'."""
    if first.sounds == second.sounds:
        return "exact"
    first_words, second_words = set(first.sounds.split()), set(second.sounds.split())
    if first_words <= second_words or second_words <= first_words:
        return "part"
    # Sounds catch romanisation variants; plain letters catch slips inside a digraph (Sehvchuk).
    shortest = min(len(first.sounds), len(second.sounds))
    if _within_typos(first, second, _typos_allowed(shortest)):
        # One slip in a short name may as well be another name (Жук / Лук): weaker evidence.
        return "typo" if shortest > 4 else "short typo"
    return "different"


def _given_agreement(first: _NameField, second: _NameField) -> str:
    """'exact', 'equivalent' (Кирило / Кирилл), 'part', 'typo', 'short typo' or 'different'."""
    if first.sounds == second.sounds:
        return "exact"
    if first.canonical == second.canonical:
        return "equivalent"
    first_words, second_words = set(first.canonical.split()), set(second.canonical.split())
    if first_words <= second_words or second_words <= first_words:
        return "part"
    if first.known and second.known:
        # Two different names of the table: Ivan / Ivanna, Yana / Anna.  Twins are told apart here.
        return "different"
    shortest = min(len(first.sounds), len(second.sounds))
    if shortest >= 3 and _within_typos(first, second, _typos_allowed(shortest)):
        return "typo" if shortest > 4 else "short typo"
    return "different"


_FAMILY_POINTS = {"exact": 3.0, "part": 2.5, "typo": 1.5, "short typo": 0.5, "different": -5.0}
_GIVEN_POINTS = {"exact": 3.0, "equivalent": 2.8, "part": 2.0, "typo": 1.5, "short typo": 1.0,
                 "different": -8.0}
_SWAPPED_POINTS = -0.5

_AGREEMENT_WORDS = {
    "exact": "the same",
    "equivalent": "forms of one name",
    "part": "one is part of the other",
    "typo": "alike but for a typo",
    "short typo": "alike but for a typo in a short name",
    "different": "different",
}


def _names_points(a: PersonRecord, b: PersonRecord) -> tuple[float, list[str]]:
    """Points for the family and given names, taking the better of the direct and swapped reading."""
    readings = [(False, a.family, b.family, a.given, b.given)]
    results = [_reading_points(*readings[0])]
    if results[0][0] < _FAMILY_POINTS["exact"] + _GIVEN_POINTS["exact"] + _SWAPPED_POINTS:
        # Family and given name written the other way round in one of the two records.
        readings += [(True, a.family, b.given, a.given, b.family),
                     (True, a.given, b.family, a.family, b.given)]
        results += [_reading_points(*reading) for reading in readings[1:]]
    # On equal points, the reading that puts known given names in the given-name place.
    best = max(range(len(readings)),
               key=lambda index: (results[index][0], readings[index][3].known or readings[index][4].known))
    swapped, a_family, b_family, a_given, b_given = readings[best]
    points, family_agreement, given_agreement = results[best]
    reasons = ["family and given names swapped in one record"] if swapped else []
    if family_agreement:
        reasons.append(f"family name {_AGREEMENT_WORDS[family_agreement]} "
                       f"({a_family.text} / {b_family.text})")
    else:
        reasons.append("family name missing")
    if given_agreement:
        reasons.append(f"given name {_AGREEMENT_WORDS[given_agreement]} ({a_given.text} / {b_given.text})")
    else:
        reasons.append("given name missing")
    return points, reasons


def _reading_points(swapped: bool, a_family: _NameField, b_family: _NameField, a_given: _NameField,
                    b_given: _NameField) -> tuple[float, str, str]:
    """Points of one reading of the names, with how the family and the given names agree."""
    points = _SWAPPED_POINTS if swapped else 0.0
    family_agreement = given_agreement = ""
    if a_family.sounds and b_family.sounds:
        family_agreement = _cached(_family_agreement, a_family, b_family)
        points += _FAMILY_POINTS[family_agreement]
    if a_given.sounds and b_given.sounds:
        given_agreement = _cached(_given_agreement, a_given, b_given)
        points += _GIVEN_POINTS[given_agreement]
    return points, family_agreement, given_agreement


def _patronymic_points(a: PersonRecord, b: PersonRecord) -> tuple[float, str]:
    if not a.father or not b.father:
        return 0.0, "patronymic missing in one record" if a.father or b.father else ""
    if a.father == b.father:
        return 1.0, f"patronymic from the same father's name ({a.patronymic} / {b.patronymic})"
    allowed = _typos_allowed(min(len(a.patronymic_sounds), len(b.patronymic_sounds)))
    if typo_distance(a.patronymic_sounds, b.patronymic_sounds, allowed) <= allowed:
        return 0.5, f"patronymic alike but for a typo ({a.patronymic} / {b.patronymic})"
    return -4.0, f"patronymic different ({a.patronymic} / {b.patronymic})"


def _sex_points(a: PersonRecord, b: PersonRecord) -> tuple[float, str]:
    if a.stated_sex and b.stated_sex:
        if a.stated_sex == b.stated_sex:
            return 0.2, ""
        return -5.0, f"sex different ({a.stated_sex} / {b.stated_sex})"
    first, second = a.stated_sex or a.implied_sex, b.stated_sex or b.implied_sex
    if first and second and first != second:
        return -3.0, f"sex implied by the names different ({first} / {second})"
    return (0.2, "") if first and second else (0.0, "")


def _one_digit_apart(first: int, second: int) -> bool:
    return sum(x != y for x, y in zip(f"{first:02d}", f"{second:02d}", strict=True)) == 1


def _date_points(first: BirthDate, second: BirthDate) -> tuple[float, str]:
    if first.year is None or second.year is None:
        return 0.0, "birth date missing in one record" if first.year or second.year else ""
    if first.precision == "day" and second.precision == "day":
        if first == second:
            return 4.0, f"birth date the same ({first})"
        same_year = first.year == second.year
        if same_year and (first.day, first.month) == (second.month, second.day):
            return 2.5, f"birth date with day and month swapped ({first} / {second})"
        if (first.month, first.day) == (second.month, second.day) and abs(first.year - second.year) <= 2:
            if abs(first.year - second.year) == 1:
                return 2.0, f"birth date a year apart, same day and month ({first} / {second})"
            return 1.0, f"birth date two years apart, same day and month ({first} / {second})"
        if same_year and (
            (first.month == second.month and _one_digit_apart(first.day or 0, second.day or 0))
            or (first.day == second.day and _one_digit_apart(first.month or 0, second.month or 0))
        ):
            return 0.5, f"birth date one digit apart ({first} / {second})"
        return -6.0, f"birth date different ({first} / {second})"
    coarse, fine = sorted((first, second), key=lambda date: ("year", "month", "day").index(date.precision))
    if coarse.year != fine.year:
        if abs((coarse.year or 0) - (fine.year or 0)) == 1:
            # A year known only roughly is often worked out from an age, and so one year out.
            if coarse.month is None:
                return -0.5, f"birth year a year apart ({coarse} / {fine})"
            if coarse.month == fine.month:
                return 1.0, f"birth year a year apart, same month ({coarse} / {fine})"
        return -6.0, f"birth year different ({coarse} / {fine})"
    if coarse.month is None:
        return 1.5, f"birth year the same, one date known only to the year ({coarse} / {fine})"
    if coarse.month == fine.month:
        return 2.0, f"birth month the same ({coarse} / {fine})"
    if fine.day == coarse.month:
        return 1.0, f"birth month matches the day, perhaps swapped ({coarse} / {fine})"
    return -4.0, f"birth month different ({coarse} / {fine})"


def _settlement_points(a: PersonRecord, b: PersonRecord) -> tuple[float, str]:
    if not a.place or not b.place:
        return 0.0, ""
    if a.place == b.place:
        return 1.0, f"settlement the same ({a.settlement} / {b.settlement})"
    allowed = _typos_allowed(min(len(a.place), len(b.place)))
    if typo_distance(a.place, b.place, allowed) <= allowed:
        return 0.8, f"settlement alike ({a.settlement} / {b.settlement})"
    return -1.0, f"settlement different ({a.settlement} / {b.settlement})"


# ---------------------------------------------------------------------------------------------
# The verdict on a pair
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MatchScore:
    """How alike two records are: a score from 0 to 1, a verdict and the reasons for it.

    ``points`` is the sum of the evidence; ``evidence`` holds the points of each part that both
    records inform (names, patronymic, date, sex, settlement).
    """

    score: float
    verdict: Verdict
    reasons: tuple[str, ...]
    points: float
    evidence: tuple[tuple[str, float], ...] = ()

    @property
    def is_same(self) -> bool:
        return self.verdict == "same"


def _verdict(points: float) -> Verdict:
    if points >= SAME_POINTS:
        return "same"
    return "possible" if points >= POSSIBLE_POINTS else "different"


def _score(points: float) -> float:
    # Centred between the two thresholds, so 'same' reads above 0.85 and 'different' below 0.15.
    return round(1.0 / (1.0 + math.exp(-(points - (SAME_POINTS + POSSIBLE_POINTS) / 2))), 4)


def compare(a: PersonRecord, b: PersonRecord) -> MatchScore:
    """Judge whether two records describe the same child."""
    points, reasons = _names_points(a, b)
    evidence = [("names", points)]
    for part, (part_points, reason), informed in (
        ("patronymic", _patronymic_points(a, b), bool(a.father and b.father)),
        ("date", _date_points(a.date, b.date), a.date.year is not None and b.date.year is not None),
        ("sex", _sex_points(a, b), bool((a.stated_sex or a.implied_sex) and (b.stated_sex or b.implied_sex))),
        ("settlement", _settlement_points(a, b), bool(a.place and b.place)),
    ):
        points += part_points
        if reason:
            reasons.append(reason)
        if informed:
            evidence.append((part, part_points))
    return MatchScore(_score(points), _verdict(points), tuple(reasons), round(points, 2), tuple(evidence))


def _group_points(cross: Iterable[MatchScore]) -> float:
    """How alike two groups of records are, part by part: the best agreement any pair of records
    shows on that part, among the pairs that both inform it.

    A settlement or date only one record of a group gives still counts against the other group,
    even if a record with no settlement at all sits in the same group.
    """
    best: dict[str, float] = {}
    for result in cross:
        for part, part_points in result.evidence:
            best[part] = max(best.get(part, part_points), part_points)
    return sum(best.values())


# ---------------------------------------------------------------------------------------------
# Blocking: which pairs are worth comparing
# ---------------------------------------------------------------------------------------------

@lru_cache(maxsize=1 << 16)
def _name_codes(name: _NameField) -> tuple[str, ...]:
    """Codes under which a name is filed: 'g' and the canonical key of a known given name, else 'f'
    and a skeleton of each word.

    The skeleton (first letter, then the consonants of the folded key) survives vowel slips and the
    o/a, e/i, y/i variants of family names: Bondarenko / Bondorenko, Oliinyk / Oleinik.
    """
    if not name.sounds:
        return ()
    key = latin_key(name.text)
    if name.known or name.canonical != key:
        return tuple(f"g{word}" for word in name.canonical.split())
    codes = []
    for word in key.split():
        skeleton = word[0] + re.sub(r"[aeiou]", "", word[1:])
        codes.append("f" + re.sub(r"(.)\1+", r"\1", skeleton))
    return tuple(codes)


def blocking_keys(record: PersonRecord) -> frozenset[str]:
    """Plain ASCII keys; two records are compared only when they share at least one.

    - ``n:<code>|<code>``: the codes of the two names, sorted, so that swapped family and given
      names meet; no date, so that a missing or mistyped date does not hide a pair.
    - ``y:<code>:<YYYY>:<letter>``: the code of one name with the birth year and the first letter
      of the other name's code, which finds a pair when the other name has a typo the codes do not
      absorb (Семеко / Семенко, Иаанова / Іванова). The letter keeps these blocks small: without
      it every Олександр born in one year would be one block, tens of thousands in a national
      register; a slip in the very first letter of the other name is what it gives up.
    - ``d:<code>:<YYYY-MM>:<letter>``: the same with the birth month, where it is known; the database
      search looks there first (see `search_keys`).
    A code is ``g<canonical given name>`` or ``f<consonant skeleton>``; for example Шевченко Кирило
    born 2014 gives ``n:fshvchnk|gkirilo``, ``y:fshvchnk:2014:k`` and ``y:gkirilo:2014:s``. The
    keys depend on the codes only, not on which field holds them, so swapped names give the same
    keys. The database files each child under them (`ChildMatchKey`) for candidate search.
    """
    return record.name_keys | record.year_keys | record.month_keys


def search_keys(record: PersonRecord) -> frozenset[str]:
    """The keys to look a record up by among stored children (who are filed under all of theirs).

    A record with its birth month looks in the month's blocks (``d:``), a twelfth of the year's: in a
    register of a million children the year's block of a common given name is thousands strong. A
    record known to the year only looks in the year's blocks (``y:``). Both look by the two names.
    """
    return record.name_keys | (record.month_keys if record.date.month is not None else record.year_keys)


def _name_keys(record: PersonRecord) -> set[str]:
    family_codes, given_codes = _name_codes(record.family), _name_codes(record.given)
    return {f"n:{min(f, g)}|{max(f, g)}" for f in family_codes for g in given_codes}


def _date_keys(record: PersonRecord, *, month: bool) -> set[str]:
    date = record.date
    if date.year is None or (month and date.month is None):
        return set()
    when, kind = (f"{date.year:04d}-{date.month:02d}", "d") if month else (f"{date.year:04d}", "y")
    family_codes, given_codes = _name_codes(record.family), _name_codes(record.given)
    keys = set()
    for codes, others in ((family_codes, given_codes), (given_codes, family_codes)):
        letters = {other[1] for other in others} or {"_"}
        keys |= {f"{kind}:{code}:{when}:{letter}" for code in codes for letter in letters}
    return keys


def candidate_pairs(records: Sequence[PersonRecord]) -> set[tuple[int, int]]:
    """Index pairs (i < j) of records that share a blocking key."""
    blocks: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        for key in blocking_keys(record):
            blocks[key].append(index)
    pairs: set[tuple[int, int]] = set()
    for members in blocks.values():
        if 1 < len(members) <= MAX_BLOCK_SIZE:
            pairs.update(combinations(members, 2))
    return pairs


# ---------------------------------------------------------------------------------------------
# Clustering
# ---------------------------------------------------------------------------------------------

def cluster(records: Sequence[PersonRecord]) -> list[int]:
    """A cluster id per record (the index of the cluster's first record): one id per child.

    Pairs judged 'same' are joined strongest first.  Two groups are joined only when no record of
    one is judged 'different' from a record of the other, and when the two groups taken as wholes
    are still judged the same child (``_group_points``).  So a record known only by name and year
    cannot chain two different children (twins, or namesakes born the same year) into one, nor
    join a group whose records all name another settlement.
    """
    comparisons: dict[tuple[int, int], MatchScore] = {}

    def judged(i: int, j: int) -> MatchScore:
        pair = (i, j) if i < j else (j, i)
        if pair not in comparisons:
            comparisons[pair] = compare(records[pair[0]], records[pair[1]])
        return comparisons[pair]

    same_pairs = []
    for i, j in candidate_pairs(records):
        result = judged(i, j)
        if result.is_same:
            same_pairs.append((result.points, i, j))
    same_pairs.sort(key=lambda item: (-item[0], item[1], item[2]))

    members: list[list[int]] = [[index] for index in range(len(records))]
    group_of = list(range(len(records)))
    for _points, i, j in same_pairs:
        first, second = group_of[i], group_of[j]
        if first == second:
            continue
        cross = [judged(x, y) for x in members[first] for y in members[second]]
        if any(result.verdict == "different" for result in cross) or _group_points(cross) < SAME_POINTS:
            continue
        if len(members[first]) < len(members[second]):
            first, second = second, first
        for index in members[second]:
            group_of[index] = first
        members[first].extend(members[second])
        members[second] = []
    return [min(members[group_of[index]]) for index in range(len(records))]


def records_from_rows(rows: Iterable[dict[str, str]]) -> list[PersonRecord]:
    """Records from rows with the columns of the import file (record_id, family_name, ...)."""
    return [
        PersonRecord(
            family_name=(row.get("family_name") or "").strip(),
            given_name=(row.get("given_name") or "").strip(),
            patronymic=(row.get("patronymic") or "").strip(),
            birth_date=(row.get("birth_date") or "").strip(),
            sex=(row.get("sex") or "").strip(),
            settlement=(row.get("settlement") or "").strip(),
            record_id=(row.get("record_id") or "").strip(),
        )
        for row in rows
    ]
