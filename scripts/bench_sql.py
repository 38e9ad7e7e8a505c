"""The benchmark's tools for SQL: its own connection for the raw baselines, the queries Django ran,
plans, profiles, and the report of a slow path.

The raw baselines run on their own psycopg connection (`Raw`), outside Django.
"""

from __future__ import annotations

import collections
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from scripts.bench_common import ROOT, Results, Spread, fmt_ms

PLAN_LINES = 60
QUERY_LOG = 1_000_000


class Raw:
    """The baselines' own connection: hand-written SQL, no ORM."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)

    def time(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> tuple[float, list[tuple]]:
        """Milliseconds to run one statement and fetch its rows, and the rows."""
        started = time.perf_counter()
        with self.conn.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall() if cursor.description else []
        return (time.perf_counter() - started) * 1000, rows

    def spread(self, sql: str, params: Any = None, runs: int = 15) -> Spread:
        self.time(sql, params)
        return Spread([self.time(sql, params)[0] for _ in range(runs)])

    def close(self) -> None:
        self.conn.close()


class Captured(list):
    """The queries Django ran, each {"sql", "time"} as django.test.utils.CaptureQueriesContext gives them
    (times to the millisecond), and `seconds`: their time in all, to the microsecond."""

    seconds = 0.0


@contextmanager
def captured() -> Iterator[Captured]:
    """The queries Django runs inside the block; filled when the block ends. Django keeps the last
    9,000 queries of a connection: here, all of them."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.queries_log.maxlen is not None and connection.queries_log.maxlen < QUERY_LOG:
        connection.queries_log = collections.deque(maxlen=QUERY_LOG)
    queries = Captured()

    def clock(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            queries.seconds += time.perf_counter() - started

    capture = CaptureQueriesContext(connection)
    with capture, connection.execute_wrapper(clock):
        yield queries
    queries.extend(capture.captured_queries)


def slowest(queries: list[dict[str, str]]) -> tuple[float, str]:
    if not queries:
        return 0.0, ""
    worst = max(queries, key=lambda q: float(q["time"]))
    return float(worst["time"]) * 1000, worst["sql"]


def explain(raw: Raw, sql: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of a read the product made, for the report of a slow page."""
    with raw.conn.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        lines = [row[0] for row in cursor.fetchall()]
    if len(lines) > PLAN_LINES:
        lines = [*lines[:PLAN_LINES], f"... ({len(lines) - PLAN_LINES} more lines)"]
    return "\n".join(lines)


def explain_write(raw: Raw, sql: str) -> str:
    """EXPLAIN ANALYZE of a write, undone afterwards."""
    with raw.conn.cursor() as cursor:
        cursor.execute("BEGIN")
        try:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            lines = [row[0] for row in cursor.fetchall()]
        finally:
            cursor.execute("ROLLBACK")
    if len(lines) > PLAN_LINES:
        lines = [*lines[:PLAN_LINES], f"... ({len(lines) - PLAN_LINES} more lines)"]
    return "\n".join(lines)


def short_sql(sql: str, limit: int = 400) -> str:
    sql = re.sub(r"\s+", " ", sql)
    return sql if len(sql) <= limit else sql[:limit] + " …"


def profile(action: Callable[[], object], lines: int = 12) -> str:
    """Where one call spends its time in Python: the product's own functions by cumulative time, then
    the functions (any) with the most time of their own."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    action()
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = max((v[3] for v in stats.values()), default=0.0)

    def where(path: str, line: int, function: str) -> str:
        if "site-packages/" in path:
            path = path.split("site-packages/", 1)[1]
        elif "/lib/python3" in path:
            path = "stdlib " + path.rsplit("/", 1)[1]
        else:
            path = path.replace(str(ROOT) + "/", "")
        return f"{path}:{line}({function})"

    own_code = ("tracker/", "cases/", "core/", "config/")
    rows = [(where(*key), calls, own, cumulative) for key, (_, calls, own, cumulative, _) in stats.items()]
    product = sorted((r for r in rows if r[0].startswith(own_code)), key=lambda r: -r[3])[:lines]
    hottest = sorted(rows, key=lambda r: -r[2])[:lines]
    out = [f"one request, {total * 1000:.0f} ms under the profiler", "",
           "the product's functions, by cumulative time:", f"{'cumulative':>10} {'own':>9} {'calls':>7}  function"]
    out += [f"{c * 1000:7.1f} ms {o * 1000:6.1f} ms {n:7}  {w}" for w, n, o, c in product]
    out += ["", "any function, by time of its own:", f"{'own':>9} {'calls':>7}  function"]
    out += [f"{o * 1000:6.1f} ms {n:7}  {w}" for w, n, o, _ in hottest]
    return "\n".join(out)


def report_problem(results: Results, raw: Raw, title: str, queries: list[dict[str, str]], *,
                   plan: bool = True, again: Callable[[], object] | None = None) -> None:
    """The slow path's queries that took 20 ms or more, and the plans of the slowest (up to three)."""
    slow = sorted((q for q in queries if float(q["time"]) >= 0.020), key=lambda q: -float(q["time"]))
    text = [f"### {title}", ""]
    if not slow:
        took, _ = slowest(queries)
        text.append(f"No query took 20 ms (the slowest {fmt_ms(took)}): the time is Python's.")
    else:
        text += ["Its queries of 20 ms or more, slowest first (times as captured):", ""]
        for query in slow:
            text.append(f"- {fmt_ms(float(query['time']) * 1000)}: `{short_sql(query['sql'], 300)}`")
    for query in slow[:3] if plan else []:
        if float(query["time"]) >= 0.100 and query["sql"].lstrip().upper().startswith("SELECT"):
            text += ["", f"EXPLAIN (ANALYZE, BUFFERS) of the {fmt_ms(float(query['time']) * 1000)} query:", "",
                     "```sql", short_sql(query["sql"], 3000), "```", "", "```", explain(raw, query["sql"]), "```"]
    if again is not None:
        text += ["", "Where the request's time goes in Python (cProfile, by cumulative time):", "", "```",
                 profile(again), "```"]
    results.problems.append("\n".join(text))
    print("\n".join("    " + line for line in text), flush=True)
