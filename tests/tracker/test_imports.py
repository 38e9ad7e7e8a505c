"""Importing handover lists and replies from spreadsheets: as case workers make them, into lists.

Every name here is synthetic. CSV files are written as bytes in the encodings people send; XLSX
files are built with openpyxl, with real spreadsheet dates.
"""

from __future__ import annotations

import datetime
import io
import os
import shutil
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from openpyxl import Workbook

import tracker.services.imports as imports_service
from cases.matching.candidates import find_candidates
from cases.matching.engine import PersonRecord
from cases.models import Case, Child
from config.celery import app
from tests.conftest import DUE, HANDED_OVER
from tests.factories import ChildFactory, OrganisationFactory, UserFactory
from tests.waiting import wait_for
from tracker.models import HandoverList, ImportBatch, ImportRow, ListEntry
from tracker.services.exchange import ExchangeError
from tracker.services.imports import (
    AlreadyImported,
    import_batch_create,
    import_batch_decide,
    import_batch_run,
    import_batch_start,
    import_batch_validate,
    import_files_expire,
)

UA_HEADER = "№;Прізвище;Ім'я;По батькові;Дата народження;Стать;Населений пункт;Область"
UA_ROWS = [
    "1;Ткаченко;Марія;Олегівна;05.03.2011;ж;Маріуполь;Донецька",
    "2;Мельник;Богдан;Іванович;2012;ч;Бердянськ;Запорізька обл.",
    "3;Олійник;Софія;;03.2013;Ж;Херсон;Херсонська область",
]


@pytest.fixture
def parties() -> tuple[Any, Any]:
    return OrganisationFactory(name="Ukrainian delegation"), OrganisationFactory(name="Russian delegation")


def csv_bytes(lines: list[str], encoding: str = "utf-8") -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def xlsx_bytes(rows: list[list[Any]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def validate(content: bytes, name: str, parties: tuple[Any, Any], **params: Any) -> ImportBatch:
    sender, recipient = parties
    params.setdefault("reference", "UA-RU-TEST/1")
    batch = import_batch_create(kind="list", content=content, file_name=name, actor=None, sender=sender,
                                recipient=recipient, **params)
    return import_batch_validate(batch_id=batch.pk)


def import_list(content: bytes, name: str, parties: tuple[Any, Any], proposed: str = "", **params: Any
                ) -> ImportBatch:
    batch = validate(content, name, parties, **params)
    assert batch.status == ImportBatch.Status.VALIDATED, batch.errors
    import_batch_start(batch=batch, actor=None, proposed=proposed)
    return import_batch_run(batch_id=batch.pk, actor=None)


def saved(reference: str = "UA-RU-TEST/1") -> list[tuple[int, str, str, str, str, str, str]]:
    """The list's entries as (position, family, given, birth date, precision, sex, oblast)."""
    return [
        (e.position, e.child.family_name, e.child.given_name, str(e.child.birth_date),
         e.child.birth_date_precision, e.child.sex, e.child.home_oblast)
        for e in ListEntry.objects.filter(handover_list__reference=reference).select_related("child")
        .order_by("position")
    ]


# --- Files as people make them -----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1251"])
def test_ukrainian_headers_semicolons_and_a_title_line_in_any_encoding(parties, encoding):
    content = csv_bytes(["Список дітей для передачі", ";;;", "", UA_HEADER, *UA_ROWS], encoding)

    batch = import_list(content, "list.csv", parties, handed_over_on=HANDED_OVER, response_due_on=DUE)

    assert batch.status == ImportBatch.Status.DONE
    assert saved() == [
        (1, "Ткаченко", "Марія", "2011-03-05", "day", "F", "donetsk"),
        (2, "Мельник", "Богдан", "2012-01-01", "year", "M", "zaporizhzhia"),
        (3, "Олійник", "Софія", "2013-03-01", "month", "F", "kherson"),
    ]
    handover_list = HandoverList.objects.get(reference="UA-RU-TEST/1")
    assert handover_list.status == HandoverList.Status.HANDED_OVER and handover_list.response_due_on == DUE
    assert set(Case.objects.values_list("status", flat=True)) == {Case.Status.AWAITING_REPLY}
    assert batch.summary["new"] == 3 and batch.summary["matched"] == 0


@pytest.mark.django_db
def test_english_headers_in_xlsx_with_real_dates_year_only_and_capitals(parties):
    content = xlsx_bytes([
        ["Children to be handed over, June 2025"],
        [],
        ["No.", "Surname", "First name", "Patronymic", "Date of birth", "Sex", "Settlement", "Oblast"],
        [7, "BONDARENKO", "MAKSYM", "", datetime.datetime(2010, 9, 1), "M", "Bakhmut", "Donetsk"],
        [9, "Kovalchuk", "Anna-Mariia", "", 2015, "F", "Kherson", "Kherson oblast"],
        [12, "Savchenko", "Ivan", "", "2016-02-29", "m", "", "Kyiv city"],
    ])

    import_list(content, "list.xlsx", parties)

    assert saved() == [
        (7, "Bondarenko", "Maksym", "2010-09-01", "day", "M", "donetsk"),
        (9, "Kovalchuk", "Anna-Mariia", "2015-01-01", "year", "F", "kherson"),
        (12, "Savchenko", "Ivan", "2016-02-29", "day", "M", "kyiv_city"),
    ]
    assert HandoverList.objects.get().status == HandoverList.Status.DRAFT, "no hand-over date: a draft"


@pytest.mark.django_db
def test_comma_csv_with_bom_day_first_slashes_and_the_list_reference_in_a_column(parties):
    content = csv_bytes([
        "list reference,family name,given name,birth date",
        "UA-2025-07,Hrytsenko,Hanna,13/06/2010",
        "UA-2025-07,Shevchuk,Bohdan,2010-11-04",
    ], "utf-8-sig")

    batch = import_list(content, "list.csv", parties, reference="")

    assert batch.handover_list is not None
    assert batch.handover_list.reference == "UA-2025-07"
    assert saved("UA-2025-07") == [(1, "Hrytsenko", "Hanna", "2010-06-13", "day", "U", ""),
                                   (2, "Shevchuk", "Bohdan", "2010-11-04", "day", "U", "")]


# --- Bad rows ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_file_with_bad_rows_imports_nothing_and_names_every_bad_row(parties):
    ChildFactory()
    children = Child.objects.count()
    content = csv_bytes([
        "Список", UA_HEADER,
        "1;Ткаченко;Марія;;31.02.2011;ж;Маріуполь;Донецька",
        "2;;Богдан;;2012;ч;;",
        "3;Олійник;Софія;;2013;X;;Атлантида",
        "3;Гнатюк;Остап;;2099;ч;;",
        "5;Бойко;Ілля;;2014;ч;;",
    ])

    batch = validate(content, "bad.csv", parties)

    assert batch.status == ImportBatch.Status.FAILED
    assert [(e["line"], e["column"]) for e in batch.errors] == [
        (3, "Дата народження"), (4, "Прізвище"), (5, "Область"), (5, "Стать"), (6, "Дата народження"), (6, "№"),
    ]
    reasons = {(e["line"], e["column"]): e["reason"] for e in batch.errors}
    assert "not a date of the calendar" in reasons[(3, "Дата народження")]
    assert reasons[(4, "Прізвище")] == "missing"
    assert "in the future" in reasons[(6, "Дата народження")]
    assert "already used on line 5" in reasons[(6, "№")]
    assert Child.objects.count() == children and not HandoverList.objects.exists()
    with pytest.raises(Exception, match="not awaiting confirmation"):
        import_batch_start(batch=batch, actor=None)


@pytest.mark.django_db
def test_a_missing_header_or_the_same_child_twice_is_refused(parties):
    no_header = validate(csv_bytes(["a;b;c", "1;2;3"]), "x.csv", parties)
    assert no_header.status == ImportBatch.Status.FAILED
    assert "no header row found" in no_header.errors[0]["reason"]

    twice = validate(csv_bytes([UA_HEADER, UA_ROWS[0], "2;Tkachenko;Mariia;;2011-03-05;F;Mariupol;"]), "y.csv",
                     parties)
    assert twice.errors == [{"line": 3, "column": "Прізвище", "reason": twice.errors[0]["reason"]}]
    assert "the same child as line 2" in twice.errors[0]["reason"]


@pytest.mark.django_db
@pytest.mark.parametrize("elsewhere", ["another process", "this process, the other not starting",
                                       "this process, the other failing"])
def test_a_long_list_is_searched_for_a_child_listed_twice_in_another_process_with_the_same_answer(
        parties, monkeypatch, elsewhere):
    """A long list's search for a child listed twice runs in another process, beside the match; if that
    process cannot run, this one searches. The file is refused the same way either way."""
    from cases.matching import elsewhere as other_process
    from tracker import spreadsheets

    monkeypatch.setattr(spreadsheets, "SAME_CHILD_ELSEWHERE_FROM", 2)
    started: list[int] = []
    real_start = other_process.SameChildPairs.start

    def start(cls: type, records: list[Any]) -> other_process.SameChildPairs:
        started.append(len(records))
        return real_start(records)

    monkeypatch.setattr(other_process.SameChildPairs, "start", classmethod(start))
    if elsewhere != "another process":
        monkeypatch.setattr(other_process.sys, "executable",
                            "/nonexistent/python" if "starting" in elsewhere else shutil.which("false"))
    rows = [UA_ROWS[0], "4;Tkachenko;Mariia;;2011-03-05;F;Mariupol;", UA_ROWS[1], UA_ROWS[2],
            "5;Мельник;Богдан;Іванович;2012;ч;Бердянськ;"]
    twice = validate(csv_bytes([UA_HEADER, *rows]), "long.csv", parties)
    assert started == [5], "searched elsewhere"
    assert [(error["line"], error["reason"].split(" (")[0]) for error in twice.errors] == [
        (3, "the same child as line 2"), (6, "the same child as line 4")]
    assert twice.status == ImportBatch.Status.FAILED and twice.row_count == 5


@pytest.mark.django_db
def test_a_check_that_fails_while_the_other_process_searches_stops_that_process(parties, monkeypatch):
    from cases.matching import elsewhere as other_process
    from tracker import spreadsheets
    from tracker.services import imports as imports_module

    monkeypatch.setattr(spreadsheets, "SAME_CHILD_ELSEWHERE_FROM", 2)
    started: list[Any] = []
    real_start = other_process.SameChildPairs.start

    def start(cls: type, records: list[Any]) -> other_process.SameChildPairs:
        pending = real_start(records)
        started.append((pending, pending._process))
        return pending

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the match broke")

    monkeypatch.setattr(other_process.SameChildPairs, "start", classmethod(start))
    monkeypatch.setattr(imports_module, "_match_list_rows", broken)
    with pytest.raises(RuntimeError, match="the match broke"):
        validate(csv_bytes([UA_HEADER, *UA_ROWS]), "broken.csv", parties)
    [(pending, process)] = started
    assert process is not None and process.poll() is not None, "the other process was stopped and reaped"
    assert pending._process is None


@pytest.mark.django_db
def test_the_command_refuses_the_bad_file_then_imports_the_corrected_one(parties, tmp_path, capsys):
    bad = tmp_path / "list.csv"
    bad.write_bytes(csv_bytes([UA_HEADER, UA_ROWS[0], "2;Мельник;Богдан;;12.13.2012;ч;;", UA_ROWS[2]]))
    args = ["--from", "Ukrainian delegation", "--to", "Russian delegation", "--handed-over", "2025-06-02",
            "--due", "2025-07-02", "--reference", "UA-RU-CLI/1"]

    with pytest.raises(CommandError, match="refused: 1 problem"):
        call_command("import_list", str(bad), *args)
    assert "line 3, Дата народження: “12.13.2012” is not a date of the calendar" in capsys.readouterr().err
    assert not Child.objects.exists()

    bad.write_bytes(csv_bytes([UA_HEADER, *UA_ROWS]))
    call_command("import_list", str(bad), *args)
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "UA-RU-CLI/1: 3 rows, 0 matched, 0 proposed and accepted, 3 new, 0 errors"
    assert out[0].startswith("columns read: № → position, Прізвище → family_name")

    call_command("import_list", str(bad), *args)
    assert "was already imported as list UA-RU-CLI/1" in capsys.readouterr().out
    assert Child.objects.count() == 3 and HandoverList.objects.count() == 1


@pytest.mark.django_db
def test_an_imported_handed_over_list_reads_as_one_added_to_then_handed_over(parties, stored):
    worker = UserFactory()
    # One row names a stored child (whose case is open), the others are new children.
    open_case = Case.objects.create(child=stored["daryna"], status=Case.Status.OPEN)
    content = csv_bytes([UA_HEADER, "1;Коваленко;Дарина;Петрівна;09.04.2012;ж;Маріуполь;Донецька", *UA_ROWS[1:]])
    batch = validate(content, "list.csv", parties, handed_over_on=HANDED_OVER, response_due_on=DUE)
    import_batch_start(batch=batch, actor=worker)
    import_batch_run(batch_id=batch.pk, actor=worker)

    handed = HandoverList.objects.get(reference="UA-RU-TEST/1")
    assert (handed.status, handed.handed_over_on, handed.response_due_on) == ("handed_over", HANDED_OVER, DUE)
    entries = list(handed.entries.select_related("case", "child").order_by("position"))
    assert [(e.position, e.reply_state, e.due_on) for e in entries] == [
        (1, "awaiting", DUE), (2, "awaiting", DUE), (3, "awaiting", DUE)]
    assert [e.age_at_listing for e in entries] == [13, 13, 12], "ages on the hand-over date, by what is known"
    assert entries[0].case == open_case
    for entry in entries:
        assert entry.case.status == Case.Status.AWAITING_REPLY
        timeline = [(e.kind, e.from_status, e.to_status, e.actor_id) for e in entry.case.events.order_by("pk")]
        assert timeline[-2:] == [
            ("added_to_list", "open", "on_list", worker.pk),
            ("list_handed_over", "on_list", "awaiting_reply", worker.pk),
        ]
        # A new child's case opens with the import; the stored child's case was open already.
        assert len(timeline) == (2 if entry.case == open_case else 3)
        assert entry.case == open_case or timeline[0] == ("opened", "", "open", worker.pk)
        messages = list(entry.case.events.order_by("pk").values_list("message", flat=True))
        assert messages[-2:] == [f"Added to list UA-RU-TEST/1 as #{entry.position}",
                                 "List UA-RU-TEST/1 handed over to Russian delegation on 2025-06-02"]
        # One history row for the entry, written as it was saved: awaiting its reply.
        assert [(h.history_type, h.reply_state, h.history_user_id) for h in entry.history.all()] == [
            ("+", "awaiting", worker.pk)]
        assert entry.case.history.first().status == Case.Status.AWAITING_REPLY
    assert [(h.history_type, h.history_user_id) for h in entries[1].child.history.all()] == [("+", worker.pk)]


@pytest.mark.django_db
def test_the_same_file_twice_creates_nothing_the_second_time(parties):
    content = csv_bytes([UA_HEADER, *UA_ROWS])
    import_list(content, "list.csv", parties)
    counts = (Child.objects.count(), Case.objects.count(), ListEntry.objects.count())

    with pytest.raises(AlreadyImported):
        validate(content, "list-again.csv", parties, reference="UA-RU-TEST/2")

    assert (Child.objects.count(), Case.objects.count(), ListEntry.objects.count()) == counts


# --- Matching ----------------------------------------------------------------------------------


@pytest.fixture
def stored() -> dict[str, Child]:
    return {
        "kyrylo": ChildFactory(family_name="Shevchenko", given_name="Kyrylo", patronymic="", sex="M",
                               birth_date=datetime.date(2014, 10, 7), home_settlement="Henichesk"),
        "daryna": ChildFactory(family_name="Коваленко", given_name="Дарина", patronymic="Петрівна", sex="F",
                               birth_date=datetime.date(2012, 4, 9), home_settlement="Маріуполь"),
        "viktoriia": ChildFactory(family_name="Tkachenko", given_name="Viktoriia", patronymic="Dmytrivna",
                                  sex="F", birth_date=datetime.date(2021, 1, 15), home_settlement="Berdiansk"),
    }


@pytest.mark.django_db
def test_rows_match_stored_children_across_scripts_forms_and_order(parties, stored):
    content = csv_bytes([
        "Прізвище;Ім'я;По батькові;Дата народження;Стать;Населений пункт",
        "Шевченко;Кирилл;Ярославович;07.10.2014;м;Геническ",   # Cyrillic, Russian form of the given name
        "Вікторія;Ткаченко;Дмитрівна;15.01.2021;;Бердянськ",    # names swapped, Cyrillic for Latin
        "Коваленко;Діана;Петрівна;09.04.2012;ж;Маріуполь",      # Daryna's twin sister: another child
        "Kovalenko;Daryna;;19.04.2012;;",                       # one digit off: for a person to judge
        "Петренко;Олег;;2015;ч;Херсон",                         # nobody close
    ])

    batch = validate(content, "match.csv", parties)

    rows = {row.line_number: row for row in batch.rows.all()}
    assert (rows[2].verdict, rows[2].child) == (ImportRow.Verdict.MATCHED, stored["kyrylo"])
    assert (rows[3].verdict, rows[3].child) == (ImportRow.Verdict.MATCHED, stored["viktoriia"])
    assert any("swapped" in reason for reason in rows[3].reasons)
    assert rows[4].verdict == ImportRow.Verdict.NEW and rows[4].child is None
    assert (rows[5].verdict, rows[5].child) == (ImportRow.Verdict.PROPOSED, stored["daryna"])
    assert rows[6].verdict == ImportRow.Verdict.NEW
    assert batch.summary | {"rows": 5, "matched": 2, "proposed": 1, "new": 2} == batch.summary

    with pytest.raises(Exception, match="decide the proposed matches first \\(lines 5\\)"):
        import_batch_start(batch=batch, actor=None)
    import_batch_decide(batch=batch, decisions={5: "accept"}, actor=None)
    import_batch_start(batch=batch, actor=None)
    done = import_batch_run(batch_id=batch.pk, actor=None)

    assert done.status == ImportBatch.Status.DONE
    assert Child.objects.count() == 3 + 2, "two new children: the twin and the stranger"
    on_list = set(ListEntry.objects.values_list("child_id", flat=True))
    assert {stored["kyrylo"].pk, stored["viktoriia"].pk, stored["daryna"].pk} <= on_list
    stored["kyrylo"].refresh_from_db()
    assert "Шевченко Кирилл Ярославович" in stored["kyrylo"].aliases, "the new spelling is kept"


@pytest.mark.django_db
def test_candidate_search_costs_the_same_queries_for_one_row_or_many(stored):
    ChildFactory.create_batch(30)
    one = [PersonRecord(family_name="Шевченко", given_name="Кирило", birth_date="2014-10-07")]
    many = one * 10 + [PersonRecord(family_name=f"Name{i}", given_name="Іван", birth_date="2012") for i in range(40)]

    with CaptureQueriesContext(connection) as for_one:
        assert find_candidates(one)[0][0].child == stored["kyrylo"]
    with CaptureQueriesContext(connection) as for_many:
        found = find_candidates(many)

    # One query for the children filed under the records' keys (with what the quick test needs of
    # them), one for the fields of those that pass it.
    assert len(for_one) == len(for_many) == 2
    assert all(candidates[0].child == stored["kyrylo"] for candidates in found[:10])
    assert "cases_childmatchkey" in for_many.captured_queries[0]["sql"]


# --- Replies -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_reply_file_answers_entries_by_number_or_by_name(parties, make_handed_over_list):
    handover_list = make_handed_over_list(3)
    entries = list(handover_list.entries.select_related("child").order_by("position"))
    third = entries[2].child
    content = xlsx_bytes([
        ["№", "Прізвище", "Ім'я", "По батькові", "Результат", "Деталі", "Місце перебування"],
        [1, "", "", "", "знайдено", "у прийомній родині", "Ростов-на-Дону"],
        [2, "", "", "", "not found", "", ""],
        [None, third.family_name_latin, third.given_name_latin, third.patronymic_latin, "немає інформації", "", ""],
    ])
    batch = import_batch_create(kind="reply", content=content, file_name="reply.xlsx", actor=None,
                                handover_list=handover_list, received_on=DUE)
    batch = import_batch_validate(batch_id=batch.pk)
    assert batch.status == ImportBatch.Status.VALIDATED, batch.errors
    assert [row.position for row in batch.rows.all()] == [1, 2, 3]

    import_batch_start(batch=batch, actor=None)
    done = import_batch_run(batch_id=batch.pk, actor=None)

    assert done.summary["answered"] == 3
    assert [(e.last_outcome, e.reply_state) for e in handover_list.entries.order_by("position")] == [
        ("located", "answered"), ("not_found", "answered"), ("no_information", "answered")]
    assert done.reply is not None
    assert done.reply.outcomes.get(entry__position=1).reported_location == "Ростов-на-Дону"


@pytest.mark.django_db
def test_a_reply_naming_another_child_or_a_number_not_on_the_list_is_refused(make_handed_over_list):
    handover_list = make_handed_over_list(2)
    content = csv_bytes(["№,Прізвище,Ім'я,Результат", "1,Петренко,Олег,located", "9,,,located", "2,,,maybe"])
    batch = import_batch_create(kind="reply", content=content, file_name="reply.csv", actor=None,
                                handover_list=handover_list, received_on=DUE)
    batch = import_batch_validate(batch_id=batch.pk)
    assert [(e["line"], e["column"]) for e in batch.errors] == [(4, "Результат")]

    content = csv_bytes(["№,Прізвище,Ім'я,Результат", "1,Петренко,Олег,located", "9,,,located"])
    batch = import_batch_create(kind="reply", content=content, file_name="reply2.csv", actor=None,
                                handover_list=handover_list, received_on=DUE)
    batch = import_batch_validate(batch_id=batch.pk)
    assert [(e["line"], e["column"]) for e in batch.errors] == [(2, "Прізвище"), (3, "№")]
    assert "is not on list" in batch.errors[1]["reason"]
    assert not handover_list.replies.exists()


# --- The admin ---------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(username="importer", is_superuser=True))
    return client


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_admin_upload_preview_review_and_confirm(redis_worker, admin_client, parties, stored):
    content = csv_bytes([
        "Прізвище;Ім'я;Дата народження",
        "Шевченко;Кирилл;07.10.2014",
        "Kovalenko;Daryna;19.04.2012",
        "Петренко;Олег;2015",
    ])
    upload = io.BytesIO(content)
    upload.name = "from-the-field.csv"
    sender, recipient = parties

    response = admin_client.post(reverse("admin:tracker_importbatch_add"), {
        "kind": "list", "file": upload, "sender": sender.pk, "recipient": recipient.pk,
        "reference": "UA-ADMIN/1", "handed_over_on": "2025-06-02", "response_due_on": "2025-07-02",
    })
    batch = ImportBatch.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{batch.pk}/change/")
    # The file is read and checked by a worker, not in the upload's request.
    _wait_for(batch, {ImportBatch.Status.VALIDATED, ImportBatch.Status.FAILED})

    preview = admin_client.get(response["Location"])
    page = preview.content.decode()
    assert "Ready to confirm" in page and "Possibly a stored child: review" in page
    assert reverse("admin:cases_child_change", args=[stored["daryna"].pk]) in page
    assert 'name="decision-3"' in page and "Шевченко Кирилл" in page
    assert not HandoverList.objects.exists(), "nothing saved before the confirmation"

    refused = admin_client.post(response["Location"], {"_confirm": "1"}, follow=True)
    assert "decide the proposed matches first (lines 3)" in refused.content.decode()
    admin_client.post(response["Location"], {"_confirm": "1", "decision-3": "reject"})

    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.DONE
    assert Child.objects.count() == 3 + 2, "the rejected proposal and the stranger are new children"
    assert HandoverList.objects.get(reference="UA-ADMIN/1").entries.count() == 3
    done = admin_client.get(response["Location"]).content.decode()
    assert "Imported" in done
    assert "rows: 3; same child as a stored one: 1; proposed matches accepted: 0; new children: 2" in done
    assert "entry: 0" not in done, "the preview's counts are not repeated as the import's result"
    assert "say for each whether" not in done, "nothing is left to decide once imported"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_admin_shows_a_refused_file_with_its_bad_rows(redis_worker, admin_client, parties):
    upload = io.BytesIO(csv_bytes([UA_HEADER, "1;Ткаченко;;2011;ж;;"]))
    upload.name = "bad.csv"
    response = admin_client.post(reverse("admin:tracker_importbatch_add"), {
        "kind": "list", "file": upload, "sender": parties[0].pk, "recipient": parties[1].pk, "reference": "X/1",
    })
    _wait_for(ImportBatch.objects.get(), {ImportBatch.Status.FAILED, ImportBatch.Status.VALIDATED})
    page = admin_client.get(response["Location"]).content.decode()
    assert "Refused: nothing was imported" in page and "<td>2</td><td>Ім&#x27;я</td><td>missing</td>" in page


@pytest.mark.django_db
def test_child_page_shows_possible_duplicates_and_merges_after_confirmation(admin_client, stored):
    twin = ChildFactory(family_name="Шевченко", given_name="Кирило", patronymic="", sex="M",
                        birth_date=datetime.date(2014, 10, 7))
    page = admin_client.get(reverse("admin:cases_child_duplicates", args=[stored["kyrylo"].pk])).content.decode()
    assert reverse("admin:cases_child_merge", args=[stored["kyrylo"].pk, twin.pk]) in page

    url = reverse("admin:cases_child_merge", args=[stored["kyrylo"].pk, twin.pk])
    assert "Yes, merge" in admin_client.get(url).content.decode()
    admin_client.post(url, {"note": "same birth certificate"})

    twin.refresh_from_db()
    assert twin.merged_into == stored["kyrylo"]


# --- A large file through Celery ---------------------------------------------------------------


@pytest.fixture
def redis_worker(transactional_db):
    app.control.purge()
    with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False, shutdown_timeout=10) as worker:
        yield worker


@pytest.mark.slow
def test_a_large_file_is_checked_and_imported_by_a_celery_job(redis_worker, settings, parties):
    settings.TRACKER_IMPORT_INLINE_ROWS = 5
    families = ["Ткаченко", "Мельник", "Олійник", "Гнатюк", "Бойко", "Савчук", "Кравець", "Лисенко"]
    givens = ["Марія", "Богдан", "Софія", "Остап", "Ілля", "Дарина"]
    lines = [f"{n + 1};{families[n % 8]};{givens[n // 8]};;{2008 + n % 12}-0{1 + n % 9}-1{n % 10};;"
             for n in range(40)]
    upload = io.BytesIO(csv_bytes(["№;Прізвище;Ім'я;По батькові;Дата народження;Стать;Населений пункт", *lines]))
    upload.name = "big.csv"
    client = __import__("django.test", fromlist=["Client"]).Client()
    client.force_login(UserFactory(username="big.importer", is_superuser=True))

    response = client.post(reverse("admin:tracker_importbatch_add"), {
        "kind": "list", "file": upload, "sender": parties[0].pk, "recipient": parties[1].pk, "reference": "BIG/1",
    })
    batch = ImportBatch.objects.get()
    _wait_for(batch, {ImportBatch.Status.VALIDATED, ImportBatch.Status.FAILED})
    assert batch.status == ImportBatch.Status.VALIDATED, batch.errors
    assert batch.row_count == 40

    client.post(response["Location"], {"_confirm": "1"})
    _wait_for(batch, {ImportBatch.Status.DONE, ImportBatch.Status.FAILED})
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    assert HandoverList.objects.get(reference="BIG/1").entries.count() == 40
    assert "Imported" in client.get(response["Location"]).content.decode()


def _wait_for(batch: ImportBatch, statuses: set[str], timeout: float = 60) -> None:
    def settled() -> bool:
        batch.refresh_from_db()
        return batch.status in statuses

    if not wait_for(settled, timeout):
        raise AssertionError(f"import {batch.pk} still {batch.status}")


@pytest.mark.django_db
def test_admin_import_page_needs_the_right_to_see_imports(client, parties):
    # The preview names every child of the file: a staff member without the right to see
    # imports is sent away, and cannot confirm one either.
    batch = validate(csv_bytes([UA_HEADER, *UA_ROWS]), "list.csv", parties)
    client.force_login(UserFactory(username="no.rights"))
    url = reverse("admin:tracker_importbatch_change", args=[batch.pk])

    page = client.get(url)
    confirm = client.post(url, {"_confirm": "1"})

    assert page.status_code == 403 and "Ткаченко" not in page.content.decode()
    assert confirm.status_code == 403
    batch.refresh_from_db()
    assert batch.status == ImportBatch.Status.VALIDATED and not HandoverList.objects.exists()


@pytest.mark.django_db
def test_a_file_over_the_size_limit_is_refused_before_it_is_read(admin_client, parties, settings):
    settings.TRACKER_IMPORT_MAX_BYTES = 2 * 2**20
    upload = io.BytesIO(csv_bytes([UA_HEADER, *["1;Ткаченко;Марія;;2011;ж;;"] * 90_000]))
    upload.name = "huge.csv"
    response = admin_client.post(reverse("admin:tracker_importbatch_add"), {
        "kind": "list", "file": upload, "sender": parties[0].pk, "recipient": parties[1].pk, "reference": "H/1"})
    assert response.status_code == 200
    assert "at most 2 MB is taken in one import: split it into several files" in response.content.decode()
    assert not ImportBatch.objects.exists()
    with pytest.raises(ExchangeError, match="at most 2 MB"):
        import_batch_create(kind="list", content=b"x" * (2 * 2**20 + 1), file_name="huge.csv", actor=None,
                            sender=parties[0], recipient=parties[1])


@pytest.mark.django_db
def test_a_file_with_more_rows_than_one_import_takes_is_refused_with_its_count(parties, settings):
    settings.TRACKER_IMPORT_MAX_ROWS = 100
    lines = [f"{n + 1};Ткаченко;Марія;;{1 + n % 28:02d}.05.2011;ж;;" for n in range(120)]
    batch = validate(csv_bytes([UA_HEADER, *lines]), "long.csv", parties)
    assert batch.status == ImportBatch.Status.FAILED
    assert batch.errors == [{"line": None, "column": "",
                             "reason": "the file has 120 rows; one import takes at most 100: split it into several "
                                       "files"}]
    xlsx = xlsx_bytes([UA_HEADER.split(";"), *[line.split(";") for line in lines * 4]])
    refused = validate(xlsx, "long.xlsx", parties, reference="UA-RU-TEST/2")
    assert refused.errors[0]["reason"] == ("the file has more than 100 rows; one import takes at most 100: split "
                                           "it into several files"), "the reading stops early on a huge sheet"


@pytest.mark.django_db
def test_uploaded_files_are_deleted_after_their_retention_and_the_record_stays(parties, settings):
    settings.TRACKER_IMPORT_FILE_RETENTION_DAYS = 30
    done = import_list(csv_bytes([UA_HEADER, *UA_ROWS]), "list.csv", parties)
    left = import_batch_create(kind="list", content=csv_bytes([UA_HEADER, *UA_ROWS[:1]]), file_name="left.csv",
                               actor=None, sender=parties[0], recipient=parties[1], reference="LEFT/1")
    fresh = import_batch_create(kind="list", content=csv_bytes([UA_HEADER, *UA_ROWS[1:]]), file_name="new.csv",
                                actor=None, sender=parties[0], recipient=parties[1], reference="NEW/1")
    paths = {batch.pk: batch.file.path for batch in (done, left, fresh)}
    month_ago = timezone.now() - datetime.timedelta(days=31)
    ImportBatch.objects.filter(pk=done.pk).update(finished_at=month_ago)
    ImportBatch.objects.filter(pk=left.pk).update(updated_at=month_ago)

    assert import_files_expire() == 2
    assert import_files_expire() == 0, "safe to run twice"
    assert not os.path.exists(paths[done.pk]) and not os.path.exists(paths[left.pk])
    assert os.path.exists(paths[fresh.pk])
    kept = ImportBatch.objects.get(pk=done.pk)
    assert kept.file.name == "" and kept.summary["rows"] == 3 and kept.status == ImportBatch.Status.DONE


@pytest.mark.django_db
def test_new_children_written_chunk_by_chunk_are_every_row_once_in_its_place(parties, monkeypatch):
    """A register's new children go in by chunks: with chunks of two, seven rows are four chunks, and
    each row is its own child, on its own number, with its own match keys."""
    monkeypatch.setattr(imports_service, "NEW_CHILDREN_CHUNK", 2)
    named = [("Гнатюк", "Ярина"), ("Стельмах", "Богдан"), ("Мазурик", "Соломія"), ("Дзюбенко", "Тарас"),
             ("Волошин", "Олеся"), ("Кравець", "Назар"), ("Пилипчук", "Зоряна")]
    rows = [f"{index};{family};{given};;0{index}.02.2013;{'ж' if index % 2 else 'ч'};Херсон;Херсонська"
            for index, (family, given) in enumerate(named, start=1)]
    batch = import_list(csv_bytes([UA_HEADER, *rows]), "chunks.csv", parties)
    assert batch.status == ImportBatch.Status.DONE, batch.errors
    assert batch.summary["new"] == 7
    assert [(position, family, given) for position, family, given, *_rest in saved()] == [
        (index, family, given) for index, (family, given) in enumerate(named, start=1)]
    children = Child.objects.filter(family_name__in=[family for family, _given in named])
    assert children.count() == 7
    for child in children:
        assert child.match_keys.exists() and child.family_name_latin and child.search_names
        assert find_candidates([PersonRecord(family_name=child.family_name, given_name=child.given_name,
                                             birth_date=str(child.birth_date))])[0][0].child == child
