"""The admin's pages and the API's page of cases, through Django's test client, each beside its main
query written by hand."""

from __future__ import annotations

import datetime
import json
import random
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from scripts.bench_common import Results, Row, Spread, fmt_ms
from scripts.bench_fill import bench_superuser, make_list
from scripts.bench_sql import Captured, Raw, captured, report_problem, short_sql, slowest
from scripts.bench_sweep import like_where

TARGET_PAGE_MS = 300.0


# --- Admin pages ----------------------------------------------------------------------------------


def get_page(client: Any, url: str, headers: dict[str, str] | None = None) -> tuple[float, Any]:
    started = time.perf_counter()
    response = client.get(url, **(headers or {}))
    body = response.content
    took = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}: {body[:300]!r}")
    return took, response


def page_spread(client: Any, urls: list[str], runs: int, headers: dict[str, str] | None = None) -> Spread:
    """Each URL once to warm, then `runs` timed requests going round the URLs."""
    warm = [get_page(client, url, headers)[0] for url in urls]
    if max(warm) > 3000:
        runs = min(runs, max(5, len(urls)))
    return Spread([get_page(client, urls[n % len(urls)], headers)[0] for n in range(runs)])


def page_queries(client: Any, url: str, headers: dict[str, str] | None = None) -> Captured:
    with captured() as queries:
        get_page(client, url, headers)
    return queries


def page_row(results: Results, raw: Raw, what: str, product: Spread, baseline: Spread, queries: Captured,
             small_queries: list[dict[str, str]] | None, sizes: str,
             again: Callable[[], object] | None = None, times_raw: float | None = None) -> None:
    """One page's row; its target is TARGET_PAGE_MS, or with `times_raw`, a median within that many
    times the raw baseline's."""
    took, sql = slowest(queries)
    in_sql = queries.seconds * 1000
    if times_raw is None:
        met = product.median <= TARGET_PAGE_MS and product.p95 <= TARGET_PAGE_MS
        target = f"median and p95 ≤ {TARGET_PAGE_MS:.0f} ms"
    else:
        met = product.median <= times_raw * baseline.median
        target = f"median ≤ {times_raw:g}× raw"
    counts = f"{len(queries)}" + (f" ({sizes}: {len(small_queries)} vs {len(queries)})" if small_queries is not None
                                  else "")
    print(f"  {what}\n      product {product}; raw SQL main query {baseline}; {counts} queries taking "
          f"{fmt_ms(in_sql)} in all (the rest of the request is Python); slowest {fmt_ms(took)}: "
          f"{short_sql(sql, 150)}", flush=True)
    results.add(Row(what, str(product), str(baseline), f"{product.median / baseline.median:.1f}×", counts,
                    target, met,
                    f"SQL {fmt_ms(in_sql)} of the request, slowest query {fmt_ms(took)}"))
    if not met:
        report_problem(results, raw, f"{what}: median {fmt_ms(product.median)}, p95 {fmt_ms(product.p95)}; its "
                       f"{len(queries)} queries took {fmt_ms(in_sql)} when captured", queries,
                       again=again if in_sql < product.median / 2 else None)


def measure_admin(results: Results, raw: Raw, sample: list[dict[str, object]], rng: random.Random,
                  today: datetime.date, runs: int, start_page_before: list[dict[str, str]]) -> None:
    from django.test import Client

    from cases.matching import names
    client = Client()
    client.force_login(bench_superuser())

    # 1. Cases: a name search with a status filter.
    status = "awaiting_reply"
    people = rng.sample(sample, 15)
    terms = [f"{names.transliterate_uk(str(p['family_name']))} {names.transliterate_uk(str(p['given_name']))}"
             if n % 2 else f"{p['family_name']} {p['given_name']}" for n, p in enumerate(people)]

    urls = [f"/admin/cases/case/?{urlencode({'q': term, 'status__exact': status})}" for term in terms]
    product = page_spread(client, urls, max(runs, len(urls)))
    queries = page_queries(client, urls[0])
    times = []
    for term in terms:
        where, params = like_where(term, "ch.search_names")
        times.append(raw.time(f"""
            SELECT c.id, c.status, c.priority, c.opened_on, c.updated_at, c.child_id, c.family_name, c.given_name,
                   c.patronymic, u.username,
                   coalesce((SELECT f.level FROM tracker_flag f WHERE f.case_id = c.id AND f.resolved_at IS NULL
                             ORDER BY f.level DESC LIMIT 1), 0)
            FROM (SELECT c.*, ch.family_name, ch.given_name, ch.patronymic
                  FROM cases_case c JOIN cases_child ch ON ch.id = c.child_id
                  WHERE c.status = %s AND {where}
                  ORDER BY c.priority DESC, c.opened_on, c.id LIMIT 50) c
            LEFT JOIN auth_user u ON u.id = c.assignee_id
            ORDER BY c.priority DESC, c.opened_on, c.id""", [status, *params])[0])
    # Flat: a search naming one child against one naming a whole page of them.
    one = people[0]
    full_name = f"{one['family_name']} {one['given_name']} {one['patronymic']}"
    rare = f"/admin/cases/case/?{urlencode({'q': full_name})}"
    common = f"/admin/cases/case/?{urlencode({'q': str(one['family_name'])})}"
    rare_q, common_q = page_queries(client, rare), page_queries(client, common)
    page_row(results, raw, f"admin: cases, name search + status filter (?q=…&status__exact={status}, 15 names)",
             product, Spread(times), queries, None, "", again=lambda: get_page(client, urls[0]))
    results.add(Row("admin: cases search, queries for one child found vs a full page of 50",
                    f"{len(rare_q)} vs {len(common_q)}", queries=f"{len(rare_q)} vs {len(common_q)}",
                    met=len(rare_q) == len(common_q)))

    # 2. One list's entries: the longest list, and a list of 50 for the query count.
    _, longest = raw.time("""
        SELECT e.handover_list_id, count(*) FROM tracker_listentry e
        JOIN tracker_handoverlist l ON l.id = e.handover_list_id AND l.status = 'handed_over'
             AND l.title LIKE 'Synthetic list %%'
        GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1""")
    list_id, length = longest[0]
    small_id = make_list(raw.conn, entries=50, reference=f"BENCH-ENTRIES-50-{time.time_ns()}",
                         handed=today - datetime.timedelta(days=20), due=today + datetime.timedelta(days=10), rng=rng)
    url = f"/admin/tracker/listentry/?handover_list__id__exact={list_id}"
    product = page_spread(client, [url], runs)
    queries = page_queries(client, url)
    small = page_queries(client, f"/admin/tracker/listentry/?handover_list__id__exact={small_id}")
    baseline = raw.spread("""
        SELECT e.id, e.position, e.reply_state, e.due_on, e.last_outcome, e.answered_on, l.reference, ch.id,
               ch.family_name, ch.given_name, ch.patronymic, c.status,
               coalesce((SELECT f.level FROM tracker_flag f WHERE f.entry_id = e.id AND f.resolved_at IS NULL
                         ORDER BY f.level DESC LIMIT 1), 0)
        FROM (SELECT * FROM tracker_listentry WHERE handover_list_id = %s ORDER BY position LIMIT 100) e
        JOIN tracker_handoverlist l ON l.id = e.handover_list_id
        JOIN cases_child ch ON ch.id = e.child_id JOIN cases_case c ON c.id = e.case_id
        ORDER BY e.position""", [list_id], runs)
    page_row(results, raw, f"admin: one list's entries (?handover_list__id__exact=…, {length:,} entries)",
             product, baseline, queries, small, f"list of 50 vs {length:,}", again=lambda: get_page(client, url))

    # 3. Open flags.
    url = "/admin/tracker/flag/?state=open"
    product = page_spread(client, [url], runs)
    queries = page_queries(client, url)
    small = page_queries(client, "/admin/tracker/flag/?state=open&kind__exact=manual")
    baseline = raw.spread("""
        SELECT f.id, f.kind, f.level, f.due_on, f.raised_at, f.escalated_at, f.resolved_at, f.resolution, c.id,
               ch.family_name, ch.given_name, ch.patronymic, e.position, l.reference
        FROM (SELECT * FROM tracker_flag WHERE resolved_at IS NULL ORDER BY level DESC, raised_at, id DESC
              LIMIT 100) f
        JOIN cases_case c ON c.id = f.case_id JOIN cases_child ch ON ch.id = c.child_id
        LEFT JOIN tracker_listentry e ON e.id = f.entry_id LEFT JOIN tracker_handoverlist l ON l.id = e.handover_list_id
        ORDER BY f.level DESC, f.raised_at, f.id DESC""", None, runs)
    open_flags = raw.time("SELECT count(*) FROM tracker_flag WHERE resolved_at IS NULL")[1][0][0]
    page_row(results, raw, f"admin: open flags (?state=open, {open_flags:,} open)", product, baseline, queries, small,
             "50 manual flags vs all open", again=lambda: get_page(client, url))

    # 4. The start page.
    url = "/admin/"
    product = page_spread(client, [url], runs)
    queries = page_queries(client, url)
    statements = [
        ("SELECT kind, level, count(*) FROM tracker_flag WHERE resolved_at IS NULL GROUP BY kind, level", []),
        ("""SELECT f.id, f.level, f.due_on, f.case_id, ch.family_name, ch.given_name, ch.patronymic, e.position,
                   l.id, l.reference, r.name, u.username
            FROM (SELECT * FROM tracker_flag WHERE resolved_at IS NULL AND kind = 'overdue'
                  ORDER BY level DESC, due_on, id LIMIT 15) f
            JOIN cases_case c ON c.id = f.case_id JOIN cases_child ch ON ch.id = c.child_id
            LEFT JOIN auth_user u ON u.id = c.assignee_id JOIN tracker_listentry e ON e.id = f.entry_id
            JOIN tracker_handoverlist l ON l.id = e.handover_list_id
            JOIN tracker_organisation r ON r.id = l.recipient_id
            ORDER BY f.level DESC, f.due_on, f.id""", []),
        ("""SELECT l.id, l.reference, s.name, r.name, l.handed_over_on, l.response_due_on, count(e.id),
                   count(e.id) FILTER (WHERE e.reply_state = 'answered'),
                   count(e.id) FILTER (WHERE e.reply_state = 'awaiting'),
                   count(e.id) FILTER (WHERE e.reply_state = 'awaiting' AND e.due_on < %s)
            FROM (SELECT * FROM tracker_handoverlist WHERE status IN ('handed_over', 'partially_answered')
                  ORDER BY response_due_on, id LIMIT 15) l
            JOIN tracker_organisation s ON s.id = l.sender_id JOIN tracker_organisation r ON r.id = l.recipient_id
            LEFT JOIN tracker_listentry e ON e.handover_list_id = l.id
            GROUP BY l.id, l.reference, s.name, r.name, l.handed_over_on, l.response_due_on
            ORDER BY l.response_due_on, l.id""", [today]),
        ("""SELECT r.id, r.received_on, o.name, l.reference,
                   (SELECT count(*) FROM tracker_replyoutcome x WHERE x.reply_id = r.id)
            FROM (SELECT * FROM tracker_reply ORDER BY received_on DESC, id DESC LIMIT 15) r
            JOIN tracker_organisation o ON o.id = r.received_from_id
            JOIN tracker_handoverlist l ON l.id = r.handover_list_id
            ORDER BY r.received_on DESC, r.id DESC""", []),
    ]
    for sql, args in statements:
        raw.time(sql, args)
    baseline = Spread([sum(raw.time(sql, args)[0] for sql, args in statements) for _ in range(runs)])
    page_row(results, raw, "admin: start page (/admin/: flag counts, overdue, lists awaiting replies, recent replies; "
             "raw = its 4 reads)", product, baseline, queries, start_page_before,
             "before the sweep (no flags) vs after", again=lambda: get_page(client, url))


# --- The API ---------------------------------------------------------------------------------------


def measure_api(results: Results, raw: Raw, runs: int) -> str:
    """The page of 100 cases in this process beside one raw query and json.dumps of the same rows;
    returns the key it issued, for whatever measures next."""
    from django.test import Client

    from tracker.models import Organisation
    from tracker.services.partners import api_key_issue

    partner = Organisation.objects.get(name="Demo Tracing Network")
    _, key = api_key_issue(organisation=partner, name="benchmark", scopes=["read"], actor=None)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    client = Client()
    url = "/api/v1/cases/?page_size=100"
    queries = page_queries(client, url, headers)
    small = page_queries(client, "/api/v1/cases/?page_size=20", headers)
    served = json.loads(get_page(client, url, headers)[1].content)["results"]
    sql = """
        SELECT c.id, c.status, c.priority, c.opened_on, c.closed_on, c.closing_reason, c.updated_at,
               EXISTS (SELECT 1 FROM tracker_caseshare s WHERE s.case_id = c.id AND s.organisation_id = %(org)s
                       AND s.revoked_at IS NULL AND s.include_restricted) AS restricted,
               json_build_object('id', ch.id, 'family_name', ch.family_name, 'given_name', ch.given_name,
                   'patronymic', ch.patronymic, 'family_name_latin', ch.family_name_latin,
                   'given_name_latin', ch.given_name_latin, 'patronymic_latin', ch.patronymic_latin,
                   'aliases', ch.aliases, 'birth_date', ch.birth_date, 'birth_date_precision', ch.birth_date_precision,
                   'sex', ch.sex, 'home_settlement', ch.home_settlement, 'home_oblast', ch.home_oblast,
                   'circumstances', ch.circumstances, 'category', ch.category,
                   'last_known_location', ch.last_known_location, 'last_known_on', ch.last_known_on,
                   'icrc_reference', ch.icrc_reference, 'nib_reference', ch.nib_reference,
                   'updated_at', ch.updated_at) AS child,
               (SELECT coalesce(json_agg(json_build_object('id', e.id, 'list', e.handover_list_id,
                           'list_reference', l.reference, 'position', e.position, 'due_on', e.due_on,
                           'reply_state', e.reply_state, 'last_outcome', e.last_outcome,
                           'answered_on', e.answered_on, 'age_at_listing', e.age_at_listing)
                           ORDER BY l.handed_over_on, e.id), '[]')
                FROM tracker_listentry e JOIN tracker_handoverlist l ON l.id = e.handover_list_id
                WHERE e.case_id = c.id AND (l.sender_id = %(org)s OR (l.recipient_id = %(org)s AND l.status <> 'draft')
                      OR EXISTS (SELECT 1 FROM tracker_listshare x WHERE x.handover_list_id = l.id
                                 AND x.organisation_id = %(org)s))) AS lists,
               (SELECT coalesce(json_agg(json_build_object('id', f.id, 'kind', f.kind, 'level', f.level,
                           'entry', f.entry_id, 'due_on', f.due_on, 'raised_at', f.raised_at,
                           'escalated_at', f.escalated_at, 'resolved_at', f.resolved_at, 'resolution', f.resolution)
                           ORDER BY f.level DESC, f.id), '[]')
                FROM tracker_flag f WHERE f.case_id = c.id AND f.resolved_at IS NULL) AS open_flags
        FROM (SELECT * FROM cases_case c
              WHERE EXISTS (SELECT 1 FROM tracker_caseshare s WHERE s.case_id = c.id AND s.organisation_id = %(org)s
                            AND s.revoked_at IS NULL)
              ORDER BY c.updated_at, c.id LIMIT %(size)s) c
        JOIN cases_child ch ON ch.id = c.child_id
        ORDER BY c.updated_at, c.id"""

    def baseline_once() -> tuple[float, list[tuple]]:
        started = time.perf_counter()
        with raw.conn.cursor() as cursor:
            cursor.execute(sql, {"org": partner.pk, "size": 100})
            rows = cursor.fetchall()
            names = [d.name for d in cursor.description]  # type: ignore[union-attr]
        json.dumps([dict(zip(names, row, strict=True)) for row in rows], default=str)
        return (time.perf_counter() - started) * 1000, rows

    # The two in turn, one request of each at a time, so that both meet the same load on a shared machine.
    baseline_once()
    get_page(client, url, headers)
    timings, product_times = [], []
    for _ in range(runs):
        product_times.append(get_page(client, url, headers)[0])
        timings.append(baseline_once())
    product = Spread(product_times)
    baseline = Spread([t for t, _ in timings])
    rows = timings[-1][1]
    same = [r["id"] for r in served] == [row[0] for row in rows]
    with_lists = sum(1 for r in served if r["lists"])
    page_row(results, raw, f"API: GET /api/v1/cases/?page_size=100 with a partner key ({with_lists} of the 100 cases "
             f"show lists; raw = one SQL + json.dumps{'' if same else ', DIFFERENT rows'})",
             product, baseline, queries, small, "page of 20 vs 100", again=lambda: get_page(client, url, headers),
             times_raw=2.0)
    return key
