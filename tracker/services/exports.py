"""Files made from the tracker's records: a handover list as the document handed over, and case exports.

What an export may carry:

- A handover list (XLSX, PDF) carries only `HANDOVER_FIELDS`: identity, birth, home, circumstances and
  last known place. Never `Child.RESTRICTED_FIELDS`, whoever asks: the document goes to the other party.
- A case export (CSV, XLSX) carries the restricted fields only for a case shared with a partner under a
  share that grants them (`include_restricted=True` and the row's `restricted_shared` annotation), the
  same rule as the API's JSON. Case workers' exports, from the admin or through the API with a session,
  never carry them: a case worker can read every child, so such a file would hold every guardian's
  contact at once, and once copied no read of it is logged. They read those fields on the child's
  page, one logged read at a time.

Every function here runs a fixed number of queries whatever the number of rows.
"""

from __future__ import annotations

import csv
import datetime
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.http import content_disposition_header
from openpyxl import Workbook
from openpyxl.cell import Cell, WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.worksheet import Worksheet
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.platypus.flowables import Flowable

from cases.matching.names import transliterate_uk
from cases.models import Case, Child, Circumstances, Oblast, Sex
from tracker.models import HandoverList, ListEntry

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
PDF_CONTENT_TYPE = "application/pdf"
# Rows fetched (and their reads logged) at a time when a case export streams.
EXPORT_CHUNK = 500

# The other party reads Ukrainian; the mediators and partners read English. Values that are codes
# in the database are written in both, like the headers.
SEX_UK: dict[str, str] = {Sex.FEMALE: "Ж / F", Sex.MALE: "Ч / M", Sex.UNKNOWN: "—"}
OBLAST_UK = {
    Oblast.CHERKASY: "Черкаська", Oblast.CHERNIHIV: "Чернігівська", Oblast.CHERNIVTSI: "Чернівецька",
    Oblast.CRIMEA: "Автономна Республіка Крим", Oblast.DNIPROPETROVSK: "Дніпропетровська",
    Oblast.DONETSK: "Донецька", Oblast.IVANO_FRANKIVSK: "Івано-Франківська", Oblast.KHARKIV: "Харківська",
    Oblast.KHERSON: "Херсонська", Oblast.KHMELNYTSKYI: "Хмельницька", Oblast.KIROVOHRAD: "Кіровоградська",
    Oblast.KYIV_CITY: "м. Київ", Oblast.KYIV: "Київська", Oblast.LUHANSK: "Луганська", Oblast.LVIV: "Львівська",
    Oblast.MYKOLAIV: "Миколаївська", Oblast.ODESA: "Одеська", Oblast.POLTAVA: "Полтавська",
    Oblast.RIVNE: "Рівненська", Oblast.SEVASTOPOL: "м. Севастополь", Oblast.SUMY: "Сумська",
    Oblast.TERNOPIL: "Тернопільська", Oblast.VINNYTSIA: "Вінницька", Oblast.VOLYN: "Волинська",
    Oblast.ZAKARPATTIA: "Закарпатська", Oblast.ZAPORIZHZHIA: "Запорізька", Oblast.ZHYTOMYR: "Житомирська",
}
CIRCUMSTANCES_UK = {
    Circumstances.DEPORTED: "Депортовано",
    Circumstances.FORCIBLY_TRANSFERRED: "Примусово переміщено",
    Circumstances.HELD_IN_OCCUPIED_TERRITORY: "Утримується на окупованій території",
    Circumstances.PLACED_WITH_FAMILY: "Передано в сім'ю",
    Circumstances.IN_INSTITUTION: "У закладі",
    Circumstances.OTHER: "Інше",
}
NONE = "—"


def safe_name(text: str) -> str:
    """A list's reference as a file or sheet name: no path separators, nothing a spreadsheet refuses."""
    return re.sub(r'[/\\?*\[\]:"<>|\x00-\x1f]', "-", text)


def attachment(filename: str) -> dict[str, str]:
    """A download's headers; the name also in RFC 5987 form, for a reference in Cyrillic."""
    header = content_disposition_header(as_attachment=True, filename=safe_name(filename))
    return {"Content-Disposition": header or "attachment"}


def _bilingual(uk: dict[Any, str], choices: Any, value: str) -> str:
    if not value:
        return NONE
    return f"{uk.get(value, value)} / {choices(value).label}" if value in choices.values else value


def _latin_name(child: Child) -> str:
    return " ".join(p for p in (child.family_name_latin, child.given_name_latin, child.patronymic_latin) if p)


def _handed(entry: ListEntry, key: str) -> Any:
    """What the document says of a child: the entry's row as it was handed over where it keeps one (an
    imported list), else the child as stored."""
    row = entry.as_handed_over
    if not row:
        child = entry.child
        return {"family_name": child.family_name, "given_name": child.given_name, "patronymic": child.patronymic,
                "latin": _latin_name(child), "birth": _birth(child.birth_date, child.birth_date_precision),
                "sex": child.sex, "settlement": child.home_settlement, "oblast": child.home_oblast,
                "circumstances": child.circumstances, "last_known_location": child.last_known_location}[key]
    if key == "latin":
        parts = [row.get(f"{part}_latin") or transliterate_uk(row.get(part, ""))
                 for part in ("family_name", "given_name", "patronymic")]
        return " ".join(part for part in parts if part)
    if key == "birth":
        text = row.get("birth_date_text", "")
        return datetime.date.fromisoformat(text) if len(text) == 10 else text
    return row.get(key, "")


def _birth(born: datetime.date | None, precision: str) -> datetime.date | str:
    """A birth date known to the day as a date; one known to the month or year as its text (2011-03, 2011)."""
    if born is None:
        return ""
    if precision == Child.DatePrecision.DAY:
        return born
    return f"{born:%Y}" if precision == Child.DatePrecision.YEAR else f"{born:%Y-%m}"


Value = str | int | datetime.date


@dataclass(frozen=True)
class HandoverColumn:
    uk: str
    en: str
    value: Callable[[ListEntry], Value]
    # Relative width: XLSX characters, and the PDF's share of the page.
    width: float


# What a delegation hands over about each child, in the document's order. Restricted fields are not
# among them, and nothing else reaches the handover document.
HANDOVER_FIELDS: tuple[HandoverColumn, ...] = (
    HandoverColumn("№", "No.", lambda e: e.position, 4),
    HandoverColumn("Прізвище", "Family name", lambda e: _handed(e, "family_name"), 14),
    HandoverColumn("Ім'я", "Given name", lambda e: _handed(e, "given_name"), 11),
    HandoverColumn("По батькові", "Patronymic", lambda e: _handed(e, "patronymic") or NONE, 13),
    HandoverColumn("Латиницею", "Latin", lambda e: _handed(e, "latin") or NONE, 25),
    HandoverColumn("Дата народження", "Date of birth", lambda e: _handed(e, "birth") or NONE, 12),
    HandoverColumn("Стать", "Sex", lambda e: SEX_UK.get(_handed(e, "sex") or "U", _handed(e, "sex")), 6),
    HandoverColumn("Населений пункт", "Settlement", lambda e: _handed(e, "settlement") or NONE, 14),
    HandoverColumn("Область", "Oblast", lambda e: _bilingual(OBLAST_UK, Oblast, _handed(e, "oblast")), 17),
    HandoverColumn("Обставини", "Circumstances",
                   lambda e: _bilingual(CIRCUMSTANCES_UK, Circumstances, _handed(e, "circumstances")), 22),
    HandoverColumn("Останнє відоме місце", "Last known location",
                   lambda e: _handed(e, "last_known_location") or NONE, 22),
)


def handover_entries(handover_list: HandoverList) -> list[ListEntry]:
    """The list's entries by number with their children: the one query behind both documents."""
    # Withdrawn entries stay: the document is the list as it was handed over, and replies cite numbers.
    return list(handover_list.entries.select_related("child").order_by("position"))


def _date(value: datetime.date | None) -> str:
    # As dates are written in Ukraine, for both readers of the document.
    return f"{value:%d.%m.%Y}" if value else NONE


def handover_title_lines(handover_list: HandoverList, count: int) -> list[tuple[str, str]]:
    """The title block, as (label, value) pairs: reference, parties, round, dates, number of children."""
    lst = handover_list
    return [
        ("Список / List", f"{lst.reference}" + (f" — {lst.title}" if lst.title else "")),
        ("Від → Кому / From → To", f"{lst.sender.name} → {lst.recipient.name}"),
        ("Раунд / Round", lst.round.name if lst.round is not None else NONE),
        ("Дата передачі / Handed over on", _date(lst.handed_over_on)),
        ("Відповідь до / Reply due by", _date(lst.response_due_on)),
        ("Кількість дітей / Number of children", str(count)),
    ]


def _list_with_parties(handover_list: HandoverList) -> HandoverList:
    """The list again with its parties and round, in one query, whatever the caller fetched."""
    return HandoverList.objects.select_related("sender", "recipient", "round").get(pk=handover_list.pk)


# --- XLSX -----------------------------------------------------------------------------------------


DATE_FORMAT = "DD.MM.YYYY"
DATE_TIME_FORMAT = "DD.MM.YYYY HH:MM"


def _text_cell(sheet: WriteOnlyWorksheet, value: Value, font: Font | None = None) -> Cell:
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        value = datetime.datetime.combine(value, datetime.time())
    cell = WriteOnlyCell(sheet, value=value)
    # Dates as dates, which a spreadsheet sorts and filters, shown as the readers write them.
    if isinstance(value, datetime.datetime):
        cell.number_format = DATE_FORMAT if value.time() == datetime.time() else DATE_TIME_FORMAT
    # A text starting with "=" would otherwise be stored as a formula; a partner can write the last
    # known location, so every text is stored as text.
    if isinstance(value, str):
        cell.data_type = "s"
    if font is not None:
        cell.font = font
    return cell


def handover_list_xlsx(handover_list: HandoverList) -> bytes:
    handover_list = _list_with_parties(handover_list)
    entries = handover_entries(handover_list)
    # Write-only: rows go to a temporary file as they are added, so a list of thousands stays small in memory.
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=safe_name(handover_list.reference)[:31])
    for index, column in enumerate(HANDOVER_FIELDS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = column.width + 2
    bold = Font(bold=True)
    title_lines = handover_title_lines(handover_list, len(entries))
    header_row = len(title_lines) + 2
    sheet.freeze_panes = f"B{header_row + 1}"
    sheet.print_title_rows = f"{header_row}:{header_row}"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = Worksheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True

    # One cell a line, so that it runs on over the empty cells to its right, whatever the columns' widths.
    for number, (label, value) in enumerate(title_lines):
        sheet.append([_text_cell(sheet, f"{label}: {value}", bold if number == 0 else None)])
    sheet.append([])
    wrapped = Alignment(wrap_text=True, vertical="top")

    def row(values: Iterable[Value], font: Font | None = None) -> list[Cell]:
        cells = [_text_cell(sheet, value, font) for value in values]
        for cell in cells:
            cell.alignment = wrapped
        return cells

    sheet.append(row((f"{column.uk}\n{column.en}" for column in HANDOVER_FIELDS), bold))
    for entry in entries:
        sheet.append(row(column.value(entry) for column in HANDOVER_FIELDS))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


# --- PDF ------------------------------------------------------------------------------------------

FONT = "SourceSansPro"
FONT_BOLD = "SourceSansPro-Bold"


@cache
def register_fonts() -> None:
    """Embed a font with Cyrillic (Source Sans Pro, shipped by a pinned PyPI package, so no system font
    is needed): the PDF's built-in fonts have no Cyrillic and would print black boxes."""
    font_dir = files("font_source_sans_pro") / "files"
    pdfmetrics.registerFont(TTFont(FONT, str(font_dir / "SourceSansPro-Regular.ttf")))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, str(font_dir / "SourceSansPro-Bold.ttf")))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD)


class PagedCanvas(Canvas):
    """Holds each page back until the last one is laid out, so that every footer can say "of Y"."""

    footer = ""
    # "%(number)d" and "%(total)d" filled in; the handover document's is in both languages.
    page_label = "Сторінка %(number)d з %(total)d / Page %(number)d of %(total)d"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        # Canvas's own start of a fresh page, which its stubs leave out.
        self._startPage()  # type: ignore[attr-defined]

    def save(self) -> None:
        total = len(self._pages)
        for number, page in enumerate(self._pages, start=1):
            self.__dict__.update(page)
            self._draw_footer(number, total)
            super().showPage()
        super().save()

    def _draw_footer(self, number: int, total: int) -> None:
        # Set by Canvas, and left out of its stubs.
        width, _ = self._pagesize  # type: ignore[attr-defined]
        self.setFont(FONT, 8)
        self.setFillColor(colors.grey)
        self.drawString(12 * mm, 8 * mm, self.footer)
        self.drawRightString(width - 12 * mm, 8 * mm, self.page_label % {"number": number, "total": total})


def handover_list_pdf(handover_list: HandoverList) -> bytes:
    register_fonts()
    handover_list = _list_with_parties(handover_list)
    entries = handover_entries(handover_list)
    page = landscape(A4)
    margin = 12 * mm
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out, pagesize=page, leftMargin=margin, rightMargin=margin, topMargin=margin, bottomMargin=15 * mm,
        title=f"{handover_list.reference}: Список для передачі / Handover list",
        author=handover_list.sender.name, subject=f"{handover_list.sender.name} → {handover_list.recipient.name}",
    )
    title = ParagraphStyle("title", fontName=FONT_BOLD, fontSize=14, leading=18, spaceAfter=4)
    label = ParagraphStyle("label", fontName=FONT, fontSize=9.5, leading=12)
    head = ParagraphStyle("head", fontName=FONT_BOLD, fontSize=8, leading=9.5)
    body = ParagraphStyle("body", fontName=FONT, fontSize=8, leading=9.5)

    story: list[Flowable] = [
        Paragraph(f"Список дітей для передачі / List of children handed over: {escape_markup(handover_list.reference)}",
                  title),
    ]
    if handover_list.title:
        story.append(Paragraph(escape_markup(handover_list.title), label))
    for name, value in handover_title_lines(handover_list, len(entries))[1:]:
        story.append(Paragraph(f"<b>{escape_markup(name)}:</b> {escape_markup(value)}", label))
    story.append(Spacer(1, 5 * mm))

    total_width = sum(c.width for c in HANDOVER_FIELDS)
    widths = [doc.width * c.width / total_width for c in HANDOVER_FIELDS]
    rows: list[list[Any]] = [[Paragraph(f"{escape_markup(c.uk)}<br/>{escape_markup(c.en)}", head)
                              for c in HANDOVER_FIELDS]]
    rows += [[Paragraph(escape_markup(_printed(c.value(e))), body) for c in HANDOVER_FIELDS] for e in entries]
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e4e8ee")),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#9aa3ad")),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f5f6f8")]),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]))
    story.append(table)

    footer = f"{handover_list.reference} · {handover_list.sender} → {handover_list.recipient}"
    if handover_list.handed_over_on:
        footer += f" · {handover_list.handed_over_on:%d.%m.%Y}"

    class ListCanvas(PagedCanvas):
        """This list's pages, each with its footer."""

    ListCanvas.footer = footer
    doc.build(story, canvasmaker=ListCanvas)
    return out.getvalue()


def _printed(value: Value) -> str:
    return f"{value:%d.%m.%Y}" if isinstance(value, datetime.date) else str(value)


def escape_markup(text: str) -> str:
    """Paragraphs read a markup of their own: a name with "&" or "<" must print as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- Case exports ---------------------------------------------------------------------------------

CASE_COLUMNS = ("case", "status", "priority", "opened_on", "closed_on", "closing_reason", "updated_at")
CHILD_COLUMNS = (
    "child", "family_name", "given_name", "patronymic", "family_name_latin", "given_name_latin", "patronymic_latin",
    "birth_date", "birth_date_precision", "sex", "home_settlement", "home_oblast", "circumstances", "category",
    "last_known_location", "last_known_on", "icrc_reference", "nib_reference",
)


def case_export_header(*, include_restricted: bool) -> list[str]:
    extra = ["restricted_fields_shared", *Child.RESTRICTED_FIELDS] if include_restricted else []
    return [*CASE_COLUMNS, *CHILD_COLUMNS, "lists", *extra]


def _plain(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, datetime.date):
        return f"{value:%Y-%m-%d}"
    return str(value)


def case_export_values(case: Case, *, include_restricted: bool) -> list[object]:
    """One case as a row, in the header's order: the API's codes, dates in ISO 8601."""
    child = case.child
    values: list[object] = [case.pk, case.status, case.priority, case.opened_on, case.closed_on,
                            case.closing_reason, case.updated_at, child.pk]
    for name in CHILD_COLUMNS[1:]:
        if name == "birth_date":
            values.append(child.birth_date_display if child.birth_date else None)
        else:
            values.append(getattr(child, name))
    entries = getattr(case, "visible_entries", [])
    values.append("; ".join(f"{e.handover_list.reference} #{e.position}" for e in entries))
    if include_restricted:
        granted = bool(getattr(case, "restricted_shared", False))
        values.append("true" if granted else "false")
        values += [getattr(child, name) if granted else "" for name in Child.RESTRICTED_FIELDS]
    return values


def cases_for_export(cases: QuerySet[Case], *, lists: QuerySet[HandoverList]) -> QuerySet[Case]:
    """Cases with their children and their entries on `lists` (the lists the reader may see)."""
    entries = ListEntry.objects.filter(handover_list__in=lists).select_related("handover_list")
    return cases.select_related("child").prefetch_related(
        Prefetch("list_entries", queryset=entries.order_by("handover_list__handed_over_on", "id"),
                 to_attr="visible_entries")
    )


def in_chunks(cases: QuerySet[Case], on_chunk: Callable[[list[Case]], None],
              size: int = EXPORT_CHUNK) -> Iterator[Case]:
    """The cases a chunk at a time, calling `on_chunk` (to log the reads) before any of a chunk is written."""
    chunk: list[Case] = []
    for case in cases.iterator(chunk_size=size):
        chunk.append(case)
        if len(chunk) == size:
            on_chunk(chunk)
            yield from chunk
            chunk = []
    if chunk:
        on_chunk(chunk)
        yield from chunk


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(value: str) -> str:
    # A spreadsheet opening the CSV would run a cell starting with "=" as a formula; the last known
    # location can come from a partner. The apostrophe makes it text, as spreadsheets themselves do.
    return f"'{value}" if value.startswith(_FORMULA_START) else value


class _Line:
    """A file-like target for csv.writer that hands back what was written, for streaming."""

    def write(self, text: str) -> str:
        return text


def cases_csv(cases: Iterable[Case], *, include_restricted: bool) -> Iterator[str]:
    """The CSV a line at a time, for a streaming response; with a BOM so that Excel reads the Cyrillic."""
    writer = csv.writer(_Line())
    yield "\ufeff" + writer.writerow(case_export_header(include_restricted=include_restricted))
    for case in cases:
        row = case_export_values(case, include_restricted=include_restricted)
        yield writer.writerow([_csv_safe(_plain(v)) for v in row])


def _spreadsheet_value(value: object, name: str) -> Value:
    if isinstance(value, bool):
        return _plain(value)
    if isinstance(value, int):
        return value
    if isinstance(value, datetime.datetime):
        return timezone.localtime(value).replace(tzinfo=None)
    if isinstance(value, datetime.date):
        return value
    if name == "birth_date" and isinstance(value, str) and len(value) == 10:
        return datetime.date.fromisoformat(value)
    return _plain(value)


def cases_xlsx(cases: Iterable[Case], *, include_restricted: bool) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title="cases")
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = case_export_header(include_restricted=include_restricted)
    sheet.append([_text_cell(sheet, name, bold) for name in header])
    for case in cases:
        row = case_export_values(case, include_restricted=include_restricted)
        # Numbers stay numbers, so that a spreadsheet sorts and sums them, and dates dates (a birth
        # date known to the day; times in the local zone); the rest is text.
        sheet.append([_text_cell(sheet, _spreadsheet_value(v, name)) for v, name in zip(row, header, strict=True)])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
