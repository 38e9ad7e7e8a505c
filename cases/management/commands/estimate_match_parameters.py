"""Estimates the matching model's parameters from the register itself (no labels) and prints them; with
--write, puts them in force by writing cases/matching/parameters.json (commit the file to keep them).

    python manage.py estimate_match_parameters [--sample 20000] [--write]

u comes from random pairs of children, m and the prior from expectation-maximisation over the pairs
the blocking keys bring together (`cases.matching.estimate`). The thresholds stay as they are: they
are operating choices, checked against the labelled development set (scripts/evaluate_matching.py).
"""

from __future__ import annotations

import random
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from cases.matching.candidates import child_records
from cases.matching.estimate import estimate_parameters
from cases.matching.parameters import model_parameters, save_parameters
from cases.models import Child


class Command(BaseCommand):
    help = "Estimate the matching model's m, u and prior from the stored children."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--sample", type=int, default=20_000,
                            help="children drawn at random to estimate from (default 20000)")
        parser.add_argument("--write", action="store_true", help="write cases/matching/parameters.json")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["sample"] < 100:
            raise CommandError("--sample: at least 100 children are needed to estimate anything")
        ids = list(Child.objects.filter(merged_into__isnull=True).values_list("pk", flat=True))
        if len(ids) < 100:
            raise CommandError(f"the register holds {len(ids)} children; at least 100 are needed")
        chosen = random.Random(7).sample(ids, min(options["sample"], len(ids)))  # noqa: S311 - a sample, not a secret
        records = []
        for start in range(0, len(chosen), 2000):
            for child in Child.objects.filter(pk__in=chosen[start:start + 2000]).order_by("pk"):
                # Every spelling of a child is a record, as the register's files write them.
                records.extend(child_records(child))
        estimate = estimate_parameters(records, thresholds=model_parameters())
        parameters = estimate.parameters
        self.stdout.write(f"{len(chosen)} children, {len(records)} records, {estimate.blocked_pairs} blocked pairs, "
                          f"EM {estimate.iterations} iterations, prior {parameters.prior_weight:+.2f} bits")
        for part, levels in sorted(parameters.m.items()):
            for level, m in sorted(levels.items()):
                self.stdout.write(f"  {part:<11} {level:<26} m {m:.4f}  u {parameters.u_of(part, level):.5f}  "
                                  f"weight {parameters.weight(part, level):+.2f}")
        if options["write"]:
            save_parameters(parameters)
            self.stdout.write("written to cases/matching/parameters.json")
