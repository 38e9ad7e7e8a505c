"""Exports as their readers get them: the handover document (XLSX, PDF) and case files (admin, API)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet
from pypdf import PdfReader

from cases.models import Case, Child, RecordAccess
from tests.conftest import DUE, HANDED_OVER
from tests.factories import CaseFactory, ChildFactory, UserFactory
from tests.tracker.test_api import client_with, make_partner
from tracker.models import CaseShare, HandoverList, Round
from tracker.services.exports import handover_list_pdf, handover_list_xlsx
from tracker.services.partners import api_key_issue

pytestmark = pytest.mark.django_db

# Written into every restricted field of every child: none of it may reach a handover document.
SECRET = {"guardian_name": "Zakharchenko-Guardian", "guardian_contact": "+380 44 000 0000 secret-phone",
          "relatives": "Aunt Secretiana in Lviv", "notes": "Secret case worker note"}


@pytest.fixture
def handover_list(make_handed_over_list) -> HandoverList:
    handover_list = make_handed_over_list(6)
    handover_list.round = Round.objects.create(name="Стамбул / Istanbul, 2 June 2025", held_on=HANDED_OVER)
    handover_list.save(update_fields=["round"])
    Child.objects.filter(list_entries__handover_list=handover_list).update(**SECRET)
    return handover_list


def entries_in_order(handover_list: HandoverList) -> list[tuple[int, str]]:
    return [(e.position, e.child.family_name) for e in handover_list.entries.select_related("child")]


def first_sheet(content: bytes) -> Worksheet:
    sheet = load_workbook(io.BytesIO(content)).active
    assert isinstance(sheet, Worksheet)
    return sheet


def sheet_values(content: bytes) -> list[tuple]:
    return list(first_sheet(content).iter_rows(values_only=True))


def pdf_text(content: bytes) -> tuple[PdfReader, list[str]]:
    reader = PdfReader(io.BytesIO(content))
    return reader, [page.extract_text() for page in reader.pages]


def csv_rows(response) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(body)))


# --- the handover document --------------------------------------------------------------------------


def test_the_xlsx_is_the_list_as_handed_over(handover_list):
    rows = sheet_values(handover_list_xlsx(handover_list))
    title = dict(row[0].split(": ", 1) for row in rows[:6])
    assert title["Список / List"] == handover_list.reference
    assert title["Від → Кому / From → To"] == "Ukrainian delegation → Russian delegation"
    assert title["Раунд / Round"] == "Стамбул / Istanbul, 2 June 2025"
    # Dates as written in Ukraine, for both readers.
    assert title["Дата передачі / Handed over on"] == f"{HANDED_OVER:%d.%m.%Y}"
    assert title["Відповідь до / Reply due by"] == f"{DUE:%d.%m.%Y}"
    assert title["Кількість дітей / Number of children"] == "6"

    header = rows[7]
    assert header[:3] == ("№\nNo.", "Прізвище\nFamily name", "Ім'я\nGiven name")
    assert "Дата народження\nDate of birth" in header and "Останнє відоме місце\nLast known location" in header
    assert [(row[0], row[1]) for row in rows[8:]] == entries_in_order(handover_list)
    assert first_sheet(handover_list_xlsx(handover_list)).freeze_panes == "B9"


def test_a_birth_date_is_as_precise_as_known(handover_list):
    first = handover_list.entries.get(position=1).child
    first.birth_date_precision = Child.DatePrecision.YEAR
    first.save()
    rows = sheet_values(handover_list_xlsx(handover_list))
    column = rows[7].index("Дата народження\nDate of birth")
    assert rows[8][column] == f"{first.birth_date:%Y}"


def test_no_restricted_field_reaches_either_document(handover_list):
    xlsx = handover_list_xlsx(handover_list)
    cells = " ".join(str(v) for row in sheet_values(xlsx) for v in row if v is not None)
    _, pages = pdf_text(handover_list_pdf(handover_list))
    for secret in SECRET.values():
        assert secret not in cells
        assert secret not in " ".join(pages)
        assert secret.encode() not in xlsx


def test_the_pdf_numbers_its_pages_repeats_its_header_and_prints_cyrillic(make_handed_over_list):
    handover_list = make_handed_over_list(120)
    content = handover_list_pdf(handover_list)
    assert content.startswith(b"%PDF")
    reader, pages = pdf_text(content)
    # The title block and 21 rows on the first landscape A4 page, 33 rows on each of the others.
    assert len(reader.pages) == 5
    for number, text in enumerate(pages, start=1):
        assert f"Сторінка {number} з 5 / Page {number} of 5" in text
        assert "Прізвище" in text and "Family name" in text  # the header, on every page
        assert handover_list.reference in text
    assert "Ukrainian delegation → Russian delegation" in pages[0]
    family_names = [name for _, name in entries_in_order(handover_list)]
    assert family_names[0] in pages[0] and family_names[-1] in pages[-1]
    resources: Any = reader.pages[0]["/Resources"]  # the PDF's own dictionaries, read as they come
    page_fonts = resources["/Font"]
    embedded = {font["/BaseFont"].split("+")[-1] for font in (page_fonts[name].get_object() for name in page_fonts)
                if "/FontFile2" in font.get("/FontDescriptor", {})}
    assert embedded == {"SourceSansPro-Regular", "SourceSansPro-Bold"}


@pytest.mark.parametrize("export", [handover_list_xlsx, handover_list_pdf])
def test_the_documents_take_the_same_queries_for_5_or_50_children(make_handed_over_list, export,
                                                                django_assert_num_queries):
    small, big = make_handed_over_list(5), make_handed_over_list(50)
    for handover_list in (small, big):
        # 1: the list with its parties and round; 2: its entries with their children.
        with django_assert_num_queries(2):
            export(handover_list)


def test_a_formula_in_a_name_or_place_stays_text(handover_list):
    child = handover_list.entries.get(position=1).child
    child.last_known_location = '=HYPERLINK("http://example.invalid","x")'
    child.save()
    sheet = first_sheet(handover_list_xlsx(handover_list))
    column = [c.value for c in sheet[8]].index("Останнє відоме місце\nLast known location") + 1
    cell = sheet.cell(row=9, column=column)
    assert (cell.value, cell.data_type) == (child.last_known_location, "s")


# --- the admin ----------------------------------------------------------------------------------------


def test_the_list_page_links_both_documents_and_they_download(admin_client, handover_list):
    page = admin_client.get(reverse("admin:tracker_handoverlist_change", args=[handover_list.pk])).content.decode()
    for fmt, content_type, magic in (("xlsx", "spreadsheetml", b"PK"), ("pdf", "application/pdf", b"%PDF")):
        url = reverse("admin:tracker_handoverlist_export", args=[handover_list.pk, fmt])
        assert url in page
        response = admin_client.get(url)
        assert response.status_code == 200
        assert content_type in response["Content-Type"]
        assert f'filename="{handover_list.reference}.{fmt}"' in response["Content-Disposition"]
        assert response.content.startswith(magic)
    logged = RecordAccess.objects.filter(channel=RecordAccess.Channel.EXPORT)
    assert logged.count() == 2 * 6
    assert set(logged.values_list("child_id", flat=True)) == set(
        handover_list.entries.values_list("child_id", flat=True))


def test_a_reference_with_slashes_and_cyrillic_still_downloads(admin_client, handover_list):
    HandoverList.objects.filter(pk=handover_list.pk).update(reference="УКР/2025:06")
    response = admin_client.get(reverse("admin:tracker_handoverlist_export", args=[handover_list.pk, "xlsx"]))
    assert response.status_code == 200
    assert "filename*=utf-8''%D0%A3%D0%9A%D0%A0-2025-06.xlsx" in response["Content-Disposition"]
    assert load_workbook(io.BytesIO(response.content)).sheetnames == ["УКР-2025-06"]


def test_the_list_document_needs_the_right_to_see_children(client, handover_list):
    reader = UserFactory(username="lists.only")
    reader.user_permissions.add(Permission.objects.get(codename="view_handoverlist"))
    client.force_login(reader)
    url = reverse("admin:tracker_handoverlist_export", args=[handover_list.pk, "pdf"])
    assert client.get(url).status_code == 403
    reader.user_permissions.add(Permission.objects.get(codename="view_child"))
    assert client.get(url).status_code == 200
    assert client.get(reverse("admin:tracker_handoverlist_export", args=[handover_list.pk, "docx"])).status_code == 404


def _export_cases(client, action: str, query: str = "", selected: Sequence[Case] = (), select_all: bool = False):
    data = {"action": action, "index": "0", "_selected_action": [str(c.pk) for c in selected]}
    if select_all:
        data["select_across"] = "1"
    return client.post(reverse("admin:cases_case_changelist") + query, data)


def test_the_case_export_covers_the_selection_or_every_filtered_case(admin_client, handover_list):
    on_list = list(Case.objects.filter(list_entries__handover_list=handover_list))
    elsewhere = CaseFactory(child=ChildFactory(home_oblast="kharkiv", **SECRET))

    response = _export_cases(admin_client, "export_cases_csv", selected=on_list[:2])
    assert response["Content-Type"].startswith("text/csv")
    assert {int(r["case"]) for r in csv_rows(response)} == {c.pk for c in on_list[:2]}

    response = _export_cases(admin_client, "export_cases_csv", f"?on_list={handover_list.pk}",
                             selected=on_list[:1], select_all=True)
    rows = csv_rows(response)
    assert {int(r["case"]) for r in rows} == {c.pk for c in on_list}
    assert elsewhere.pk not in {int(r["case"]) for r in rows}
    assert all(r["lists"].startswith(f"{handover_list.reference} #") for r in rows)


def test_case_workers_export_no_restricted_field(admin_client, handover_list):
    cases = list(Case.objects.filter(list_entries__handover_list=handover_list))
    csv_response = _export_cases(admin_client, "export_cases_csv", selected=cases)
    xlsx_response = _export_cases(admin_client, "export_cases_xlsx", selected=cases)
    rows = csv_rows(csv_response)
    sheet = sheet_values(xlsx_response.content)
    assert not set(Child.RESTRICTED_FIELDS) & set(rows[0]) and not set(Child.RESTRICTED_FIELDS) & set(sheet[0])
    assert len(sheet) == 1 + len(cases)
    for secret in SECRET.values():
        assert all(secret not in str(v) for row in rows for v in row.values())
        assert all(secret not in str(v) for row in sheet for v in row)
    assert RecordAccess.objects.filter(channel=RecordAccess.Channel.EXPORT).count() == 2 * len(cases)


# --- the API --------------------------------------------------------------------------------------------


@pytest.fixture
def alpha():
    return make_partner("Alpha Tracing", "Шевченко", restricted=False)


@pytest.fixture
def beta():
    return make_partner("Beta Rights Group", "Бондаренко", restricted=True)


def test_a_partner_exports_only_its_cases_with_restricted_fields_only_where_shared(alpha, beta):
    alpha_rows = csv_rows(alpha.client.get("/api/v1/cases/export/?format=csv"))
    beta_rows = csv_rows(beta.client.get("/api/v1/cases/export/?format=csv"))
    assert {int(r["case"]) for r in alpha_rows} == {c.pk for c in alpha.cases}
    assert {int(r["case"]) for r in beta_rows} == {c.pk for c in beta.cases}
    assert {(r["restricted_fields_shared"], r["guardian_name"]) for r in alpha_rows} == {("false", "")}
    assert {r["guardian_name"] for r in beta_rows} == {f"Guardian of {c.child.given_name}" for c in beta.cases}
    assert {r["lists"] for r in alpha_rows} == {f"{alpha.handover_list.reference} #{n}" for n in (1, 2, 3)}


def test_the_api_export_applies_the_lists_filters_and_is_xlsx_on_request(alpha):
    response = alpha.client.get("/api/v1/cases/export/", {"format": "xlsx", "q": "Марія"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    header, *rows = sheet_values(response.content)
    marias = [c for c in alpha.cases if c.child.given_name == "Марія"]
    assert [row[header.index("case")] for row in rows] == [c.pk for c in marias]


def test_every_exported_child_is_logged_with_organisation_and_key(alpha):
    prefix = alpha.key.split("_")[1]
    csv_rows(alpha.client.get("/api/v1/cases/export/?format=csv"))
    logged = RecordAccess.objects.filter(channel=RecordAccess.Channel.EXPORT)
    assert sorted(logged.values_list("child_id", flat=True)) == sorted(c.child_id for c in alpha.cases)
    assert set(logged.values_list("partner_id", "api_key_prefix")) == {(alpha.organisation.pk, prefix)}


def test_a_case_workers_api_export_has_no_restricted_columns(alpha, beta, admin_client):
    rows = csv_rows(admin_client.get("/api/v1/cases/export/?format=csv"))
    assert {int(r["case"]) for r in rows} >= {c.pk for c in alpha.cases + beta.cases}
    assert not set(Child.RESTRICTED_FIELDS) & set(rows[0])


def test_a_read_only_key_may_export_and_an_unknown_format_is_a_problem(alpha):
    _, read_only = api_key_issue(organisation=alpha.organisation, name="ro", scopes=["read"], actor=None)
    assert client_with(read_only).get("/api/v1/cases/export/?format=csv").status_code == 200
    response = alpha.client.get("/api/v1/cases/export/?format=pdf")
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "format", "message": "not a format this endpoint gives"}]
    assert client_with(None).get("/api/v1/cases/export/?format=csv").status_code == 401


def test_the_csv_defuses_formulas(alpha):
    child = alpha.cases[0].child
    Child.objects.filter(pk=child.pk).update(last_known_location="=1+2")
    rows = csv_rows(alpha.client.get("/api/v1/cases/export/?format=csv"))
    assert {r["last_known_location"] for r in rows if int(r["child"]) == child.pk} == {"'=1+2"}


def test_the_csv_streams_in_the_same_queries_for_3_or_30_cases(alpha):
    def export() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as captured:
            response = alpha.client.get("/api/v1/cases/export/?format=csv")
            assert response.streaming
            rows = csv_rows(response)
        return len(captured), len(rows)

    export()  # the key's first use is recorded once; every export after it is alike
    small = export()
    for _ in range(27):
        CaseShare.objects.create(case=CaseFactory(), organisation=alpha.organisation)
    big = export()
    assert (small[1], big[1]) == (3, 30)
    assert small[0] == big[0]
