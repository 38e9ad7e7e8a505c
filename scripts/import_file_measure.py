"""Times the reading and checking of one spreadsheet as an import does it (no database: the file
is read, its header recognised and every row checked, the same child twice looked for) and
prints the time and the process's peak memory.

    .venv/bin/python scripts/import_file_measure.py /tmp/list.xlsx [--reply] [--reader OLD.py]
    DATABASE_URL=postgres://.../tracker_bench .venv/bin/python scripts/import_file_measure.py /tmp/list.xlsx \
        --whole --max-rows 200000

`--whole` imports the list for real through the import's services, against the database
DATABASE_URL names (the benchmark's fill, say; the list is added to it): read, check, match
against the stored children, write (a new child for every proposed match, children still awaiting
a reply listed again), and prints the time and the process's CPU time of each phase. The list
goes from the "Ukrainian delegation" to the "Russian delegation" (`--from`, `--to`), handed over.

Make a large file first with scripts/import_file_make.py. `--reader` measures another version of
`tracker/spreadsheets.py` (say, `git show OLD:tracker/spreadsheets.py > /tmp/old.py`); one that
takes the file's bytes rather than a stream is given them.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import inspect
import os
import pstats
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_DEBUG", "true")
os.environ.setdefault("DATABASE_URL", "sqlite://:memory:")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path")
    parser.add_argument("--reply", action="store_true")
    parser.add_argument("--reader", help="another version of tracker/spreadsheets.py to measure")
    parser.add_argument("--max-rows", type=int, help="the row limit, as TRACKER_IMPORT_MAX_ROWS (default: none)")
    parser.add_argument("--whole", action="store_true", help="import the list into the database, phase by phase")
    parser.add_argument("--from", dest="sender", default="Ukrainian delegation")
    parser.add_argument("--to", dest="recipient", default="Russian delegation")
    parser.add_argument("--profile", help="with --whole: print the write's profile, and keep it in this file")
    args = parser.parse_args()
    if args.whole and os.environ["DATABASE_URL"].startswith("sqlite"):
        parser.error("--whole imports into a database: give its DATABASE_URL (PostgreSQL)")
    import django

    django.setup()
    if args.whole:
        whole_import(Path(args.path), args)
        return
    from django.utils import timezone

    from core.bulk import bulk_job
    from tracker import spreadsheets

    if args.reader:
        spec = importlib.util.spec_from_file_location("reader_measured", args.reader)
        assert spec is not None and spec.loader is not None
        spreadsheets = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = spreadsheets
        spec.loader.exec_module(spreadsheets)

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    parse = spreadsheets.parse_reply if args.reply else spreadsheets.parse_list
    path = Path(args.path)
    streams = "IO[bytes]" in str(inspect.signature(parse).parameters["source" if "source" in inspect.signature(
        parse).parameters else "content"].annotation)
    # As the import's check runs it: with the garbage collector's threshold of a bulk job.
    with bulk_job(), path.open("rb") as stream:
        parsed = parse(stream if streams else stream.read(), path.name, today=timezone.localdate(),
                       max_rows=args.max_rows)
    took = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{args.path}: {Path(args.path).stat().st_size / 2**20:.1f} MB, {len(parsed.rows):,} rows read, "
          f"{len(parsed.problems):,} problems, columns {sorted(parsed.columns)}")
    for problem in parsed.problems[:5]:
        print("  ", problem)
    print(f"time {took:.1f} s; peak resident memory {peak / 1024:.0f} MiB (at start {before / 1024:.0f} MiB)")


class Phases:
    """Wall clock and CPU time of the import's reading and matching, which run inside its check."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {"read": 0.0, "match": 0.0}
        self.cpu: dict[str, float] = {"read": 0.0, "match": 0.0}

    def wrap(self, name: str, function: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.wall[name] += time.perf_counter() - started
                self.cpu[name] += time.process_time() - cpu
        return timed


def whole_import(path: Path, args: argparse.Namespace) -> None:
    import datetime

    from django.conf import settings

    import tracker.services.imports as imports
    from tracker import spreadsheets
    from tracker.models import ImportBatch, ImportRow, Organisation

    if args.max_rows:
        settings.TRACKER_IMPORT_MAX_ROWS = args.max_rows
    phases = Phases()
    spreadsheets.parse_list = phases.wrap("read", spreadsheets.parse_list)
    imports.find_candidates = phases.wrap("match", imports.find_candidates)
    content = path.read_bytes()
    settings.TRACKER_IMPORT_MAX_BYTES = max(settings.TRACKER_IMPORT_MAX_BYTES, len(content))
    batch = imports.import_batch_create(
        kind=ImportBatch.Kind.LIST, content=content, file_name=path.name, actor=None,
        sender=Organisation.objects.get(name=args.sender), recipient=Organisation.objects.get(name=args.recipient),
        reference=f"MEASURED-{time.time_ns()}", handed_over_on=datetime.date(2025, 6, 2),
        response_due_on=datetime.date(2025, 7, 2))
    started, cpu = time.perf_counter(), time.process_time()
    batch = imports.import_batch_validate(batch_id=batch.pk)
    checked, checked_cpu = time.perf_counter() - started, time.process_time() - cpu
    if batch.status != ImportBatch.Status.VALIDATED:
        print(f"refused: {len(batch.errors):,} problems, first {batch.errors[:3]}")
        print(f"read and check {checked:.1f} s (CPU {checked_cpu:.1f} s)")
        return
    verdicts = {verdict: batch.rows.filter(verdict=verdict).count() for verdict in ImportRow.Verdict.values}
    batch = imports.import_batch_start(batch=batch, actor=None, proposed=ImportRow.Decision.REJECT,
                                       repeats_confirmed=True)
    profile = cProfile.Profile() if args.profile else None
    started, cpu = time.perf_counter(), time.process_time()
    if profile is not None:
        profile.enable()
    batch = imports.import_batch_run(batch_id=batch.pk, actor=None)
    if profile is not None:
        profile.disable()
        profile.dump_stats(args.profile)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
    written, written_cpu = time.perf_counter() - started, time.process_time() - cpu
    assert batch.status == ImportBatch.Status.DONE, batch.errors[:3]
    read, match = phases.wall["read"], phases.wall["match"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    others = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"{path}: {batch.summary['rows']:,} rows imported as list {batch.summary['list']} ("
          + ", ".join(f"{verdict} {count:,}" for verdict, count in verdicts.items() if count) + ")")
    print(f"whole import {checked + written:.1f} s (CPU {checked_cpu + written_cpu:.1f} s): read and check "
          f"{read:.1f} s (CPU {phases.cpu['read']:.1f} s); match {match:.1f} s (CPU {phases.cpu['match']:.1f} s); "
          f"rest of the preview (rows stored, repeats) {checked - read - match:.1f} s (CPU "
          f"{checked_cpu - phases.cpu['read'] - phases.cpu['match']:.1f} s); write {written:.1f} s (CPU "
          f"{written_cpu:.1f} s); peak resident memory {peak / 1024:.0f} MiB"
          + (f" (another process, the search for a child listed twice: {others / 1024:.0f} MiB)" if others else ""))


if __name__ == "__main__":
    main()
