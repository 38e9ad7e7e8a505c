"""Measures what the read log's chain trigger costs: `log_child_reads` of 1,000 and of 100 children,
with the trigger and with it disabled, on a PostgreSQL database of its own.

    .venv/bin/python scripts/bench_read_log.py [--repeat 30] [--filled 100000]

The database (`BENCH_READ_LOG_DATABASE_URL`, default tracker_audit_bench on 127.0.0.1) is created
if missing, migrated, given 1,000 children and a read log of `--filled` rows first, so that the
trigger reads its last row from a table of some size. Each figure is the median of `--repeat`
calls, each its own transaction, as a request's would be. The rows written with the trigger off
carry no hash: this database's chain is broken on purpose, and `verify_audit_log` says so.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE_URL = os.environ.get("BENCH_READ_LOG_DATABASE_URL",
                              "postgres://postgres@127.0.0.1:5432/tracker_audit_bench")
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ["DATABASE_POOL"] = "false"
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# The local settings, as the figures in docs/security.md were measured (the settings' default is now
# production, which would want a secret key and host names).
os.environ.setdefault("DJANGO_DEBUG", "true")


def ensure_database() -> None:
    import psycopg

    base, _, name = DATABASE_URL.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--filled", type=int, default=100_000)
    args = parser.parse_args()
    ensure_database()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from cases.models import Child, RecordAccess
    from cases.services import log_child_reads

    call_command("migrate", verbosity=0)
    missing = 1000 - Child.objects.count()
    if missing > 0:
        Child.objects.bulk_create([Child(family_name=f"Тестенко{n}", given_name="Ярина") for n in range(missing)])
    children = list(Child.objects.order_by("pk").values_list("pk", flat=True)[:1000])
    while RecordAccess.objects.count() < args.filled:
        log_child_reads(children, channel="admin", path="/admin/bench/", user=None)

    # pgtrigger's Meta.triggers, which django-stubs' Options does not know.
    triggers = RecordAccess._meta.triggers  # type: ignore[attr-defined]
    chain = next(t for t in triggers if t.name == "read_chain").get_pgid(RecordAccess)

    def timed(size: int) -> float:
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            with transaction.atomic():
                log_child_reads(children[:size], channel="api", path="/api/v1/cases/?page=2", user=None,
                                partner_id=1, api_key_prefix="ctk_bench", client="bench")
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1000

    results: dict[tuple[str, int], list[float]] = {}
    for state in ("with", "without", "with"):  # with the trigger again last: drift on a shared machine shows
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE cases_recordaccess {'ENABLE' if state == 'with' else 'DISABLE'} "
                           f"TRIGGER {chain}")
        for size in (1000, 100):
            results.setdefault((state, size), []).append(timed(size))
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE cases_recordaccess ENABLE TRIGGER {chain}")
    print(f"read log: {RecordAccess.objects.count()} rows; median of {args.repeat} calls each")
    for size in (1000, 100):
        with_trigger = min(results[("with", size)])
        without = results[("without", size)][0]
        print(f"  log_child_reads of {size:>5} rows: {with_trigger:7.2f} ms with the chain trigger, "
              f"{without:7.2f} ms without ({with_trigger / without:.1f}×, "
              f"{(with_trigger - without) / size * 1000:.0f} µs a row)")


if __name__ == "__main__":
    main()
