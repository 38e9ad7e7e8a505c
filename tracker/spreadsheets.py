"""Reading handover lists and replies from spreadsheets as people make them, into checked rows.

Plain functions, no database: a file (CSV or XLSX) is read as a stream of lines, the header row (or
two rows, for a two-level header with merged cells) is found and its columns recognised against a
vocabulary of Ukrainian, Russian and English headers (`LIST_COLUMNS`, `REPLY_COLUMNS`), with a
header one typo away still recognised, and every row is checked. A case worker's mapping of
headers (and of reply phrases) comes first. The result holds the rows as they will be saved, every
problem with its line, column and reason, every column left unread, and notices of what was read
by inference (a header with a typo, a totals row skipped); `tracker.services.imports` does the rest.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import functools
import io
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Literal
from xml.etree.ElementTree import Element, iterparse

from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format
from openpyxl.utils.cell import column_index_from_string, get_column_letter, range_boundaries
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900, from_excel
from rapidfuzz.distance import Levenshtein

from cases.matching.elsewhere import SameChildPairs
from cases.matching.engine import PersonRecord, birth_date_text, compare
from cases.matching.names import latin_key
from cases.models import ChildCategory, Circumstances, Oblast
from tracker.models import Outcome

# ---------------------------------------------------------------------------------------------
# The vocabulary: what a column may be called, per field, in Ukrainian, Russian and English. Compared
# after folding (`fold`): case, ё/е, apostrophes, punctuation and spaces do not matter, so "П.І.Б.",
# "ПІБ" and "піб:" are one header. A header one or two typos from one of these is recognised too.
# ---------------------------------------------------------------------------------------------

NAME_COLUMNS: dict[str, tuple[str, ...]] = {
    "position": ("№", "№ з/п", "№ п/п", "з/п", "п/п", "№ пп", "no", "nr", "number", "#", "номер", "номер у списку",
                 "номер в списке", "№ по списку", "№ в списке", "№ у списку", "№ за списком", "номер по списку",
                 "номер за списком", "no. on the list", "number on the list", "list no", "list number",
                 "порядковий номер", "порядковый номер", "n", "no.", "item", "position"),
    "full_name": ("піб", "піп", "прізвище, ім'я, по батькові", "прізвище ім'я по батькові", "прізвище та ім'я",
                  "прізвище, ім'я", "фио", "фамилия, имя, отчество", "фамилия имя отчество", "фамилия и имя",
                  "фамилия, имя", "full name", "name", "name of the child", "child's name", "child name",
                  "піб дитини", "фио ребенка"),
    "family_name": ("прізвище", "фамилия", "family name", "surname", "last name", "family_name",
                    "прізвище дитини", "фамилия ребенка"),
    "given_name": ("ім'я", "імя", "имя", "given name", "first name", "forename", "given_name", "ім'я дитини",
                   "имя ребенка"),
    "patronymic": ("по батькові", "по-батькові", "отчество", "patronymic", "middle name", "father's name",
                   "по батьков"),
    # The given name and the patronymic in one column, beside the family name's.
    "given_and_patronymic": ("ім'я, по батькові", "ім'я та по батькові", "ім'я по батькові", "ім'я і по батькові",
                             "имя, отчество", "имя отчество", "имя и отчество", "given name and patronymic",
                             "first name and patronymic"),
    "birth_date": ("дата народження", "дата рождения", "date of birth", "birth date", "birthdate", "dob", "born",
                   "рік народження", "год рождения", "year of birth", "д.н", "д/н", "дата нар", "birth_date",
                   "дата і рік народження", "число, месяц, год рождения", "р.н", "рік нар", "дата народж",
                   "г.р", "д.р", "дата рожд", "год рожд", "дата рож-ня", "р. н.", "рік народж"),
    "sex": ("стать", "пол", "sex", "gender"),
}
LIST_COLUMNS: dict[str, tuple[str, ...]] = {
    **NAME_COLUMNS,
    "latin_name": ("латиницею", "піб латиницею", "латиницей", "фио латиницей", "name in latin", "latin",
                   "latin name", "name (latin)", "transliteration"),
    "family_name_latin": ("прізвище латиницею", "фамилия латиницей", "family name in latin", "family_name_latin",
                          "surname (latin)", "surname in latin"),
    "given_name_latin": ("ім'я латиницею", "имя латиницей", "given name in latin", "given_name_latin",
                         "first name (latin)", "first name in latin"),
    "patronymic_latin": ("по батькові латиницею", "отчество латиницей", "patronymic in latin",
                         "patronymic_latin"),
    "birth_date_precision": ("birth_date_precision", "точність дати народження", "точность даты рождения"),
    "settlement": ("населений пункт", "населенный пункт", "settlement", "home settlement", "home_settlement",
                   "місце проживання", "место жительства", "место проживания", "place of residence", "town",
                   "city", "місто", "город", "адреса", "адрес", "address", "місце постійного проживання",
                   "звідки", "откуда", "населений пункт проживання", "місце прож", "нас. пункт", "нас пункт",
                   "н.п", "нп", "нас. п", "место жит", "место прож"),
    "oblast": ("область", "oblast", "region", "home_oblast", "home oblast", "регіон", "регион", "обл"),
    "circumstances": ("обставини", "обстоятельства", "circumstances", "обставини вивезення",
                      "обставини переміщення", "обстоятельства перемещения", "обстоятельства вывоза", "статус дитини",
                      "статус ребенка", "що сталося", "what happened", "situation", "ситуація", "ситуация"),
    "category": ("категорія", "категория", "category", "категорія дитини", "категория ребенка", "child category",
                 "соціальний статус", "социальный статус"),
    "last_known_location": ("останнє відоме місце перебування", "останнє відоме місце", "місце перебування",
                            "местонахождение", "местоположение", "последнее известное местонахождение",
                            "last known location", "last known place", "whereabouts", "last_known_location",
                            "current location", "де перебуває", "где находится", "місцеперебування"),
    "last_known_on": ("last_known_on", "дата останніх відомостей", "дата последних сведений", "last known on",
                      "last seen on", "станом на", "по состоянию на"),
    "icrc_reference": ("icrc_reference", "icrc reference", "icrc", "мкчх", "номер мкчх", "icrc ref",
                       "номер мккк", "мккк"),
    "nib_reference": ("nib_reference", "nib reference", "нііб", "нib", "номер ніб", "ніб", "national information "
                      "bureau reference", "номер національного інформаційного бюро"),
    "reference": ("номер списку", "список", "list", "list reference", "номер списка", "list_reference"),
}
REPLY_COLUMNS: dict[str, tuple[str, ...]] = {
    **NAME_COLUMNS,
    "outcome": ("результат", "відповідь", "ответ", "outcome", "result", "answer", "результат розшуку",
                "результат розыска", "результаты розыска", "результат проверки", "результат перевірки",
                "сведения", "відомості", "информация о местонахождении", "інформація", "информация",
                "результат рассмотрения", "статус", "status", "reply"),
    "details": ("деталі", "подробиці", "примітка", "примітки", "коментар", "комментарий", "details", "comment",
                "comments", "notes", "note", "примечание", "примечания", "додаткова інформація",
                "дополнительная информация", "remarks"),
    "reported_location": ("місце перебування", "местонахождение", "location", "reported location", "whereabouts",
                          "местоположение", "место нахождения", "где находится", "де перебуває",
                          "reported_location", "місцеперебування", "адрес", "адреса"),
}

# What each field is called for a person: in reports and on the mapping step's choices.
FIELD_LABELS: dict[str, str] = {
    "position": "№ (number on the list)", "full_name": "ПІБ / full name (all three in one)",
    "family_name": "Прізвище / family name", "given_name": "Ім'я / given name",
    "patronymic": "По батькові / patronymic",
    "given_and_patronymic": "Ім'я, по батькові / given name and patronymic (in one)",
    "latin_name": "Латиницею / name in Latin (all three)",
    "family_name_latin": "Family name in Latin", "given_name_latin": "Given name in Latin",
    "patronymic_latin": "Patronymic in Latin", "birth_date": "Дата народження / date of birth",
    "birth_date_precision": "Precision of the birth date (day, month, year)", "sex": "Стать / sex",
    "settlement": "Населений пункт / settlement", "oblast": "Область / oblast",
    "circumstances": "Обставини / circumstances", "category": "Категорія / category",
    "last_known_location": "Останнє відоме місце / last known location",
    "last_known_on": "Last known on (date)", "icrc_reference": "ICRC reference",
    "nib_reference": "National Information Bureau reference", "reference": "Номер списку / list reference",
    "outcome": "Результат / outcome", "details": "Деталі / details",
    "reported_location": "Місце перебування / reported location",
}
# The mapping's choice for a column to leave unread.
IGNORE = "ignore"

TOTAL_WORDS = ("всього", "усього", "разом", "итого", "всего", "итог", "загалом", "підсумок", "total", "totals",
               "grand total", "sum", "в том числе", "у тому числі")

HEADER_SEARCH_ROWS = 30
NAME_LENGTH = 120
EARLIEST_BIRTH_YEAR = 1990
# Modern apostrophe: names are stored with U+02BC whatever the file used (', ’, `, ʹ ...).
APOSTROPHE = "\u02bc"
_APOSTROPHES = re.compile("['\u2019\u2018`\u00b4\u02b9\u02bc\u0301\u2032]")
_BLANK_MARKS = {"—", "–", "-", "--", "н/д", "н/в", "n/a", "na", "немає", "нет", "none", "unknown", "невідомо",
                "неизвестно", "?"}


class UnreadableFile(Exception):
    """The file is not a spreadsheet this reads (or is damaged, or too large)."""


class TooManyLines(UnreadableFile):
    """The file goes on past the most lines one import reads: the reading stopped there."""


@dataclass(frozen=True)
class CellFault:
    """A cell whose value the file does not hold: a formula never calculated, or an error value."""

    reason: str


@dataclass(frozen=True)
class RowProblem:
    line: int | None
    column: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "reason": self.reason}


@dataclass
class ParsedRow:
    line: int
    position: int | None
    data: dict[str, Any]
    _record: PersonRecord | None = field(default=None, repr=False, compare=False)

    def record(self) -> PersonRecord:
        # One record per row: the check for a child named twice and the match share what it works out.
        if self._record is None:
            self._record = PersonRecord(
                family_name=self.data.get("family_name", ""), given_name=self.data.get("given_name", ""),
                patronymic=self.data.get("patronymic", ""), birth_date=self.data.get("birth_date_text", ""),
                sex=self.data.get("sex", ""), settlement=self.data.get("settlement", ""), record_id=str(self.line))
        return self._record


@dataclass
class ParsedFile:
    rows: list[ParsedRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    header_line: int | None = None
    # Field → the header it was read from, as the file writes it.
    columns: dict[str, str] = field(default_factory=dict)
    # Columns not read, each named: by its header, or "column F (no header)" for one with data only.
    ignored_columns: list[str] = field(default_factory=list)
    # What was read by inference, for the case worker to see: a header with a typo, a totals row.
    notices: list[str] = field(default_factory=list)
    # The header cells of the most header-like row, when no header was recognised (for the mapping).
    headers_found: list[str] = field(default_factory=list)
    # The headers not recognised, as written: what the case worker may map.
    unread_headers: list[str] = field(default_factory=list)
    # Reply phrases not known (as written), for the case worker to map to an outcome.
    unknown_phrases: list[str] = field(default_factory=list)
    # The list's title, when a line above the header gives one.
    title: str = ""
    # Checks still running (`parse_list(..., finish=False)`): their problems come with `complete`.
    pending: list[_SameChildTwice] = field(default_factory=list, repr=False, compare=False)

    def complete(self) -> ParsedFile:
        """Wait for the checks still running and add their problems."""
        while self.pending:
            self.problems += self.pending.pop().problems()
        return self

    def abandon(self) -> None:
        """Stop the checks still running, whose answer is no longer wanted."""
        while self.pending:
            self.pending.pop().stop()


Line = tuple[int, list[Any]]


# Latin letters that look the same as Cyrillic ones, as typed into a Cyrillic word by a keyboard left in
# English ("Iван", "ПIБ"): in a word that mixes the two scripts, they are read as the Cyrillic letters.
_LOOKALIKES = str.maketrans("aceiopxyABCEHIKMOPTXY", "асеіорхуАВСЕНІКМОРТХУ")
_LATIN_LETTER = re.compile(r"[a-zA-Z]")
_MIXED_WORD = re.compile(r"\w*(?:[a-zA-Z]\w*[а-яА-ЯіїєґІЇЄҐёЁ]|[а-яА-ЯіїєґІЇЄҐёЁ]\w*[a-zA-Z])\w*")


def one_script(text: str) -> str:
    """The text with each word that mixes Latin and Cyrillic letters written in Cyrillic where a
    Latin letter only looks like one."""
    if text.isascii() or not _LATIN_LETTER.search(text):
        return text
    return _MIXED_WORD.sub(lambda word: word.group(0).translate(_LOOKALIKES), text)


def fold(text: Any) -> str:
    """A header or phrase as compared: lower case, ё as е, one apostrophe, punctuation as spaces, one
    script in each word (`one_script`)."""
    text = _APOSTROPHES.sub("'", one_script(str(text or "")).lower().replace("ё", "е"))
    text = re.sub(r"[^\w№#'/]+", " ", text)
    return re.sub(r"\s+", " ", text).strip(" /")


def _compact(text: str) -> str:
    return text.replace(" ", "")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# ---------------------------------------------------------------------------------------------
# Reading the file into lines, as a stream: memory stays bounded whatever the file's length
# ---------------------------------------------------------------------------------------------

@dataclass
class Table:
    """The file's non-blank lines as (line number as the user sees it, cells), read as they are
    asked for, and the merged ranges of an XLSX sheet (min_col, min_row, max_col, max_row)."""

    lines: Iterator[Line]
    merges: list[tuple[int, int, int, int]] = field(default_factory=list)
    # The workbook's other visible sheets that hold data: not read, and named.
    unread_sheets: list[str] = field(default_factory=list)
    # The numbers of the rows the sheet hides (filtered out, collapsed), filled in as they are read.
    hidden_rows: list[int] = field(default_factory=list)


def read_table(source: bytes | IO[bytes], file_name: str = "", *, max_rows: int | None = None) -> Table:
    """The file as a `Table`; past `max_rows` non-blank lines the reading stops and refuses the file.

    XLSX is read straight from its XML, a row at a time: dates come as dates (by the cell's number
    format), a formula's saved value is used and never recalculated, a formula with none or an error
    value is a `CellFault`. CSV in UTF-8 (with or without a byte-order mark), UTF-16 (Excel's
    "Unicode text") or Windows-1251 (older Excel), separated by commas, semicolons or tabs.
    """
    stream: IO[bytes] = io.BytesIO(source) if isinstance(source, bytes) else source
    start = stream.read(8)
    stream.seek(0)
    if start[:4] == b"PK\x03\x04" or (not start and file_name.lower().endswith(".xlsx")):
        table = _read_xlsx(stream)
    elif start == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise UnreadableFile(_("this is an old Excel (.xls) file: save it as .xlsx or .csv and upload that"))
    else:
        table = Table(_read_csv(stream))
    if max_rows is not None:
        table.lines = _at_most(table.lines, max_rows)
    return table


def _at_most(lines: Iterator[Line], max_rows: int) -> Iterator[Line]:
    for count, line in enumerate(lines, start=1):
        if count > max_rows:
            raise TooManyLines(_("the file has more than {count} lines, more than one import takes: split it "
                                   "into several files").format(count=f"{max_rows:,}"))
        yield line


_ROOT_START = re.compile(rb"<[A-Za-z_]")


def _xml(archive: zipfile.ZipFile, name: str) -> IO[bytes]:
    """A member of the workbook opened for reading, refused if it declares a document type.

    The parser is the standard library's C one (expat 2.4.1 and later refuse entity expansion
    attacks); entities can only be declared in a document type, which a workbook's parts never have,
    so one with a document type is refused before it is parsed. defusedxml would do the same through
    a pure-Python parser, several times slower on a sheet of a hundred thousand rows.
    """
    with archive.open(name) as member:
        head = member.read(1 << 16)
    root = _ROOT_START.search(head)
    if root is None or b"<!DOCTYPE" in head[:root.start()].upper():
        raise ValueError(f"{name} is not a spreadsheet's XML")
    return archive.open(name)


def _events(stream: IO[bytes], events: tuple[Literal["start", "end"], ...] = ("end",)) -> Iterator[tuple[str, Element]]:
    """The parse events of a member opened by `_xml`, which refused any document type."""
    return iterparse(stream, events=events)  # noqa: S314 see _xml


# A sheet of a hundred thousand rows has millions of elements and a dozen distinct tags.
@functools.lru_cache(maxsize=512)
def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _read_xlsx(stream: IO[bytes]) -> Table:
    try:
        archive = zipfile.ZipFile(stream)
        sheet_path, calendar, others = _first_sheet(archive)
        strings = _shared_strings(archive)
        date_styles = _date_styles(archive)
        merges = _merges(archive, sheet_path)
        unread = _sheets_with_data(archive, others)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, SyntaxError) as error:
        raise UnreadableFile(_("not a readable .xlsx file ({error})").format(error=error)) from error
    hidden: list[int] = []
    return Table(_xlsx_lines(archive, sheet_path, strings, date_styles, calendar, hidden), merges, unread, hidden)


def _first_sheet(archive: zipfile.ZipFile) -> tuple[str, datetime.datetime, list[tuple[str, str]]]:
    """The path in the archive of the first sheet a person sees (hidden ones, such as a lookup list,
    passed over), the workbook's calendar (1900 or Mac 1904), and the other visible sheets (name, path)."""
    sheets: list[tuple[str, str | None]] = []
    calendar = CALENDAR_WINDOWS_1900
    with _xml(archive, "xl/workbook.xml") as workbook:
        for _event, element in _events(workbook):
            name = _local(element.tag)
            if name == "workbookPr" and element.get("date1904") in ("1", "true"):
                calendar = CALENDAR_MAC_1904
            elif name == "sheet" and element.get("state") not in ("hidden", "veryHidden"):
                sheets.append((element.get("name", ""),
                               next((value for key, value in element.attrib.items() if _local(key) == "id"), None)))
    targets: dict[str, str] = {}
    if "xl/_rels/workbook.xml.rels" in archive.namelist():
        with _xml(archive, "xl/_rels/workbook.xml.rels") as rels:
            for _event, element in _events(rels):
                if _local(element.tag) == "Relationship":
                    targets[element.get("Id", "")] = element.get("Target", "")

    def path(sheet_id: str | None) -> str:
        target = targets.get(sheet_id or "", "worksheets/sheet1.xml")
        return target.lstrip("/") if target.startswith("/") else f"xl/{target}"

    first = path(sheets[0][1] if sheets else None)
    others = [(name, path(sheet_id)) for name, sheet_id in sheets[1:]]
    return first, calendar, [(name, other) for name, other in others if other != first]


_A_VALUE = re.compile(rb"<(?:\w+:)?(?:v|is)>")


def _sheets_with_data(archive: zipfile.ZipFile, sheets: list[tuple[str, str]]) -> list[str]:
    """The names of the sheets that hold a value, looked for in the first megabyte of each."""
    named = []
    for name, sheet_path in sheets:
        if sheet_path in archive.namelist():
            with _xml(archive, sheet_path) as sheet:
                if _A_VALUE.search(sheet.read(1 << 20)):
                    named.append(name)
    return named


def _shared_strings(archive: zipfile.ZipFile) -> list[str]:
    if "xl/sharedStrings.xml" not in archive.namelist():
        return []
    strings: list[str] = []
    with _xml(archive, "xl/sharedStrings.xml") as shared:
        for _event, element in _events(shared):
            if _local(element.tag) == "si":
                # Plain text, or rich-text runs; never the phonetic guides (rPh) beside them.
                strings.append("".join(
                    (part.text or "") for child in element for part in ([child] if _local(child.tag) == "t" else
                                                                         child if _local(child.tag) == "r" else [])
                    if _local(part.tag) == "t"))
                element.clear()
    return strings


def _date_styles(archive: zipfile.ZipFile) -> dict[int, str]:
    """The cell styles whose number format is a date, each with what the format shows of it ("day",
    or "month" for mm.yyyy, "year" for yyyy): a number in such a cell is a date known that far."""
    if "xl/styles.xml" not in archive.namelist():
        return {}
    custom: dict[int, str] = {}
    formats: list[int] = []
    in_cell_xfs = False
    with _xml(archive, "xl/styles.xml") as styles:
        for event, element in _events(styles, ("start", "end")):
            name = _local(element.tag)
            if name == "cellXfs":
                in_cell_xfs = event == "start"
            elif event == "end" and name == "numFmt":
                custom[int(element.get("numFmtId", "0"))] = element.get("formatCode", "")
            elif event == "start" and name == "xf" and in_cell_xfs:
                formats.append(int(element.get("numFmtId", "0")))
    dates = {}
    for index, number_format in enumerate(formats):
        code = custom.get(number_format, BUILTIN_FORMATS.get(number_format, ""))
        if is_date_format(code) or 14 <= number_format <= 22:
            dates[index] = _shows(code)
    return dates


def _shows(code: str) -> str:
    """How much of a date a number format shows: its quoted text, colours and conditions aside."""
    letters = re.sub(r'"[^"]*"|\[[^]]*]|\\.', "", code).lower()
    if "d" in letters or "h" in letters or "s" in letters or not letters.strip():
        return "day"
    return "month" if "m" in letters else "year" if "y" in letters else "day"


class CellDate(datetime.date):
    """A date cell whose format shows only its month and year (mm.yyyy) or its year: known that far."""

    precision: str

    def __new__(cls, found: datetime.date, precision: str) -> CellDate:
        made = super().__new__(cls, found.year, found.month, found.day)
        made.precision = precision
        return made


_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\b[^>]*?\bref="([A-Z]+[0-9]+:[A-Z]+[0-9]+)"')


def _merges(archive: zipfile.ZipFile, sheet_path: str) -> list[tuple[int, int, int, int]]:
    """The sheet's merged ranges, found by scanning its XML: they are written after all the rows, and
    reading them first spares holding the rows."""
    found: set[bytes] = set()
    tail = b""
    with _xml(archive, sheet_path) as sheet:
        while chunk := sheet.read(1 << 20):
            block = tail + chunk
            found.update(_MERGE.findall(block))
            tail = block[-300:]
    merges = []
    for ref in found:
        min_col, min_row, max_col, max_row = range_boundaries(ref.decode())
        if min_row is not None:
            merges.append((min_col or 1, min_row, max_col or 1, max_row or min_row))
    return sorted(merges, key=lambda merge: (merge[1], merge[0]))


_WHOLE_NUMBER = re.compile(r"-?\d+")
_FORMULA_WITHOUT_VALUE = CellFault("a formula with no saved value: open the file in a spreadsheet and save it "
                                   "again (or type the value in)")


def _xlsx_lines(archive: zipfile.ZipFile, sheet_path: str, strings: list[str], date_styles: dict[int, str],
                calendar: datetime.datetime, hidden: list[int]) -> Iterator[Line]:
    column_of: dict[str, int] = {}
    with _xml(archive, sheet_path) as sheet:
        row_number = 0
        # Only the ends of elements: a row is whole at its end. Asking for the starts too (to hold the
        # sheet's data element and take each row out of it) doubled the events of a large sheet.
        for _event, element in _events(sheet):
            if _local(element.tag) != "row":
                continue
            row_number = int(element.get("r") or row_number + 1)
            cells: list[Any] = []
            previous = -1
            for cell in element:
                if _local(cell.tag) != "c":
                    continue
                reference = cell.get("r")
                if reference:
                    letters = reference.rstrip("0123456789")
                    column = column_of.get(letters)
                    if column is None:
                        column = column_of[letters] = column_index_from_string(letters) - 1
                else:
                    # Without its reference (optional; other tools than Excel leave it out) a cell is the
                    # one after the previous cell, empty or not.
                    column = previous + 1
                previous = column
                value = _xlsx_value(cell, strings, date_styles, calendar)
                if value is not None:
                    cells.extend([None] * (column + 1 - len(cells)))
                    cells[column] = value
            hides = element.get("hidden") in ("1", "true")
            # Emptied, a read row is left as a bare element of some hundred bytes: a few megabytes
            # for a hundred thousand rows.
            element.clear()
            if any(not _blank(value) for value in cells):
                if hides:
                    hidden.append(row_number)
                yield row_number, cells


def _xlsx_value(cell: Any, strings: list[str], date_styles: dict[int, str], calendar: datetime.datetime) -> Any:
    kind = cell.get("t", "n")
    raw: str | None = None
    formula = False
    for child in cell:
        name = _local(child.tag)
        if name == "v":
            raw = child.text
        elif name == "f":
            formula = True
        elif name == "is":
            raw = "".join(part.text or "" for part in child.iter() if _local(part.tag) == "t")
    if formula and not raw and kind not in ("str", "inlineStr"):
        return _FORMULA_WITHOUT_VALUE
    if raw is None:
        return None
    if kind == "s":
        return strings[int(raw)]
    if kind in ("str", "inlineStr"):
        return raw
    if kind == "b":
        return raw.strip() in ("1", "true")
    if kind == "e":
        return CellFault(f"the cell holds the error {raw}")
    if kind == "d":
        return datetime.datetime.fromisoformat(raw.strip().rstrip("Z"))
    number: float = int(raw) if _WHOLE_NUMBER.fullmatch(raw.strip()) else float(raw)
    shows = date_styles.get(int(cell.get("s") or 0))
    if shows is not None:
        moment = from_excel(number, calendar)
        if isinstance(moment, datetime.datetime) and moment.time() == datetime.time():
            return moment.date() if shows == "day" else CellDate(moment.date(), shows)
        return moment
    return number


def _read_csv(stream: IO[bytes]) -> Iterator[Line]:
    head = stream.read(1 << 16)
    stream.seek(0)
    if head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
            encoding = "utf-8"
        except UnicodeDecodeError:
            # Older Excel saves CSV in the Windows code page; for Cyrillic that is 1251.
            encoding = "cp1251"
    sample_text = head.decode(encoding, errors="ignore")
    sample = [line for line in sample_text.splitlines()[:HEADER_SEARCH_ROWS * 2] if line.strip()]
    delimiter = max(";,\t", key=lambda sep: _split_evenly(sample, sep))
    text = io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline="")
    # Numbered as a spreadsheet numbers them: a record a line, however many lines a quoted cell spans.
    for number, cells in enumerate(csv.reader(text, delimiter=delimiter), start=1):
        if any(cell.strip() for cell in cells):
            yield number, cells


def _split_evenly(sample: list[str], separator: str) -> tuple[float, int]:
    """How evenly a separator splits the sample's lines: the share of them split into the commonest
    number of columns (above one), then that number. A title line has one column whatever the
    separator; commas in unquoted addresses split a semicolon file's lines unevenly."""
    counts = Counter(len(row) for row in csv.reader(sample, delimiter=separator) if len(row) > 1)
    if not counts:
        return 0.0, 0
    columns, lines = max(counts.items(), key=lambda item: (item[1], item[0]))
    return lines / len(sample), columns


# ---------------------------------------------------------------------------------------------
# The header
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Vocabulary:
    """The header forms of one kind of file, folded and compacted, with the field each names."""

    exact: dict[str, str]
    forms: tuple[str, ...]

    @classmethod
    def of(cls, columns: Mapping[str, Sequence[str]]) -> Vocabulary:
        exact: dict[str, str] = {}
        for field_name, names in columns.items():
            for name in (*names, field_name):
                exact.setdefault(_compact(fold(name)), field_name)
        return cls(exact, tuple(exact))


_VOCABULARIES: dict[int, Vocabulary] = {}


def _vocabulary(columns: Mapping[str, Sequence[str]]) -> Vocabulary:
    if id(columns) not in _VOCABULARIES:
        _VOCABULARIES[id(columns)] = Vocabulary.of(columns)
    return _VOCABULARIES[id(columns)]


@dataclass(frozen=True)
class HeaderMatch:
    field: str
    # How it was recognised: "mapped" (the case worker said), "exact", "part" (one line or half of a
    # bilingual header, or the header without its note in brackets), "prefix", "typo" (edit distance).
    how: str
    known_as: str = ""


def _variants(folded: str, text: str) -> list[str]:
    """A header's readings, most literal first: whole; each line or each half of "uk / en"; without
    a note in brackets; each comma- or semicolon-separated part when one of them is a field name."""
    parts = [folded]
    raw = str(text)
    for splitter in ("\n", " / ", "/", "|"):
        if splitter in raw:
            parts += [fold(piece) for piece in raw.split(splitter)]
    without_note = fold(re.sub(r"\([^)]*\)|\[[^]]*\]", " ", raw))
    if without_note and without_note != folded:
        parts.append(without_note)
    return [part for index, part in enumerate(parts) if part and part not in parts[:index]]


# Words after a known header's start that make it another's, or another thing: "Прізвище матері", "Номер
# телефону", "Населений пункт, куди вивезено", "Регіон РФ". Such a header is not read by its start.
_OTHER_SUBJECT = re.compile(
    r"(?<!\w)(?:матер|мати\b|мам|батьк|бать|отц|отец|родител|father|mother|parent|представник|представит|"
    r"опікун|опекун|guardian|законн|брат|сестр|sibling|телефон|тел\b|phone|mobile|e ?mail|куди|куда|вивез|вывез|"
    r"перемі|перемещ|рф\b|росі|росси|russia|нині|наразі|зараз|сейчас|current|destination|where)")


def recognise_header(text: Any, vocabulary: Vocabulary, mapping: Mapping[str, str] | None = None
                     ) -> HeaderMatch | None:
    """The field a header names: the case worker's mapping first, then the vocabulary exactly, by a
    line or half of it, by its first words, then within a typo or two (edit distance, on headers long
    enough for a typo to be told from another word)."""
    folded = fold(text)
    if not folded:
        return None
    if mapping and _compact(folded) in mapping:
        return HeaderMatch(mapping[_compact(folded)], "mapped")
    variants = _variants(folded, text)
    for index, variant in enumerate(variants):
        found = vocabulary.exact.get(_compact(variant))
        if found:
            return HeaderMatch(found, "exact" if index == 0 else "part")
    # "Прізвище дитини", "Дата народження (дд.мм.рррр)": the longest known header the text starts with.
    best: tuple[int, str, str] | None = None
    for variant in variants:
        words = variant.split()
        for size in range(len(words) - 1, 0, -1):
            start = _compact(" ".join(words[:size]))
            rest = " ".join(words[size:])
            if len(words) <= 6 and len(start) >= 4 and start in vocabulary.exact and (
                    best is None or len(start) > best[0]) and not _OTHER_SUBJECT.search(rest) and (
                    # "Номер справи", "Номер свідоцтва": a number, but not the one on the list.
                    vocabulary.exact[start] != "position" or _ON_THE_LIST.search(rest)):
                best = (len(start), vocabulary.exact[start], start)
                break
    if best is not None:
        return HeaderMatch(best[1], "prefix", best[2])
    for variant in variants:
        compact = _compact(variant)
        if len(compact) < 5:
            continue
        allowed = 1 if len(compact) < 10 else 2
        near = [(Levenshtein.distance(compact, form, score_cutoff=allowed), form) for form in vocabulary.forms
                if abs(len(form) - len(compact)) <= allowed and len(form) >= 5]
        near = [(distance, form) for distance, form in near if distance <= allowed]
        if not near:
            continue
        closest = min(distance for distance, _form in near)
        fields = {vocabulary.exact[form] for distance, form in near if distance == closest}
        if len(fields) == 1:
            form = next(form for distance, form in near if distance == closest)
            return HeaderMatch(fields.pop(), "typo", form)
    return None


def _known_form(columns: Mapping[str, Sequence[str]], compact_form: str) -> str:
    for names in columns.values():
        for name in names:
            if _compact(fold(name)) == compact_form:
                return name
    return compact_form


@dataclass
class Header:
    index: int  # of the header's (last) line among the lines read
    lines: tuple[int, ...]  # the file's line numbers the header takes
    fields: dict[int, str]  # column → field
    texts: dict[int, str]  # column → its header as the file writes it
    notices: list[str]
    ignored: list[str]
    headed: set[int]  # every column with a header, read or not
    unread: list[str]  # the headers not recognised (or mapped to be left), as the file writes them


def _fill_merges(head: list[Line], merges: Sequence[tuple[int, int, int, int]]) -> list[Line]:
    """The first lines with each merged range's value in every cell it covers: "ПІБ" over three
    columns heads all three, "№" merged down two rows heads both."""
    if not merges:
        return head
    rows = {number: list(cells) for number, cells in head}
    for min_col, min_row, max_col, max_row in merges:
        top = rows.get(min_row)
        if top is None or min_col - 1 >= len(top) or _blank(top[min_col - 1]):
            continue
        value = top[min_col - 1]
        for row_number in range(min_row, max_row + 1):
            cells = rows.get(row_number)
            if cells is None:
                # A row left blank under a downward merge is still the header's second row.
                cells = rows[row_number] = []
            cells.extend([None] * (max_col - len(cells)))
            for column in range(min_col - 1, max_col):
                if _blank(cells[column]):
                    cells[column] = value
    return sorted(rows.items())


def _recognised(cells: Sequence[Any], vocabulary: Vocabulary, mapping: Mapping[str, str] | None
                ) -> dict[int, HeaderMatch]:
    found: dict[int, HeaderMatch] = {}
    for column, cell in enumerate(cells):
        # Only text heads a column: numbers and dates are data.
        if isinstance(cell, str):
            match = recognise_header(cell, vocabulary, mapping)
            if match is not None:
                found[column] = match
    return found


def find_header(head: list[Line], columns: Mapping[str, Sequence[str]], required: Sequence[Sequence[str]],
                *, mapping: Mapping[str, str] | None = None,
                merges: Sequence[tuple[int, int, int, int]] = ()) -> Header | None:
    """The first line (of the first few) whose cells name the required fields, with the line below
    it when that is the header's second level (ПІБ over Прізвище / Ім'я / По батькові, with № and
    the dates merged down): each column takes the field its lower cell names, else its upper one's."""
    vocabulary = _vocabulary(columns)
    filled = _fill_merges(head, merges)
    for index, (line, cells) in enumerate(filled[:HEADER_SEARCH_ROWS]):
        upper = _recognised(cells, vocabulary, mapping)
        texts = {column: " ".join(str(cell).split()) for column, cell in enumerate(cells) if not _blank(cell)}
        options: list[tuple[tuple[int, ...], int, dict[int, HeaderMatch], dict[int, str]]] = []
        # A title merged across the table repeats one text: never a header's first level.
        if index + 1 < len(filled) and len(set(texts.values())) > 1:
            below_line, below = filled[index + 1]
            lower = _recognised(below, vocabulary, mapping)
            # A second level names fields of its own under the first (a title line above a header is
            # one cell, never a first level).
            if any(upper.get(column) is None or upper[column].field != match.field for column, match in lower.items()):
                joined = {**upper, **lower}
                joined_texts = dict(texts)
                for column, cell in enumerate(below):
                    if _blank(cell):
                        continue
                    below_text = " ".join(str(cell).split())
                    if column in lower or column not in texts:
                        joined_texts[column] = below_text
                    elif below_text != texts[column]:
                        joined_texts[column] = f"{texts[column]} {below_text}"
                        # The lower level names its column ("Сведения о ребенке" over "Место рождения"):
                        # one it names as nothing known is not the upper level's field.
                        joined.pop(column, None)
                options.append(((line, below_line), index + 1, joined, joined_texts))
        options.append(((line,), index, upper, texts))
        for lines, last, matches, header_texts in options:
            header = _header_of(lines, last, matches, header_texts, columns, required)
            if header is not None:
                return header
    return None


_ON_THE_LIST = re.compile(r"списк|перелік|list")


def _header_of(lines: tuple[int, ...], last: int, matches: dict[int, HeaderMatch], texts: dict[int, str],
               columns: Mapping[str, Sequence[str]], required: Sequence[Sequence[str]]) -> Header | None:
    fields: dict[int, str] = {}
    notices: list[str] = []
    ignored: list[str] = []
    for column in sorted(matches):
        match = matches[column]
        if match.field == IGNORE:
            continue
        if match.field in fields.values():
            first = next(taken for taken, field_name in fields.items() if field_name == match.field)
            if match.field == "position" and _ON_THE_LIST.search(fold(texts.get(column, ""))) and not \
                    _ON_THE_LIST.search(fold(texts.get(first, ""))):
                # "№ п/п" is the file's own count; "№ по списку" the number on the list it answers.
                del fields[first]
                first, column = column, first
                fields[first] = match.field
            ignored.append(_("{header} (a second column for {field})").format(
                header=texts.get(column, ""), field=FIELD_LABELS.get(match.field, match.field)))
            continue
        fields[column] = match.field
        if match.how in ("typo", "prefix"):
            notices.append(_("the header “{header}” was read as “{known}”: {field}").format(
                header=texts.get(column, ""), known=_known_form(columns, match.known_as),
                field=FIELD_LABELS.get(match.field, match.field)))
    if not any(set(option) <= set(fields.values()) for option in required):
        return None
    # Unread: each column with a header not recognised, or mapped to be left (a second column for a
    # field is named above, with that reason).
    seconds = {column for column, match in matches.items() if column not in fields and match.field != IGNORE}
    unread = [texts[column] for column in sorted(texts) if column not in fields and column not in seconds]
    return Header(last, lines, fields, {column: texts.get(column, "") for column in fields}, notices,
                  unread + ignored, set(texts), unread)


def headers_found(head: list[Line], columns: Mapping[str, Sequence[str]],
                  merges: Sequence[tuple[int, int, int, int]] = ()) -> tuple[int | None, list[str]]:
    """When no header is recognised: the line that looks most like one (the most cells of text without
    digits, then the most recognised, then the first), and its cells, for the message and the mapping."""
    vocabulary = _vocabulary(columns)
    best: tuple[int, int, int] | None = None
    filled = _fill_merges(head, merges)
    for index, (_line, cells) in enumerate(filled[:HEADER_SEARCH_ROWS]):
        texts = [cell for cell in cells if isinstance(cell, str) and cell.strip() and not re.search(r"\d", cell)]
        score = (len(texts), len(_recognised(cells, vocabulary, None)), -index)
        if best is None or score > best:
            best = score
            found = index
    if best is None:
        return None, []
    line, cells = filled[found]
    return line, [str(cell).strip() for cell in cells if not _blank(cell)]


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------

_DATE_PATTERNS = (
    (re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"), ("year", "month", "day")),
    (re.compile(r"^(\d{1,2})[./-](\d{1,2})[./-](\d{4})$"), ("day", "month", "year")),
    (re.compile(r"^(\d{1,2})[./-](\d{4})$"), ("month", "year")),
    (re.compile(r"^(\d{4})[-.](\d{1,2})$"), ("year", "month")),
    (re.compile(r"^(\d{4})$"), ("year",)),
    (re.compile(r"^(\d{4})[./](\d{1,2})[./](\d{1,2})$"), ("year", "month", "day")),
    # Two digits of the year (05.03.15): the century is the one that puts the date not after today.
    (re.compile(r"^(\d{1,2})[./-](\d{1,2})[./-](\d{2})$"), ("day", "month", "short_year")),
    (re.compile(r"^(\d{1,2}) (\d{1,2}) (\d{4})$"), ("day", "month", "year")),
)
# A month by the start of its name, in Ukrainian (either case: березень, березня), Russian and English.
MONTH_STARTS = {
    "січ": 1, "лют": 2, "бер": 3, "кві": 4, "тра": 5, "чер": 6, "лип": 7, "сер": 8, "вер": 9, "жов": 10, "лис": 11,
    "гру": 12, "янв": 1, "фев": 2, "мар": 3, "апр": 4, "май": 5, "мая": 5, "июн": 6, "июл": 7, "авг": 8, "сен": 9,
    "окт": 10, "ноя": 11, "дек": 12, "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8,
    "sep": 9, "oct": 10, "nov": 11, "dec": 12,
}
_NAMED_MONTH = re.compile(r"^(?:(\d{1,2})[\s./-]+)?([^\W\d_]{3,})\.?,?[\s./-]+(\d{4})$")
# "March 5, 2012", "Mar 5 2012": the month first, as English writes it.
_MONTH_FIRST = re.compile(r"^([^\W\d_]{3,})\.?\s+(\d{1,2}),?\s+(\d{4})$")
# "12.III.2015": the month in Roman numerals.
_ROMAN_MONTH = re.compile(r"^(\d{1,2})[\s./-]+([ivxIVX]{1,4})[\s./-]+(\d{4})$")
# What follows a birth date or year: "р.", "р.н.", "г.р.", "року", "yob".
_YEAR_WORD = re.compile(r"\s*(?:р\.?\s*н|г\.?\s*р|р|рік|г|год|года|году|року|рр|yr|yob|year)\.?$", re.IGNORECASE)
_ROMAN_MONTHS = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "x": 10, "xi": 11,
                 "xii": 12}
# Excel counts days from 30 December 1899: 32874 is 1 January 1990, 73051 is 31 December 2099.
_SERIAL_DATES = range(32_874, 73_051)
_SERIAL_EPOCH = datetime.date(1899, 12, 30)
_SERIAL_TEXT = re.compile(r"\d{5}(?:\.0+)?")


def _serial_day(value: Any) -> int | None:
    """Excel's serial number of a day written as text, as a CSV saved from Excel holds a date cell
    formatted General ("40973" for 5 March 2012): five digits, within the days a list's dates fall
    on. Four digits are a year (a birth year alone), never a serial number."""
    if isinstance(value, str) and _SERIAL_TEXT.fullmatch(value.strip()) and int(float(value)) in _SERIAL_DATES:
        return int(float(value))
    return None


def _readings(value: Any) -> list[str]:
    """A cell's text, then each half of a bilingual "Ж / F" or "Депортовано / Deported"."""
    text = str(value).strip()
    parts = [text]
    if "/" in text and not re.fullmatch(r"[\d./\s-]+", text):
        parts += [part.strip() for part in text.split("/") if part.strip()]
    return parts


def parse_date(value: Any, *, today: datetime.date, earliest: int = EARLIEST_BIRTH_YEAR,
               what: str = "date") -> tuple[datetime.date, str] | None:
    """(first day of what is known, precision) for a date in any of the forms lists use: 2011-03-05,
    05.03.2011, 05/03/2011 (day first), 03.2011, 2011, "2011 р.", a spreadsheet's date, or Excel's
    serial number of a day in a number cell (40973) or as text (`_serial_day`). None for an empty
    cell; ValueError saying why."""
    if _blank(value):
        return None
    value = _serial_day(value) or value
    if isinstance(value, datetime.datetime):
        value = value.date()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime.date):
        found, precision = value, getattr(value, "precision", "day")
    elif isinstance(value, int) and not isinstance(value, bool) and value in _SERIAL_DATES:
        found, precision = _SERIAL_EPOCH + datetime.timedelta(days=value), "day"
    else:
        text = re.sub(r"\s+", " ", str(value)).strip()
        # A date a spreadsheet turned into text keeps its time (05.03.2011 0:00:00); a birth date has none.
        text = re.sub(r"[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$", "", text)
        # A note in brackets ("12.03.2015 (8 років)"), spaces around the separators, a closing full stop.
        text = re.sub(r"\s*\([^)]*\)", "", text)
        text = re.sub(r"\s*([./-])\s*(?=\S)", r"\1", text)
        text = _YEAR_WORD.sub("", text).rstrip(".").strip()
        text = re.sub(r"^(\d+)\.0+$", r"\1", text)
        numbers = _date_numbers(text, today)
        if numbers is None:
            raise ValueError(_("“{value}” is not a {what}: write it as 2011-03-05, 05.03.2011, 03.2011 or 2011")
                             .format(value=value, what=what))
        precision = "day" if "day" in numbers else "month" if "month" in numbers else "year"
        try:
            found = datetime.date(numbers["year"], numbers.get("month", 1), numbers.get("day", 1))
        except ValueError as error:
            raise ValueError(_("“{value}” is not a date of the calendar").format(value=value)) from error
    if found > today:
        raise ValueError(_("“{value}” is in the future").format(value=_shown(value, found)))
    if found.year < earliest:
        raise ValueError(_("“{value}” is before {year}: not a child's birth date").format(
            value=_shown(value, found), year=earliest))
    return found, precision


def _date_numbers(text: str, today: datetime.date) -> dict[str, int] | None:
    """The year, month and day a date's text gives (as many as it gives), or None."""
    for pattern, parts in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            numbers = dict(zip(parts, map(int, match.groups()), strict=True))
            if "short_year" in numbers:
                year = 2000 + numbers.pop("short_year")
                numbers["year"] = year if year <= today.year else year - 100
            return numbers
    roman = _ROMAN_MONTH.match(text)
    if roman and roman.group(2).lower() in _ROMAN_MONTHS:
        return {"day": int(roman.group(1)), "month": _ROMAN_MONTHS[roman.group(2).lower()], "year": int(roman.group(3))}
    first = _MONTH_FIRST.match(text)
    if first and MONTH_STARTS.get(first.group(1)[:3].lower()):
        return {"day": int(first.group(2)), "month": MONTH_STARTS[first.group(1)[:3].lower()],
                "year": int(first.group(3))}
    named = _NAMED_MONTH.match(text)
    month = MONTH_STARTS.get(named.group(2)[:3].lower()) if named else None
    if named is None or month is None:
        return None
    numbers = {"year": int(named.group(3)), "month": month}
    if named.group(1):
        numbers["day"] = int(named.group(1))
    return numbers


def _shown(value: Any, found: datetime.date) -> str:
    return f"{found:%d.%m.%Y}" if isinstance(value, int | float | datetime.date) else str(value)


def parse_birth_date(value: Any, *, today: datetime.date) -> tuple[datetime.date, str] | None:
    return parse_date(value, today=today)


SEX_WORDS = {
    "m": "M", "male": "M", "boy": "M", "ч": "M", "чол": "M", "чоловіча": "M", "чоловіча стать": "M", "хлопчик": "M",
    "м": "M", "муж": "M", "мужской": "M", "мальчик": "M", "чоловік": "M", "хлопець": "M", "юнак": "M",
    "f": "F", "female": "F", "girl": "F", "ж": "F", "жін": "F", "жіноча": "F", "жіноча стать": "F", "дівчинка": "F",
    "жен": "F", "женский": "F", "девочка": "F", "дівчина": "F", "девушка": "F",
    "u": "U", "unknown": "U", "невідомо": "U", "неизвестно": "U",
}

# The start of each oblast's name in any of its forms (Донецька, Донецкая, Donetsk ...), folded.
OBLAST_STEMS: dict[str, tuple[str, ...]] = {
    Oblast.CHERKASY: ("Черкас", "Cherkas", "Черкащ"), Oblast.CHERNIHIV: ("Черніг", "Черниг", "Chernih", "Chernig"),
    Oblast.CHERNIVTSI: ("Чернів", "Черновиц", "Chernivt", "Буковин"), Oblast.CRIMEA: ("Крим", "Crimea", "Krym"),
    Oblast.DNIPROPETROVSK: ("Дніпропетров", "Днепропетров", "Dnipropetrov", "Дніпро", "Dnipro"),
    Oblast.DONETSK: ("Донец", "Donets", "Донеч"), Oblast.IVANO_FRANKIVSK: ("Івано", "Ивано", "Ivano", "Прикарпат"),
    Oblast.KHARKIV: ("Харків", "Харьков", "Kharkiv"), Oblast.KHERSON: ("Херсон", "Kherson"),
    Oblast.KHMELNYTSKYI: ("Хмельниц", "Khmelnyts", "Хмельнич"),
    Oblast.KIROVOHRAD: ("Кіровоград", "Кировоград", "Kirovohrad"),
    Oblast.KYIV: ("Київ", "Киев", "Kyiv"), Oblast.LUHANSK: ("Луган", "Luhansk", "Lugansk"),
    Oblast.LVIV: ("Львів", "Львов", "Lviv"), Oblast.MYKOLAIV: ("Миколаїв", "Николаев", "Mykolaiv"),
    Oblast.ODESA: ("Одес", "Odes", "Одещ"), Oblast.POLTAVA: ("Полтав", "Poltav"),
    Oblast.RIVNE: ("Рівн", "Ровен", "Rivne", "Ровно", "Rovno"),
    Oblast.SEVASTOPOL: ("Севастопол", "Sevastopol"), Oblast.SUMY: ("Сум", "Sumy"),
    Oblast.TERNOPIL: ("Тернопіл", "Тернопол", "Ternopil"),
    Oblast.VINNYTSIA: ("Вінниц", "Винниц", "Vinnyts", "Віннич", "Виннич"),
    Oblast.VOLYN: ("Волин", "Волын", "Volyn"), Oblast.ZAKARPATTIA: ("Закарпат", "Zakarpat", "Transcarpath"),
    Oblast.ZAPORIZHZHIA: ("Запоріз", "Запорож", "Zaporiz", "Запоріж"), Oblast.ZHYTOMYR: ("Житомир", "Zhytomyr"),
}
_PLACE_KIND_WORDS = {"область", "обл", "oblast", "obl", "region", "ар", "автономна", "республіка", "ark"}
_CITY_WORDS = {"м", "місто", "г", "город", "city"}
_CITY_KEYS = frozenset(latin_key(word) for word in _CITY_WORDS)
_OBLAST_KEYS = frozenset(latin_key(word) for word in ("область", "обл", "oblast", "obl", "region", "областъ",
                                                      "oblast'", "області", "областi"))


# The same few words fill a column thousands of times: each is worked out once.
_ONCE = functools.lru_cache(maxsize=8192)
_OBLAST_CODES = frozenset(Oblast.values)


@_ONCE
def parse_oblast(value: Any) -> str:
    """The oblast's code for its name in any form (Донецька обл., Донецкая, Donetsk region, м. Київ)."""
    for reading in _readings(value):
        words = latin_key(reading).split()
        if words in (["ark"], ["ar", "krym"], ["ar", "k"]):
            # "АРК", "АР Крим": the autonomous republic, written as its initials.
            return str(Oblast.CRIMEA)
        # "м. Київ" is the city; "Київська обл., м. Бровари" a town of the oblast.
        city = bool(set(words) & _CITY_KEYS) and not set(words) & _OBLAST_KEYS
        words = [word for word in words if word not in {latin_key(w) for w in _PLACE_KIND_WORDS | _CITY_WORDS}]
        if not words:
            continue
        name = words[0]
        if reading.strip() in _OBLAST_CODES:
            return reading.strip()
        for code, stems in OBLAST_STEMS.items():
            if name == code or any(name.startswith(latin_key(stem)) for stem in stems):
                if code == Oblast.KYIV and city:
                    return Oblast.KYIV_CITY
                return str(code)
    raise ValueError(_("“{value}” is not an oblast of Ukraine").format(value=value))


# Words that name each circumstance, as stems of the folded text, in Ukrainian, Russian and English.
# Read in this order: "депортовано, вихованець інтернату" is deported first.
CIRCUMSTANCE_STEMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (Circumstances.DEPORTED, ("депорт", "deport", "вивезен", "вывезен")),
    (Circumstances.FORCIBLY_TRANSFERRED, ("примусово перемі", "примусове перемі", "примусово перем",
                                          "принудительно перемещ", "насильственно перемещ", "насильно перемещ",
                                          "forcibly transfer", "forced transfer", "transferred", "перемещен",
                                          "переміщен")),
    (Circumstances.HELD_IN_OCCUPIED_TERRITORY, ("тот", "окупован", "оккупирован", "утримуєт", "утримуют",
                                                "удерживает", "occupied", "held in")),
    (Circumstances.PLACED_WITH_FAMILY, ("в сім'ю", "у сім'ю", "в родину", "у родину", "в сем'ю", "в семью",
                                        "передан в сем", "передано в сім", "влаштован", "устроен в сем",
                                        "опік", "опек", "усиновл", "удочер", "усинов", "placed with",
                                        "foster", "adopted", "family")),
    (Circumstances.IN_INSTITUTION, ("інтернат", "интернат", "заклад", "учрежден", "дитяч будинок",
                                    "дитячий будинок", "детский дом", "детдом", "institution", "orphanage",
                                    "boarding school", "вихованец", "воспитанни", "санатор", "лагер", "табор", "camp")),
    (Circumstances.OTHER, ("інше", "інший", "другое", "иное", "other")),
)
CATEGORY_STEMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (ChildCategory.WITHOUT_PARENTAL_CARE, ("позбавлен", "без батьківського", "без попечения", "без піклування",
                                           "оставшийся без", "лишен", "without parental", "позбавлена", "без батьк",
                                           "без родител", "without parents", "пбп", "дпбп")),
    (ChildCategory.ORPHAN, ("сирот", "orphan")),
    (ChildCategory.INSTITUTION_PUPIL, ("вихованец", "вихованк", "воспитанни", "pupil", "інтернат",
                                       "интернат", "institution")),
    (ChildCategory.WITH_PARENTS, ("з батьк", "с родител", "з родин", "with parent", "з мат", "с мат",
                                  "з бать", "with famil", "with mother", "with father")),
    (ChildCategory.UNKNOWN, ("невідом", "неизвест", "unknown", "не визнач")),
)


def _choice(value: Any, choices: Any, stems: Sequence[tuple[str, tuple[str, ...]]], what: str) -> str:
    """A choice's code from its code, its English label, or the words for it (the first stem found)."""
    for reading in _readings(value):
        folded = fold(reading)
        for choice in choices:
            if folded in (choice.value, fold(choice.value), fold(choice.label)):
                return str(choice.value)
    spaced = f" {fold(value)} "
    for code, words in stems:
        # At a word's start ("з батьками", not the end of "без батьків"), and not denied ("не депортована").
        if any(f" {word}" in spaced and not re.search(rf"(?:^| )(?:не|ні|not|non) {re.escape(word)}", spaced)
               for word in words):
            return str(code)
    raise ValueError(_("“{value}” is not a {what} this knows: write one of {known}").format(
        value=value, what=what, known=", ".join(str(choice.label).lower() for choice in choices)))


@_ONCE
def parse_circumstances(value: Any) -> str:
    return _choice(value, Circumstances, CIRCUMSTANCE_STEMS, _("circumstance"))


@_ONCE
def parse_category(value: Any) -> str:
    return _choice(value, ChildCategory, CATEGORY_STEMS, _("category"))


@_ONCE
def parse_sex(value: Any) -> str:
    for reading in _readings(value):
        sex = SEX_WORDS.get(fold(reading))
        if sex is not None:
            return sex
    # Word by word ("Ж (F)", "Мужской пол"), a word being a known one or the start of a full word for one
    # sex only ("хл.", "дівч.", "женск."); any word that is neither, or two sexes, is no answer.
    found: set[str] = set()
    for word in fold(value).split():
        if word in ("пол", "стать", "sex", "gender", "статі"):
            continue
        sexes = {SEX_WORDS[word]} if word in SEX_WORDS else {
            sex for sex, words in SEX_FULL_WORDS.items()
            if len(word) >= 2 and any(full.startswith(word) for full in words)}
        if len(sexes) != 1:
            found = set()
            break
        found |= sexes
    if len(found) == 1:
        return found.pop()
    raise ValueError(_("“{value}” is not a sex: write ч / ж, M / F").format(value=value))


SEX_FULL_WORDS = {
    "M": ("чоловіча", "чоловічий", "чоловічої", "чоловік", "хлопчик", "хлопець", "юнак", "мужской", "мужского",
          "мужчина", "мальчик", "юноша", "male", "boy", "man"),
    "F": ("жіноча", "жіночий", "жіночої", "жінка", "дівчинка", "дівчина", "женский", "женского", "женщина", "девочка",
          "девушка", "female", "girl", "woman"),
}


# Outcomes as official replies phrase them, as stems of the folded phrase (gender endings such as
# "(а)", "(ла)" dropped first). Negative findings are read first: "не найден" is not "найден".
OUTCOME_PHRASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (Outcome.NO_INFORMATION, ("сведений не имеется", "сведения отсутствуют", "сведений нет", "нет сведений",
                              "нет информации", "информация отсутствует", "информации не имеется",
                              "данных нет", "нет данных", "сведениями не располага", "не располагаем",
                              "немає інформації", "інформація відсутня", "відомості відсутні", "відомостей немає",
                              "немає відомостей", "даних немає", "немає даних", "no information", "no data",
                              "no info", "information unavailable", "нет ответа", "no record")),
    (Outcome.NEVER_ON_TERRITORY, ("не значится", "не значиться", "не значився", "не значилась", "не прибывал",
                                  "не находился", "не находилась", "не перебував", "не перебувала",
                                  "не въезжал", "не в'їжджав", "never on", "never entered", "never arrived",
                                  "not registered", "no record of entry", "не поступал")),
    (Outcome.NOT_FOUND, ("не найден", "не обнаружен", "не установлен", "не удалось установить",
                         "не розшукан", "не знайден", "не виявлен", "не встановлен", "не вдалося встановити",
                         "местонахождение неизвестно", "місцеперебування невідоме", "not found", "not located",
                         "whereabouts unknown", "could not be located", "розыск продолжается",
                         "не может быть установлен", "не представляется возможным установить",
                         "не може бути встановлен", "неможливо встановити", "cannot be established")),
    (Outcome.DECEASED, ("умер", "скончал", "погиб", "смерт", "помер", "загинув", "загинула", "died", "deceased",
                        "dead ", "death")),
    (Outcome.NOW_ADULT, ("совершеннолет", "повноліт", "now an adult", "is an adult", "became an adult",
                         "reached adulthood", "age of majority", "turned 18", "turned eighteen", "18 лет",
                         "18 років", "исполнилось 18", "виповнилося 18")),
    (Outcome.LEFT_COUNTRY, ("выехал", "выбыл за пределы", "за пределы", "покинул", "виїхав", "виїхала",
                            "за межі", "left the country", "left russia", "left the territory", "departed")),
    (Outcome.RETURNED, ("возвращен", "вернул", "передан законн", "передан родител", "передана законн",
                        "передана родител", "переданы законн", "переданы родител", "передан матер", "передана матер",
                        "переданы матер", "передан отц", "передана отц", "переданы отц", "воссоедин", "повернут",
                        "повернен", "повернувся", "повернулась", "повернулася", "возз'єдн", "returned",
                        "reunited", "reunified")),
    (Outcome.REFUSED, ("отказ", "відмов", "refus", "declin", "отклонен")),
    (Outcome.MORE_INFORMATION_REQUESTED, ("запрос", "уточн", "дополнительн", "додатков", "запит", "просим сообщ",
                                          "просимо надати", "more information", "clarif", "further details",
                                          "please provide")),
    (Outcome.LOCATED, ("установлено местонахождение", "местонахождение установлено", "находится", "проживает",
                       "находятся", "проживают", "пребывают", "перебувають", "проживають",
                       "пребывает", "содержится", "обучается", "найден", "обнаружен", "розшукан", "знайден",
                       "виявлен", "перебуває", "проживає", "встановлено місцеперебування",
                       "місцеперебування встановлено", "located", "found", "whereabouts known", "lives in",
                       "resides", "is in ", "stays")),
)
# Words by which a reply hedges its claim ("possibly located", "вероятно находится", "можливо знайдено"):
# a hedged phrase is no firm outcome, whichever outcome it names, and is left to a person. Matched on the
# folded phrase at a word's start; `\b` ends a whole word ("возможно", not "невозможно" or "возможность").
HEDGES: tuple[str, ...] = (
    # Ukrainian
    r"можливо\b", r"ймовірн", r"імовірн", r"найімовірн", r"вірогідн", r"найвірогідн", r"мабуть\b", r"напевно\b",
    r"припуска", r"припустим", r"не виключен", r"не виключає", r"схоже\b", r"(?<!не )може бути\b", r"нібито\b",
    r"ніби\b", r"начебто\b", r"непідтвердж", r"не підтвердж", r"неперевірен", r"попередньо\b", r"орієнтовн",
    r"швидше за все", r"збіг", r"збіж", r"співпад",
    # Russian
    r"возможно\b", r"вероятн", r"маловероятн", r"предположительн", r"предполага", r"не исключен",
    r"не исключает", r"видимо\b", r"по видимому\b", r"(?<!не )может быть\b", r"якобы\b", r"непроверенн",
    r"неподтвержд", r"не подтвержд", r"предварительно\b", r"ориентировочн", r"скорее всего", r"наверное\b",
    r"судя по всему", r"кажется\b", r"совпад",
    # English
    r"maybe\b", r"may be\b", r"might\b", r"perhaps\b", r"possib", r"probabl", r"presum", r"likely\b",
    r"unlikely\b", r"apparent", r"suppos", r"alleged", r"reportedly\b", r"seem", r"(?<!not )could be\b",
    r"not excluded", r"not ruled out", r"cannot be ruled out", r"unconfirmed", r"not confirmed", r"unverified",
    r"not verified", r"tentativ", r"believed\b", r"thought to\b", r"assum", r"match",
)
_HEDGE = re.compile(r"(?<!\w)(?:" + "|".join(HEDGES) + r")\w*")
_GENDER_ENDING = re.compile(r"\((?:а|ла|на|ая|ась|ся|ой|ий|ого|ої|ей|ие)\)")
_PLACE_AFTER = re.compile(r"(?:находится|проживает|пребывает|содержится|обучается|перебуває|проживає|мешкає|"
                          r"находятся|проживают|пребывают|перебувають|проживають|live|lives|"
                          r"resides|is|stays|located|found)(?:\s+(?:с|со|з|із|зі|разом з|вместе с|with)\s+[^,;]+?)?"
                          r"\s+(?:в|во|у|на|in|at)\s+", re.IGNORECASE)
# A place as replies name one: a capital letter, or the kind of settlement before its name ("г. Курск").
_TOWN = re.compile(r"(?<!\w)(?:г|м|с|пгт|смт|пос|город|місто|село|city of|town of)\.?\s+[A-ZА-ЯІЇЄҐ]")
_A_PLACE = re.compile(r"[A-ZА-ЯІЇЄҐ«\"]|" + _TOWN.pattern)
_STATES = (r"(?:\w+\s+)?(?:рассмотрени|работе|розыск|обработк|проверк|стади|процесс|исполнени|лечени|учет|розгляд|"
           r"опрацюванн|перевірц|роботі|розшук|виконанн|лікуванн|облік|progress|review|processing|consideration|"
           r"treatment|work\b|состояни|здоров|стані|health|condition)")
_NOT_A_PLACE = re.compile(r"(?:в|во|у|на|in|at|under)\s+" + _STATES, re.IGNORECASE)
_A_STATE = re.compile(_STATES, re.IGNORECASE)
# A claim the rest of its clause says cannot be, or did not, come true: "возвращение не представляется
# возможным", "местонахождение установить не удалось", "return is impossible".
_IMPOSSIBLE = re.compile(r"(?<!\w)(?:невозможн|неможлив|не представляется возможн|не представилось возможн|"
                         r"не удалось|не удается|не вдалося|не вдається|не может|не могут|не може|не можуть|"
                         r"не будет|не буде|impossible|not possible|cannot|can't|could not|unable|will not|won't|"
                         r"failed)")
# Looking for the child, in any of the three languages: with `_IMPOSSIBLE` in its clause, "not found".
_SEARCHED = re.compile(r"(?<!\w)(?:установ|найт|обнаруж|розыск|встанов|знайт|розшук|виявит|locat|find|trac)")
# Findings worded too freely for stems, each in one clause.
_FINDINGS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (Outcome.NO_INFORMATION, re.compile(
        r"(?<!\w)(?:сведени|информаци|данн|відомост|інформаці|даних|information|data|records?\b)\w*"
        r"(?:\s+\w+){0,4}\s+(?:отсутству|не имеет|не имеются|відсутн|unavailable|not available)")),
    (Outcome.NOT_FOUND, re.compile(
        r"(?<!\w)(?:местонахожд|местопребыван|місцеперебуван|місцезнаходж|whereabouts)\w*"
        r"(?:\s+\w+){0,3}\s+(?:неизвестн|не известн|невідом|не відом|unknown|not known)")),
    (Outcome.NOT_FOUND, re.compile(
        r"(?<!\w)(?:(?:в|у|во)\s+(?:\w+\s+)?(?:розыске|розшуку)|объявлен\w*\s+в\s+(?:\w+\s+)?розыск|"
        r"оголошен\w*\s+(?:в|у)\s+(?:\w+\s+)?розшук|розшук триває|розыск ведется|search continues|"
        r"search is ongoing|still being searched|wanted list)")),
)
# Where a reply's phrase parts into clauses, each read on its own: "местонахождение установлено,
# законный представитель не установлен" says two things, of two people.
_CLAUSES = re.compile(r"[,;:.!?()\[\]«»\"“”„]+|\s[-–—]+\s|\s(?:а|но|однако|але|однак|проте|but|however|whereas)\s",
                      re.IGNORECASE)
_NEGATIVE_FINDINGS = (Outcome.NO_INFORMATION, Outcome.NEVER_ON_TERRITORY, Outcome.NOT_FOUND)


def phrase_key(value: Any) -> str:
    """A reply's phrase as matched and as mapped: folded, its gender endings "(а)", "(ла)" dropped."""
    return fold(_GENDER_ENDING.sub("", str(value or "")))


def _outcome_codes() -> dict[str, str]:
    lookup = {}
    for outcome in Outcome:
        for word in (outcome.value, outcome.value.replace("_", " "), outcome.label):
            lookup[fold(word)] = str(outcome.value)
    return lookup


_OUTCOMES = _outcome_codes()


class UnknownPhrase(ValueError):
    """A reply's phrase no outcome is known for: a person maps it, nothing guesses it. `several`:
    the phrase reads as more than one outcome, rather than as none; `hedge`: the word by which it
    hedges ("possibly", "вероятно"), the claim then being no firm outcome."""

    def __init__(self, message: str, *, several: bool = False, hedge: str = "") -> None:
        super().__init__(message)
        self.several, self.hedge = several, hedge


def parse_outcome(value: Any, mapping: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(outcome, the place the phrase names, if any) for a reply's phrase: the case worker's mapping
    first, then the outcome's code or label, then the phrases official replies use. A phrase that
    hedges (`HEDGES`), names two outcomes, or none, is an `UnknownPhrase`."""
    key = phrase_key(value)
    if mapping and key in mapping:
        return mapping[key], ""
    if key in _OUTCOMES:
        return _OUTCOMES[key], ""
    hedge = _HEDGE.search(key)
    if hedge:
        raise UnknownPhrase(_("“{value}” is not a firm outcome (“{hedge}” hedges it): map it to one in the "
                              "preview, or with --outcomes").format(value=value, hedge=hedge.group()),
                            hedge=hedge.group())
    found: set[str] = set()
    for clause in _CLAUSES.split(_GENDER_ENDING.sub("", str(value or ""))):
        found |= _clause_outcomes(fold(clause))
    if found and found <= set(_NEGATIVE_FINDINGS):
        # Negative findings only ("не найден, сведений не имеется"): the first of them says it.
        found = {next(str(outcome) for outcome in _NEGATIVE_FINDINGS if outcome in found)}
    if len(found) != 1:
        # None, or several: a person reads "проживает с бабушкой, нет сведений о матери", nothing guesses.
        raise UnknownPhrase(_("“{value}” is not an outcome this knows{why}: map it to one in the preview, or "
                              "with --outcomes").format(value=value, why=_(" (it reads as more than one)")
                                                        if found else ""), several=bool(found))
    outcome = found.pop()
    place = ""
    if outcome == Outcome.LOCATED:
        place = _reported_place(re.sub(r"\s+", " ", str(value)).strip())
    return outcome, place


def _reported_place(text: str) -> str:
    """The place a "located" phrase names after its verb ("проживает с бабушкой в г. Курск"): what
    follows "в", "на", "in" when it reads as a place, else the first town named after it; never a
    state ("на лечении"), a family or a school ("в семье опекуна", "в колледже")."""
    for near in _PLACE_AFTER.finditer(text):
        after = text[near.end():]
        if _A_STATE.match(after):
            continue
        if _A_PLACE.match(after):
            return after.strip(" .;,")[:255]
        town = _TOWN.search(after)
        if town:
            return after[town.start():].strip(" .;,")[:255]
    return ""


# Who or what a clause may be about other than the child: a relative, a guardian, the request or letter.
_SOMEONE_ELSE = re.compile(r"(?:матер|мать|мати|мам|отец|отц|батьк|бать|родител|бабус|бабушк|дедушк|дід|діду|брат|"
                           r"сестр|опекун|родственник|родич|mother|father|parent|grandmother|grandfather|brother|"
                           r"sister|guardian|relative|запрос|обращени|звернен|запит|request|letter|документ|"
                           r"document|ответ|відповід)\w*$")
_THE_CHILD = re.compile(r"(?:ребенок|ребенк|ребёнок|дитин|дитя|child|он|она|він|вона|воспитанни|вихован|несовершен|"
                        r"неповноліт|minor|son|daughter|сын|дочь|син|донька)\w*$")
_WITH = frozenset({"с", "со", "з", "із", "зі", "with", "разом", "вместе"})
_TO_A_TOWN = re.compile(r"(?<!\w)(?:в|во|до|у|to)\s+(?:г|м|город|місто|пос|пгт|смт|city of)(?:\s|$)")


def _about_someone_else(before: str) -> bool:
    """Whether the words before a claim make it another's: the nearest one naming a person or thing
    names someone else (a relative "with" the child, "с матерью", is company, not the subject)."""
    words = before.split()
    for index in range(len(words) - 1, -1, -1):
        word = words[index]
        if _THE_CHILD.match(word):
            return False
        if _SOMEONE_ELSE.match(word) and not (index > 0 and words[index - 1] in _WITH):
            return True
    return False


def _clause_outcomes(clause: str) -> set[str]:
    """The outcomes one folded clause of a reply's phrase claims. Negative findings count as they are
    ("не найден"); any other claim the clause denies does not ("не будет возвращён", "возвращение не
    представляется возможным"), save that a place denied is the finding "not found"."""
    text = f" {clause} "
    found: set[str] = set()
    for outcome, stems in OUTCOME_PHRASES:
        hit = next((stem for stem in stems if (f" {stem}" in text)), None)
        if hit is None:
            continue
        at = text.index(f" {hit}")
        if _about_someone_else(text[:at]):
            # "Мать погибла", "the child's mother is deceased", "запрос возвращён": not the child's.
            continue
        if outcome == Outcome.LEFT_COUNTRY and _TO_A_TOWN.search(text[at:]):
            # "выехал с матерью в г. Москву": a move, not out of the country.
            continue
        if outcome in _NEGATIVE_FINDINGS:
            found.add(str(outcome))
            continue
        after = text[at + len(hit) + 1:]
        if outcome == Outcome.LOCATED and (_NOT_A_PLACE.match(after.lstrip())
                                           or _NOT_A_PLACE.match(f"{hit.split()[-1]} {after.lstrip()}")):
            # "находится на рассмотрении", "is in progress": the request's state, not the child's place.
            continue
        if _negated(text, hit) or _IMPOSSIBLE.search(after):
            # "не может быть установлено местонахождение", "could not be found": the place was not
            # established, which is the finding "not found". Any other claim denied is no claim.
            if outcome == Outcome.LOCATED:
                found.add(str(Outcome.NOT_FOUND))
            continue
        found.add(str(outcome))
    if _IMPOSSIBLE.search(text) and _SEARCHED.search(text):
        found.add(str(Outcome.NOT_FOUND))
    found.update(str(outcome) for outcome, pattern in _FINDINGS if pattern.search(text))
    return found


# Words that deny the claim they stand before, alone or across the auxiliaries between them: "не может
# быть установлено", "не был возвращён", "could not be located", "unable to locate".
NEGATIONS = frozenset({"не", "ні", "нельзя", "невозможно", "неможливо", "not", "cannot", "can't", "unable", "never"})
AUXILIARIES = frozenset({"может", "могут", "могло", "быть", "был", "была", "было", "были", "будет", "будут", "удалось",
                         "удается", "буде", "будуть", "will", "would", "shall",
                         "може", "можуть", "бути", "був", "була", "було", "були", "вдалося", "вдається", "be", "been",
                         "was", "were", "is", "are", "to", "could", "can", "has", "have", "had", "yet"})


def _negated(text: str, stem: str) -> bool:
    """Whether the stem's claim, where the phrase first makes it, is denied by the word before it (past
    any auxiliaries); a comma or other mark between them ends the reach."""
    for word in reversed(text[: text.index(f" {stem}")].split()):
        if word[-1] in ",.;:!?":
            return False
        bare = word.strip("\"'«»()")
        if bare in NEGATIONS:
            return True
        if bare not in AUXILIARIES:
            return False
    return False


def tidy_name(value: Any) -> str:
    """A name as it will be saved: spaces tidied, apostrophes as the Ukrainian one (U+02BC), and one
    written in capitals given its usual case (ШЕВЧЕНКО → Шевченко, АННА-МАРІЯ → Анна-Марія)."""
    text = " ".join(str(value or "").split())
    if text in _BLANK_MARKS:
        return ""
    text = _APOSTROPHES.sub(APOSTROPHE, one_script(text))
    if text.isupper():
        text = re.sub(r"[^\s-]+", lambda word: word.group(0)[0] + word.group(0)[1:].lower(), text)
    return text


def _is_totals(cells: Sequence[Any]) -> bool:
    """A totals line under a table: its words "Всього", "Разом", "Итого", "Total" and a count or two."""
    filled = [cell for cell in cells if not _blank(cell)]
    if not filled or len(filled) > 4:
        return False
    texts = [fold(cell) for cell in filled if isinstance(cell, str)]
    return any(text == word or text.startswith(word + " ") for text in texts for word in TOTAL_WORDS) and all(
        not text or any(text.startswith(word) for word in TOTAL_WORDS) or re.fullmatch(r"[\d\s]+\w*", text)
        for text in texts)


def _repeated_header(cells: Sequence[Any], header_texts: Mapping[int, str]) -> bool:
    """A line repeating the header's cells (most of the read columns filled, each as headed)."""
    filled = [column for column in header_texts if column < len(cells) and not _blank(cells[column])]
    if len(filled) < 2:
        return False
    # Folded only where a cell could be its header: a text starting with the header's first letter.
    first = filled[0]
    if not isinstance(cells[first], str) or cells[first].strip()[:1].lower() != header_texts[first][:1]:
        return False
    return sum(fold(cells[column]) == header_texts[column] for column in filled) * 2 > len(filled)


def _column_numbers(cells: Sequence[Any]) -> bool:
    """The row of the columns' numbers official forms print under the header: 1, 2, 3 … in order."""
    filled = [(column, cell) for column, cell in enumerate(cells) if not _blank(cell)]
    if len(filled) < 3:
        return False
    numbers = []
    for _column, cell in filled:
        text = str(int(cell)) if isinstance(cell, float) and cell.is_integer() else str(cell).strip().rstrip(".")
        if not text.isdigit():
            return False
        numbers.append(int(text))
    return numbers == list(range(numbers[0], numbers[0] + len(numbers))) and numbers[0] in (0, 1)


_OBLAST_WORD = re.compile(r"(?<!\w)(?:область|обл|oblast|region|областi|області|крим|крым|crimea|київ|киев|kyiv|"
                          r"севастопол|sevastopol)", re.IGNORECASE)


@_ONCE
def _oblast_within(settlement: str) -> str:
    """The oblast a settlement's text names in a part of its own ("м. Олешки, Херсонська обл."), or ""."""
    if not _OBLAST_WORD.search(settlement):
        return ""
    for part in re.split(r"[,;()]", settlement):
        if _OBLAST_WORD.search(part) and not set(latin_key(part).split()) & _CITY_KEYS:
            try:
                return parse_oblast(part.strip())
            except ValueError:
                continue
    return ""


def _oblast_heading(cells: Sequence[Any]) -> str | None:
    """A line naming only an oblast ("Донецька область"), as lists grouped by oblast have between
    their groups: the oblast's name, or None for any other line."""
    filled = [cell for cell in cells if not _blank(cell)]
    if len(filled) != 1 or not isinstance(filled[0], str) or not _OBLAST_WORD.search(filled[0]):
        return None
    text = re.sub(r"\s+", " ", filled[0]).strip().rstrip(":")
    try:
        parse_oblast(text)
    except ValueError:
        return None
    return text


def _below_table(cells: Sequence[Any], fields: Mapping[int, str]) -> bool:
    """A note or a signature, as under a table's totals: at most half the read columns filled (a
    child's row fills most of them), and no number on the list."""
    filled = [column for column in fields if column < len(cells) and not _blank(cells[column])]
    return len(filled) <= max(1, len(fields) // 2) and not any(
        fields[column] == "position" and re.fullmatch(r"\s*\d+\s*\.?\s*", str(cells[column])) for column in filled)


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------

class _RowChecker:
    """Collects a row's problems under the file's own column headers."""

    def __init__(self, line: int, headers: dict[str, str], problems: list[RowProblem]) -> None:
        self.line, self.headers, self.problems, self.failed = line, headers, problems, False

    def __call__(self, field_name: str, reason: str) -> None:
        if field_name in ("family_name", "given_name", "patronymic") and field_name not in self.headers:
            field_name = "full_name"
        column = self.headers.get(field_name) or FIELD_LABELS.get(field_name, field_name)
        self.problems.append(RowProblem(self.line, column, reason))
        self.failed = True


def _position(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    # "1.", "1)", "1.0" as a table exported by a program writes it, "1 234" with Excel's thousands space.
    text = re.sub(r"\.0+$", "", re.sub(r"\s", "", str(value)).rstrip(".)"))
    if not text.isdigit() or int(text) < 1:
        raise ValueError(_("“{value}” is not a number on the list (1, 2, 3 ...)").format(value=value))
    return int(text)


def _split_name(text: str) -> tuple[str, str, str]:
    """A full name as family, given name and patronymic: in that order, unless one word alone is
    written in capitals, as the family name often is ("Олена ШЕВЧУК", "Ірина Петрівна КОВАЛЬ")."""
    words = tidy_name(text).split()
    written = re.sub(r"\s+", " ", str(text or "")).strip().split()
    capitals = [index for index, word in enumerate(written)
                if word.isupper() and "." not in word and len(re.sub(r"\W", "", word)) > 2]
    if len(capitals) == 1 and len(written) == len(words):
        # Given its usual case, as a family name written alone in capitals is (ТКАЧЕНКО → Ткаченко).
        words.insert(0, tidy_name(words.pop(capitals[0])))
    return (words[0] if words else "", words[1] if len(words) > 1 else "", " ".join(words[2:]))


# Words in brackets beside a name: another family name ("Бондар (Мельник)"), what the child is called
# ("Олександр (Саша)"), a note ("(ПБП)"). Never part of the name; the import keeps them in the child's notes.
_BRACKETED = re.compile(r"\s*[(\[][^)\]]*[)\]]")
_NAME_FIELDS = ("full_name", "family_name", "given_name", "given_and_patronymic", "patronymic")


def _name_parts(values: dict[str, Any]) -> dict[str, str]:
    values = {name: _BRACKETED.sub(" ", values[name]) if isinstance(values.get(name), str) and (
        "(" in values[name] or "[" in values[name]) else values.get(name) for name in _NAME_FIELDS}
    if values.get("given_and_patronymic") and not values.get("given_name"):
        given, _space, patronymic = tidy_name(values["given_and_patronymic"]).partition(" ")
        return {"family_name": tidy_name(values.get("family_name")), "given_name": given,
                "patronymic": patronymic or tidy_name(values.get("patronymic"))}
    if values.get("full_name") and not (values.get("family_name") or values.get("given_name")):
        family, given, patronymic = _split_name(values["full_name"])
        # "Прізвище, ім'я" beside a "По батькові" column of its own.
        return {"family_name": family, "given_name": given, "patronymic": patronymic or tidy_name(
            values.get("patronymic"))}
    return {part: tidy_name(values.get(part)) for part in ("family_name", "given_name", "patronymic")}


def _name_as_written(values: dict[str, Any]) -> str:
    """The row's name as the list writes it, when words in brackets stand beside it; else ""."""
    written = [str(values[name]) for name in _NAME_FIELDS if values.get(name)]
    if not any(("(" in text or "[" in text) and _BRACKETED.search(text) for text in written):
        return ""
    return re.sub(r"\s+", " ", " ".join(written)).strip()[:500]


def _check_names(names: dict[str, str], problem: Callable[[str, str], None], *, required: bool) -> None:
    for part in ("family_name", "given_name", "patronymic"):
        text = names[part]
        if not text:
            if required and part != "patronymic":
                problem(part, _("missing"))
            continue
        if len(text) > NAME_LENGTH:
            problem(part, _("longer than {count} characters").format(count=NAME_LENGTH))
        elif re.search(r"\d", text) or not re.search(r"[^\W\d_]", text):
            problem(part, _("“{text}” is not a name").format(text=text))


@dataclass
class _Reading:
    """A file being read: its header, and the lines below it still to come."""

    parsed: ParsedFile
    fields: dict[int, str]
    data: Iterator[Line]
    headed: set[int]
    unheaded: set[int] = field(default_factory=set)
    # Date field → (how many rows held a serial number as text, the first such cell).
    serial_dates: dict[str, tuple[int, str]] = field(default_factory=dict)
    # The sheet's hidden rows, as `Table.hidden_rows`.
    hidden_rows: list[int] = field(default_factory=list)


def _open(source: bytes | IO[bytes], file_name: str, columns: Mapping[str, Sequence[str]],
          required: Sequence[Sequence[str]], what: str, max_rows: int | None,
          mapping: Mapping[str, str] | None) -> _Reading | ParsedFile:
    try:
        table = read_table(source, file_name, max_rows=None if max_rows is None else max_rows + HEADER_SEARCH_ROWS)
        head: list[Line] = []
        for line in table.lines:
            head.append(line)
            if len(head) >= HEADER_SEARCH_ROWS + 2:
                break
    except UnreadableFile as error:
        return ParsedFile(problems=[RowProblem(None, "", str(error))])
    parsed = ParsedFile()
    if not head:
        parsed.problems.append(RowProblem(None, "", _("the file is empty: it has no line with anything in it")))
        return parsed
    header = find_header(head, columns, required, mapping=mapping, merges=table.merges)
    if header is None:
        found_on, found = headers_found(head, columns, table.merges)
        parsed.headers_found = found
        wanted = _(" or ").join(" + ".join(f"“{FIELD_LABELS.get(f, f)}”" for f in option) for option in required)
        seen = ", ".join(f"“{text}”" for text in found) or _("none")
        parsed.problems.append(RowProblem(None, "", _(
            "no header row found for {what}. Headers found{where}: {seen}. Expected: {wanted}. Map the columns "
            "in the preview, or give the mapping (--columns \"header=field,…\")").format(
                what=what, where=_(" on line {line}").format(line=found_on) if found_on else "", seen=seen,
                wanted=wanted)))
        return parsed
    parsed.header_line = header.lines[-1]
    parsed.columns = {field_name: header.texts[column] for column, field_name in header.fields.items()}
    parsed.ignored_columns = header.ignored
    parsed.unread_headers = header.unread
    parsed.notices = header.notices
    if table.unread_sheets:
        parsed.notices.append(ngettext(
            "only the first sheet was read: the sheet {sheets} also holds data; import it as a file of its own, "
            "or put its rows on the first sheet",
            "only the first sheet was read: the sheets {sheets} also hold data; import each as a file of its "
            "own, or put their rows on the first sheet", len(table.unread_sheets)).format(
                sheets=", ".join(f"“{name}”" for name in table.unread_sheets)))
    if len(header.lines) > 1:
        parsed.notices.append(_("a two-level header on lines {first}–{last}").format(
            first=header.lines[0], last=header.lines[-1]))
    above = [cells for number, cells in head if number < header.lines[0]]
    titles = [str(cell).strip() for cells in above for cell in cells if isinstance(cell, str) and cell.strip()]
    parsed.title = titles[0][:200] if titles else ""
    last = header.lines[-1]
    rest = (line for line in head if line[0] > last)

    def data() -> Iterator[Line]:
        yield from rest
        yield from table.lines

    below = [merge for merge in table.merges if merge[1] > last and merge[3] > merge[1]]
    lines = _merged_down(data(), below, parsed, header.texts) if below else data()
    return _Reading(parsed, header.fields, lines, header.headed, hidden_rows=table.hidden_rows)


def _merged_down(lines: Iterator[Line], merges: Sequence[tuple[int, int, int, int]], parsed: ParsedFile,
                 headers: Mapping[int, str]) -> Iterator[Line]:
    """The data lines with a cell merged down over several rows (a settlement or a circumstance shared
    by siblings) read into each row it spans, as the spreadsheet shows it; named in the notices."""
    starting: dict[int, list[tuple[int, int]]] = {}
    for min_col, min_row, _max_col, max_row in merges:
        starting.setdefault(min_row, []).append((min_col - 1, max_row))
    # Row → (column, value) to fill in, for the merges under way.
    pending: dict[int, list[tuple[int, Any]]] = {}
    filled: list[tuple[int, int, int]] = []
    for number, cells in lines:
        for column, value in pending.pop(number, ()):
            cells.extend([None] * (column + 1 - len(cells)))
            if _blank(cells[column]):
                cells[column] = value
        for column, max_row in starting.get(number, ()):
            if column < len(cells) and not _blank(cells[column]):
                for row in range(number + 1, max_row + 1):
                    pending.setdefault(row, []).append((column, cells[column]))
                filled.append((column, number, max_row))
        yield number, cells
    if filled:
        column, first, last = filled[0]
        parsed.notices.append(ngettext(
            "{count} cell merged over several rows was read into each of them (column “{column}”, lines "
            "{first}–{last})",
            "{count} cells merged over several rows were read into each of them (the first: column “{column}”, "
            "lines {first}–{last})", len(filled)).format(
                count=len(filled), column=headers.get(column) or get_column_letter(column + 1), first=first, last=last))


# The fields read by `parse_date`: a serial number of a day written as text is read there and named here.
_DATE_FIELDS = frozenset({"birth_date", "last_known_on"})


def _rows(reading: _Reading, checker: Callable[[int, dict[str, Any], _RowChecker], None],
          max_rows: int | None) -> None:
    """Every data line to `checker`, with its values by field; a totals row at the end is skipped and
    named; a column with data and no header is named. Formula and error cells are the row's problems."""
    parsed, fields = reading.parsed, reading.fields
    headed = set(fields) | reading.headed
    held: list[tuple[int, list[Any], str | None]] = []
    count = 0

    def check(line: int, cells: list[Any], under: str | None) -> None:
        problem = _RowChecker(line, parsed.columns, parsed.problems)
        values: dict[str, Any] = {}
        for column, field_name in fields.items():
            value = cells[column] if column < len(cells) else None
            if isinstance(value, CellFault):
                problem(field_name, value.reason)
                value = None
            elif isinstance(value, str):
                value = value.strip()
                if not value or value.lower() in _BLANK_MARKS:
                    value = None
            values[field_name] = value
            if field_name in _DATE_FIELDS and _serial_day(value) is not None:
                count, first = reading.serial_dates.get(field_name, (0, str(value)))
                reading.serial_dates[field_name] = (count + 1, first)
        for column in range(len(cells)):
            if column not in headed and column not in reading.unheaded and not _blank(cells[column]):
                reading.unheaded.add(column)
        if under is not None and values.get("oblast") is None:
            values["oblast"] = under
        checker(line, values, problem)

    at_top = True
    heading = None
    header_texts = {column: fold(parsed.columns.get(field_name, "")) for column, field_name in fields.items()}
    try:
        for line, cells in reading.data:
            if at_top and _column_numbers(cells):
                parsed.notices.append(_("line {line}: the columns' numbers under the header (1, 2, 3 …) were "
                                        "skipped").format(line=line))
                at_top = False
                continue
            at_top = False
            if _repeated_header(cells, header_texts):
                # A header printed again on each page of a long list.
                parsed.notices.append(_("line {line}: the header, repeated, was skipped").format(line=line))
                continue
            oblast = _oblast_heading(cells)
            if oblast is not None:
                heading = oblast
                parsed.notices.append(_("line {line}: the heading “{heading}” was skipped; the rows under it with "
                                        "no oblast of their own are read as in it").format(line=line, heading=oblast))
                continue
            if _is_totals(cells) or (held and _below_table(cells, fields)):
                # A totals row, and the notes and signatures under it: skipped if nothing but such lines
                # follows; read as rows if a child's row does.
                held.append((line, cells, heading))
                continue
            for waiting in held:
                count += 1
                check(*waiting)
            held.clear()
            count += 1
            check(line, cells, heading)
    except TooManyLines:
        parsed.problems.append(RowProblem(None, "", _(
            "the file has more than {limit} rows; one import takes at most {limit}: split it into several "
            "files").format(limit=f"{max_rows or 0:,}")))
        return
    except UnreadableFile as error:
        parsed.problems.append(RowProblem(None, "", str(error)))
        return
    for line, cells, _heading in held:
        words = " ".join(str(cell) for cell in cells if not _blank(cell) and not isinstance(cell, CellFault))
        if _is_totals(cells):
            parsed.notices.append(_("line {line}: a totals row (“{words}”) was skipped").format(line=line, words=words))
        else:
            parsed.notices.append(_("line {line}: a line under the totals (“{words}”) was skipped").format(
                line=line, words=words[:200]))
    hidden = [line for line in reading.hidden_rows if line > (parsed.header_line or 0)]
    if hidden:
        parsed.notices.append(ngettext(
            "{count} row the spreadsheet hides (filtered out or grouped away) was read as the others are (line "
            "{line}): take it out of the file if it is not to be imported",
            "{count} rows the spreadsheet hides (filtered out or grouped away) were read as the others are (the "
            "first: line {line}): take out of the file any that are not to be imported", len(hidden)).format(
                count=len(hidden), line=hidden[0]))
    for field_name, (rows, first) in reading.serial_dates.items():
        parsed.notices.append(ngettext(
            "column “{column}”: {count} row holds a spreadsheet's serial number of a day, read as a date "
            "(“{example}” as {date}); check it against the spreadsheet the file was saved from",
            "column “{column}”: {count} rows hold a spreadsheet's serial number of a day, read as a date "
            "(“{example}” as {date}); check them against the spreadsheet the file was saved from", rows).format(
                column=parsed.columns.get(field_name, field_name), count=rows, example=first,
                date=f"{_SERIAL_EPOCH + datetime.timedelta(days=int(float(first))):%d.%m.%Y}"))
    if max_rows is not None and count > max_rows:
        parsed.problems.append(RowProblem(None, "", _(
            "the file has {count} rows; one import takes at most {limit}: split it into several files").format(
                count=f"{count:,}", limit=f"{max_rows:,}")))
    if not count and not parsed.problems:
        parsed.problems.append(RowProblem(None, "", _("the file has a header but no rows")))
    parsed.ignored_columns += [_("column {letter} (no header)").format(letter=get_column_letter(column + 1))
                               for column in sorted(reading.unheaded)]


_LIST_REQUIRED = (("family_name", "given_name"), ("full_name",), ("family_name", "given_and_patronymic"),
                  ("family_name_latin", "given_name_latin"), ("latin_name",))
_REPLY_REQUIRED = (("position", "outcome"), ("family_name", "given_name", "outcome"), ("full_name", "outcome"),
                   ("family_name", "given_and_patronymic", "outcome"))


def parse_list(source: bytes | IO[bytes], file_name: str = "", *, today: datetime.date, max_rows: int | None = None,
               mapping: Mapping[str, str] | None = None, finish: bool = True) -> ParsedFile:
    """A handover list: one child per row, checked; every problem with its line and column.
    `mapping` is the case worker's: a folded, compacted header → its field (or `IGNORE`).

    Without `finish`, the search for a child listed twice may still be running (in another process,
    for a long list) when this returns: the caller goes on (to the match) and calls `complete`, which
    adds its problems."""
    reading = _open(source, file_name, LIST_COLUMNS, _LIST_REQUIRED, _("a handover list"), max_rows, mapping)
    if isinstance(reading, ParsedFile):
        return reading
    parsed = reading.parsed
    numbered = "position" in reading.fields.values()
    numbers: list[tuple[int, int]] = []
    bracketed: list[tuple[int, str]] = []
    from_settlement: list[tuple[int, str]] = []

    def check(line: int, values: dict[str, Any], problem: _RowChecker) -> None:
        names = _name_parts(values)
        latin = {part: tidy_name(values.get(f"{part}_latin")) for part in ("family_name", "given_name", "patronymic")}
        if values.get("latin_name") and not any(latin.values()):
            latin = dict(zip(("family_name", "given_name", "patronymic"), _split_name(values["latin_name"]),
                             strict=True))
        if not (names["family_name"] or names["given_name"]) and latin["family_name"]:
            # A list in Latin letters only: the names as written are the names there are.
            names = dict(latin)
        _check_names(names, problem, required=True)
        data: dict[str, Any] = {
            **names, **{f"{part}_latin": text for part, text in latin.items()}, "birth_date": None,
            "birth_date_precision": "day", "birth_date_text": "", "sex": "U", "settlement": "", "oblast": "",
            "circumstances": "", "category": "", "last_known_location": "", "last_known_on": None,
            "icrc_reference": "", "nib_reference": "", "reference": str(values.get("reference") or "").strip(),
            "name_as_written": _name_as_written(values),
        }
        if data["name_as_written"]:
            bracketed.append((line, data["name_as_written"]))
        position = None
        if numbered:
            try:
                if values.get("position") is None:
                    raise ValueError(_("missing: every row needs its number when the list has a № column"))
                position = _position(values["position"])
                numbers.append((line, position))
            except ValueError as error:
                problem("position", str(error))
        try:
            born = parse_birth_date(values.get("birth_date"), today=today)
            if born:
                precision = str(values.get("birth_date_precision") or "").strip().lower()
                if precision in ("year", "month") and born[1] == "day":
                    born = (born[0], precision)
                data["birth_date"], data["birth_date_precision"] = born[0].isoformat(), born[1]
                data["birth_date_text"] = birth_date_text(*born)
        except ValueError as error:
            problem("birth_date", str(error))
        try:
            seen = parse_date(values.get("last_known_on"), today=today, earliest=1991)
            data["last_known_on"] = seen[0].isoformat() if seen else None
        except ValueError as error:
            problem("last_known_on", str(error))
        for field_name, parser in (("sex", parse_sex), ("oblast", parse_oblast),
                                   ("circumstances", parse_circumstances), ("category", parse_category)):
            if values.get(field_name) is not None:
                try:
                    data[field_name] = parser(values[field_name])
                except ValueError as error:
                    problem(field_name, str(error))
        for text_field, limit in (("settlement", 160), ("last_known_location", 255), ("icrc_reference", 64),
                                  ("nib_reference", 64)):
            text = re.sub(r"\s+", " ", str(values.get(text_field) or "")).strip()
            if isinstance(values.get(text_field), float) and values[text_field].is_integer():
                text = str(int(values[text_field]))
            if len(text) > limit:
                problem(text_field, _("longer than {count} characters").format(count=limit))
            data[text_field] = text
        if not data["oblast"] and data["settlement"]:
            # "м. Олешки, Херсонська обл.": the oblast the settlement's own cell names.
            data["oblast"] = _oblast_within(data["settlement"])
            if data["oblast"]:
                from_settlement.append((line, data["settlement"]))
        if not problem.failed:
            parsed.rows.append(ParsedRow(line, position, data))

    _rows(reading, check, max_rows)
    if from_settlement:
        parsed.notices.append(ngettext(
            "{count} row's oblast was read from its settlement, which names it (line {line}: “{settlement}”)",
            "{count} rows' oblast was read from their settlement, which names it (the first: line {line}, "
            "“{settlement}”)", len(from_settlement)).format(
                count=len(from_settlement), line=from_settlement[0][0], settlement=from_settlement[0][1]))
    if bracketed:
        parsed.notices.append(ngettext(
            "{count} name has words in brackets beside it, left out of the name and kept in the child's notes "
            "(line {line}: “{name}”)",
            "{count} names have words in brackets beside them, left out of the names and kept in the children's "
            "notes (the first: line {line}, “{name}”)", len(bracketed)).format(
                count=len(bracketed), line=bracketed[0][0], name=bracketed[0][1]))
    if parsed.problems and any(p.line is None for p in parsed.problems):
        return parsed
    _check_positions(parsed, numbers, numbered=numbered)
    parsed.pending.append(_SameChildTwice(parsed))
    if finish:
        parsed.complete()
    references = {row.data["reference"] for row in parsed.rows if row.data["reference"]}
    if len(references) > 1:
        parsed.problems.append(RowProblem(None, parsed.columns.get("reference", ""),
                                          _("the rows name more than one list: {lists}").format(
                                              lists=", ".join(sorted(references)))))
    return parsed


def _check_positions(parsed: ParsedFile, numbers: list[tuple[int, int]], *, numbered: bool) -> None:
    """Numbers on the list, (line, number) of every row that has one, bad rows too: each used once.
    With no number column, the rows are numbered in order."""
    if not numbered:
        for number, row in enumerate(parsed.rows, start=1):
            row.position = number
        return
    seen: dict[int, int] = {}
    for line, position in numbers:
        if position in seen:
            parsed.problems.append(RowProblem(line, parsed.columns["position"], _(
                "number {position} is already used on line {line}").format(position=position, line=seen[position])))
        seen.setdefault(position, line)


# A list this long is searched for a child listed twice in another process, side by side with the
# match against the stored children (`cases.matching.elsewhere`); a shorter one here, at once.
SAME_CHILD_ELSEWHERE_FROM = 20_000


class _SameChildTwice:
    """The search of a list for a child listed twice: two rows the engine judges the same child are a
    mistake in the file (`same_child_pairs`). Started with the rows; its problems when asked."""

    def __init__(self, parsed: ParsedFile) -> None:
        self._rows = parsed.rows
        self._column = parsed.columns.get("family_name") or parsed.columns.get("full_name", "")
        records = [row.record() for row in parsed.rows]
        # Not started elsewhere, the search is made here when its problems are asked for.
        self._pairs = (SameChildPairs.start(records) if len(records) >= SAME_CHILD_ELSEWHERE_FROM
                       else SameChildPairs(records))

    def stop(self) -> None:
        self._pairs.stop()

    def problems(self) -> list[RowProblem]:
        found = []
        for first, second in self._pairs.result():
            # Weighed again with its reasons: only the few pairs found are written out.
            result = compare(self._rows[first].record(), self._rows[second].record())
            found.append(RowProblem(self._rows[second].line, self._column, _(
                "the same child as line {line} ({why})").format(
                    line=self._rows[first].line, why="; ".join(result.reasons[:3]))))
        return sorted(found, key=lambda problem: problem.line or 0)


def parse_reply(source: bytes | IO[bytes], file_name: str = "", *, today: datetime.date,
                max_rows: int | None = None, mapping: Mapping[str, str] | None = None,
                outcomes: Mapping[str, str] | None = None) -> ParsedFile:
    """A reply: per row the child (by number on the list, or by name) and the outcome claimed, in
    the other side's words; a phrase no outcome is known for is named for the case worker to map
    (`outcomes`: a phrase's `phrase_key` → outcome)."""
    reading = _open(source, file_name, REPLY_COLUMNS, _REPLY_REQUIRED, _("a reply"), max_rows, mapping)
    if isinstance(reading, ParsedFile):
        return reading
    parsed = reading.parsed
    unknown: dict[str, str] = {}

    def check(line: int, values: dict[str, Any], problem: _RowChecker) -> None:
        names = _name_parts(values)
        _check_names(names, problem, required=False)
        data: dict[str, Any] = {**names, "outcome": "", "birth_date_text": "", "sex": "",
                                "details": str(values.get("details") or "").strip(),
                                "reported_location": str(values.get("reported_location") or "").strip()[:255]}
        position = None
        if values.get("position") is not None:
            try:
                position = _position(values["position"])
            except ValueError as error:
                problem("position", str(error))
        elif not (names["family_name"] and names["given_name"]):
            problem("position", _("missing: give the child's number on the list, or the child's names"))
        try:
            born = parse_birth_date(values.get("birth_date"), today=today)
            data["birth_date_text"] = birth_date_text(*born) if born else ""
        except ValueError as error:
            problem("birth_date", str(error))
        try:
            if values.get("outcome") is None:
                raise ValueError(_("missing"))
            data["outcome"], place = parse_outcome(values["outcome"], outcomes)
            if place and not data["reported_location"]:
                data["reported_location"] = place
            if phrase_key(values["outcome"]) not in _OUTCOMES:
                # The reply's own words stay with the outcome read from them, before its note if any.
                data["details"] = "; ".join(part for part in (str(values["outcome"]).strip(), data["details"])
                                            if part)
        except UnknownPhrase as error:
            unknown.setdefault(phrase_key(values["outcome"]), str(values["outcome"]).strip())
            problem("outcome", str(error))
        except ValueError as error:
            problem("outcome", str(error))
        if not problem.failed:
            parsed.rows.append(ParsedRow(line, position, data))

    _rows(reading, check, max_rows)
    parsed.unknown_phrases = list(unknown.values())
    return parsed
