"""The deadline sweep over every entry, against the same work written by hand on a copy of the same
entries and flags; and the name search."""

from __future__ import annotations

import datetime
import random
import re
import statistics
import time
from collections.abc import Sequence

from scripts.bench_common import Results, Row, Spread, timed
from scripts.bench_sql import Raw, captured, explain_write, short_sql

TARGET_SWEEP_RATIO = 2.0
RAW_SCHEMA = "bench_raw"


# --- Name search (as before) -----------------------------------------------------------------------


def search_queries(sample: list[dict[str, object]], rng: random.Random, count: int) -> list[str]:
    from cases.matching import names

    queries = []
    for person in rng.sample(sample, count):
        form = rng.choice(["latin", "cyrillic", "russian"])
        if form == "latin":
            queries.append(f"{names.transliterate_uk(str(person['family_name']))} "
                           f"{names.transliterate_uk(str(person['given_name']))}")
        elif form == "cyrillic":
            queries.append(f"{person['family_name']} {person['given_name']}")
        else:
            queries.append(f"{person['family_name']} {person['given_russian']}")
    return queries


def like_where(text: str, column: str) -> tuple[str, list[str]]:
    """The name search's condition written by hand: each word's search keys (its own, its canonical
    given name's, a short form's full names) as LIKEs the trigram index serves."""
    from cases.matching import names

    parts, params = [], []
    for keys in names.search_forms(text):
        ordered = sorted(keys)
        parts.append("(" + " OR ".join(f"{column} LIKE %s" for _ in ordered) + ")")
        params += [f"%{key}%" for key in ordered]
    return " AND ".join(parts) or "TRUE", params


def measure_search(results: Results, raw: Raw, sample: list[dict[str, object]], rng: random.Random) -> None:
    from cases.models import Child
    from cases.selectors import search_by_name

    queries = search_queries(sample, rng, 40)

    def page(query: str) -> int:
        found = search_by_name(Child.objects.all(), "search_names", query)
        total = found.count()
        list(found.order_by("family_name", "given_name", "id")[:50])
        return total

    page(queries[0])
    times, hits = [], []
    for query in queries:
        started = time.perf_counter()
        hits.append(page(query))
        times.append((time.perf_counter() - started) * 1000)
    product = Spread(times)
    baseline = []
    for query in queries:
        where, params = like_where(query, "search_names")
        took, _ = raw.time(f"SELECT count(*) FROM cases_child WHERE {where}", params)
        took2, _ = raw.time(f"SELECT id FROM cases_child WHERE {where} ORDER BY family_name, given_name, id LIMIT 50",
                            params)
        baseline.append(took + took2)
    raw_spread = Spread(baseline)
    print(f"  name search, count + first page of 50 (40 names): {product}; raw SQL {raw_spread};"
          f" matches per name: median {statistics.median(hits):.0f}", flush=True)
    results.add(Row("name search: count + first 50 (40 names, Latin/Cyrillic/Russian forms)", str(product),
                    str(raw_spread), f"{product.median / raw_spread.median:.1f}×", "2 / 2", target="< 100 ms",
                    met=product.median < 100))


# --- The deadline sweep ---------------------------------------------------------------------------


def _level_sql(column: str, thresholds: Sequence[int], today: datetime.date) -> str:
    parts = ["1"] + [f"({column} <= DATE '{today - datetime.timedelta(days=d)}')::int" for d in sorted(thresholds)]
    return " + ".join(parts)


def raw_sweep(raw: Raw, today: datetime.date, now: datetime.datetime) -> tuple[float, dict[str, int]]:
    """The sweep's work written by hand on the copy: one statement for the open flags (resolved, or
    escalated), one for the new ones (overdue and due soon), in one transaction."""
    from django.conf import settings

    thresholds = list(settings.TRACKER_ESCALATION_DAYS)
    soon = today + datetime.timedelta(days=settings.TRACKER_REMINDER_DAYS)
    flag, entry = f"{RAW_SCHEMA}.flag", f"{RAW_SCHEMA}.entry"
    update = f"""
        WITH changed AS (
            UPDATE {flag} f SET
                resolved_at = CASE WHEN x.resolution <> '' THEN %(now)s END,
                resolution = x.resolution,
                level = CASE WHEN x.resolution = '' THEN x.level ELSE f.level END,
                escalated_at = CASE WHEN x.resolution = '' THEN %(now)s ELSE f.escalated_at END
            FROM (
                SELECT o.id,
                       CASE WHEN e.reply_state = 'answered' THEN 'answered'
                            WHEN e.reply_state = 'withdrawn' THEN 'withdrawn'
                            WHEN e.due_on IS NULL OR e.due_on <> o.due_on THEN 'deadline_changed'
                            WHEN o.kind = 'due_soon' AND e.due_on < %(today)s THEN 'superseded'
                            ELSE '' END AS resolution,
                       {_level_sql("o.due_on", thresholds, today)} AS level
                FROM {flag} o JOIN {entry} e ON e.id = o.entry_id
                WHERE o.resolved_at IS NULL AND o.kind IN ('overdue', 'due_soon')
            ) x
            WHERE f.id = x.id AND (x.resolution <> '' OR (f.kind = 'overdue' AND x.level > f.level))
            RETURNING x.resolution
        )
        SELECT count(*) FILTER (WHERE resolution <> ''), count(*) FILTER (WHERE resolution = '') FROM changed"""
    insert = f"""
        WITH raised AS (
            INSERT INTO {flag} (kind, entry_id, case_id, level, due_on, note, raised_at, resolution, notified_level)
            SELECT n.kind, n.id, n.case_id,
                   CASE WHEN n.kind = 'overdue' THEN {_level_sql("n.due_on", thresholds, today)} ELSE 1 END,
                   n.due_on, '', %(now)s, '', 0
            FROM (SELECT e.id, e.case_id, e.due_on,
                         CASE WHEN e.due_on < %(today)s THEN 'overdue' ELSE 'due_soon' END AS kind
                  FROM {entry} e WHERE e.reply_state = 'awaiting' AND e.due_on <= %(soon)s) n
            WHERE NOT EXISTS (SELECT 1 FROM {flag} f WHERE f.entry_id = n.id AND f.kind = n.kind
                              AND f.due_on = n.due_on)
            ON CONFLICT DO NOTHING
            RETURNING kind
        )
        SELECT count(*) FILTER (WHERE kind = 'overdue'), count(*) FILTER (WHERE kind = 'due_soon') FROM raised"""
    params = {"now": now, "today": today, "soon": soon}
    started = time.perf_counter()
    steps = []
    with raw.conn.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute(update, params)
        resolved, escalated = cursor.fetchone()  # type: ignore[misc]
        steps.append(("open flags resolved or escalated (one UPDATE)", time.perf_counter() - started))
        cursor.execute(insert, params)
        flagged, reminded = cursor.fetchone()  # type: ignore[misc]
        steps.append(("new flags, overdue and due soon (one INSERT)", time.perf_counter() - started))
        cursor.execute("COMMIT")
        steps.append(("COMMIT (the deferred foreign-key checks)", time.perf_counter() - started))
    took = time.perf_counter() - started
    for (label, at), before in zip(steps, [0.0] + [at for _, at in steps], strict=False):
        print(f"      raw {(at - before) * 1000:9.1f} ms  {label}")
    return took, {"flagged": flagged, "escalated": escalated, "reminded": reminded, "resolved": resolved}


def copy_sweep_state(raw: Raw) -> None:
    """A copy of what the sweep reads and writes (the entries and the flags), with the same indexes,
    constraints and foreign keys, in a schema of its own."""
    with raw.conn.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {RAW_SCHEMA} CASCADE")
        cursor.execute(f"CREATE SCHEMA {RAW_SCHEMA}")
        for source, target in (("tracker_listentry", "entry"), ("tracker_flag", "flag")):
            cursor.execute(f"CREATE TABLE {RAW_SCHEMA}.{target} (LIKE {source} INCLUDING DEFAULTS "
                           f"INCLUDING CONSTRAINTS INCLUDING IDENTITY)")
            cursor.execute(f"INSERT INTO {RAW_SCHEMA}.{target} SELECT * FROM {source}")
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{RAW_SCHEMA}.{target}', 'id'), "
                           f"(SELECT coalesce(max(id), 0) + 1 FROM {source}), false)")
            cursor.execute(f"ALTER TABLE {RAW_SCHEMA}.{target} ADD PRIMARY KEY (id)")
            cursor.execute("SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = %s::regclass "
                           "AND NOT i.indisprimary", [source])
            for (definition,) in cursor.fetchall():
                definition = re.sub(r"INDEX (\S+) ON (public\.)?" + source + " ",
                                    rf"INDEX raw_\1 ON {RAW_SCHEMA}.{target} ", definition)
                cursor.execute(definition)
        cursor.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'tracker_flag'::regclass "
                       "AND contype = 'f'")
        for (definition,) in cursor.fetchall():
            definition = re.sub(r"REFERENCES (public\.)?tracker_listentry\(", f"REFERENCES {RAW_SCHEMA}.entry(",
                                definition)
            cursor.execute(f"ALTER TABLE {RAW_SCHEMA}.flag ADD {definition}")
        cursor.execute(f"VACUUM (ANALYZE) {RAW_SCHEMA}.entry")
        cursor.execute(f"VACUUM (ANALYZE) {RAW_SCHEMA}.flag")
        cursor.execute("VACUUM (ANALYZE) tracker_flag")


FLAG_STATE = "entry_id, case_id, kind, level, due_on, resolution, resolved_at IS NULL"


def same_flags(raw: Raw) -> tuple[int, int]:
    """How many flags differ between the product's table and the copy (by everything but ids and
    times), and how many the product's table holds."""
    raw.time("BEGIN")
    raw.time("SET LOCAL work_mem = '512MB'")  # for this comparison only, not for the baselines
    _, rows = raw.time(f"""
        SELECT (SELECT count(*) FROM (
                    (SELECT {FLAG_STATE} FROM tracker_flag EXCEPT ALL SELECT {FLAG_STATE} FROM {RAW_SCHEMA}.flag)
                    UNION ALL
                    (SELECT {FLAG_STATE} FROM {RAW_SCHEMA}.flag EXCEPT ALL SELECT {FLAG_STATE} FROM tracker_flag)) d),
               (SELECT count(*) FROM tracker_flag)""")
    raw.time("COMMIT")
    return rows[0][0], rows[0][1]


def measure_sweep(results: Results, raw: Raw, today: datetime.date) -> None:
    from django.utils import timezone

    from tracker.models import ListEntry
    from tracker.services.flags import sweep_deadlines

    # The sweep's own flags from an earlier run over this database (--keep) go: it starts from the fill.
    with raw.conn.cursor() as cursor:
        cursor.execute("DELETE FROM tracker_flag WHERE kind <> 'manual'")
        cursor.execute("VACUUM (ANALYZE) tracker_flag")
    entries = ListEntry.objects.count()
    awaiting = ListEntry.objects.filter(reply_state="awaiting").count()
    overdue = ListEntry.objects.filter(reply_state="awaiting", due_on__lt=today).count()
    print(f"  {entries:,} entries: {awaiting:,} awaiting a reply, {overdue:,} of them past due", flush=True)
    took, _ = timed("copy of the entries and flags for the raw SQL", lambda: copy_sweep_state(raw))
    counts: dict[str, tuple[int, int]] = {}
    for label, day in (("first run", today), ("second run, same day", today),
                       ("next day", today + datetime.timedelta(days=1))):
        now = timezone.now()
        with captured() as queries:
            started = time.perf_counter()
            result = sweep_deadlines(today=day, now=now)
            product = time.perf_counter() - started
        baseline, raw_counts = raw_sweep(raw, day, now)
        differ, flags = same_flags(raw)
        counts[label] = (len(queries), sum(q["sql"].lstrip().upper().startswith("ANALYZE") for q in queries))
        product_counts = {"flagged": result.flagged, "escalated": result.escalated, "reminded": result.reminded,
                          "resolved": result.resolved}
        agree = "same flags" if differ == 0 and raw_counts == product_counts else (
            f"DIFFERENT: {differ} flags differ; raw {raw_counts}")
        ratio = product / baseline if baseline > 0 else float("inf")
        print(f"  sweep {label:<22} product {product:7.2f} s ({result}; {len(queries)} queries)   raw SQL "
              f"{baseline:7.2f} s   ratio {ratio:4.2f}   [{agree}; {flags:,} flags in all]", flush=True)
        for query in queries:
            print(f"      {float(query['time']) * 1000:9.1f} ms  {short_sql(query['sql'], 110)}")
        is_first = label == "first run"
        if "second" in label and product >= 1.0:
            lines = [f"### The deadline sweep run again the same day, with nothing to do, took {product:.2f} s "
                     f"(raw SQL {baseline:.2f} s)", "",
                     f"Over {flags:,} flags ({entries:,} entries). The product's statements, as captured:", ""]
            lines += [f"- {float(q['time']) * 1000:,.0f} ms: `{short_sql(q['sql'], 200)}`" for q in queries]
            worst = max(queries, key=lambda q: float(q["time"]))
            lines += ["", "EXPLAIN (ANALYZE, BUFFERS) of the slowest, in a transaction rolled back:", "", "```",
                      explain_write(raw, worst["sql"]), "```"]
            results.problems.append("\n".join(lines))
        results.add(Row(
            f"deadline sweep over {entries:,} entries, {label} ({result})",
            f"{product:.2f} s", f"{baseline:.2f} s", f"{ratio:.2f}×", str(len(queries)),
            f"≤ {TARGET_SWEEP_RATIO:g}× raw" if is_first else ("near zero" if "second" in label else "—"),
            (ratio <= TARGET_SWEEP_RATIO) if is_first else (product < 1.0 if "second" in label else None),
            "" if differ == 0 else "raw and product flags differ"))
    first, again = counts["first run"], counts["second run, same day"]
    results.add(Row("deadline sweep: queries, first run (work) vs second run (none)", f"{first[0]} vs {again[0]}",
                    queries=f"{first[0]} vs {again[0]}" + (" (the first adds ANALYZE after ≥ 1,000 changes)"
                                                           if first[1] != again[1] else ""),
                    met=first[0] - first[1] == again[0] - again[1]))
    with raw.conn.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA {RAW_SCHEMA} CASCADE")
    print(f"  (copy dropped; it took {took:.1f} s to make)", flush=True)
