"""Times the reading and checking of one spreadsheet as an import does it (no database: the file
is read, its header recognised and every row checked, the same child twice looked for) and
prints the time and the process's peak memory.

    .venv/bin/python scripts/import_file_measure.py /tmp/list.xlsx [--reply] [--reader OLD.py]

Make a large file first with scripts/import_file_make.py. `--reader` measures another version of
`tracker/spreadsheets.py` (say, `git show OLD:tracker/spreadsheets.py > /tmp/old.py`); one that
takes the file's bytes rather than a stream is given them.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import resource
import sys
import time
from pathlib import Path

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
    args = parser.parse_args()
    import django

    django.setup()
    from django.utils import timezone

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
    with path.open("rb") as stream:
        parsed = parse(stream if streams else stream.read(), path.name, today=timezone.localdate(),
                       max_rows=args.max_rows)
    took = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{args.path}: {Path(args.path).stat().st_size / 2**20:.1f} MB, {len(parsed.rows):,} rows read, "
          f"{len(parsed.problems):,} problems, columns {sorted(parsed.columns)}")
    for problem in parsed.problems[:5]:
        print("  ", problem)
    print(f"time {took:.1f} s; peak resident memory {peak / 1024:.0f} MiB (at start {before / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
