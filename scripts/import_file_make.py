"""Writes a large synthetic handover list as an XLSX file, the way a delegation types one: a title
line, a two-level merged header (ПІБ over three columns; №, birth date and sex merged downwards),
synthetic names in capitals and not, dates as real dates, Excel serial numbers and text, and a
totals row at the bottom. For measuring the import's reading of a big file (time and peak memory).

    .venv/bin/python scripts/import_file_make.py /tmp/list.xlsx [--rows 146560] [--seed 7] [--plain]
        [--leave-out NUMBERS]

`--plain` writes a one-level header and no merges (what the reader before two-level headers read).
`--leave-out NUMBERS` leaves out the rows of these numbers (a file of numbers, or "12,40,…"), as a
case worker takes out rows the import refused as one child listed twice; the other rows keep their
numbers and names, so the whole import of the file can be measured.
"""

from __future__ import annotations

import argparse
import datetime
import random
from pathlib import Path

from openpyxl import Workbook

# Syllables, not names of anyone: every name is made up from them, thousands of family names in all,
# a few common and many rare.
FAMILY_STEMS = ("Кова", "Ткач", "Мельн", "Бонд", "Шевч", "Крав", "Олі", "Лис", "Мар", "Руд", "Павл", "Сав", "Гон",
                "Лев", "Ром", "Петр", "Сид", "Кузь", "Пол", "Гри", "Мор", "Юр", "Дем'ян", "Кушн", "Стась", "Гнат",
                "Бой", "Клим", "Ост", "Пан", "Тим", "Фед", "Хар", "Яков", "Зін", "Нест", "Охр", "Сем", "Тар", "Уст",
                "Філ", "Шв", "Куч", "Гуц", "Дяч", "Баб", "Прок", "Мир", "Ант", "Гол", "Сок", "Вор", "Гор", "Жур",
                "Леб", "Сол", "Вовк", "Медв", "Коз", "Бурл", "Чорн", "Біл", "Сір", "Рус", "Кліщ", "Жук", "Мух")
FAMILY_MIDDLES = ("", "ар", "ен", "ич", "ов", "ук", "ан", "ал", "ин", "ор", "ець", "аш", "ур", "оль", "ес")
FAMILY_ENDINGS = ("енко", "ук", "чук", "юк", "ко", "ишин", "ський", "ович", "ець", "ак", "ик", "ан", "ун", "ів", "ей")
GIVEN = {"M": ("Олександр", "Андрій", "Богдан", "Василь", "Денис", "Євген", "Захар", "Ілля", "Кирило", "Максим",
               "Назар", "Олег", "Остап", "Роман", "Тарас", "Юрій", "Ярослав", "Матвій", "Марко", "Артем", "Данило",
               "Дмитро", "Іван", "Михайло", "Микита", "Тимофій", "Владислав", "Вадим", "Степан", "Федір"),
         "F": ("Анна", "Богдана", "Валерія", "Дарина", "Єва", "Злата", "Ірина", "Катерина", "Мар'яна", "Наталія",
               "Олена", "Поліна", "Софія", "Соломія", "Уляна", "Христина", "Юлія", "Ярина", "Вікторія", "Аліна",
               "Діана", "Марія", "Анастасія", "Вероніка", "Олександра", "Мілана", "Кіра", "Тетяна", "Ганна")}
PATRONYMIC_STEMS = ("Андрій", "Богдан", "Василь", "Денис", "Олег", "Роман", "Тарас", "Юрій", "Ярослав", "Петр",
                    "Іван", "Михайл", "Степан", "Олександр", "Віктор", "Сергій", "Ігор", "Микол", "Володимир")
SETTLEMENTS = (("Маріуполь", "Донецька"), ("Херсон", "Херсонська"), ("Мелітополь", "Запорізька"),
               ("Бердянськ", "Запорізька"), ("Сєвєродонецьк", "Луганська"), ("Ізюм", "Харківська"),
               ("Олешки", "Херсонська"), ("Каховка", "Херсонська"), ("Енергодар", "Запорізька"))
CIRCUMSTANCES = ("депортовано", "примусово переміщено", "утримується на ТОТ", "вихованець інтернату")
# As skewed as a real register (the benchmark's million children): the commonest family name about
# 0.5% of the children, the commonest given name about 10% of each sex.
FAMILY_POWER, GIVEN_POWER = 0.7, 0.5
EXCEL_EPOCH = datetime.date(1899, 12, 30)


def skewed(rng: random.Random, choices: tuple[str, ...], power: float) -> str:
    """One of `choices`, the first ones more often (weights 1/rank^power)."""
    return rng.choices(choices, weights=[1 / rank ** power for rank in range(1, len(choices) + 1)])[0]


def patronymic(rng: random.Random, sex: str) -> str:
    return rng.choice(PATRONYMIC_STEMS) + ("ович" if sex == "M" else "івна")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path")
    parser.add_argument("--rows", type=int, default=146_560)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--plain", action="store_true")
    parser.add_argument("--leave-out", default="", help="row numbers to leave out: a file of them, or comma-separated")
    args = parser.parse_args()
    listed = Path(args.leave_out).read_text() if args.leave_out and Path(args.leave_out).is_file() else args.leave_out
    left_out = {int(number) for number in listed.replace(",", " ").split()}
    rng = random.Random(args.seed)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Список")
    sheet.append(["Список дітей, депортованих до РФ (синтетичні дані)"])
    if args.plain:
        sheet.append(["№", "Прізвище", "Ім'я", "По батькові", "Дата народження", "Стать", "Населений пункт",
                      "Область"])
    else:
        sheet.append(["№ з/п", "ПІБ", None, None, "Дата народження", "Стать", "Населений пункт", "Область",
                      "Обставини"])
        sheet.append([None, "Прізвище", "Ім'я", "По батькові", None, None, None, None, None])
        sheet.merged_cells.ranges.add("B2:D2")
    start = datetime.date(2006, 1, 1)
    for number in range(1, args.rows + 1):
        sex = rng.choice("MF")
        family = "".join(skewed(rng, part, FAMILY_POWER) for part in (FAMILY_STEMS, FAMILY_MIDDLES, FAMILY_ENDINGS))
        if sex == "F" and family.endswith("ський"):
            family = family[:-3] + "ька"
        born = start + datetime.timedelta(days=rng.randrange(0, 17 * 365))
        kind = rng.random()
        birth: object = born if kind < 0.7 else f"{born:%d.%m.%Y}" if kind < 0.9 or args.plain else \
            (born - EXCEL_EPOCH).days
        settlement, oblast = rng.choice(SETTLEMENTS)
        given = skewed(rng, GIVEN[sex], GIVEN_POWER)
        name = [family.upper() if rng.random() < 0.2 else family, given, patronymic(rng, sex)]
        row = [number, *name, birth, "ч" if sex == "M" else "ж", settlement, oblast]
        if not args.plain:
            row.append(rng.choice(CIRCUMSTANCES))
        if number not in left_out:
            sheet.append(row)
    if not args.plain:
        sheet.append(["Всього", args.rows - len(left_out & set(range(1, args.rows + 1)))])
    workbook.save(args.path)


if __name__ == "__main__":
    main()
