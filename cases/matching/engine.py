"""Matching engine: decides whether two records describe the same child, and groups records by child.

Pure Python at its core, so that imports, the command line and a search against PostgreSQL (through
the indexed blocking keys) all use the same rules.

How a pair is judged: a Fellegi-Sunter model. Each part of the two records (family name, given name,
patronymic, birth date, sex, settlement) is compared at a level (`comparison_levels`); each level
weighs log2(m/u) bits, m and u estimated from the register (`cases.matching.estimate`, figures in
`parameters.json`); the names' weight is corrected by how common they are in the register
(`NameFrequencies`). The sum with the prior is the match weight, read against the thresholds.
What only looks alike is kept apart by the negative weights and two rules the model's independence
cannot see: twins (two different given names, everything else alike) are never one child, and a group
is not joined to another that one of its records contradicts (docs/matching.md).
"""

from __future__ import annotations

import datetime
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
    full_names_of,
    given_name_sex,
    is_known_given_name,
    latin_key,
    name_sounds,
    patronymic_father,
    patronymic_sex,
    search_key,
    settlement_key,
    transliterate_uk,
    typo_distance,
)
from cases.matching.parameters import model_parameters

__all__ = [
    "BirthDate",
    "MatchScore",
    "NameFrequencies",
    "PersonRecord",
    "birth_date_text",
    "blocking_keys",
    "candidate_pairs",
    "cluster",
    "compare",
    "comparison_levels",
    "may_be_same_child",
    "register_frequencies",
    "same_child_pairs",
    "search_keys",
]

Verdict = Literal["same", "possible", "different"]

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


def birth_date_text(born: datetime.date, precision: str) -> str:
    """A date known to the year, the month or the day, as the engine reads it ('YYYY', 'YYYY-MM' or
    'YYYY-MM-DD')."""
    if precision == "year":
        return f"{born.year:04d}"
    if precision == "month":
        return f"{born.year:04d}-{born.month:02d}"
    return born.isoformat()


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
    # Each word's search key (і / е / и folded, as search folds them), and the full given names a
    # short form stands for (Женя: Євген, Євгенія).
    folded: str = ""
    short_for: frozenset[str] = frozenset()

    @cached_property
    def identity(self) -> tuple[str, str, str, bool, str, frozenset[str]]:
        # The text itself does not change how a name compares; equal spellings share cache entries.
        return (self.sounds, self.plain, self.canonical, self.known, self.folded, self.short_for)

    # What the blocking keys are made of, worked out once per name: the same names come back on row
    # after row, and each record asks for them five times.
    @cached_property
    def codes(self) -> tuple[str, ...]:
        return _name_codes(self)

    @cached_property
    def tails(self) -> tuple[str, ...]:
        return _name_tails(self)

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
        words = latin_key(text).split()
        folded = " ".join(search_key(word) for word in words)
        short_for = frozenset().union(*(full_names_of(word) for word in words))
        return cls(text, name_sounds(text), plain, canonical, known, folded, short_for)


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
    def tail_keys(self) -> frozenset[str]:
        return frozenset(_tail_keys(self, dated=False))

    @cached_property
    def dated_tail_keys(self) -> frozenset[str]:
        return frozenset(_tail_keys(self, dated=True))

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
    """'exact', 'variant' (і / е / и: Білоус / Белоус), 'part' (one of a double family name), 'typo',
    'short typo' or 'different'."""
    if first.sounds == second.sounds:
        return "exact"
    if first.folded == second.folded:
        return "variant"
    first_words, second_words = set(first.folded.split()), set(second.folded.split())
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
    if first.canonical == second.canonical or first.folded == second.folded:
        return "equivalent"
    if (first.short_for and (first.canonical in second.short_for or first.short_for & second.short_for)) or \
            second.canonical in first.short_for:
        # A short form and a full name it stands for (Женя / Євгенія), or two short forms of one name.
        return "short form"
    first_words, second_words = set(first.canonical.split()), set(second.canonical.split())
    if first_words <= second_words or second_words <= first_words:
        return "part"
    if first.known and second.known:
        # Two different names of the table: Ivan / Ivanna, Yana / Anna.  Twins are told apart here.
        return "another name"
    shortest = min(len(first.sounds), len(second.sounds))
    if shortest >= 3 and _within_typos(first, second, _typos_allowed(shortest)):
        return "typo" if shortest > 4 else "short typo"
    return "different"


# Which reading of the names (direct, or family and given names swapped) to weigh: the one whose
# agreements rank highest. Only orders the readings; the evidence comes from the parameters.
_AGREEMENT_RANK = {"exact": 6, "variant": 5, "equivalent": 5, "short form": 4, "part": 4, "typo": 3,
                   "short typo": 2, "different": -6, "another name": -6}

_AGREEMENT_WORDS = {
    "exact": "the same",
    "equivalent": "forms of one name",
    "variant": "one name in Ukrainian and Russian spelling",
    "short form": "a short form and its full name",
    "part": "one is part of the other",
    "typo": "alike but for a typo",
    "short typo": "alike but for a typo in a short name",
    "different": "different",
    "another name": "another name",
}


@dataclass(frozen=True)
class _Reading:
    swapped: bool
    a_family: _NameField
    b_family: _NameField
    a_given: _NameField
    b_given: _NameField
    family: str
    given: str

    @property
    def rank(self) -> tuple[int, bool]:
        rank = _AGREEMENT_RANK.get(self.family, 0) + _AGREEMENT_RANK.get(self.given, 0) - self.swapped
        # On equal ranks, the reading that puts known given names in the given-name place.
        return rank, self.a_given.known or self.b_given.known


def _reading(swapped: bool, a_family: _NameField, b_family: _NameField, a_given: _NameField,
             b_given: _NameField) -> _Reading:
    family = _cached(_family_agreement, a_family, b_family) if a_family.sounds and b_family.sounds else ""
    given = _cached(_given_agreement, a_given, b_given) if a_given.sounds and b_given.sounds else ""
    return _Reading(swapped, a_family, b_family, a_given, b_given, family, given)


def _names_reading(a: PersonRecord, b: PersonRecord) -> _Reading:
    """The family and given names' agreement, in the better of the direct and the swapped reading."""
    direct = _reading(False, a.family, b.family, a.given, b.given)
    if direct.family == "exact" and direct.given in ("exact", "equivalent"):
        return direct
    readings = [direct, _reading(True, a.family, b.given, a.given, b.family),
                _reading(True, a.given, b.family, a.family, b.given)]
    return max(readings, key=lambda reading: reading.rank)


def _patronymic_level(a: PersonRecord, b: PersonRecord) -> tuple[str, str]:
    if not a.father or not b.father:
        return "", ""
    if a.father == b.father:
        return "same", f"patronymic from the same father's name ({a.patronymic} / {b.patronymic})"
    allowed = _typos_allowed(min(len(a.patronymic_sounds), len(b.patronymic_sounds)))
    if typo_distance(a.patronymic_sounds, b.patronymic_sounds, allowed) <= allowed:
        return "typo", f"patronymic alike but for a typo ({a.patronymic} / {b.patronymic})"
    return "different", f"patronymic different ({a.patronymic} / {b.patronymic})"


def _sex_level(a: PersonRecord, b: PersonRecord) -> tuple[str, str]:
    if a.stated_sex and b.stated_sex:
        if a.stated_sex == b.stated_sex:
            return "same", "sex the same"
        return "different", f"sex different ({a.stated_sex} / {b.stated_sex})"
    first, second = a.stated_sex or a.implied_sex, b.stated_sex or b.implied_sex
    if first and second:
        if first != second:
            return "implied different", f"sex implied by the names different ({first} / {second})"
        return "implied same", "sex implied by the names the same"
    return "", ""


def _one_digit_apart(first: int, second: int) -> bool:
    return sum(x != y for x, y in zip(f"{first:02d}", f"{second:02d}", strict=True)) == 1


def _date_level(first: BirthDate, second: BirthDate) -> tuple[str, str]:
    """The level of agreement of two birth dates, each precision and each usual slip its own level."""
    if first.year is None or second.year is None:
        return "", ""
    if first.precision == "day" and second.precision == "day":
        if first == second:
            return "same day", f"birth date the same ({first})"
        same_year = first.year == second.year
        if same_year and (first.day, first.month) == (second.month, second.day):
            return "day and month swapped", f"birth date with day and month swapped ({first} / {second})"
        if (first.month, first.day) == (second.month, second.day) and abs(first.year - second.year) <= 2:
            return "year apart, same day", f"birth date a year or two apart, same day and month ({first} / {second})"
        if same_year and (
            (first.month == second.month and _one_digit_apart(first.day or 0, second.day or 0))
            or (first.day == second.day and _one_digit_apart(first.month or 0, second.month or 0))
        ):
            return "one digit apart", f"birth date one digit apart ({first} / {second})"
        if same_year:
            return "same year, other day", f"birth year the same, day and month different ({first} / {second})"
        return "different", f"birth date different ({first} / {second})"
    coarse, fine = sorted((first, second), key=lambda date: ("year", "month", "day").index(date.precision))
    apart = abs((coarse.year or 0) - (fine.year or 0))
    if apart == 1:
        # A year known only roughly is often worked out from an age, and so one year out.
        if coarse.month is None:
            return "year-only, a year apart", f"birth year a year apart, one known only to the year ({coarse} / {fine})"
        if coarse.month == fine.month:
            return "year apart, same month", f"birth year a year apart, same month ({coarse} / {fine})"
    if apart:
        return "different", f"birth year different ({coarse} / {fine})"
    if coarse.month is None:
        return "year-only, same year", f"birth year the same, one date known only to the year ({coarse} / {fine})"
    if coarse.month == fine.month:
        return "same month", f"birth month the same ({coarse} / {fine})"
    if fine.day == coarse.month:
        return "month matches the day", f"birth month matches the day, perhaps swapped ({coarse} / {fine})"
    return "same year, other month", f"birth month different ({coarse} / {fine})"


def _settlement_level(a: PersonRecord, b: PersonRecord) -> tuple[str, str]:
    if not a.place or not b.place:
        return "", ""
    if a.place == b.place:
        return "same", f"settlement the same ({a.settlement} / {b.settlement})"
    allowed = _typos_allowed(min(len(a.place), len(b.place)))
    if typo_distance(a.place, b.place, allowed) <= allowed:
        return "alike", f"settlement alike ({a.settlement} / {b.settlement})"
    return "different", f"settlement different ({a.settlement} / {b.settlement})"


# ---------------------------------------------------------------------------------------------
# The verdict on a pair
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Comparison:
    """The level at which two records agree on each part ('' where one of them does not say), with
    the reasons in words, and what the names' term-frequency adjustment needs."""

    levels: tuple[tuple[str, str], ...]
    reasons: tuple[str, ...]
    # The name-pair keys both records are filed under (see `blocking_keys`): how common their shared
    # names are is read from the register under these keys.
    shared_name_keys: frozenset[str]


def comparison_levels(a: PersonRecord, b: PersonRecord) -> Comparison:
    """Each part of two records compared at its level: the comparison vector of the model."""
    reading = _names_reading(a, b)
    # Which reading was taken is not itself evidence: the swapped one is chosen only where it agrees
    # better, so counting it would count the names' agreement twice.
    levels: list[tuple[str, str]] = []
    reasons: list[str] = ["family and given names swapped in one record"] if reading.swapped else []
    if reading.family:
        levels.append(("family", reading.family))
        reasons.append(f"family name {_AGREEMENT_WORDS[reading.family]} "
                       f"({reading.a_family.text} / {reading.b_family.text})")
    else:
        reasons.append("family name missing")
    if reading.given:
        levels.append(("given", reading.given))
        reasons.append(f"given name {_AGREEMENT_WORDS[reading.given]} "
                       f"({reading.a_given.text} / {reading.b_given.text})")
    else:
        reasons.append("given name missing")
    for part, (level, reason) in (("patronymic", _patronymic_level(a, b)), ("date", _date_level(a.date, b.date)),
                                  ("sex", _sex_level(a, b)), ("settlement", _settlement_level(a, b))):
        if level:
            levels.append((part, level))
            reasons.append(reason)
        elif part == "patronymic" and (a.father or b.father):
            reasons.append("patronymic missing in one record")
        elif part == "date" and (a.date.year or b.date.year):
            reasons.append("birth date missing in one record")
    return Comparison(tuple(levels), tuple(reasons), a.name_keys & b.name_keys)


@dataclass(frozen=True)
class MatchScore:
    """How alike two records are: the probability that they are one child, a verdict and the reasons.

    ``points`` is the match weight: the prior's log2 odds plus the weight (log2 m/u) of each part's
    level and the names' term-frequency adjustment; ``evidence`` holds each part's weight, so a group
    of records can be weighed part by part (`cluster`).
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
    parameters = model_parameters()
    if points >= parameters.same_weight:
        return "same"
    return "possible" if points >= parameters.possible_weight else "different"


def _probability(points: float) -> float:
    return round(1.0 / (1.0 + 2.0 ** -points), 4)


def _evidence(comparison: Comparison, frequencies: NameFrequencies | None) -> tuple[list[tuple[str, float]], float]:
    """Each part's weight, the names' frequency adjustment last (when there is one), and the match
    weight they add up to on top of the prior."""
    parameters = model_parameters()
    points = parameters.prior_weight
    evidence: list[tuple[str, float]] = []
    weights: dict[str, float] = {}
    for part, level in comparison.levels:
        weight = parameters.weight(part, level)
        weights[part] = weight
        evidence.append((part, weight))
        points += weight
    adjustment = _frequency_adjustment(comparison, weights, frequencies)
    if adjustment:
        evidence.append(("name frequency", adjustment))
        points += adjustment
    return evidence, points


def _judged(comparison: Comparison, points: float) -> Verdict:
    verdict = _verdict(points)
    if ("given", "another name") in comparison.levels:
        # Two different given names of the table are what twins and siblings show. The model takes
        # the parts as independent, and twins agree on everything else at once (family, patronymic,
        # date, settlement): however strong that sum, it is not one child.
        verdict = "different"
    return verdict


def _weigh(comparison: Comparison, frequencies: NameFrequencies | None) -> MatchScore:
    evidence, points = _evidence(comparison, frequencies)
    adjustment = evidence[-1][1] if evidence and evidence[-1][0] == "name frequency" else 0.0
    reasons_with_weights = []
    weight_of = dict(evidence)
    # Each reason followed by its weight in bits, so a case worker sees what counted and how much.
    for reason in comparison.reasons:
        part = _reason_part(reason)
        if part in weight_of:
            reasons_with_weights.append(f"{reason} [{weight_of[part]:+.1f}]")
        else:
            reasons_with_weights.append(reason)
    if adjustment:
        reasons_with_weights.append(
            f"the names are {'rarer' if adjustment > 0 else 'commoner'} than most [{adjustment:+.1f}]")
    return MatchScore(_probability(points), _judged(comparison, points), tuple(reasons_with_weights),
                      round(points, 2), tuple(evidence))


_REASON_PARTS = (("family name", "family"),
                 ("given name", "given"), ("patronymic", "patronymic"), ("birth", "date"),
                 ("sex", "sex"), ("settlement", "settlement"))


def _reason_part(reason: str) -> str:
    for start, part in _REASON_PARTS:
        if reason.startswith(start):
            return part
    return ""


# Name levels that say both records carry the same names (give or take a spelling): where the
# register's frequency of those names replaces the level's average u.
_NAME_AGREEMENTS = frozenset({"exact", "variant", "equivalent", "short form", "part", "typo"})


def _frequency_adjustment(comparison: Comparison, weights: dict[str, float],
                          frequencies: NameFrequencies | None) -> float:
    """Term-frequency adjustment: two records agreeing on a rare pair of names is stronger evidence
    than on a common pair. The level weights assume the average chance that two different children
    share the names (u); the register says how often these names are met (their share of it), and
    the weight is corrected by log2(u_average / share)."""
    if frequencies is None or not comparison.shared_name_keys:
        return 0.0
    levels = dict(comparison.levels)
    if levels.get("family") not in _NAME_AGREEMENTS or levels.get("given") not in _NAME_AGREEMENTS:
        return 0.0
    share = frequencies.share(comparison.shared_name_keys)
    if share is None:
        return 0.0
    parameters = model_parameters()
    average = parameters.u_of("family", "exact") * parameters.u_of("given", "exact")
    adjustment = math.log2(average / max(share, 1e-9))
    # The correction is bounded: a name met once in a small file is not proof of identity.
    return max(-parameters.frequency_cap, min(parameters.frequency_cap, adjustment))


@dataclass(frozen=True)
class NameFrequencies:
    """How many records of a register are filed under each name-pair key, and how many records there
    are: the term frequencies of the names."""

    counts: dict[str, int]
    total: int
    # What a key missing from `counts` stands for: None where every key was counted (a file), or a
    # floor where the database leaves out blocks larger than it.
    uncounted: int | None = None

    def share(self, keys: Iterable[str]) -> float | None:
        """The share of the register carrying the rarest of these name pairs; None when unknown."""
        known = [self.counts.get(key, self.uncounted) for key in keys]
        found = [count for count in known if count]
        if not found or self.total <= 0:
            return None
        return min(found) / self.total

    @classmethod
    def of(cls, records: Sequence[PersonRecord]) -> NameFrequencies:
        counts: dict[str, int] = defaultdict(int)
        for record in records:
            for key in record.name_keys:
                counts[key] += 1
        return cls(dict(counts), len(records))


def register_frequencies(records: Sequence[PersonRecord]) -> NameFrequencies | None:
    """The names' frequencies among these records, when there are enough of them to say anything."""
    if len(records) < model_parameters().frequency_min_records:
        return None
    return NameFrequencies.of(records)


def compare(a: PersonRecord, b: PersonRecord, *, frequencies: NameFrequencies | None = None) -> MatchScore:
    """Judge whether two records describe the same child (with the names' frequencies in the
    register, when known)."""
    return _weigh(comparison_levels(a, b), frequencies)


def same_child(a: PersonRecord, b: PersonRecord) -> bool:
    """Whether `compare` judges two records the same child, without writing out its reasons: a file's
    check of a child listed twice weighs hundreds of thousands of pairs and keeps only this."""
    comparison = comparison_levels(a, b)
    return _judged(comparison, _evidence(comparison, None)[1]) == "same"


def may_be_same_child(a: PersonRecord, b: PersonRecord) -> bool:
    """Whether `same_child(a, b)` can hold at all: the parts quick to compare (birth date, settlement,
    sex, patronymic) weighed at their levels, as the engine weighs them, with the most every other
    part could add. A pair this sets aside could not reach the threshold of "same" whatever its names,
    so `same_child` would judge it otherwise: the test is exact, not a guess. A file's check of a child
    listed twice meets hundreds of thousands of namesakes, most born apart or elsewhere; reading their
    names both ways, the costly part, is left for the pairs that could be one child."""
    parameters = model_parameters()
    best = parameters.best_weights
    # Every part at its best, then each quick part at its own level: the pair is set aside as soon as
    # even the best the rest could add falls short (by more than the sums' rounding).
    points = parameters.prior_weight + sum(best.values())
    for part, level_of in _QUICK_PARTS:
        level = level_of(a, b)[0]
        points += (parameters.weight(part, level) if level else 0.0) - best.get(part, 0.0)
        if points < parameters.same_weight - 1e-9:
            return False
    return True


# The parts `may_be_same_child` compares, the likeliest to set a pair aside first.
_QUICK_PARTS: tuple[tuple[str, Callable[[PersonRecord, PersonRecord], tuple[str, str]]], ...] = (
    ("date", lambda a, b: _date_level(a.date, b.date)), ("settlement", _settlement_level), ("sex", _sex_level),
    ("patronymic", _patronymic_level))


def _group_points(cross: Iterable[MatchScore]) -> float:
    """How alike two groups of records are, part by part: the best agreement any pair of records
    shows on that part, among the pairs that both inform it, on top of the prior.

    A settlement or date only one record of a group gives still counts against the other group,
    even if a record with no settlement at all sits in the same group.
    """
    best: dict[str, float] = {}
    for result in cross:
        for part, part_points in result.evidence:
            best[part] = max(best.get(part, part_points), part_points)
    return model_parameters().prior_weight + sum(best.values())


# ---------------------------------------------------------------------------------------------
# Blocking: which pairs are worth comparing
# ---------------------------------------------------------------------------------------------

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


# One ASCII letter per sound that the folded key writes with two (ш ч ж ц), so that a tail counts sounds.
_SOUND_LETTERS = str.maketrans({"Ш": "w", "Ч": "c", "Ж": "j", "Ц": "q"})


def _name_tails(name: _NameField) -> tuple[str, ...]:
    """The consonants of each word of a name without its first sound, in two readings: the consonants
    after the first letter, and all consonants but the first. One of the two survives a slip in, or
    the loss of, the first letter (Кравчук / Уравчук, Попов / Ропов, Олійник / Лійник), which every
    other key starts with. Tails shorter than two sounds say too little to block on."""
    tails: set[str] = set()
    for word in name.sounds.translate(_SOUND_LETTERS).split():
        consonants = re.sub(r"[aeiou]", "", word)
        for tail in (re.sub(r"[aeiou]", "", word[1:]), consonants[1:]):
            if len(tail) >= 2:
                tails.add(tail)
    return tuple(sorted(tails))


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
    - ``t:<code>|<tail>``: the code of one name with the tail of the other (its consonants without
      the first sound, `_name_tails`): a slip in the first letter of either name, with or without a
      date, still meets the record under the other name's code; ``u:<YYYY>:<code>|<tail>`` the same
      with the birth year, which the database search uses for a record with a year.
    A code is ``g<canonical given name>`` or ``f<consonant skeleton>``; for example Шевченко Кирило
    born 2014 gives ``n:fshvchnk|gkirilo``, ``y:fshvchnk:2014:k`` and ``y:gkirilo:2014:s``. The
    keys depend on the codes only, not on which field holds them, so swapped names give the same
    keys. The database files each child under them (`ChildMatchKey`) for candidate search.
    """
    return record.name_keys | record.tail_keys | record.dated_tail_keys | record.year_keys | record.month_keys


def search_keys(record: PersonRecord) -> frozenset[str]:
    """The keys to look a record up by among stored children (who are filed under all of theirs).

    A record with its birth month looks in the month's blocks (``d:``), a twelfth of the year's: in a
    register of a million children the year's block of a common given name is thousands strong. A
    record known to the year only looks in the year's blocks (``y:``). Both look by the two names,
    and by each name with the other's tail: with the birth year where it is known (``u:``, blocks a
    fifteenth of the undated ones'), without it where it is not (``t:``).
    """
    dated = record.month_keys if record.date.month is not None else record.year_keys
    tails = record.dated_tail_keys if record.date.year is not None else record.tail_keys
    return record.name_keys | tails | dated


def _name_keys(record: PersonRecord) -> set[str]:
    family_codes, given_codes = record.family.codes, record.given.codes
    return {f"n:{min(f, g)}|{max(f, g)}" for f in family_codes for g in given_codes}


def _tail_keys(record: PersonRecord, *, dated: bool) -> set[str]:
    family, given = record.family, record.given
    year = record.date.year
    if dated and year is None:
        return set()
    kind = f"u:{year:04d}:" if dated else "t:"
    return {f"{kind}{code}|{tail}" for named, other in ((family, given), (given, family))
            for code in named.codes for tail in other.tails}


def _date_keys(record: PersonRecord, *, month: bool) -> set[str]:
    date = record.date
    if date.year is None or (month and date.month is None):
        return set()
    when, kind = (f"{date.year:04d}-{date.month:02d}", "d") if month else (f"{date.year:04d}", "y")
    family_codes, given_codes = record.family.codes, record.given.codes
    keys = set()
    for codes, others in ((family_codes, given_codes), (given_codes, family_codes)):
        letters = {other[1] for other in others} or {"_"}
        keys |= {f"{kind}:{code}:{when}:{letter}" for code in codes for letter in letters}
    return keys


def same_child_pairs(records: Sequence[PersonRecord]) -> list[tuple[int, int]]:
    """Index pairs (first, second; first < second) of records `same_child` judges one child, as a list
    of children (an import) must not hold.

    Two records are compared when they share one of the keys a record is looked up by among the
    stored children (`search_keys`: both names, or one name with the birth month where known, else
    the year), the same reach as the match against the stored children; blocks larger than
    `MAX_BLOCK_SIZE` say nothing and are left. All of a record's blocking keys would compare three
    times as many pairs (every row with a namesake born the same year) for the same findings:
    millions in a list of a hundred thousand rows. Each pair is compared once, in the block of the
    first key the two share, so that no set of all pairs is held."""
    keys = [search_keys(record) for record in records]
    blocks: dict[str, list[int]] = {}
    for index, record_keys in enumerate(keys):
        for key in record_keys:
            blocks.setdefault(key, []).append(index)
    usable = {key for key, members in blocks.items() if 1 < len(members) <= MAX_BLOCK_SIZE}
    found: list[tuple[int, int]] = []
    for key in usable:
        members = blocks[key]
        for position, first in enumerate(members):
            first_keys = keys[first]
            for second in members[position + 1:]:
                if min(first_keys & keys[second] & usable) != key:
                    continue
                if may_be_same_child(records[first], records[second]) and same_child(records[first], records[second]):
                    found.append((first, second))
    return sorted(found)


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

def _contradicts(result: MatchScore, contradiction: float) -> bool:
    """A pair that stops two groups being joined: judged different, or disagreeing flatly on one part
    (two full birth dates, two patronymics) however well the rest agrees."""
    return result.verdict == "different" or any(weight < contradiction for _part, weight in result.evidence)


def cluster(records: Sequence[PersonRecord]) -> list[int]:
    """A cluster id per record (the index of the cluster's first record): one id per child.

    Pairs judged 'same' are joined strongest first.  Two groups are joined only when no record of
    one is judged 'different' from a record of the other nor contradicts it on one part (a part
    weighing less than the parameters' ``contradiction_weight``), and when the two groups taken as wholes
    are still judged the same child (``_group_points``).  So a record known only by name and year
    cannot chain two different children (twins, or namesakes born the same year) into one, nor
    join a group whose records all name another settlement.
    """
    comparisons: dict[tuple[int, int], MatchScore] = {}
    frequencies = register_frequencies(records)
    same_weight, contradiction = model_parameters().same_weight, model_parameters().contradiction_weight

    def judged(i: int, j: int) -> MatchScore:
        pair = (i, j) if i < j else (j, i)
        if pair not in comparisons:
            comparisons[pair] = compare(records[pair[0]], records[pair[1]], frequencies=frequencies)
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
        if any(_contradicts(result, contradiction) for result in cross) or _group_points(cross) < same_weight:
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
