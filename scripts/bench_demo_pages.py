"""The case workers' pages on the demo data, in Ukrainian, as a new case worker opens them: each page's
median and slowest time over a number of requests through Django's test client, and its SQL queries.

    DJANGO_DEBUG=true .venv/bin/python manage.py seed_demo && .venv/bin/python manage.py flag_overdue
    DJANGO_DEBUG=true .venv/bin/python scripts/bench_demo_pages.py [--runs 20]

Reads the database DATABASE_URL names (make run's SQLite file by default); writes nothing but a staff
user of its own (`bench.pages`, no superuser) and the read log's rows its page views log.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Permission  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count, Q  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from tracker.models import HandoverList, ListEntry, Round  # noqa: E402

TARGET_MS = 500.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    user, _ = get_user_model().objects.get_or_create(username="bench.pages", defaults={"is_staff": True})
    user.user_permissions.set(Permission.objects.filter(
        Q(content_type__app_label__in=["cases", "tracker"], codename__startswith="view_")
        | Q(codename__in=["change_case", "change_listentry", "change_reply", "change_flag"])))
    client = Client(HTTP_ACCEPT_LANGUAGE="uk")
    client.force_login(user)

    first_list = HandoverList.objects.exclude(status=HandoverList.Status.DRAFT).order_by("handed_over_on")[0]
    entry = ListEntry.objects.filter(handover_list=first_list).order_by("position")[0]
    # The round with the most children on its lists (Istanbul in the demo): the heaviest brief.
    istanbul = Round.objects.annotate(children=Count("lists__entries")).order_by("-children", "pk")[0]
    pages = {
        "start page": "/admin/",
        "overdue entries": "/admin/tracker/listentry/?flag=overdue",
        "one list's entries": f"/admin/tracker/listentry/?handover_list__id__exact={first_list.pk}",
        "a list": f"/admin/tracker/handoverlist/{first_list.pk}/change/",
        "a case": f"/admin/cases/case/{entry.case_id}/change/",
        "a child": f"/admin/cases/child/{entry.child_id}/change/",
        "cases": "/admin/cases/case/",
        "open flags": "/admin/tracker/flag/?state=open",
        "round brief": f"/admin/tracker/round/{istanbul.pk}/brief/",
        "round brief PDF (uk)": f"/admin/tracker/round/{istanbul.pk}/brief/uk.pdf",
    }
    print(f"{'page':<24} {'median ms':>10} {'max ms':>8} {'queries':>8}  target {TARGET_MS:.0f} ms")
    for name, url in pages.items():
        client.get(url)  # warm: templates, the font, the catalogue
        times = []
        for _ in range(args.runs):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(url)
                body = response.content
                times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{url} answered {response.status_code}: {body[:200]!r}")
        median, slowest = statistics.median(times), max(times)
        mark = "" if slowest <= TARGET_MS else "  over"
        print(f"{name:<24} {median:>10.1f} {slowest:>8.1f} {len(queries):>8}{mark}")


if __name__ == "__main__":
    main()
