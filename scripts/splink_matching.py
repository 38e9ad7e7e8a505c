"""Runs Splink (its embedded DuckDB backend) on the matching development set, with comparisons like the
engine's, and prints the same pairwise precision, recall and F1 as scripts/evaluate_matching.py.

Splink is a development tool here (requirements-dev.txt), never imported by the product. Names are
folded by the engine's own `cases.matching.names` first, so the two models differ in how they
weigh and cluster, not in how they read a spelling.

Usage: python scripts/splink_matching.py [RECORDS.csv] [TRUTH.csv] [--thresholds W ...] [--show-errors N]
"""

from __future__ import annotations

import argparse
import csv
import logging
import re
import sys
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from cases.matching.engine import records_from_rows  # noqa: E402
from cases.matching.names import (  # noqa: E402
    canonical_given_name,
    given_name_sex,
    latin_key,
    patronymic_father,
    patronymic_sex,
    settlement_key,
)
from scripts.matching_causes import cause_table, causes  # noqa: E402

DATA_DIR = REPO_ROOT.parent / "shared" / "data"
_SEX = {"m": "M", "м": "M", "ч": "M", "f": "F", "ж": "F"}
_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


def folded(row: dict[str, str]) -> dict[str, Any]:
    """One record as Splink reads it: each name folded as the engine folds it, the date in its parts."""
    family, given = latin_key(row["family_name"]), canonical_given_name(row["given_name"])
    found = _DATE.match(row["birth_date"].strip())
    year, month, day = (int(part) if part else None for part in found.groups()) if found else (None, None, None)
    sex = _SEX.get(row["sex"].strip().lower()) or patronymic_sex(row["patronymic"]) or given_name_sex(
        row["given_name"]) or None
    return {
        "unique_id": row["record_id"],
        "family": family or None,
        "given": given or None,
        # Blocking columns: the consonant skeleton of each name, and the family name without its first
        # sound (so that a slip there still meets), as the engine's keys use them.
        "family_code": re.sub(r"[aeiou ]", "", family) or None,
        "given_code": re.sub(r"[aeiou ]", "", given) or None,
        "family_tail": re.sub(r"[aeiou ]", "", family[1:]) or None,
        # For the forename-surname comparison's exact level on both, with its term frequency.
        "given_family": f"{given} {family}".strip() or None,
        "patronymic": patronymic_father(row["patronymic"]) or None,
        "birth_year": year, "birth_month": month, "birth_day": day,
        "sex": sex, "settlement": settlement_key(row["settlement"]) or None,
    }


def _date_comparison() -> Any:
    from splink import comparison_library as cl

    both_days = "birth_day_l IS NOT NULL AND birth_day_r IS NOT NULL"
    coarse = "(birth_month_l IS NULL OR birth_month_r IS NULL)"
    return cl.CustomComparison(
        output_column_name="birth_date",
        comparison_levels=[
            {"sql_condition": "birth_year_l IS NULL OR birth_year_r IS NULL", "is_null_level": True,
             "label_for_charts": "missing"},
            {"sql_condition": f"{both_days} AND birth_year_l = birth_year_r AND birth_month_l = birth_month_r "
                              "AND birth_day_l = birth_day_r", "label_for_charts": "same day"},
            {"sql_condition": f"{both_days} AND birth_year_l = birth_year_r AND birth_month_l = birth_day_r "
                              "AND birth_day_l = birth_month_r", "label_for_charts": "day and month swapped"},
            {"sql_condition": f"{both_days} AND abs(birth_year_l - birth_year_r) <= 2 "
                              "AND birth_month_l = birth_month_r AND birth_day_l = birth_day_r",
             "label_for_charts": "year apart, same day"},
            {"sql_condition": "birth_year_l = birth_year_r AND birth_month_l = birth_month_r",
             "label_for_charts": "same month"},
            {"sql_condition": f"birth_year_l = birth_year_r AND {coarse}", "label_for_charts": "year-only, same year"},
            {"sql_condition": f"abs(birth_year_l - birth_year_r) = 1 AND {coarse}",
             "label_for_charts": "year-only, a year apart"},
            {"sql_condition": "birth_year_l = birth_year_r", "label_for_charts": "same year, other day"},
            {"sql_condition": "ELSE", "label_for_charts": "different"},
        ],
    )


def run_splink(records: list[dict[str, Any]], thresholds: list[float]) -> tuple[dict[float, dict[str, str]], float]:
    """Splink's clusters at each threshold (match weight), and the time taken for training and the first."""
    import duckdb
    import pyarrow as pa  # type: ignore[import-untyped]
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on
    from splink import comparison_library as cl

    started = time.perf_counter()
    db_api = DuckDBAPI(connection=duckdb.connect())
    table = db_api.register(pa.Table.from_pylist(records))
    blocking: list[Any] = [block_on("family_code", "given_code"), block_on("given_code", "birth_year"),
                           block_on("family_code", "birth_year"), block_on("given_code", "family_tail"),
                           # Family and given names written the other way round in one record.
                           "l.family_code = r.given_code AND l.given_code = r.family_code"]
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            # Both names at once, with a level for the two written the other way round, and the term
            # frequency of the pair on the exact level: Splink's own comparison for names.
            cl.ForenameSurnameComparison("given", "family", forename_surname_concat_col_name="given_family"),
            cl.ExactMatch("patronymic"),
            _date_comparison(),
            cl.ExactMatch("sex"),
            cl.ExactMatch("settlement"),
        ],
        blocking_rules_to_generate_predictions=blocking,
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(table, settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("family", "given", "birth_year", "birth_month", "birth_day")], recall=0.6)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=7)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("family_code", "given_code"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("birth_year", "birth_month",
                                                                                "birth_day"))
    predictions = linker.inference.predict(threshold_match_weight=min(thresholds) - 1)
    clusters: dict[float, dict[str, str]] = {}
    elapsed = 0.0
    for threshold in thresholds:
        clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_weight=threshold)
        rows = clustered.as_record_list()
        clusters[threshold] = {str(row["unique_id"]): str(row["cluster_id"]) for row in rows}
        if not elapsed:
            elapsed = time.perf_counter() - started
    return clusters, elapsed


def _pairs(groups: dict[str, list[str]]) -> set[tuple[str, str]]:
    return {pair for members in groups.values() for pair in combinations(sorted(members), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="?", default=str(DATA_DIR / "matching-dev.csv"))
    parser.add_argument("truth", nargs="?", default=str(DATA_DIR / "matching-dev-truth.csv"))
    parser.add_argument("--thresholds", type=float, nargs="+", default=[2.0, 4.0, 6.0], metavar="BITS")
    parser.add_argument("--show-errors", type=int, default=0, metavar="N")
    options = parser.parse_args()
    logging.getLogger("splink").setLevel(logging.WARNING)
    with open(options.records, encoding="utf-8-sig", newline="") as records_file:
        rows = list(csv.DictReader(records_file))
    with open(options.truth, encoding="utf-8-sig", newline="") as truth_file:
        child_of = {row["record_id"]: row["child_id"] for row in csv.DictReader(truth_file)}
    started = time.perf_counter()
    records = [folded(row) for row in rows]
    fold_time = time.perf_counter() - started
    clusters, elapsed = run_splink(records, options.thresholds)
    print(f"records: {len(records)}; folding {fold_time:.2f} s; Splink training, prediction and the first "
          f"clustering {elapsed:.2f} s")
    true: dict[str, list[str]] = defaultdict(list)
    for record_id, child in child_of.items():
        true[child].append(record_id)
    true_pairs = _pairs(true)
    by_id = {row["record_id"]: row for row in rows}
    engine_records = {record.record_id: record for record in records_from_rows(rows)}
    for threshold, cluster_of in clusters.items():
        found: dict[str, list[str]] = defaultdict(list)
        for record_id, cluster in cluster_of.items():
            found[cluster].append(record_id)
        found_pairs = _pairs(found)
        correct = len(found_pairs & true_pairs)
        precision = correct / len(found_pairs) if found_pairs else 1.0
        recall = correct / len(true_pairs)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        print(f"threshold {threshold:+.1f} bits: pairs found {len(found_pairs)}, correct {correct}, "
              f"precision {precision:.4f}, recall {recall:.4f}, F1 {f1:.4f}")
        for title, pairs in (("wrongly joined, by cause", found_pairs - true_pairs),
                             ("missed, by cause", true_pairs - found_pairs)):
            print(cause_table(f"  {title}", causes((engine_records[a], engine_records[b]) for a, b in sorted(pairs))))
        for title, pairs in (("joined but not the same child", found_pairs - true_pairs),
                             ("the same child but not joined", true_pairs - found_pairs)):
            for first, second in sorted(pairs)[: options.show_errors]:
                print(f"  {title}: " + " | ".join(
                    " ".join(by_id[record_id][column] for column in ("family_name", "given_name", "patronymic",
                                                                     "birth_date", "sex", "settlement"))
                    for record_id in (first, second)))


if __name__ == "__main__":
    main()
