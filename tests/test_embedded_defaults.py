"""`make run`'s path on the embedded defaults: SQLite and the file-system broker, no server at all."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def embedded_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CELERY_", "CACHE_", "DJANGO_"))}
    env.update({
        "DJANGO_DEBUG": "true",  # as `make run` sets it
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_BROKER_DIR": str(tmp_path / "broker"),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "VAR_DIR": str(tmp_path / "var"),
    })
    return env


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def open_overdue_flags(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT count(*) FROM tracker_flag WHERE kind = 'overdue' AND resolved_at IS NULL"
        ).fetchone()[0]


@pytest.mark.slow
def test_demo_data_loads_and_the_worker_flags_overdue_entries(embedded_env, tmp_path):
    manage(embedded_env, "migrate", "--noinput")
    first = manage(embedded_env, "seed_demo")
    assert "Seeded" in first and "Queued a deadline sweep" in first
    assert "already present" in manage(embedded_env, "seed_demo"), "seeding twice adds nothing"
    db = tmp_path / "db.sqlite3"
    assert open_overdue_flags(db) == 0
    assert list((tmp_path / "broker" / "queue").iterdir()), "the sweep waits in the file-system broker"

    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=solo", "--loglevel=warning"],
        cwd=ROOT, env=embedded_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while open_overdue_flags(db) == 0 and time.monotonic() < deadline:
            assert worker.poll() is None, worker.stdout.read() if worker.stdout else "worker died"
            time.sleep(0.5)
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    flagged = open_overdue_flags(db)
    assert flagged > 0
    # The same sweep by hand now finds nothing new: the worker's run was complete.
    assert manage(embedded_env, "flag_overdue").strip() == "flagged 0, escalated 0, reminded 0, resolved 0"
    logins = manage(embedded_env, "ensure_demo_logins")
    for role, username in (("Case worker", "o.kovalenko"), ("Supervisor", "s.bondar"), ("Read-only", "r.lysenko"),
                           ("Administrator", "a.melnyk")):
        assert re.search(rf"^  {role} +{username} / \S+$", logins, re.M), logins
    assert manage(embedded_env, "ensure_demo_logins") == logins, "the same logins on every start"
    stored = (tmp_path / "var" / "demo-logins.txt").read_text()
    password = re.search(r"o\.kovalenko / (\S+)", logins)
    assert password is not None and f"o.kovalenko {password.group(1)}" in stored


@pytest.mark.slow
def test_a_list_imports_on_sqlite_with_its_history_and_timelines(embedded_env, tmp_path):
    """The bulk writes' road for databases other than PostgreSQL: the same rows, through the ORM."""
    manage(embedded_env, "migrate", "--noinput")
    manage(embedded_env, "seed_demo")
    listed = tmp_path / "list.csv"
    listed.write_text("№;Прізвище;Ім'я;По батькові;Дата народження;Стать;Населений пункт\r\n"
                      "1;Тестенко;Ярина;Іванівна;05.03.2011;ж;Маріуполь\r\n"
                      "2;Пробенко;Остап;;2012;ч;Бердянськ\r\n", encoding="utf-8")
    out = manage(embedded_env, "import_list", str(listed), "--from", "Ukrainian delegation", "--to",
                 "Russian delegation", "--handed-over", "2025-06-02", "--due", "2025-07-02",
                 "--reference", "UA-RU-SQLITE/1", "--proposed", "new")
    # The command names the columns it read first, then what it wrote.
    assert out.strip().splitlines()[-1] == "UA-RU-SQLITE/1: 2 rows, 0 matched, 0 proposed and accepted, 2 new, 0 errors"

    with sqlite3.connect(tmp_path / "db.sqlite3") as conn:
        def one(sql: str) -> list[tuple]:
            return conn.execute(sql, ["UA-RU-SQLITE/1"]).fetchall()

        entries = one("SELECT e.id, e.reply_state, e.due_on, e.age_at_listing, e.case_id FROM tracker_listentry e "
                      "JOIN tracker_handoverlist l ON l.id = e.handover_list_id WHERE l.reference = ? "
                      "ORDER BY e.position")
        assert [row[1:4] for row in entries] == [("awaiting", "2025-07-02", 14), ("awaiting", "2025-07-02", 13)]
        for entry_id, *_, case_id in entries:
            assert conn.execute("SELECT history_type, reply_state FROM tracker_historicallistentry WHERE id = ?",
                                [entry_id]).fetchall() == [("+", "awaiting")]
            assert conn.execute("SELECT kind FROM cases_caseevent WHERE case_id = ? ORDER BY id",
                                [case_id]).fetchall() == [("opened",), ("added_to_list",), ("list_handed_over",)]
            assert conn.execute("SELECT status FROM cases_case WHERE id = ?", [case_id]).fetchall() == [
                ("awaiting_reply",)]
            assert conn.execute("SELECT history_type, status FROM cases_historicalcase WHERE id = ? "
                                "ORDER BY history_id", [case_id]).fetchall() == [("+", "open"), ("~", "awaiting_reply")]
        assert conn.execute("SELECT count(*) FROM cases_childmatchkey k JOIN cases_child c ON c.id = k.child_id "
                            "WHERE c.family_name IN ('Тестенко', 'Пробенко')").fetchone()[0] > 4


@pytest.mark.slow
def test_the_read_log_is_chained_on_sqlite_and_a_change_is_found(embedded_env, tmp_path):
    """SQLite has no triggers here: `log_child_reads` chains the rows itself, and the same command checks them."""
    manage(embedded_env, "migrate", "--noinput")
    manage(embedded_env, "seed_demo")
    manage(embedded_env, "shell", "-c", (
        "from cases.models import Child\n"
        "from cases.services import log_child_reads\n"
        "ids = list(Child.objects.order_by('pk').values_list('pk', flat=True)[:5])\n"
        "log_child_reads(ids, channel='admin', path='/admin/cases/child/', user=None)\n"
        "log_child_reads(ids[:2], channel='api', path='/api/v1/cases/?q=a|b:c', user=None, partner_id=3)\n"))
    db = tmp_path / "db.sqlite3"
    with sqlite3.connect(db) as conn:
        ids = [row_id for (row_id,) in conn.execute("SELECT id FROM cases_recordaccess ORDER BY id")]
    assert len(ids) >= 7
    assert manage(embedded_env, "verify_audit_log").startswith(f"OK: {len(ids)} rows, head {ids[-1]}:")

    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE cases_recordaccess SET path = '/elsewhere/' WHERE id = ?", [ids[-3]])
    done = subprocess.run([sys.executable, "manage.py", "verify_audit_log"], cwd=ROOT, env=embedded_env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert f"BROKEN at row {ids[-3]}: its content does not match its hash" in done.stderr
