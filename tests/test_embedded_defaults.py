"""`make run`'s path on the embedded defaults: SQLite and the file-system broker, no server at all."""

from __future__ import annotations

import os
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
    login = manage(embedded_env, "ensure_demo_admin")
    assert login.startswith("Admin login: admin / ")
    assert manage(embedded_env, "ensure_demo_admin") == login, "the same login on every start"
    assert (tmp_path / "var" / "admin-password.txt").read_text().strip() == login.split(" / ")[1].strip()
