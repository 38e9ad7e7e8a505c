"""The matching engine alone: `manage.py match_records` on the labelled development set, timed, with the
pairwise precision and recall it reaches (no database)."""

from __future__ import annotations

import csv
import io
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path

from scripts.bench_common import Results, Row

DEVELOPMENT_SET = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def measure_matching(results: Results) -> None:
    from django.core.management import call_command

    records, truth = DEVELOPMENT_SET / "matching-dev.csv", DEVELOPMENT_SET / "matching-dev-truth.csv"
    if not records.exists():
        print(f"  matching: no development set at {records}", flush=True)
        return
    out = io.StringIO()
    started = time.perf_counter()
    call_command("match_records", str(records), stdout=out)
    took = time.perf_counter() - started
    clusters: dict[str, list[str]] = defaultdict(list)
    for row in csv.DictReader(io.StringIO(out.getvalue())):
        clusters[row["cluster_id"]].append(row["record_id"])
    with truth.open(encoding="utf-8-sig", newline="") as truth_file:
        children: dict[str, list[str]] = defaultdict(list)
        for row in csv.DictReader(truth_file):
            children[row["child_id"]].append(row["record_id"])

    def pairs(groups: dict[str, list[str]]) -> set[tuple[str, str]]:
        return {pair for members in groups.values() for pair in combinations(sorted(members), 2)}

    found, true = pairs(clusters), pairs(children)
    precision, recall = len(found & true) / max(len(found), 1), len(found & true) / max(len(true), 1)
    print(f"  match_records on the development set: {took:.2f} s; precision {precision:.4f}, recall {recall:.4f}",
          flush=True)
    results.add(Row("matching: match_records on the development set (3,294 records)", f"{took:.2f} s",
                    target="< 5 s", met=took < 5,
                    note=f"precision {precision:.4f}, recall {recall:.4f}"))
