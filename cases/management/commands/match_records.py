"""Groups the rows of a CSV file by child with the matching engine, printing record_id,cluster_id.

    python manage.py match_records FILE.csv > clusters.csv

The input has a header line with record_id,family_name,given_name,patronymic,birth_date,sex,settlement
(UTF-8, with or without a byte-order mark; any script; empty fields allowed).  Nothing is read from
or written to the database.
"""

from __future__ import annotations

import csv
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from cases.matching.engine import cluster, records_from_rows

REQUIRED_COLUMNS = ("record_id", "family_name", "given_name")


class Command(BaseCommand):
    help = "Group the records of a CSV file by child; prints record_id,cluster_id."
    # Matching needs neither the database nor the models, so it also runs on an empty database.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", help="CSV with record_id,family_name,given_name,patronymic,"
                                         "birth_date,sex,settlement")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with open(options["file"], encoding="utf-8-sig", newline="") as records_file:
                reader = csv.DictReader(records_file)
                missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
                if missing:
                    raise CommandError(f"{options['file']}: missing column(s) {', '.join(missing)}")
                rows = list(reader)
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"cannot read {options['file']}: {error}") from error

        records = records_from_rows(rows)
        cluster_ids = cluster(records)
        writer = csv.writer(self.stdout, lineterminator="\n")
        writer.writerow(["record_id", "cluster_id"])
        for record, first_index in zip(records, cluster_ids, strict=True):
            # The cluster is named after its first record, so the output reads without a lookup.
            writer.writerow([record.record_id, records[first_index].record_id])
