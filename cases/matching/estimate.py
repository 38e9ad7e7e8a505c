"""Estimating the matching model's parameters from a register, with no labels: u from random pairs of
records, m and the prior by expectation-maximisation over the pairs the blocking rules bring together.

The method of Fellegi and Sunter, as record-linkage tools estimate it (Splink among them): two
different children's records agree on a part by chance as often as two records drawn at random do
(u); among the blocked pairs, a mixture of one child's records and different children's, EM finds
the share of matches and how matches agree on each part (m), each part taken as independent of the
others given the match status.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from cases.matching.engine import PersonRecord, candidate_pairs, comparison_levels
from cases.matching.parameters import ModelParameters

Vector = tuple[tuple[str, str], ...]

# How a match is expected to agree before EM has looked at anything: agreement likely, the rest
# not. EM moves far from it; it only tells the two classes apart at the start.
_AGREEING = {"exact", "equivalent", "same", "same day", "direct", "implied same"}


@dataclass(frozen=True)
class Estimate:
    """What the estimation found: the parameters, and how it got there."""

    parameters: ModelParameters
    iterations: int
    blocked_pairs: int
    expected_matches: float


def _vectors(records: Sequence[PersonRecord], pairs: Sequence[tuple[int, int]]) -> Counter[Vector]:
    return Counter(comparison_levels(records[i], records[j]).levels for i, j in pairs)


def _distribution(counts: dict[str, dict[str, float]], levels: dict[str, set[str]]) -> dict[str, dict[str, float]]:
    """Counts per part and level to probabilities, each level seen at least half a time (additive
    smoothing), so that no weight is infinite."""
    result: dict[str, dict[str, float]] = {}
    for part, part_levels in levels.items():
        total = sum(counts[part].get(level, 0.0) + 0.5 for level in part_levels)
        result[part] = {level: (counts[part].get(level, 0.0) + 0.5) / total for level in sorted(part_levels)}
    return result


def estimate_u(records: Sequence[PersonRecord], *, sample: int = 200_000, seed: int = 7) -> tuple[
        dict[str, dict[str, float]], dict[str, set[str]]]:
    """u per part and level from random pairs of records (almost all of them two different children)."""
    rng = random.Random(seed)  # noqa: S311 - a sample, not a secret
    size = len(records)
    counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    levels: dict[str, set[str]] = defaultdict(set)
    seen: Counter[Vector] = Counter()
    for _ in range(sample):
        i, j = rng.randrange(size), rng.randrange(size)
        if i != j:
            seen[tuple(comparison_levels(records[i], records[j]).levels)] += 1
    for vector, count in seen.items():
        for part, level in vector:
            counts[part][level] += count
            levels[part].add(level)
    return _distribution(counts, levels), levels


def estimate_parameters(records: Sequence[PersonRecord], *, thresholds: ModelParameters,
                        max_iterations: int = 50, sample: int = 200_000) -> Estimate:
    """The model's parameters estimated from these records alone (no labels); the thresholds, which
    are operating choices rather than estimates, are taken from `thresholds`."""
    u, levels = estimate_u(records, sample=sample)
    pairs = sorted(candidate_pairs(records))
    vectors = _vectors(records, pairs)
    for vector in vectors:
        for part, level in vector:
            levels[part].add(level)
    u = _distribution({part: {level: u.get(part, {}).get(level, 0.0) * 1e6 for level in part_levels}
                       for part, part_levels in levels.items()}, levels)
    m = {part: {level: (0.9 if level in _AGREEING else 0.1 / max(len(part_levels) - 1, 1))
                for level in part_levels} for part, part_levels in levels.items()}
    # Within the blocked pairs the non-matches agree on names far more than random pairs do: EM
    # keeps a distribution of its own for them, and u stays the random pairs'.
    u_blocked = {part: dict(values) for part, values in u.items()}
    share = 0.3
    iterations = 0
    for iterations in range(1, max_iterations + 1):
        m_counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        u_counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        matched = 0.0
        for vector, count in vectors.items():
            log_match = math.log(share) + sum(math.log(m[part][level]) for part, level in vector)
            log_other = math.log(1 - share) + sum(math.log(u_blocked[part][level]) for part, level in vector)
            probability = 1.0 / (1.0 + math.exp(max(min(log_other - log_match, 700), -700)))
            matched += probability * count
            for part, level in vector:
                m_counts[part][level] += probability * count
                u_counts[part][level] += (1 - probability) * count
        new_m = _distribution(m_counts, levels)
        u_blocked = _distribution(u_counts, levels)
        new_share = min(max(matched / max(len(pairs), 1), 1e-6), 1 - 1e-6)
        change = max(abs(new_m[part][level] - m[part][level]) for part in m for level in m[part])
        m, share = new_m, new_share
        if change < 1e-5 and iterations > 2:
            break
    expected = share * len(pairs)
    all_pairs = len(records) * (len(records) - 1) / 2
    prior = expected / all_pairs
    parameters = ModelParameters(
        m=m, u=u, prior_weight=round(math.log2(prior / (1 - prior)), 4), same_weight=thresholds.same_weight,
        possible_weight=thresholds.possible_weight, contradiction_weight=thresholds.contradiction_weight,
        frequency_cap=thresholds.frequency_cap, frequency_min_records=thresholds.frequency_min_records,
        source={"records": len(records), "blocked_pairs": len(pairs), "expected_matches": round(expected, 1),
                "em_iterations": iterations, "random_pairs": sample},
    )
    return Estimate(parameters, iterations, len(pairs), expected)


def labelled_m(records: Sequence[PersonRecord], child_of: dict[str, str]) -> dict[str, dict[str, float]]:
    """m per part and level counted on the true pairs of a labelled set: the check on EM's figures."""
    by_child: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        by_child[child_of[record.record_id]].append(index)
    counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    levels: dict[str, set[str]] = defaultdict(set)
    for members in by_child.values():
        for position, i in enumerate(members):
            for j in members[position + 1:]:
                for part, level in comparison_levels(records[i], records[j]).levels:
                    counts[part][level] += 1
                    levels[part].add(level)
    return _distribution(counts, levels)
