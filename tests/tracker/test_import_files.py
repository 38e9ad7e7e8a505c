"""Importing files built the way people build them: typos and merged cells in headers, formulas,
serial dates, totals rows, the other side's words in replies, the product's own exports, and the
same children listed again. Every name is synthetic. XLSX files are real workbooks made with
openpyxl; where openpyxl cannot (a formula's saved value) the sheet's XML is written as Excel does.
"""

from __future__ import annotations

import datetime
import io
import re
import zipfile
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from openpyxl import Workbook, load_workbook

from cases.models import Case, Child
from tests.factories import CaseFactory, ChildFactory, OrganisationFactory
from tracker.models import HandoverList, ImportBatch, ImportMapping, ImportRow, ListEntry
from tracker.services.exchange import ExchangeError
from tracker.services.exports import cases_csv, cases_for_export, cases_xlsx, handover_list_xlsx
from tracker.services.imports import (
    import_batch_create,
    import_batch_remap,
    import_batch_run,
    import_batch_start,
    import_batch_validate,
)

TODAY = datetime.date(2025, 6, 20)


@pytest.fixture
def parties() -> tuple[Any, Any]:
    return OrganisationFactory(name="Ukrainian delegation"), OrganisationFactory(name="Russian delegation")


def csv_bytes(lines: list[str], *, bom: bool = True) -> bytes:
    return ("\ufeff" if bom else "").encode() + ("\r\n".join(lines) + "\r\n").encode("utf-8")


def workbook_bytes(rows: list[list[Any]], *, merges: tuple[str, ...] = (), saved: dict[str, Any] | None = None,
                   formats: dict[str, str] | None = None) -> bytes:
    """A workbook as a person leaves it: `merges` as merged ranges, formulas as "=..." and, for the
    cells in `saved`, the value Excel keeps with the formula (written into the sheet's XML, as
    openpyxl writes formulas without one)."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    for cell, number_format in (formats or {}).items():
        sheet[cell].number_format = number_format
    for merged in merges:
        sheet.merge_cells(merged)
    out = io.BytesIO()
    workbook.save(out)
    if not saved:
        return out.getvalue()
    source = zipfile.ZipFile(io.BytesIO(out.getvalue()))
    rewritten = io.BytesIO()
    with zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = data.decode()
                for ref, value in saved.items():
                    kind = ' t="str"' if isinstance(value, str) else ""
                    text, count = re.subn(rf'<c r="{ref}"([^>]*)><f>([^<]*)</f>(?:<v\s*/>|<v>\s*</v>)?</c>',
                                          rf'<c r="{ref}"\1{kind}><f>\2</f><v>{value}</v></c>', text)
                    assert count == 1, f"no formula in {ref}"
                data = text.encode()
            target.writestr(item, data)
    return rewritten.getvalue()


def check(content: bytes, name: str, parties: tuple[Any, Any], **params: Any) -> ImportBatch:
    sender, recipient = parties
    params.setdefault("reference", f"UA-RU-FILE/{ImportBatch.objects.count() + 1}")
    batch = import_batch_create(kind="list", content=content, file_name=name, actor=None, sender=sender,
                                recipient=recipient, **params)
    return import_batch_validate(batch_id=batch.pk)


def write(batch: ImportBatch, **start: Any) -> ImportBatch:
    assert batch.status == ImportBatch.Status.VALIDATED, batch.errors
    import_batch_start(batch=batch, actor=None, **start)
    done = import_batch_run(batch_id=batch.pk, actor=None)
    assert done.status == ImportBatch.Status.DONE, done.errors
    return done


def list_of(batch: ImportBatch) -> HandoverList:
    assert batch.handover_list is not None
    return batch.handover_list


def children_of(batch: ImportBatch) -> list[Child]:
    return [entry.child for entry in list_of(batch).entries.select_related("child").order_by("position")]


# --- Headers ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_header_one_typo_away_is_read_with_a_notice_and_every_circumstance_in_three_languages(parties):
    content = csv_bytes([
        "Прізище;Імʼя;По батькові;Дата народження;Обставини;Категорія",
        "Ткаченко;Марія;Олегівна;05.03.2011;примусово переміщено;позбавлена батьківського піклування",
        "Мельник;Богдан;;2012;утримується на ТОТ;сирота",
        "Олійник;Софія;;03.2013;вихованка інтернату;",
        "Гнатюк;Остап;;2010;Принудительно перемещён;",
        "Бойко;Ілля;;2014;Held in occupied territory;with parents",
        "Савчук;Дарина;;2015;влаштовано в сім'ю;",
        "Кравець;Матвій;;2016;депортований;",
    ])
    batch = write(check(content, "typo.csv", parties))

    assert any("“Прізище” was read as “прізвище”" in notice for notice in batch.summary["notices"])
    assert batch.summary["columns"]["circumstances"] == "Обставини"
    assert [(child.family_name, child.circumstances, child.category) for child in children_of(batch)] == [
        ("Ткаченко", "forcibly_transferred", "without_parental_care"),
        ("Мельник", "held_in_occupied_territory", "orphan"),
        ("Олійник", "in_institution", "unknown"),
        ("Гнатюк", "forcibly_transferred", "unknown"),
        ("Бойко", "held_in_occupied_territory", "with_parents"),
        ("Савчук", "placed_with_family", "unknown"),
        ("Кравець", "deported", "unknown"),
    ]


@pytest.mark.django_db
def test_a_header_about_a_parent_a_phone_or_the_destination_is_not_read_by_its_first_words(parties):
    # "Прізвище матері" is not the child's family name, "Номер телефону матері" not the number on the list,
    # "Населений пункт, куди вивезено" not the child's home and "Регіон РФ" not an oblast of Ukraine.
    rows: list[list[Any]] = [
        ["ПІБ дитини", "Прізвище матері", "Номер телефону матері", "Населений пункт, куди вивезено",
         "Населений пункт проживання", "Регіон РФ", "Область", "Категорія", "Обставини"],
        ["Шевчук Олена Петрівна", "Шевчук", "+380501112233", "Таганрог", "Маріуполь", "Ростовська обл.",
         "Донецька обл.", "без батьків", "Не депортована, перебуває на окупованій території"],
        ["Коваль Іван Андрійович", "Коваль", "0677654321", "Курськ", "Бровари", "Курська обл.",
         "Київська обл., м. Бровари", "з батьками", "у таборі"],
        ["Бондар Марія Олегівна", "", "", "", "Київ", "", "м. Київ", "", "депортована"],
    ]
    batch = check(workbook_bytes(rows), "list.xlsx", parties)
    assert batch.summary["columns"] == {"full_name": "ПІБ дитини", "settlement": "Населений пункт проживання",
                                        "oblast": "Область", "category": "Категорія", "circumstances": "Обставини"}
    assert set(batch.summary["ignored_columns"]) >= {"Прізвище матері", "Номер телефону матері",
                                                      "Населений пункт, куди вивезено", "Регіон РФ"}
    batch = write(batch)
    assert [(entry.position, entry.child.home_settlement, entry.child.home_oblast, entry.child.category,
             entry.child.circumstances)
            for entry in list_of(batch).entries.select_related("child").order_by("position")] == [
        (1, "Маріуполь", "donetsk", "without_parental_care", "held_in_occupied_territory"),
        (2, "Бровари", "kyiv", "with_parents", "in_institution"),
        (3, "Київ", "kyiv_city", "unknown", "deported"),
    ]


@pytest.mark.django_db
def test_the_command_names_the_headers_it_found_and_expected_then_reads_them_with_a_mapping(
        parties, tmp_path, capsys):
    path = tmp_path / "list.csv"
    path.write_bytes(csv_bytes([
        "Список дітей; ;",
        "Призв.;Імення;Рік нар.;Примітка",
        "Ткаченко;Марія;2011;з бабусею",
        "Мельник;Богдан;2012;",
    ]))
    args = ["--from", "Ukrainian delegation", "--to", "Russian delegation", "--reference", "UA-CLI/7"]

    with pytest.raises(CommandError, match="refused"):
        call_command("import_list", str(path), *args)
    err = capsys.readouterr().err
    assert "Headers found on line 2: “Призв.”, “Імення”, “Рік нар.”, “Примітка”" in err
    assert "Expected: “Прізвище / family name” + “Ім'я / given name” or “ПІБ / full name" in err
    assert not Child.objects.exists()

    call_command("import_list", str(path), *args,
                 "--columns", "Призв.=family_name,Імення=given_name,Рік нар.=birth_date")
    out = capsys.readouterr().out
    assert "columns ignored: Примітка" in out
    assert "UA-CLI/7: 2 rows, 0 matched, 0 proposed and accepted, 2 new, 0 errors" in out
    assert sorted(Child.objects.values_list("family_name", "birth_date")) == [
        ("Мельник", datetime.date(2012, 1, 1)), ("Ткаченко", datetime.date(2011, 1, 1))]


@pytest.mark.django_db
def test_the_command_takes_a_mapping_file_and_refuses_a_field_that_does_not_exist(parties, tmp_path, capsys):
    path = tmp_path / "list.csv"
    path.write_bytes(csv_bytes(["Призв.;Імення", "Ткаченко;Марія"]))
    mapping = tmp_path / "columns.txt"
    mapping.write_text("Призв.=family_name\nІмення=given_name\n", encoding="utf-8")
    args = ["--from", "Ukrainian delegation", "--to", "Russian delegation", "--reference", "UA-CLI/8"]

    with pytest.raises(CommandError, match="surname is not a field"):
        call_command("import_list", str(path), *args, "--columns", "Призв.=surname")
    call_command("import_list", str(path), *args, "--columns", str(mapping))
    assert Child.objects.get().family_name == "Ткаченко"


@pytest.mark.django_db
def test_a_mapping_made_for_one_file_is_remembered_for_the_senders_next_file(parties):
    content = csv_bytes(["Призв.;Імення;Нотатки", "Ткаченко;Марія;x"])
    refused = check(content, "first.csv", parties)
    assert refused.status == ImportBatch.Status.FAILED
    assert refused.summary["headers_found"] == ["Призв.", "Імення", "Нотатки"]

    import_batch_remap(batch=refused, columns={"Призв.": "family_name", "Імення": "given_name",
                                               "Нотатки": "ignore"}, outcomes={}, actor=None)
    again = import_batch_validate(batch_id=refused.pk)
    assert again.status == ImportBatch.Status.VALIDATED, again.errors
    assert again.summary["ignored_columns"] == ["Нотатки"]

    later = check(csv_bytes(["ПРИЗВ.;імення", "Мельник;Богдан"]), "second.csv", parties)
    assert later.status == ImportBatch.Status.VALIDATED, later.errors
    assert ImportMapping.objects.get(organisation=parties[0]).columns["призв"] == "family_name"
    other_sender = check(csv_bytes(["Призв.;Імення", "Мельник;Богдан"]), "third.csv",
                         (OrganisationFactory(name="Mediator"), parties[1]))
    assert other_sender.status == ImportBatch.Status.FAILED, "the mapping is that sender's alone"


@pytest.mark.django_db
def test_a_two_level_merged_header_reads_number_birth_date_and_sex(parties):
    content = workbook_bytes([
        ["Список дітей, переданий 02.06.2025"],
        ["№ з/п", "ПІБ", None, None, "Дата народження", "Стать", "Звідки"],
        [None, "Прізвище", "Ім'я", "По батькові", None, None, None],
        [1, "ТКАЧЕНКО", "МАРІЯ", "ОЛЕГІВНА", datetime.date(2011, 3, 5), "ж", "Маріуполь"],
        [2, "Мельник", "Богдан", "Іванович", datetime.date(2012, 7, 1), "ч", "Херсон"],
    ], merges=("A1:G1", "A2:A3", "B2:D2", "E2:E3", "F2:F3", "G2:G3"))
    batch = write(check(content, "merged.xlsx", parties))

    assert batch.summary["columns"] == {"position": "№ з/п", "family_name": "Прізвище", "given_name": "Ім'я",
                                        "patronymic": "По батькові", "birth_date": "Дата народження",
                                        "sex": "Стать", "settlement": "Звідки"}
    assert batch.summary["ignored_columns"] == []
    assert [(e.position, e.child.family_name, e.child.given_name, e.child.birth_date, e.child.sex,
             e.child.home_settlement) for e in list_of(batch).entries.select_related("child").order_by("position")
            ] == [(1, "Ткаченко", "Марія", datetime.date(2011, 3, 5), "F", "Маріуполь"),
                  (2, "Мельник", "Богдан", datetime.date(2012, 7, 1), "M", "Херсон")]
    assert list_of(batch).title == "Список дітей, переданий 02.06.2025"


@pytest.mark.django_db
def test_a_cell_merged_down_over_siblings_is_read_into_each_of_their_rows_and_named(parties):
    rows: list[list[Any]] = [["№", "Прізвище", "Ім'я", "Дата народження", "Населений пункт", "Обставини"],
                             [1, "Шевчук", "Олена", "2012", "Маріуполь", "депортовано"],
                             [2, None, "Іван", "2014", None, None],
                             [3, None, "Марія", "2016", None, None],
                             [4, "Коваль", "Ігор", "2011", "Херсон", "примусово переміщено"]]
    content = workbook_bytes(rows, merges=("B2:B4", "E2:E4", "F2:F4"))
    batch = write(check(content, "siblings.xlsx", parties))
    assert [(c.family_name, c.given_name, c.home_settlement, c.circumstances) for c in children_of(batch)] == [
        ("Шевчук", "Олена", "Маріуполь", "deported"), ("Шевчук", "Іван", "Маріуполь", "deported"),
        ("Шевчук", "Марія", "Маріуполь", "deported"), ("Коваль", "Ігор", "Херсон", "forcibly_transferred")]
    assert "3 cells merged over several rows were read into each of them (the first: column “Прізвище”, lines 2–4)" \
        in batch.summary["notices"]


@pytest.mark.django_db
def test_a_hidden_lookup_sheet_is_passed_over_and_another_sheet_with_children_is_named(parties):
    workbook = Workbook()
    lookup = workbook.active
    assert lookup is not None
    lookup.title = "Довідник"
    lookup.append(["Область"])
    lookup.append(["Донецька"])
    lookup.sheet_state = "hidden"
    for title, children in (("Донецька", [[1, "Шевчук", "Олена", "2012"]]),
                            ("Херсонська", [[1, "Коваль", "Іван", "2013"]])):
        sheet = workbook.create_sheet(title)
        sheet.append(["№", "Прізвище", "Ім'я", "Дата народження"])
        for child in children:
            sheet.append(child)
    out = io.BytesIO()
    workbook.save(out)
    batch = write(check(out.getvalue(), "oblasts.xlsx", parties))
    assert [child.family_name for child in children_of(batch)] == ["Шевчук"]
    assert ("only the first sheet was read: the sheet “Херсонська” also holds data; import it as a file of its own, "
            "or put its rows on the first sheet") in batch.summary["notices"]


@pytest.mark.django_db
def test_a_full_name_with_the_family_name_in_capitals_is_split_by_it_wherever_it_stands(parties):
    rows: list[list[Any]] = [["№", "ПІБ", "Дата народження"], [1, "Олена ШЕВЧУК", "2012"],
                             [2, "Ірина Петрівна КОВАЛЬ", "2013"], [3, "ТКАЧЕНКО Максим Олегович", "2014"],
                             [4, "Гуцуляк Дарина Романівна", "2015"], [5, "Бондар (Мельник) Марія Олегівна", "2011"],
                             [6, "Лисенко Дарина Андріївна (ПБП)", "2010"]]
    batch = write(check(workbook_bytes(rows), "names.xlsx", parties))
    children = children_of(batch)
    assert [(c.family_name, c.given_name, c.patronymic) for c in children] == [
        ("Шевчук", "Олена", ""), ("Коваль", "Ірина", "Петрівна"), ("Ткаченко", "Максим", "Олегович"),
        ("Гуцуляк", "Дарина", "Романівна"), ("Бондар", "Марія", "Олегівна"), ("Лисенко", "Дарина", "Андріївна")]
    # Words in brackets are never part of a name, and never lost: the child's notes keep the name as listed.
    assert [c.notes for c in children[4:]] == ["Name as listed: Бондар (Мельник) Марія Олегівна",
                                               "Name as listed: Лисенко Дарина Андріївна (ПБП)"]
    assert ("2 names have words in brackets beside them, left out of the names and kept in the children's notes "
            "(the first: line 6, “Бондар (Мельник) Марія Олегівна”)") in batch.summary["notices"]


@pytest.mark.django_db
def test_the_columns_numbers_and_oblast_headings_of_an_official_form_are_skipped_and_named(parties):
    rows: list[list[Any]] = [["№ з/п", "ПIБ", "Стать", "Дата народження", "Область"], [1, 2, 3, 4, 5],
                             ["Донецька область"], [1, "Шевчук Олена Петрівна", "жін.", "2012", None],
                             [2, "Коваль Iван Андрійович", "хл.", "2013", None],
                             ["Херсонська область:"], [3, "Бондар Марія Олегівна", "Ж (F)", "2014", "Запорізька обл."]]
    batch = write(check(workbook_bytes(rows), "form.xlsx", parties))
    # "ПIБ" and "Iван" typed with a Latin I are read and kept in Cyrillic.
    assert [(c.family_name, c.given_name, c.sex, c.home_oblast) for c in children_of(batch)] == [
        ("Шевчук", "Олена", "F", "donetsk"), ("Коваль", "Іван", "M", "donetsk"),
        ("Бондар", "Марія", "F", "zaporizhzhia")]
    assert [n for n in batch.summary["notices"] if n.startswith("line")] == [
        "line 2: the columns' numbers under the header (1, 2, 3 …) were skipped",
        "line 3: the heading “Донецька область” was skipped; the rows under it with no oblast of their own are "
        "read as in it",
        "line 6: the heading “Херсонська область” was skipped; the rows under it with no oblast of their own are "
        "read as in it"]


@pytest.mark.django_db
def test_the_oblast_a_settlement_names_is_read_when_the_row_has_none(parties):
    rows: list[list[Any]] = [["№", "ПІБ", "Місце проживання", "Область"],
                             [1, "Ткаченко Максим Олегович", "м. Олешки, Херсонська обл.", None],
                             [2, "Гуцуляк Дарина Романівна", "Мариуполь, Донецкая область", "Запорізька"],
                             [3, "Бурлаченко Ілля Тарасович", "Нова Каховка", None]]
    batch = write(check(workbook_bytes(rows), "places.xlsx", parties))
    assert [(c.home_settlement, c.home_oblast) for c in children_of(batch)] == [
        ("м. Олешки, Херсонська обл.", "kherson"), ("Мариуполь, Донецкая область", "zaporizhzhia"),
        ("Нова Каховка", "")]
    assert ("1 row's oblast was read from its settlement, which names it (line 2: “м. Олешки, Херсонська обл.”)"
            in batch.summary["notices"])


@pytest.mark.django_db
def test_a_list_as_other_programs_and_long_lists_write_it(parties):
    # "Номер справи" is a case number, not the number on the list; "Ім'я, по батькові" is one column; the
    # header is printed again on the next page; numbers come as text from a program's export; oblasts by
    # their everyday names; dates in the forms of Russian and English letters.
    rows: list[list[Any]] = [
        ["Номер справи", "Прізвище", "Ім'я, по батькові", "Р.н.", "Обл."],
        ["4512", "Ткачерук", "Олена Іванівна", "12 ноября 2015 года", "Донеччина"],
        ["Номер справи", "Прізвище", "Ім'я, по батькові", "Р.н.", "Обл."],
        ["4513", "Дзюбенко", "Марко Петрович", "12.III.2013", "АРК"],
        ["4514", "Гаврилюк", "Остап", "March 5, 2012", "Transcarpathia"],
        ["4515", "Мельничук", "Ярина Андріївна", "2014.0", "Вінниччина"],
    ]
    batch = write(check(workbook_bytes(rows), "cases.xlsx", parties))
    assert batch.summary["columns"] == {"family_name": "Прізвище", "given_and_patronymic": "Ім'я, по батькові",
                                        "birth_date": "Р.н.", "oblast": "Обл."}
    assert "Номер справи" in batch.summary["ignored_columns"]
    assert "line 3: the header, repeated, was skipped" in batch.summary["notices"]
    assert [(e.position, e.child.family_name, e.child.given_name, e.child.patronymic, e.child.birth_date,
             e.child.birth_date_precision, e.child.home_oblast)
            for e in list_of(batch).entries.select_related("child").order_by("position")] == [
        (1, "Ткачерук", "Олена", "Іванівна", datetime.date(2015, 11, 12), "day", "donetsk"),
        (2, "Дзюбенко", "Марко", "Петрович", datetime.date(2013, 3, 12), "day", "crimea"),
        (3, "Гаврилюк", "Остап", "", datetime.date(2012, 3, 5), "day", "zakarpattia"),
        (4, "Мельничук", "Ярина", "Андріївна", datetime.date(2014, 1, 1), "year", "vinnytsia"),
    ]


@pytest.mark.django_db
def test_a_semicolon_csv_with_commas_in_its_addresses_and_cells_over_several_lines(parties):
    content = csv_bytes([
        "№;Прізвище, ім'я;По батькові;\"Дата\nнародження\";Адреса",
        "1 ;Ткачерук Олена;Іванівна;12.03.2015;Харківська обл., Ізюмський р-н, с. Вербівка, вул. Шкільна, 12",
        "\"1 234\";Дзюбенко Марко;Петрович;31.02.2012;\"м. Ізюм,\nвул. Садова, 5\"",
    ])
    batch = check(content, "addresses.csv", parties)
    # The second child's date is refused on the line a spreadsheet shows it on, under its header as written.
    assert [(e["line"], e["column"]) for e in batch.errors] == [(3, "Дата народження")]
    content = content.replace(b"31.02.2012", b"28.02.2012")
    children = children_of(write(check(content, "addresses.csv", parties)))
    assert [(c.family_name, c.given_name, c.patronymic, c.home_oblast) for c in children] == [
        ("Ткачерук", "Олена", "Іванівна", "kharkiv"), ("Дзюбенко", "Марко", "Петрович", "")]


@pytest.mark.django_db
def test_a_sheet_whose_cells_leave_out_their_reference_keeps_each_value_in_its_column(parties):
    # Excel always writes r="B2"; other tools may leave it out, an empty cell then still taking its place.
    content = workbook_bytes([["Прізвище", "Ім'я", "По батькові", "Населений пункт", "Область"],
                              ["Ткачерук", "Олена", None, "Ізюм", "Харківська"]])
    source = zipfile.ZipFile(io.BytesIO(content))
    rewritten = io.BytesIO()
    with zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = re.sub(r' r="[A-Z]+\d+"', "", data.decode())
                empty_after = '<c t="inlineStr"><is><t>Олена</t></is></c>'
                assert empty_after in text
                data = text.replace(empty_after, empty_after + '<c s="0"/>').encode()
            target.writestr(item, data)
    children = children_of(write(check(rewritten.getvalue(), "other-tool.xlsx", parties)))
    assert [(c.patronymic, c.home_settlement, c.home_oblast) for c in children] == [("", "Ізюм", "kharkiv")]


@pytest.mark.django_db
def test_an_empty_file_is_refused_as_empty(parties):
    for content, name in ((workbook_bytes([]), "empty.xlsx"), (csv_bytes([";;", ";;"]), "separators.csv")):
        batch = check(content, name, parties)
        assert [error["reason"] for error in batch.errors] == ["the file is empty: it has no line with anything in it"]


@pytest.mark.django_db
def test_a_row_the_spreadsheet_hides_is_read_and_named(parties):
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in (["№", "Прізвище", "Ім'я"], [1, "Шевчук", "Олена"], [2, "Коваль", "Іван"], [3, "Бондар", "Марія"]):
        sheet.append(row)
    sheet.row_dimensions[3].hidden = True
    out = io.BytesIO()
    workbook.save(out)
    batch = write(check(out.getvalue(), "filtered.xlsx", parties))
    assert [child.family_name for child in children_of(batch)] == ["Шевчук", "Коваль", "Бондар"]
    assert ("1 row the spreadsheet hides (filtered out or grouped away) was read as the others are (line 3): take it "
            "out of the file if it is not to be imported") in batch.summary["notices"]


@pytest.mark.django_db
def test_a_column_is_never_dropped_without_being_named(parties):
    content = workbook_bytes([
        ["Прізвище", "Ім'я", "Примітки від інтернату", None],
        ["Ткаченко", "Марія", "переведена", "Донецьк"],
    ])
    batch = check(content, "extra.xlsx", parties)
    assert batch.summary["ignored_columns"] == ["Примітки від інтернату", "column D (no header)"]


# --- Cells -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_formulas_use_their_saved_value_and_one_without_is_a_row_error(parties):
    rows: list[list[Any]] = [
        ["№", "Прізвище", "Ім'я", "Дата народження"],
        ["=ROW()-1", "Ткаченко", "Марія", "=DATE(2011,3,5)"],
        ["=A2+1", '=PROPER("мельник")', "Богдан", 41091],
    ]
    saved = {"A2": 1, "E2": None, "D2": 40607, "A3": 2, "B3": "Мельник"}
    del saved["E2"]
    batch = write(check(workbook_bytes(rows, saved=saved, formats={"D2": "DD.MM.YYYY"}), "saved.xlsx", parties))
    assert [(e.position, e.child.family_name, e.child.birth_date) for e in
            list_of(batch).entries.select_related("child").order_by("position")] == [
        (1, "Ткаченко", datetime.date(2011, 3, 5)), (2, "Мельник", datetime.date(2012, 7, 1))]

    unsaved = check(workbook_bytes(rows, saved={"A2": 1, "A3": 2, "B3": "Мельник"}), "unsaved.xlsx", parties)
    assert [(e["line"], e["column"]) for e in unsaved.errors] == [(2, "Дата народження")]
    assert "a formula with no saved value" in unsaved.errors[0]["reason"]


@pytest.mark.django_db
def test_serial_dates_are_dates_and_a_totals_row_at_the_end_is_skipped_and_named(parties):
    rows: list[list[Any]] = [["№", "Прізвище", "Ім'я", "Дата народження"],
            [1, "Ткаченко", "Марія", 40607], [2, "Мельник", "Богдан", 41091.0], [3, "Олійник", "Софія", 2013],
            ["Разом:", None, None, "=COUNTA(B2:B4)"], ["Итого", 3]]
    batch = write(check(workbook_bytes(rows), "totals.xlsx", parties))

    assert [(c.birth_date, c.birth_date_precision) for c in children_of(batch)] == [
        (datetime.date(2011, 3, 5), "day"), (datetime.date(2012, 7, 1), "day"), (datetime.date(2013, 1, 1), "year")]
    assert [n for n in batch.summary["notices"] if "totals" in n] == [
        "line 5: a totals row (“Разом:”) was skipped", "line 6: a totals row (“Итого 3”) was skipped"]


@pytest.mark.django_db
def test_serial_dates_written_as_text_in_a_csv_are_dates_and_named_in_the_notices(parties):
    # A CSV saved from Excel with the date cells formatted General: the days' serial numbers as text.
    content = csv_bytes([
        "Прізвище;Ім'я;Дата народження;Дата останніх відомостей",
        "Ткаченко;Марія;40973;45292", "Мельник;Богдан;2012;01.02.2024", "Олійник;Софія;41091;",
        "Гнатюк;Остап;05.03.2011;45323",
    ])
    batch = write(check(content, "general.csv", parties))

    assert [(c.birth_date, c.birth_date_precision) for c in children_of(batch)] == [
        (datetime.date(2012, 3, 5), "day"), (datetime.date(2012, 1, 1), "year"), (datetime.date(2012, 7, 1), "day"),
        (datetime.date(2011, 3, 5), "day")]
    assert [child.last_known_on for child in children_of(batch)] == [
        datetime.date(2024, 1, 1), datetime.date(2024, 2, 1), None, datetime.date(2024, 2, 1)]
    assert [n for n in batch.summary["notices"] if "serial" in n] == [
        "column “Дата народження”: 2 rows hold a spreadsheet's serial number of a day, read as a date "
        "(“40973” as 05.03.2012); check them against the spreadsheet the file was saved from",
        "column “Дата останніх відомостей”: 2 rows hold a spreadsheet's serial number of a day, read as a date "
        "(“45292” as 01.01.2024); check them against the spreadsheet the file was saved from"]


@pytest.mark.django_db
def test_birth_dates_as_people_type_them_and_cells_showing_only_the_month_or_year(parties):
    typed = ["2014 р.н.", "2013 г.р.", "12 березня 2015", "12 марта 2015 г.", "березень 2015", "05.03.15",
             "2015.03.12", "12.03.2015 12:00", "March 2015"]
    rows: list[list[Any]] = [["№", "Прізвище", "Ім'я", "Дата народження"]]
    given = ["Олена", "Марія", "Ірина", "Дарина", "Софія", "Ганна", "Уляна", "Злата", "Єва", "Ярина", "Кіра", "Ліна"]
    for position, text in enumerate(typed, 1):
        rows.append([position, f"Шевчук{'абвгґдежз'[position - 1]}енко", given[position - 1], text])
    # Cells holding real dates, formatted as Excel formats "03.2015" and "2013" typed into a date cell.
    rows += [[10, "Коваленко", given[9], datetime.date(2015, 3, 1)],
             [11, "Бондаренко", given[10], datetime.date(2013, 1, 1)],
             [12, "Ткаченко", given[11], datetime.date(2012, 4, 9)]]
    content = workbook_bytes(rows, formats={"D11": "mm.yyyy", "D12": "yyyy", "D13": "dd.mm.yyyy"})
    children = children_of(write(check(content, "dates.xlsx", parties)))
    assert [(child.birth_date, child.birth_date_precision) for child in children] == [
        (datetime.date(2014, 1, 1), "year"), (datetime.date(2013, 1, 1), "year"), (datetime.date(2015, 3, 12), "day"),
        (datetime.date(2015, 3, 12), "day"), (datetime.date(2015, 3, 1), "month"), (datetime.date(2015, 3, 5), "day"),
        (datetime.date(2015, 3, 12), "day"), (datetime.date(2015, 3, 12), "day"), (datetime.date(2015, 3, 1), "month"),
        (datetime.date(2015, 3, 1), "month"), (datetime.date(2013, 1, 1), "year"), (datetime.date(2012, 4, 9), "day"),
    ]


@pytest.mark.django_db
def test_a_serial_date_as_text_in_the_future_or_too_old_stays_an_error(parties):
    content = csv_bytes(["Прізвище;Ім'я;Дата народження", "Ткаченко;Марія;47500", "Мельник;Богдан;25000",
                         "Олійник;Софія;1989", "Гнатюк;Остап;40973"])
    batch = check(content, "wrong.csv", parties)

    assert [(e["line"], e["reason"]) for e in batch.errors] == [
        (2, "“17.01.2030” is in the future"),
        (3, "“25000” is not a date: write it as 2011-03-05, 05.03.2011, 03.2011 or 2011"),
        (4, "“1989” is before 1990: not a child's birth date")]
    assert [n for n in batch.summary["notices"] if "serial" in n] == [
        "column “Дата народження”: 2 rows hold a spreadsheet's serial number of a day, read as a date "
        "(“47500” as 17.01.2030); check them against the spreadsheet the file was saved from"]


@pytest.mark.django_db
def test_the_notes_and_signature_under_the_totals_are_skipped_and_named(parties):
    rows: list[list[Any]] = [["№", "Прізвище", "Ім'я", "По батькові", "Дата народження", "Стать"],
                             [1, "Шевчук", "Олена", "Петрівна", "05.03.2012", "ж"],
                             [2, "Коваль", "Іван", "Андрійович", "2013", "ч"],
                             [], ["Разом", 2], [], ["Примітка: дані станом на 01.11.2026"],
                             ["Начальник відділу", None, None, None, None, "І. В. Гончаренко"]]
    batch = write(check(workbook_bytes(rows), "signed.xlsx", parties))
    assert [child.family_name for child in children_of(batch)] == ["Шевчук", "Коваль"]
    assert [n for n in batch.summary["notices"] if n.startswith("line")] == [
        "line 5: a totals row (“Разом 2”) was skipped",
        "line 7: a line under the totals (“Примітка: дані станом на 01.11.2026”) was skipped",
        "line 8: a line under the totals (“Начальник відділу І. В. Гончаренко”) was skipped"]

    # A child's row after the totals makes them all rows again: nothing is skipped that could be a child.
    rows[7:] = [[3, "Бондар", "Марія", "Олегівна", "2014", "ж"]]
    refused = check(workbook_bytes(rows), "subtotal.xlsx", parties)
    assert refused.status == ImportBatch.Status.FAILED
    assert {error["line"] for error in refused.errors} == {5, 7}


@pytest.mark.django_db
def test_a_totals_word_in_the_middle_of_the_list_is_a_row_not_skipped(parties):
    content = csv_bytes(["Прізвище;Ім'я", "Ткаченко;Марія", "Всього;", "Мельник;Богдан"])
    batch = check(content, "middle.csv", parties)
    assert [(e["line"], e["column"], e["reason"]) for e in batch.errors] == [(3, "Ім'я", "missing")]


@pytest.mark.django_db
def test_apostrophes_are_stored_as_one_and_match_in_every_form(parties):
    stored = ChildFactory(family_name="Мар'яненко", given_name="Мар’яна", patronymic="", sex="F",
                          birth_date=datetime.date(2012, 4, 9))
    content = csv_bytes(["Прізвище;Ім'я;Дата народження;Стать", "Марʼяненко;Мар`яна;09.04.2012;ж",
                         "Дем’янчук;Ярослав;2011;ч"])
    batch = write(check(content, "apostrophes.csv", parties))
    first, second = children_of(batch)
    assert first.pk == stored.pk
    assert second.family_name == "Демʼянчук"
    assert ImportRow.objects.filter(batch=batch, verdict=ImportRow.Verdict.MATCHED).count() == 1


# --- Replies in the other side's words -------------------------------------------------------------


def reply_batch(handover_list: HandoverList, content: bytes, name: str, **mappings: Any) -> ImportBatch:
    batch = import_batch_create(kind="reply", content=content, file_name=name, actor=None,
                                handover_list=handover_list, received_on=datetime.date(2025, 7, 20), **mappings)
    return import_batch_validate(batch_id=batch.pk)


@pytest.mark.django_db
def test_a_reply_with_russian_headers_and_official_phrases_is_read(make_handed_over_list):
    handover_list = make_handed_over_list(9)
    rows: list[list[Any]] = [["№ п/п", "Фамилия", "Имя", "Результат"]]
    phrases = ["Установлено местонахождение", "Находится в г. Таганрог, ГБУ «Центр помощи детям»",
               "Не найден(а)", "Достиг(ла) совершеннолетия", "Выехал(а) за пределы РФ",
               "На территории РФ не значится", "Возвращён(а) законному представителю", "Сведений не имеется",
               "Умер(ла)"]
    for position, phrase in enumerate(phrases, start=1):
        rows.append([f"{position}.", "", "", phrase])
    batch = reply_batch(handover_list, workbook_bytes(rows), "ответ.xlsx")
    assert batch.status == ImportBatch.Status.VALIDATED, batch.errors

    write(batch)
    outcomes = {e.position: e.last_outcome for e in handover_list.entries.all()}
    assert outcomes == {1: "located", 2: "located", 3: "not_found", 4: "now_adult", 5: "left_country",
                        6: "never_on_territory", 7: "returned", 8: "no_information", 9: "deceased"}
    reply = handover_list.replies.get()
    located = reply.outcomes.get(entry__position=2)
    assert located.reported_location == "г. Таганрог, ГБУ «Центр помощи детям»"
    assert located.details == "Находится в г. Таганрог, ГБУ «Центр помощи детям»"


@pytest.mark.django_db
def test_ukrainian_and_english_phrases_and_a_phrase_not_known_is_mapped_never_guessed(make_handed_over_list):
    handover_list = make_handed_over_list(4)
    content = csv_bytes(["No.,Outcome,Comments", "1,Місцеперебування встановлено,", "2,Did not reach us; died,",
                         "3,Дитину не ідентифіковано,", "4,not located,"], bom=False)
    batch = reply_batch(handover_list, content, "reply.csv")
    assert [(e["line"], e["column"]) for e in batch.errors] == [(4, "Outcome")]
    assert batch.summary["unknown_phrases"] == ["Дитину не ідентифіковано"]

    import_batch_remap(batch=batch, columns={}, outcomes={"Дитину не ідентифіковано": "not_found"}, actor=None)
    batch = import_batch_validate(batch_id=batch.pk)
    write(batch)
    assert {e.position: e.last_outcome for e in handover_list.entries.all()} == {
        1: "located", 2: "deceased", 3: "not_found", 4: "not_found"}


@pytest.mark.django_db
def test_a_claim_the_phrase_denies_is_not_read_as_made(make_handed_over_list):
    # "The location cannot be established" names the located phrase, denied: the finding is "not found".
    # A denied return beside a location is the location; a phrase that only denies is left to a person.
    handover_list = make_handed_over_list(5)
    phrases = ["Не может быть установлено местонахождение", "Местонахождение не может быть установлено",
               "Найден, не возвращён", "The child could not be located", "Не возвращён"]
    content = csv_bytes(["No.;Outcome", *(f"{position};{phrase}" for position, phrase in enumerate(phrases, 1))])
    batch = reply_batch(handover_list, content, "denied.csv")
    assert [(e["line"], e["column"]) for e in batch.errors] == [(6, "Outcome")]
    assert batch.summary["unknown_phrases"] == ["Не возвращён"]

    import_batch_remap(batch=batch, columns={}, outcomes={"Не возвращён": "more_information_requested"},
                       actor=None)
    write(import_batch_validate(batch_id=batch.pk))
    assert {e.position: e.last_outcome for e in handover_list.entries.all()} == {
        1: "not_found", 2: "not_found", 3: "located", 4: "not_found", 5: "more_information_requested"}


@pytest.mark.django_db
def test_each_clause_of_a_reply_is_read_and_a_phrase_saying_two_things_is_left_to_the_case_worker(
        make_handed_over_list):
    # As replies write them: a denial after the claim, the request's state after "находится", a finding
    # about a parent beside the child's, a name match, the search still going on, the note in its own column.
    handover_list = make_handed_over_list(12)
    rows: list[list[Any]] = [["Ответ на обращение"], ["№ п/п", "Результат проверки", "Примечание"]]
    phrases = [
        ("Возвращение не представляется возможным", ""), ("Ребёнок не будет возвращён", ""),
        ("Находится на рассмотрении", ""), ("Verification is in progress", ""),
        ("Местонахождение установлено, законный представитель не установлен", ""),
        ("Проживает с бабушкой. Нет сведений о матери", ""),
        ("Найдено совпадение по ФИО, дата рождения не совпадает", ""),
        ("Находится в федеральном розыске", ""), ("Установить местонахождение не представилось возможным", ""),
        ("Сведения о ребенке отсутствуют", ""), ("Передана законному представителю", "вх. № 12/3"),
        ("Проживает с родственниками в г. Ростов-на-Дону", "исх. № 7"),
    ]
    for position, (phrase, note) in enumerate(phrases, 1):
        rows.append([position, phrase, note])
    batch = reply_batch(handover_list, workbook_bytes(rows), "ответ.xlsx")
    # None of the first seven is a firm outcome: each is named for the case worker to map.
    assert [(e["line"], e["column"]) for e in batch.errors] == [(line, "Результат проверки") for line in range(3, 10)]
    assert "reads as more than one" in batch.errors[4]["reason"]
    assert "reads as more than one" in batch.errors[5]["reason"]
    assert batch.summary["unknown_phrases"] == [phrase for phrase, _note in phrases[:7]]

    import_batch_remap(batch=batch, columns={}, actor=None, outcomes={
        phrase: "more_information_requested" for phrase, _note in phrases[:7]})
    write(import_batch_validate(batch_id=batch.pk))
    entries = {e.position: e for e in handover_list.entries.all()}
    assert {position: entries[position].last_outcome for position in range(8, 13)} == {
        8: "not_found", 9: "not_found", 10: "no_information", 11: "returned", 12: "located"}
    located = handover_list.replies.get().outcomes.get(entry__position=12)
    assert located.reported_location == "г. Ростов-на-Дону"
    # The reply's words and its note, both kept.
    assert located.details == "Проживает с родственниками в г. Ростов-на-Дону; исх. № 7"


@pytest.mark.django_db
def test_a_reply_numbering_its_own_rows_is_read_by_the_number_on_the_list_under_a_two_level_header(
        make_handed_over_list):
    handover_list = make_handed_over_list(7)
    entries = {e.position: e.child for e in handover_list.entries.select_related("child")}
    rows: list[list[Any]] = [["№ п/п", "№ по списку", "Сведения о ребенке", None, "Результат проверки"],
                             [None, None, "ФИО", "Место рождения", None]]
    for own, position in ((1, 3), (2, 7)):
        child = entries[position]
        rows.append([own, position, f"{child.family_name} {child.given_name} {child.patronymic}", "г. Мариуполь",
                     "Сведениями не располагаем"])
    content = workbook_bytes(rows, merges=("A1:A2", "B1:B2", "C1:D1", "E1:E2"))
    batch = reply_batch(handover_list, content, "ответ.xlsx")
    assert batch.summary["columns"] == {"position": "№ по списку", "full_name": "ФИО",
                                        "outcome": "Результат проверки"}
    write(batch)
    assert {e.position: e.last_outcome for e in handover_list.entries.exclude(last_outcome="")} == {
        3: "no_information", 7: "no_information"}


@pytest.mark.django_db
def test_what_a_reply_says_of_a_parent_a_request_or_a_town_is_not_the_childs_outcome(make_handed_over_list):
    handover_list = make_handed_over_list(9)
    phrases = ["Мать погибла, ребенок под опекой бабушки", "The child's mother is deceased",
               "Request returned without consideration", "Выехал с матерью в г. Москву",
               "Deadline for reply extended", "Находится в удовлетворительном состоянии",
               "Ребенок с матерью выехал за пределы РФ", "Обучается в колледже в г. Москва",
               "Child is in the care of grandmother"]
    content = csv_bytes(["No.;Outcome", *(f"{position};{phrase}" for position, phrase in enumerate(phrases, 1))])
    batch = reply_batch(handover_list, content, "reply.csv")
    # The first six state nothing firm about the child: each is left to the case worker.
    assert [(e["line"], e["column"]) for e in batch.errors] == [(line, "Outcome") for line in range(2, 8)]
    import_batch_remap(batch=batch, columns={}, actor=None,
                       outcomes={phrase: "more_information_requested" for phrase in phrases[:6]})
    write(import_batch_validate(batch_id=batch.pk))
    reply = handover_list.replies.get()
    assert [(o.entry.position, o.outcome, o.reported_location) for o in
            reply.outcomes.select_related("entry").filter(entry__position__gte=7).order_by("entry__position")] == [
        (7, "left_country", ""), (8, "located", "г. Москва"), (9, "located", "")]


@pytest.mark.django_db
def test_a_hedged_phrase_is_no_firm_outcome_and_is_left_to_the_case_worker(make_handed_over_list):
    handover_list = make_handed_over_list(8)
    phrases = ["Found maybe", "Possibly located in Rostov", "Вероятно, находится в г. Курск",
               "Можливо знайдено", "Предположительно проживает у родственников", "Не исключено, что выехал(а)",
               "Найімовірніше повернувся", "Местонахождение не установлено"]
    content = csv_bytes(["No.;Outcome", *(f"{position};{phrase}" for position, phrase in enumerate(phrases, 1))])
    batch = reply_batch(handover_list, content, "hedged.csv")

    assert [(e["line"], e["column"], e["reason"]) for e in batch.errors] == [
        (line, "Outcome", f"“{phrase}” is not a firm outcome (“{hedge}” hedges it): map it to one in the preview, "
                          "or with --outcomes")
        for line, phrase, hedge in zip(range(2, 9), phrases, ["maybe", "possibly", "вероятно", "можливо",
                                                              "предположительно", "не исключено", "найімовірніше"],
                                       strict=False)]
    assert batch.summary["unknown_phrases"] == phrases[:7]

    import_batch_remap(batch=batch, columns={}, outcomes={phrase: "not_found" for phrase in phrases[:7]}, actor=None)
    write(import_batch_validate(batch_id=batch.pk))
    assert {e.last_outcome for e in handover_list.entries.all()} == {"not_found"}


@pytest.mark.django_db
def test_the_command_maps_reply_phrases_given_to_it(make_handed_over_list, tmp_path, capsys):
    handover_list = make_handed_over_list(2)
    path = tmp_path / "reply.csv"
    path.write_bytes(csv_bytes(["№;Результат", "1;Розыск продолжается", "2;Помещён в приёмную семью"]))
    args = ["--reply-to", handover_list.reference, "--received", "2025-07-20"]
    with pytest.raises(CommandError, match="refused"):
        call_command("import_list", str(path), *args)
    err = capsys.readouterr().err
    assert "Помещён в приёмную семью" in err.split("map these phrases")[1]

    call_command("import_list", str(path), *args, "--outcomes", "Помещён в приёмную семью=located")
    assert {e.position: e.last_outcome for e in handover_list.entries.all()} == {1: "not_found", 2: "located"}


# --- Round trips -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_products_case_export_imports_back_as_the_same_children(parties):
    children = [ChildFactory(family_name="Ткаченко", given_name="Марія", patronymic="Олегівна", sex="F",
                             birth_date=datetime.date(2011, 3, 1), birth_date_precision="month",
                             circumstances="forcibly_transferred", category="orphan"),
                ChildFactory(family_name="Мельник", given_name="Богдан", patronymic="", sex="M",
                             birth_date=datetime.date(2012, 1, 1), birth_date_precision="year")]
    for child in children:
        CaseFactory(child=child)
    cases = cases_for_export(Case.objects.order_by("child__family_name"), lists=HandoverList.objects.all())
    for content, name in ((cases_xlsx(cases, include_restricted=False), "cases.xlsx"),
                          ("".join(cases_csv(cases, include_restricted=False)).encode(), "cases.csv")):
        batch = check(content, name, parties)
        assert batch.status == ImportBatch.Status.VALIDATED, batch.errors
        assert {row.child_id for row in batch.rows.all() if row.verdict == ImportRow.Verdict.MATCHED} == {
            child.pk for child in children}, name
        data = batch.rows.get(child=children[1]).data
        assert (data["circumstances"], data["birth_date_precision"]) == ("deported", "year")
        data = batch.rows.get(child=children[0]).data
        assert (data["circumstances"], data["category"], data["birth_date_precision"]) == (
            "forcibly_transferred", "orphan", "month")


@pytest.mark.django_db
def test_a_handover_document_imports_back_as_it_was_handed_over(parties, make_handed_over_list):
    handover_list = make_handed_over_list(3)
    document = handover_list_xlsx(handover_list)
    batch = check(document, "handed-over.xlsx", (parties[1], parties[0]))
    assert batch.status == ImportBatch.Status.VALIDATED, batch.errors
    assert [(row.position, row.child_id, row.verdict) for row in batch.rows.order_by("position")] == [
        (entry.position, entry.child_id, "matched") for entry in handover_list.entries.order_by("position")]


# --- The same children again, and rows as handed over ----------------------------------------------


@pytest.mark.django_db
def test_children_still_awaiting_a_reply_from_the_recipient_are_refused_unless_confirmed(parties, tmp_path,
                                                                                           capsys):
    content = csv_bytes(["Прізвище;Ім'я;Дата народження", "Ткаченко;Марія;05.03.2011", "Мельник;Богдан;2012"])
    write(check(content, "first.csv", parties, handed_over_on=datetime.date(2025, 6, 2),
                response_due_on=datetime.date(2025, 7, 2), reference="UA-RU-A"))
    again = csv_bytes(["Прізвище;Ім'я;Дата народження", "Ткаченко;Марія;05.03.2011", "Олійник;Софія;2013"])

    batch = check(again, "again.csv", parties, reference="UA-RU-B")
    assert [(r["line"], r["list"], r["position"]) for r in batch.summary["repeats"]] == [(2, "UA-RU-A", 1)]
    with pytest.raises(ExchangeError, match="1 children are still awaiting a reply from Russian delegation"):
        import_batch_start(batch=batch, actor=None)
    assert ListEntry.objects.filter(handover_list__reference="UA-RU-B").count() == 0

    path = tmp_path / "again.csv"
    path.write_bytes(again)
    args = ["--from", "Ukrainian delegation", "--to", "Russian delegation", "--reference", "UA-RU-C"]
    with pytest.raises(CommandError, match="--confirm-repeats"):
        call_command("import_list", str(path), *args)
    assert "line 2: Ткаченко Марія is still awaiting a reply on UA-RU-A as #1" in capsys.readouterr().err
    call_command("import_list", str(path), *args, "--confirm-repeats")
    assert HandoverList.objects.get(reference="UA-RU-C").entries.count() == 2


@pytest.mark.django_db
def test_a_matched_childs_blanks_are_filled_and_the_document_prints_the_row_as_handed_over(parties):
    stored = ChildFactory(family_name="Shevchenko", given_name="Kyrylo", patronymic="", sex="U",
                          birth_date=datetime.date(2014, 10, 7), home_settlement="", home_oblast="")
    content = csv_bytes(["Прізвище;Ім'я;По батькові;Дата народження;Стать;Населений пункт;Область",
                         "ШЕВЧЕНКО;КИРИЛО;ПЕТРОВИЧ;07.10.2014;ч;Генічеськ;Херсонська"])
    batch = write(check(content, "fill.csv", parties))

    stored.refresh_from_db()
    assert (stored.family_name, stored.patronymic, stored.sex, stored.home_settlement, stored.home_oblast) == (
        "Shevchenko", "Петрович", "M", "Генічеськ", "kherson")
    assert stored.history.filter(history_change_reason__startswith="Blank fields filled from").count() == 1
    entry = list_of(batch).entries.get()
    assert entry.as_handed_over["family_name"] == "Шевченко"
    sheet = load_workbook(io.BytesIO(handover_list_xlsx(list_of(batch)))).active
    assert sheet is not None
    printed = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert printed[-1][:4] == [1, "Шевченко", "Кирило", "Петрович"]


@pytest.mark.django_db
def test_a_workbook_declaring_entities_is_refused_unread(parties):
    plain = workbook_bytes([["Прізвище", "Ім'я"], ["Ткаченко", "Марія"]])
    source = zipfile.ZipFile(io.BytesIO(plain))
    crafted = io.BytesIO()
    with zipfile.ZipFile(crafted, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"<worksheet", b'<!DOCTYPE w [<!ENTITY a "aaaaaaaaaa">]>\n<worksheet', 1)
            target.writestr(item, data)
    batch = check(crafted.getvalue(), "crafted.xlsx", parties)
    assert batch.status == ImportBatch.Status.FAILED
    assert batch.errors[0]["reason"].startswith("not a readable .xlsx file")
