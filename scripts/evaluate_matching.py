"""Measures how well the matching engine groups records: pairwise precision, recall and F1 against truth.

Usage: python scripts/evaluate_matching.py [RECORDS.csv] [TRUTH.csv] [--show-errors N]
Defaults to the development set in ../shared/data/ (relative to the repository root).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import defaultdict
from dataclasses import replace
from itertools import combinations
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from cases.matching.engine import PersonRecord, cluster, compare, records_from_rows, register_frequencies  # noqa: E402
from cases.matching.parameters import model_parameters, use_parameters  # noqa: E402
from scripts.matching_causes import cause_table, causes  # noqa: E402

DATA_DIR = REPO_ROOT.parent / "shared" / "data"


def _pairs(groups: dict[str, list[str]]) -> set[tuple[str, str]]:
    return {pair for members in groups.values() for pair in combinations(sorted(members), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="?", default=str(DATA_DIR / "matching-dev.csv"))
    parser.add_argument("truth", nargs="?", default=str(DATA_DIR / "matching-dev-truth.csv"))
    parser.add_argument("--show-errors", type=int, default=0, metavar="N",
                        help="print up to N wrongly joined and N missed pairs with the engine's reasons")
    parser.add_argument("--thresholds", type=float, nargs="*", default=[], metavar="BITS",
                        help="also measure with these match weights as the 'same' threshold")
    options = parser.parse_args()

    with open(options.records, encoding="utf-8-sig", newline="") as records_file:
        rows = list(csv.DictReader(records_file))
    with open(options.truth, encoding="utf-8-sig", newline="") as truth_file:
        child_of = {row["record_id"]: row["child_id"] for row in csv.DictReader(truth_file)}

    started = time.perf_counter()
    records = records_from_rows(rows)
    cluster_ids = cluster(records)
    elapsed = time.perf_counter() - started
    _report(records, cluster_ids, child_of, elapsed, options.show_errors)
    for threshold in options.thresholds:
        print(f"\n== with 'same' at {threshold:+.1f} bits")
        with use_parameters(replace(model_parameters(), same_weight=threshold)):
            started = time.perf_counter()
            cluster_ids = cluster(records)
            _report(records, cluster_ids, child_of, time.perf_counter() - started, 0)


def _report(records: list[PersonRecord], cluster_ids: list[int], child_of: dict[str, str], elapsed: float,
            show_errors: int) -> None:

    found: dict[str, list[str]] = defaultdict(list)
    true: dict[str, list[str]] = defaultdict(list)
    for record, cluster_id in zip(records, cluster_ids, strict=True):
        found[str(cluster_id)].append(record.record_id)
        true[child_of[record.record_id]].append(record.record_id)
    found_pairs, true_pairs = _pairs(found), _pairs(true)
    correct = len(found_pairs & true_pairs)
    precision = correct / len(found_pairs) if found_pairs else 1.0
    recall = correct / len(true_pairs) if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    print(f"records:            {len(records)}")
    print(f"clusters found:     {len(found)} (true children: {len(true)})")
    print(f"pairs found:        {len(found_pairs)}")
    print(f"pairs true:         {len(true_pairs)}")
    print(f"pairs correct:      {correct}")
    print(f"precision:          {precision:.4f}")
    print(f"recall:             {recall:.4f}")
    print(f"F1:                 {f1:.4f}")
    print(f"clustering time:    {elapsed:.2f} s")

    by_id = {record.record_id: record for record in records}
    for title, pairs in (("wrongly joined, by cause", found_pairs - true_pairs),
                         ("missed, by cause", true_pairs - found_pairs)):
        print(cause_table(title, causes((by_id[a], by_id[b]) for a, b in sorted(pairs))))

    if show_errors:
        by_id = {record.record_id: record for record in records}
        frequencies = register_frequencies(records)
        for title, pairs in (("joined but not the same child", found_pairs - true_pairs),
                             ("the same child but not joined", true_pairs - found_pairs)):
            print(f"\n== {title}: {len(pairs)}")
            for first, second in sorted(pairs)[:show_errors]:
                a, b = by_id[first], by_id[second]
                result = compare(a, b, frequencies=frequencies)
                for record in (a, b):
                    print(" ".join(str(value) for value in (
                        record.record_id, record.family_name, record.given_name, record.patronymic,
                        record.birth_date, record.sex, record.settlement)))
                print(f"   {result.verdict} {result.points}: " + "; ".join(result.reasons))


if __name__ == "__main__":
    main()
