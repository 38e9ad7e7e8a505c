"""The README's API examples, run as written against a live server on the demo data: a partner
reading, syncing, updating with If-Match and exporting, and the recipient of a list replying."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from tracker.models import Reply

ROOT = Path(__file__).resolve().parent.parent


def readme_api_examples() -> str:
    blocks = re.findall(r"^```sh api-example\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M)
    assert blocks, "the README's API section has its examples in ```sh api-example blocks"
    return "\n".join(blocks)


def database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_readme_api_examples_run_as_written(live_server, tmp_path):
    assert shutil.which("curl"), "the examples use curl"
    call_command("seed_demo", verbosity=0)
    # The examples call `.venv/bin/python`, relative to the checkout, and write cases.csv where they run.
    work = tmp_path / "checkout"
    work.mkdir()
    (work / ".venv").symlink_to(ROOT / ".venv")
    (work / "manage.py").symlink_to(ROOT / "manage.py")
    env = {**os.environ, "API": f"{live_server.url}/api/v1", "DATABASE_URL": database_url(),
           "PYTHONPATH": str(ROOT)}
    script = "set -euo pipefail\nset -x\n" + readme_api_examples()
    run = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"{run.stderr[-3000:]}\n{run.stdout[-2000:]}"
    assert '"last_known_location":"Taganrog"' in run.stdout.replace(" ", "")
    assert (work / "cases.csv").read_text(encoding="utf-8-sig").count("\n") == 26, "a header and 25 shared cases"
    assert Reply.objects.count() == 2, "the demo's Istanbul reply, and the README's"
    reply = Reply.objects.latest("id")
    assert reply.received_from.name == "Russian delegation"
    assert reply.outcomes.get().entry.position == 3
