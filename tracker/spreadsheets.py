"""Reading handover lists and replies from spreadsheets as people make them, into checked rows.

Plain functions, no database: a file (CSV or XLSX) becomes a table of lines, the header row is
found and its columns recognised (Ukrainian, Russian or English, see `LIST_COLUMNS` and
`REPLY_COLUMNS`), and every row is checked. The result holds the rows as they will be saved and
every problem, each with its line, column and reason; `tracker.services.imports` does the rest.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import io
import re
import statistics
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cases.matching.engine import PersonRecord, candidate_pairs, compare
from cases.matching.names import latin_key
from cases.models import Oblast
from tracker.models import Outcome

# ---------------------------------------------------------------------------------------------
# Column headers: what a column may be called, per field. Compared after folding case, spaces,
# apostrophes and a trailing colon or full stop, so "Ім’я:" and "ім'я" are one header.
# ---------------------------------------------------------------------------------------------

NAME_COLUMNS: dict[str, tuple[str, ...]] = {
    "position": ("№", "№ з/п", "№ п/п", "№з/п", "з/п", "п/п", "no", "nr", "number", "#", "номер", "номер у списку"),
    "full_name": ("піб", "п.і.б", "прізвище, ім'я, по батькові", "прізвище ім'я по батькові", "фио", "ф.и.о",
                  "фамилия, имя, отчество", "full name", "name"),
    "family_name": ("прізвище", "фамилия", "family name", "surname", "last name"),
    "given_name": ("ім'я", "имя", "given name", "first name", "forename"),
    "patronymic": ("по батькові", "по-батькові", "отчество", "patronymic", "middle name", "father's name"),
    "birth_date": ("дата народження", "дата рождения", "date of birth", "birth date", "birthdate", "dob", "born",
                   "рік народження", "год рождения", "year of birth"),
    "sex": ("стать", "пол", "sex", "gender"),
}
LIST_COLUMNS: dict[str, tuple[str, ...]] = {
    **NAME_COLUMNS,
    "settlement": ("населений пункт", "населенный пункт", "settlement", "home settlement", "місце проживання",
                   "место жительства", "place of residence", "town", "city"),
    "oblast": ("область", "oblast", "region"),
    "last_known_location": ("останнє відоме місце перебування", "місце перебування", "местонахождение",
                            "last known location", "last known place", "whereabouts"),
    "reference": ("номер списку", "список", "list", "list reference"),
}
REPLY_COLUMNS: dict[str, tuple[str, ...]] = {
    **NAME_COLUMNS,
    "outcome": ("результат", "відповідь", "ответ", "outcome", "result", "answer"),
    "details": ("деталі", "подробиці", "примітка", "примітки", "коментар", "комментарий", "details", "comment",
                "comments", "notes", "note"),
    "reported_location": ("місце перебування", "местонахождение", "location", "reported location", "whereabouts"),
}

# What each field is called in a report, when the file has no header of its own for it.
FIELD_LABELS = {"position": "№", "family_name": "Прізвище / family name", "given_name": "Ім'я / given name",
                "outcome": "Результат / outcome", "full_name": "ПІБ / full name"}

# The words accepted for each outcome, besides its code and English label.
OUTCOME_WORDS: dict[str, tuple[str, ...]] = {
    Outcome.LOCATED: ("знайдено", "знайдений", "знайдена", "місцеперебування встановлено", "найден", "найдена",
                      "местонахождение установлено", "found"),
    Outcome.NOT_FOUND: ("не знайдено", "не знайдений", "не знайдена", "не найден", "не найдена", "не установлено"),
    Outcome.NEVER_ON_TERRITORY: ("не перебував", "не перебувала", "не находился", "не находилась",
                                 "never on territory"),
    Outcome.NOW_ADULT: ("повнолітній", "повнолітня", "совершеннолетний", "совершеннолетняя", "adult"),
    Outcome.LEFT_COUNTRY: ("виїхав", "виїхала", "выехал", "выехала", "left country"),
    Outcome.RETURNED: ("повернуто", "повернутий", "повернута", "повернувся", "повернулася", "возвращен",
                       "возвращена"),
    Outcome.DECEASED: ("помер", "померла", "загинув", "загинула", "умер", "умерла", "dead"),
    Outcome.REFUSED: ("відмова", "відмовлено", "отказ", "отказано"),
    Outcome.MORE_INFORMATION_REQUESTED: ("запит інформації", "потрібна додаткова інформація", "запрос информации",
                                         "more information"),
    Outcome.NO_INFORMATION: ("немає інформації", "інформація відсутня", "нет информации", "нет сведений",
                             "no info"),
}

SEX_WORDS = {
    "m": "M", "male": "M", "boy": "M", "ч": "M", "чол": "M", "чоловіча": "M", "чоловіча стать": "M", "хлопчик": "M",
    "м": "M", "муж": "M", "мужской": "M", "мальчик": "M",
    "f": "F", "female": "F", "girl": "F", "ж": "F", "жін": "F", "жіноча": "F", "жіноча стать": "F", "дівчинка": "F",
    "жен": "F", "женский": "F", "девочка": "F",
}

# The start of each oblast's name in any of its forms (Донецька, Донецкая, Donetsk ...), folded.
OBLAST_STEMS: dict[str, tuple[str, ...]] = {
    Oblast.CHERKASY: ("Черкас", "Cherkas"), Oblast.CHERNIHIV: ("Черніг", "Черниг", "Chernih", "Chernig"),
    Oblast.CHERNIVTSI: ("Чернів", "Черновиц", "Chernivt"), Oblast.CRIMEA: ("Крим", "Crimea", "Krym"),
    Oblast.DNIPROPETROVSK: ("Дніпропетров", "Днепропетров", "Dnipropetrov", "Дніпро", "Dnipro"),
    Oblast.DONETSK: ("Донец", "Donets"), Oblast.IVANO_FRANKIVSK: ("Івано", "Ивано", "Ivano"),
    Oblast.KHARKIV: ("Харків", "Харьков", "Kharkiv"), Oblast.KHERSON: ("Херсон", "Kherson"),
    Oblast.KHMELNYTSKYI: ("Хмельниц", "Khmelnyts"), Oblast.KIROVOHRAD: ("Кіровоград", "Кировоград", "Kirovohrad"),
    Oblast.KYIV: ("Київ", "Киев", "Kyiv"), Oblast.LUHANSK: ("Луган", "Luhansk", "Lugansk"),
    Oblast.LVIV: ("Львів", "Львов", "Lviv"), Oblast.MYKOLAIV: ("Миколаїв", "Николаев", "Mykolaiv"),
    Oblast.ODESA: ("Одес", "Odes"), Oblast.POLTAVA: ("Полтав", "Poltav"), Oblast.RIVNE: ("Рівн", "Ровен", "Rivne"),
    Oblast.SEVASTOPOL: ("Севастопол", "Sevastopol"), Oblast.SUMY: ("Сум", "Sumy"),
    Oblast.TERNOPIL: ("Тернопіл", "Тернопол", "Ternopil"), Oblast.VINNYTSIA: ("Вінниц", "Винниц", "Vinnyts"),
    Oblast.VOLYN: ("Волин", "Волын", "Volyn"), Oblast.ZAKARPATTIA: ("Закарпат", "Zakarpat"),
    Oblast.ZAPORIZHZHIA: ("Запоріз", "Запорож", "Zaporiz"), Oblast.ZHYTOMYR: ("Житомир", "Zhytomyr"),
}
_PLACE_KIND_WORDS = {"область", "обл", "oblast", "obl", "region", "ар", "автономна", "республіка", "ark"}
_CITY_WORDS = {"м", "місто", "г", "город", "city"}

HEADER_SEARCH_ROWS = 30
NAME_LENGTH = 120
EARLIEST_BIRTH_YEAR = 1990


class UnreadableFile(Exception):
    """The file is not a spreadsheet this reads (or is damaged)."""


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
    columns: dict[str, str] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Reading the file into lines
# ---------------------------------------------------------------------------------------------

def read_table(content: bytes, file_name: str = "", *, max_rows: int | None = None) -> list[tuple[int, list[Any]]]:
    """The file's non-blank lines as (line number as the user sees it, cell values); past `max_rows`
    non-blank lines it stops reading and refuses the file, so that a huge file costs no more than that.

    XLSX through openpyxl, so dates come as dates. CSV in UTF-8 (with or without a byte-order
    mark), UTF-16 (Excel's "Unicode text") or Windows-1251 (older Excel), separated by commas,
    semicolons or tabs. The csv module reads the CSV rather than tablib, because the report needs
    each row's line in the file, which tablib does not keep.
    """
    if content[:4] == b"PK\x03\x04" or file_name.lower().endswith(".xlsx"):
        return _read_xlsx(content, max_rows)
    if content[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise UnreadableFile("this is an old Excel (.xls) file: save it as .xlsx or .csv and upload that")
    return _read_csv(_decode(content), max_rows)


def _too_many(max_rows: int) -> UnreadableFile:
    return UnreadableFile(f"the file has more than {max_rows:,} lines, more than one import takes: split it into "
                          "several files")


def _read_xlsx(content: bytes, max_rows: int | None) -> list[tuple[int, list[Any]]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
        raise UnreadableFile(f"not a readable .xlsx file ({error})") from error
    try:
        sheet = workbook.worksheets[0]
        lines = []
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = list(values)
            if any(_blank(cell) is False for cell in cells):
                lines.append((number, cells))
                if max_rows is not None and len(lines) > max_rows:
                    raise _too_many(max_rows)
        return lines
    finally:
        workbook.close()


def _decode(content: bytes) -> str:
    if content.startswith(codecs.BOM_UTF8):
        return content[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace")
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return content.decode("utf-16")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        # Older Excel saves CSV in the Windows code page; for Cyrillic that is 1251.
        return content.decode("cp1251", errors="replace")


def _read_csv(text: str, max_rows: int | None) -> list[tuple[int, list[Any]]]:
    sample = [line for line in text.splitlines()[:HEADER_SEARCH_ROWS * 2] if line.strip()]
    # The separator is the one that splits the lines most evenly into the most columns: a title
    # line above the header has none, and a comma inside a quoted name does not count.
    delimiter = max(";,\t", key=lambda sep: statistics.median(
        [len(row) for row in csv.reader(sample, delimiter=sep)] or [0]))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    lines, next_line = [], 1
    for cells in reader:
        if any(cell.strip() for cell in cells):
            lines.append((next_line, cells))
            if max_rows is not None and len(lines) > max_rows:
                raise _too_many(max_rows)
        next_line = reader.line_num + 1
    return lines


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# ---------------------------------------------------------------------------------------------
# The header
# ---------------------------------------------------------------------------------------------

def _fold_header(text: Any) -> str:
    text = str(text or "").lower().replace("’", "'").replace("ʼ", "'").replace("`", "'").replace("\n", " ")
    return re.sub(r"\s+", " ", text).strip().rstrip(":.").strip()


def _header_lookup(columns: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {_fold_header(name): field_name for field_name, names in columns.items() for name in names}


def find_header(lines: Sequence[tuple[int, list[Any]]], columns: dict[str, tuple[str, ...]],
                required: Sequence[Sequence[str]]) -> tuple[int, dict[int, str], list[str]] | None:
    """The first line (of the first few) whose cells name the required fields: its index in `lines`,
    the field of each recognised column, and the headers not recognised. `required` lists
    alternatives, each a set of fields that together suffice."""
    lookup = _header_lookup(columns)
    for index, (_line, cells) in enumerate(lines[:HEADER_SEARCH_ROWS]):
        fields: dict[int, str] = {}
        for column, cell in enumerate(cells):
            field_name = lookup.get(_fold_header(cell))
            if field_name and field_name not in fields.values():
                fields[column] = field_name
        if any(set(option) <= set(fields.values()) for option in required):
            ignored = [str(cell) for column, cell in enumerate(cells) if column not in fields and not _blank(cell)]
            return index, fields, ignored
    return None


# ---------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------

_DATE_PATTERNS = (
    (re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"), ("year", "month", "day")),
    (re.compile(r"^(\d{1,2})[./-](\d{1,2})[./-](\d{4})$"), ("day", "month", "year")),
    (re.compile(r"^(\d{1,2})[./-](\d{4})$"), ("month", "year")),
    (re.compile(r"^(\d{4})-(\d{1,2})$"), ("year", "month")),
    (re.compile(r"^(\d{4})$"), ("year",)),
)


def parse_birth_date(value: Any, *, today: datetime.date) -> tuple[datetime.date, str] | None:
    """(first day of what is known, precision) for a birth date in any of the forms lists use:
    2011-03-05, 05.03.2011, 05/03/2011 (day first), 03.2011, 2011, "2011 р.", a spreadsheet date.
    None for an empty cell; ValueError saying why for anything else."""
    if _blank(value):
        return None
    if isinstance(value, datetime.datetime):
        value = value.date()
    if isinstance(value, datetime.date):
        found, precision = value, "day"
    else:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = str(value).strip()
        # A date a spreadsheet turned into text keeps its midnight (05.03.2011 0:00:00).
        text = re.sub(r"[ T]0?0:00(:00)?$", "", text)
        text = re.sub(r"\s*(р|рік|г|год|року)\.?$", "", text)
        for pattern, parts in _DATE_PATTERNS:
            match = pattern.match(text)
            if match:
                numbers = dict(zip(parts, map(int, match.groups()), strict=True))
                break
        else:
            raise ValueError(f"“{value}” is not a date: write it as 2011-03-05, 05.03.2011, 03.2011 or 2011")
        precision = "day" if "day" in numbers else "month" if "month" in numbers else "year"
        try:
            found = datetime.date(numbers["year"], numbers.get("month", 1), numbers.get("day", 1))
        except ValueError as error:
            raise ValueError(f"“{value}” is not a date of the calendar") from error
    if found > today:
        raise ValueError(f"“{value}” is in the future")
    if found.year < EARLIEST_BIRTH_YEAR:
        raise ValueError(f"“{value}” is before {EARLIEST_BIRTH_YEAR}: not a child's birth date")
    return found, precision


def birth_date_text(found: datetime.date, precision: str) -> str:
    return {"year": f"{found:%Y}", "month": f"{found:%Y-%m}"}.get(precision, found.isoformat())


def parse_oblast(value: Any) -> str:
    """The oblast's code for its name in any form (Донецька обл., Донецкая, Donetsk region, м. Київ)."""
    words = latin_key(str(value)).split()
    city = bool(set(words) & {latin_key(word) for word in _CITY_WORDS})
    words = [word for word in words if word not in {latin_key(w) for w in _PLACE_KIND_WORDS | _CITY_WORDS}]
    if not words:
        raise ValueError(f"“{value}” is not an oblast")
    name = words[0]
    for code, stems in OBLAST_STEMS.items():
        if name == code or any(name.startswith(latin_key(stem)) for stem in stems):
            if code == Oblast.KYIV and city:
                return Oblast.KYIV_CITY
            return str(code)
    raise ValueError(f"“{value}” is not an oblast of Ukraine")


def _outcome_lookup() -> dict[str, str]:
    lookup = {}
    for outcome in Outcome:
        for word in (outcome.value, outcome.value.replace("_", " "), outcome.label, *OUTCOME_WORDS.get(outcome, ())):
            lookup[_fold_header(word)] = outcome.value
    return lookup


_OUTCOMES = _outcome_lookup()


def parse_outcome(value: Any) -> str:
    found = _OUTCOMES.get(_fold_header(value))
    if found is None:
        raise ValueError(f"“{value}” is not a known outcome; use one of: "
                         + ", ".join(outcome.label.lower() for outcome in Outcome))
    return found


def tidy_name(value: Any) -> str:
    """A name as it will be saved: spaces tidied, and one written in capitals given its usual case
    (ШЕВЧЕНКО → Шевченко, МАР'ЯНА → Мар'яна, АННА-МАРІЯ → Анна-Марія)."""
    text = re.sub(r"\s+", " ", str(value or "")).strip()
    if text.isupper():
        text = re.sub(r"[^\s-]+", lambda word: word.group(0)[0] + word.group(0)[1:].lower(), text)
    return text


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------

def _cells(cells: list[Any], fields: dict[int, str]) -> dict[str, Any]:
    values = {}
    for column, field_name in fields.items():
        value = cells[column] if column < len(cells) else None
        values[field_name] = None if _blank(value) else value.strip() if isinstance(value, str) else value
    return values


def _position(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip().rstrip(".")
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"“{value}” is not a number on the list (1, 2, 3 ...)")
    return int(text)


def _name_parts(values: dict[str, Any]) -> dict[str, str]:
    if values.get("full_name") and not (values.get("family_name") or values.get("given_name")):
        words = tidy_name(values["full_name"]).split()
        return {"family_name": words[0] if words else "", "given_name": words[1] if len(words) > 1 else "",
                "patronymic": " ".join(words[2:])}
    return {part: tidy_name(values.get(part)) for part in ("family_name", "given_name", "patronymic")}


def _check_names(names: dict[str, str], problem: Any, *, required: bool) -> None:
    for part in ("family_name", "given_name", "patronymic"):
        text = names[part]
        if not text:
            if required and part != "patronymic":
                problem(part, "missing")
            continue
        if len(text) > NAME_LENGTH:
            problem(part, f"longer than {NAME_LENGTH} characters")
        elif re.search(r"\d", text) or not re.search(r"[^\W\d_]", text):
            problem(part, f"“{text}” is not a name")


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


def _over_the_limit(parsed: ParsedFile, data_lines: list[tuple[int, list[Any]]], max_rows: int | None) -> bool:
    if max_rows is None or len(data_lines) <= max_rows:
        return False
    parsed.problems.append(RowProblem(None, "", f"the file has {len(data_lines):,} rows; one import takes at most "
                                                f"{max_rows:,}: split it into several files"))
    return True


def _start(lines: list[tuple[int, list[Any]]], columns: dict[str, tuple[str, ...]],
           required: Sequence[Sequence[str]], what: str) -> tuple[ParsedFile, list[tuple[int, list[Any]]],
                                                                  dict[int, str]]:
    parsed = ParsedFile()
    header = find_header(lines, columns, required)
    if header is None:
        wanted = " or ".join(" + ".join(FIELD_LABELS.get(f, f) for f in option) for option in required)
        parsed.problems.append(RowProblem(None, "", f"no header row found for {what}: the first rows need the "
                                                    f"columns {wanted} (see the column names in the README)"))
        return parsed, [], {}
    index, fields, ignored = header
    parsed.header_line = lines[index][0]
    parsed.columns = {field_name: str(lines[index][1][column]).strip() for column, field_name in fields.items()}
    parsed.ignored_columns = ignored
    data_lines = lines[index + 1:]
    if not data_lines:
        parsed.problems.append(RowProblem(None, "", "the file has a header but no rows"))
    return parsed, data_lines, fields


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
            parsed.problems.append(RowProblem(line, parsed.columns["position"],
                                              f"number {position} is already used on line {seen[position]}"))
        seen.setdefault(position, line)


def parse_list(content: bytes, file_name: str = "", *, today: datetime.date,
               max_rows: int | None = None) -> ParsedFile:
    """A handover list: one child per row, checked; every problem with its line and column."""
    try:
        lines = read_table(content, file_name, max_rows=None if max_rows is None else max_rows + HEADER_SEARCH_ROWS)
    except UnreadableFile as error:
        return ParsedFile(problems=[RowProblem(None, "", str(error))])
    parsed, data_lines, fields = _start(lines, LIST_COLUMNS, [("family_name", "given_name"), ("full_name",)],
                                        "a handover list")
    if _over_the_limit(parsed, data_lines, max_rows):
        return parsed
    numbered = "position" in fields.values()
    numbers: list[tuple[int, int]] = []
    for line, cells in data_lines:
        values = _cells(cells, fields)
        problem = _RowChecker(line, parsed.columns, parsed.problems)
        names = _name_parts(values)
        _check_names(names, problem, required=True)
        data: dict[str, Any] = {**names, "birth_date": None, "birth_date_precision": "day", "birth_date_text": "",
                                "sex": "U", "settlement": "", "oblast": "", "last_known_location": "",
                                "reference": str(values.get("reference") or "")}
        position = None
        if numbered:
            try:
                if values.get("position") is None:
                    raise ValueError("missing: every row needs its number when the list has a № column")
                position = _position(values["position"])
                numbers.append((line, position))
            except ValueError as error:
                problem("position", str(error))
        try:
            born = parse_birth_date(values.get("birth_date"), today=today)
            if born:
                data["birth_date"], data["birth_date_precision"] = born[0].isoformat(), born[1]
                data["birth_date_text"] = birth_date_text(*born)
        except ValueError as error:
            problem("birth_date", str(error))
        if values.get("sex") is not None:
            sex = SEX_WORDS.get(_fold_header(values["sex"]))
            if sex is None:
                problem("sex", f"“{values['sex']}” is not a sex: write ч / ж, M / F")
            data["sex"] = sex or "U"
        for text_field, limit in (("settlement", 160), ("last_known_location", 255)):
            text = re.sub(r"\s+", " ", str(values.get(text_field) or "")).strip()
            if len(text) > limit:
                problem(text_field, f"longer than {limit} characters")
            data[text_field] = text
        if values.get("oblast") is not None:
            try:
                data["oblast"] = parse_oblast(values["oblast"])
            except ValueError as error:
                problem("oblast", str(error))
        if not problem.failed:
            parsed.rows.append(ParsedRow(line, position, data))
    _check_positions(parsed, numbers, numbered=numbered)
    _check_same_child_twice(parsed)
    references = {row.data["reference"] for row in parsed.rows if row.data["reference"]}
    if len(references) > 1:
        parsed.problems.append(RowProblem(None, parsed.columns.get("reference", ""),
                                          f"the rows name more than one list: {', '.join(sorted(references))}"))
    return parsed


def _check_same_child_twice(parsed: ParsedFile) -> None:
    """A child is once on a list: two rows the engine judges the same child are a mistake in the file."""
    records = [row.record() for row in parsed.rows]
    for first, second in sorted(candidate_pairs(records)):
        result = compare(records[first], records[second])
        if result.is_same:
            column = parsed.columns.get("family_name") or parsed.columns.get("full_name", "")
            parsed.problems.append(RowProblem(parsed.rows[second].line, column,
                                              f"the same child as line {parsed.rows[first].line} "
                                              f"({'; '.join(result.reasons[:3])})"))


def parse_reply(content: bytes, file_name: str = "", *, today: datetime.date,
               max_rows: int | None = None) -> ParsedFile:
    """A reply: per row the child (by number on the list, or by name) and the outcome claimed."""
    try:
        lines = read_table(content, file_name, max_rows=None if max_rows is None else max_rows + HEADER_SEARCH_ROWS)
    except UnreadableFile as error:
        return ParsedFile(problems=[RowProblem(None, "", str(error))])
    parsed, data_lines, fields = _start(
        lines, REPLY_COLUMNS, [("position", "outcome"), ("family_name", "given_name", "outcome"),
                               ("full_name", "outcome")], "a reply")
    if _over_the_limit(parsed, data_lines, max_rows):
        return parsed
    for line, cells in data_lines:
        values = _cells(cells, fields)
        problem = _RowChecker(line, parsed.columns, parsed.problems)
        names = _name_parts(values)
        _check_names(names, problem, required=False)
        data: dict[str, Any] = {**names, "outcome": "", "birth_date_text": "", "sex": "",
                                "details": str(values.get("details") or ""),
                                "reported_location": str(values.get("reported_location") or "")[:255]}
        position = None
        if values.get("position") is not None:
            try:
                position = _position(values["position"])
            except ValueError as error:
                problem("position", str(error))
        elif not (names["family_name"] and names["given_name"]):
            problem("position", "missing: give the child's number on the list, or the child's names")
        try:
            born = parse_birth_date(values.get("birth_date"), today=today)
            data["birth_date_text"] = birth_date_text(*born) if born else ""
        except ValueError as error:
            problem("birth_date", str(error))
        try:
            if values.get("outcome") is None:
                raise ValueError("missing")
            data["outcome"] = parse_outcome(values["outcome"])
        except ValueError as error:
            problem("outcome", str(error))
        if not problem.failed:
            parsed.rows.append(ParsedRow(line, position, data))
    return parsed
