"""The import's mapping step in a real browser: a case worker uploads a list whose headers the reader
does not know, says what each column holds, and the file is read again with it and imported; the
mapping is kept for that sender. Synthetic names only."""

from __future__ import annotations

import pytest
from celery.contrib.testing.worker import start_worker

from config.celery import app
from tests.factories import OrganisationFactory
from tests.roles import PASSWORD, make_case_worker
from tracker.models import HandoverList, ImportBatch, ImportMapping

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

@pytest.fixture
def worker():
    app.control.purge()
    with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False, shutdown_timeout=10) as running:
        yield running


@pytest.fixture
def importer():
    """A case worker (the shipped role, not a superuser) who imports a list."""
    return make_case_worker("list.importer")


def test_a_case_worker_maps_unknown_headers_and_the_list_is_imported(worker, importer, page_for, screenshots,
                                                                      tmp_path):
    sender = OrganisationFactory(name="Ukrainian delegation")
    OrganisationFactory(name="Russian delegation")
    upload = tmp_path / "from-the-field.csv"
    upload.write_bytes("\ufeffПризв.;Імення;Рік нар.;Нотатки\r\nТкаченко;Марія;2011;—\r\nМельник;Богдан;2012;\r\n"
                       .encode())
    # In English: the steps are found by their labels (the Ukrainian interface has tests of its own).
    page = page_for(locale="en-GB")
    page.goto("/admin/login/?next=/admin/tracker/importbatch/add/")
    page.fill("input[name=username]", importer.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")

    page.wait_for_selector("input[name=file]")
    page.set_input_files("input[name=file]", str(upload))
    page.select_option("select[name=sender]", label="Ukrainian delegation")
    page.select_option("select[name=recipient]", label="Russian delegation")
    page.fill("input[name=reference]", "UA-RU-MAP/1")
    page.click("input[type=submit][value='Upload and preview']")

    # The worker reads the file; the page refreshes itself until the check is done.
    page.wait_for_selector("#import-mapping", timeout=60_000)
    assert "Призв." in page.inner_text("#import-errors")
    page.screenshot(path=str(screenshots / "1-header-not-recognised.png"), full_page=True)
    page.select_option("select[aria-label='Призв.']", "family_name")
    page.select_option("select[aria-label='Імення']", "given_name")
    page.select_option("select[aria-label='Рік нар.']", "birth_date")
    page.select_option("select[aria-label='Нотатки']", "ignore")
    page.screenshot(path=str(screenshots / "2-mapped.png"), full_page=True)
    page.click("input[name=_remap]")

    # The page refreshes itself while the file is checked again, until it is ready to confirm.
    page.wait_for_selector("strong:has-text('Ready to confirm')", timeout=60_000)
    page.wait_for_selector("#import-rows")
    assert "Нотатки" in page.inner_text("#import-ignored")
    page.screenshot(path=str(screenshots / "3-read-with-the-mapping.png"), full_page=True)
    page.click("input[name=_confirm]")
    page.wait_for_selector("text=Imported", timeout=60_000)
    page.screenshot(path=str(screenshots / "4-imported.png"), full_page=True)

    batch = ImportBatch.objects.get()
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    assert sorted(HandoverList.objects.get(reference="UA-RU-MAP/1").entries.values_list(
        "child__family_name", "child__birth_date__year")) == [("Мельник", 2012), ("Ткаченко", 2011)]
    remembered = ImportMapping.objects.get(organisation=sender, kind="list")
    assert remembered.columns == {"призв": "family_name", "імення": "given_name", "рікнар": "birth_date",
                                  "нотатки": "ignore"}
    assert remembered.updated_by == importer
