"""Speed of the tracker at scale, on a PostgreSQL database of its own; prints what it measured,
each figure beside a baseline written in raw SQL and run in the same run.

    make bench                                                  # 1,000,000 children, 5,000,000 entries
    make bench BENCH_ARGS="--sizes 20000"                       # a small run, for development
    make bench BENCH_ARGS="--keep"                              # reuse the database the last run filled
    make bench BENCH_ARGS="--keep --only import"                # the fill reused, only the imports measured
    .venv/bin/python scripts/benchmark.py --sizes 20000 --markdown var/bench.md
    BENCH_DATABASE_URL=postgres://... .venv/bin/python scripts/benchmark.py

For each size it fills the database `tracker_bench` (dropped and made anew unless --keep finds it
filled at that size) with synthetic children, their cases and match keys, handover lists with
`--entries-per-child` entries per child in all, replies, a partner organisation's shares and the
history rows the product keeps (see scripts/bench_fill.py), all with COPY, then measures:

- the matching engine alone: `manage.py match_records` on the labelled development set, timed;
- name search (`cases.selectors.search_by_name`), 40 names in Latin, Cyrillic and Russian forms;
- the deadline sweep (`tracker.services.flags.sweep_deadlines`) over every entry, three runs (the
  first, again the same day, the next day), each against two hand-written statements doing the
  same work on a copy of the same entries and flags; the flags both leave are compared;
- the admin's pages rendered through Django's test client as a superuser: cases with a name search
  and a status filter, one list's entries, open flags, the start page; median and p95 of several
  requests, the number of SQL queries, and the page's main query in raw SQL;
- the API's page of 100 cases for a partner's key, against one SQL query and json.dumps;
- a reply of 10,000 rows recorded (`tracker.services.exchange.reply_record`), against the same writes
  in raw SQL in a transaction rolled back;
- the import of 10,000-row lists (half stored children written another way, half new) through the
  product's import services, with where the time goes: read, check, match, write, Python's share;
- the number of queries of each path at two sizes, side by side.

The run ends with the table of figures, the problems found (with the slow query and its plan), the
time of each phase and the total. Every figure is measured here and now; nothing is assumed.
"""

from __future__ import annotations

import argparse
import datetime
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# First: it sets the environment Django reads when it is set up.
from scripts import bench_common
from scripts.bench_common import Phases, Results, Row, machine

# The paths measured after the fill, in the order they run; `--only` picks some of them.
PATHS = ("matching", "search", "sweep", "admin", "api", "reply", "import")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000", help="children in the database, comma-separated")
    parser.add_argument("--entries-per-child", type=int, default=5, help="list entries per child, in all")
    parser.add_argument("--rows", type=int, default=10_000, help="rows in each imported list")
    parser.add_argument("--imports", type=int, default=3, help="lists imported one after another")
    parser.add_argument("--small-import", type=int, default=1_000, help="rows of the list imported to count queries")
    parser.add_argument("--reply-sizes", default="100,10000", help="rows of the replies recorded")
    parser.add_argument("--runs", type=int, default=20, help="requests timed per page")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--keep", action="store_true",
                        help="reuse the database if the last fill was of this size, instead of filling it anew")
    parser.add_argument("--markdown", help="also write the table of results to this file (Markdown)")
    parser.add_argument("--only", default="", help=f"measure only these paths, comma-separated, of: {', '.join(PATHS)}")
    args = parser.parse_args()
    only = {part.strip() for part in args.only.split(",") if part.strip()}
    if only - set(PATHS):
        parser.error(f"--only: unknown path(s) {', '.join(sorted(only - set(PATHS)))}; known: {', '.join(PATHS)}")
    measured = only or set(PATHS)

    import django

    django.setup()
    from django.utils import timezone

    from scripts import bench_fill, bench_matching, bench_reads, bench_sweep, bench_writes
    from scripts.bench_sql import Raw

    url = bench_common.DATABASE_URL
    name = url.rsplit("/", 1)[1]
    for size in (int(part) for part in args.sizes.split(",")):
        phases, results = Phases(), Results()
        started = datetime.datetime.now(datetime.UTC)
        print(f"\n== {size:,} children, {size * args.entries_per_child:,} list entries "
              f"({name}, {started:%Y-%m-%d %H:%M} UTC) ==", flush=True)
        with phases.phase("database"):
            population, sample = bench_fill.ensure_filled(url, size=size, entries_per_child=args.entries_per_child,
                                                          seed=args.seed, keep=args.keep)
        raw = Raw(url)

        def activity(raw: Raw = raw) -> str:
            _, rows = raw.time("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                               "AND datname IS DISTINCT FROM current_database()")
            return f"{rows[0][0]} busy session(s) in other databases"

        phases.activity = activity
        with raw.conn.cursor() as cursor:
            described = machine(cursor)
            cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
            database_size = cursor.fetchone()[0]  # type: ignore[index]
        print("  machine: " + "; ".join(f"{k} {v}" for k, v in described.items()), flush=True)
        print(f"  database size: {database_size}", flush=True)
        today = timezone.localdate()
        rng = random.Random(size)

        if "matching" in measured:
            with phases.phase("matching engine"):
                bench_matching.measure_matching(results)
        if "search" in measured:
            with phases.phase("name search"):
                bench_sweep.measure_search(results, raw, sample, rng)
        if measured & {"sweep", "admin"}:
            with phases.phase("start page before the sweep"):
                from django.test import Client

                with raw.conn.cursor() as cursor:
                    cursor.execute("DELETE FROM tracker_flag WHERE kind <> 'manual'")
                    cursor.execute("VACUUM (ANALYZE) tracker_flag")
                client = Client()
                client.force_login(bench_fill.bench_superuser())
                before = bench_reads.page_queries(client, "/admin/")
                print(f"  /admin/ with no sweep flags: {len(before)} queries", flush=True)
        if "sweep" in measured:
            with phases.phase("deadline sweep"):
                bench_sweep.measure_sweep(results, raw, today)
        if "admin" in measured:
            with phases.phase("admin pages"):
                bench_reads.measure_admin(results, raw, sample, rng, today, args.runs, before)
        if "api" in measured:
            with phases.phase("API"):
                bench_reads.measure_api(results, raw, args.runs)
        if "reply" in measured:
            with phases.phase("reply"):
                bench_writes.measure_reply(results, raw, rng, today, [int(n) for n in args.reply_sizes.split(",")])
        if "import" in measured:
            with phases.phase("import"):
                bench_writes.measure_import(results, population, sample, rng, args.rows, args.imports,
                                            args.small_import)
        raw.close()

        total = phases.total()
        results.add(Row("the whole run", f"{total / 60:.1f} min", target="< 30 min", met=total < 30 * 60))
        report = summary(size, args, described, database_size, started, results, phases, total)
        print("\n" + report, flush=True)
        if args.markdown:
            with open(args.markdown, "a", encoding="utf-8") as out:
                out.write(report + "\n")


def summary(size: int, args: argparse.Namespace, described: dict[str, str], database_size: str,
            started: datetime.datetime, results: Results, phases: Phases, total: float) -> str:
    lines = [f"## {size:,} children, {size * args.entries_per_child:,} list entries: run of {started:%Y-%m-%d %H:%M} "
             f"UTC", "", "Machine: " + "; ".join(f"{k}: {v}" for k, v in described.items()) + ".",
             f"Database after the fill: {database_size}.", "", results.table(), "",
             "Phases: " + ", ".join(f"{name} {took:.0f} s" for name, took in phases.done)
             + f"; total {total:.0f} s ({total / 60:.1f} min).",
             "Load average (1 min) at the end of each phase, on 2 cores shared with whatever else ran: "
             + ", ".join(f"{name} {load:.2f}" for name, load in phases.loads) + ".", ""]
    missed = [row for row in results.rows if row.met is False]
    lines.append("Targets missed: " + ("; ".join(row.what for row in missed) if missed else "none") + ".")
    if results.problems:
        lines += ["", "### Problems found", "", *results.problems]
    return "\n".join(lines)


if __name__ == "__main__":
    started = time.perf_counter()
    try:
        main()
    finally:
        print(f"\n(benchmark.py ran {time.perf_counter() - started:.0f} s)", file=sys.stderr)
