"""Estimates the matching model's parameters from a register's records (no labels) and writes them to
cases/matching/parameters.json; with the truth file, prints EM's m beside the m counted on true pairs.

Usage: python scripts/estimate_matching.py [RECORDS.csv] [--truth TRUTH.csv] [--write]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from cases.matching.engine import records_from_rows  # noqa: E402
from cases.matching.estimate import estimate_parameters, labelled_m  # noqa: E402
from cases.matching.parameters import model_parameters, save_parameters  # noqa: E402

DATA_DIR = REPO_ROOT.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="?", default=str(DATA_DIR / "matching-dev.csv"))
    parser.add_argument("--truth", help="labelled truth (record_id,child_id), to check EM's m against")
    parser.add_argument("--write", action="store_true", help="write cases/matching/parameters.json")
    options = parser.parse_args()
    with open(options.records, encoding="utf-8-sig", newline="") as records_file:
        records = records_from_rows(csv.DictReader(records_file))
    current = model_parameters()
    started = time.perf_counter()
    estimate = estimate_parameters(records, thresholds=current)
    print(f"{len(records)} records, {estimate.blocked_pairs} blocked pairs, EM {estimate.iterations} iterations, "
          f"{estimate.expected_matches:.0f} matches expected, prior {estimate.parameters.prior_weight:+.2f} bits, "
          f"{time.perf_counter() - started:.1f} s")
    truth_m = {}
    if options.truth:
        with open(options.truth, encoding="utf-8-sig", newline="") as truth_file:
            truth_m = labelled_m(records, {row["record_id"]: row["child_id"] for row in csv.DictReader(truth_file)})
    parameters = estimate.parameters
    print(f"{'part':<11} {'level':<26} {'m (EM)':>8} {'m (truth)':>9} {'u':>9} {'weight':>7}")
    for part, levels in sorted(parameters.m.items()):
        for level, m in sorted(levels.items(), key=lambda item: -parameters.weight(part, item[0])):
            true_m = truth_m.get(part, {}).get(level)
            print(f"{part:<11} {level:<26} {m:8.4f} {'' if true_m is None else f'{true_m:9.4f}':>9} "
                  f"{parameters.u_of(part, level):9.5f} {parameters.weight(part, level):+7.2f}")
    if options.write:
        save_parameters(parameters)
        print("written to cases/matching/parameters.json")


if __name__ == "__main__":
    main()
