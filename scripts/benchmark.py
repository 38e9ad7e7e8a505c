"""Speed of the tracker at scale, on a PostgreSQL database of its own; prints what it measured.

    .venv/bin/python scripts/benchmark.py                       # 100,000 children, then 1,000,000
    .venv/bin/python scripts/benchmark.py --sizes 100000        # one size only
    BENCH_DATABASE_URL=postgres://... .venv/bin/python scripts/benchmark.py

For each size it fills the database with synthetic children (1,500 made-up family names
built from common Ukrainian stems and endings, the commonest about 0.4% of children; given names
drawn with a Zipf-like skew, so that the commonest is about a tenth of boys or girls; birth
dates over 2006-2024), then measures:

- name search: the admin's and the API's search (`cases.selectors.search_by_name`) for 40 names in
  Latin, Cyrillic and Russian forms, first page of 50 and the count, median and 95th percentile;
  the same query in raw SQL beside it;
- import: 10,000-row lists, three one after another (in each, half of the rows are stored
  children written another way, half are new), through the product's own import services: read
  and check, match, write; each is timed, wall clock and Python's share, then the median is given;
- the deadline sweep over every entry the imports made.

Every figure is measured here and now; nothing is assumed. The database is dropped and made anew
for each size unless --keep is given.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from cases.models import Child

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tracker_bench"
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
os.environ["DATABASE_POOL"] = "false"

STEMS = """Коваль Ткач Мельник Бондар Шевч Кравч Олій Лис Марч Руд Павл Савч Гонч Левч Роман Петр Іван Сидор
Кузьм Полі Гриц Мороз Сав Юрч Дем'ян Кушн Стась Гнат Бойч Климч Остап Панч Тимч Фед Харч Яковл Зінч Мар Нестер
Охрім Семен Тарас Устим Филип Швець Кучер Гуц Дяч Бабич Прок Мирон Антон Голуб Сокол Ворон Горобч Журавл Лебід
Соловй Вовч Медвед Козач Бурл Чорн Біл Сір Руса Кліщ Жук Мух Комар Рибал Рибч Пасіч Гайд Гончар Кожум Ковб Лук
Мосій Наум Гордій Данил Зах Карп Лавр Мака Онищ Пили Ради Свир Трох Хом Ярем Ярош Борис Вакул Гаври Дорош Єрем"""
ENDINGS = ["енко", "ук", "чук", "юк", "ко", "ишин", "ський", "ович", "ець", "ак", "ик", "ан", "ун", "ів", "ей"]
SETTLEMENTS = ["Маріуполь", "Херсон", "Мелітополь", "Бердянськ", "Лисичанськ", "Сєвєродонецьк", "Ізюм", "Бахмут",
               "Нова Каховка", "Генічеськ", "Енергодар", "Куп'янськ", "Донецьк", "Луганськ", "Токмак", "Скадовськ",
               "Олешки", "Волноваха", "Попасна", "Краматорськ", "Харків", "Запоріжжя", "Миколаїв", "Суми"]
CHILD_COLUMNS = ("family_name", "given_name", "patronymic", "birth_date", "birth_date_precision", "sex",
                 "home_settlement")


T = TypeVar("T")


def zipf_choice(rng: random.Random, items: list[T], skew: float = 1.0) -> Callable[[], T]:
    weights = [1 / (rank + 1) ** skew for rank in range(len(items))]
    cumulative, total = [], 0.0
    for weight in weights:
        total += weight
        cumulative.append(total)
    return lambda: rng.choices(items, cum_weights=cumulative)[0]


class Population:
    """Synthetic children with realistic skew: a few very common names, a long tail of rare ones."""

    def __init__(self, seed: int) -> None:
        from cases.matching.name_data import FEMALE_NAMES, MALE_NAMES

        self.rng = random.Random(seed)
        stems = STEMS.split()
        families = [stem + ending for stem in stems for ending in ENDINGS]
        self.rng.shuffle(families)
        # A gentle skew: the commonest made-up family name is about 0.4% of children, as the
        # commonest Ukrainian family names are; a steeper one makes blocks no real register has.
        self.family = zipf_choice(self.rng, families, 0.3)
        boys = [line.split() for line in MALE_NAMES.strip().splitlines()]
        girls = [line.split() for line in FEMALE_NAMES.strip().splitlines()]
        self.boys = [(w[0], _russian(w)) for w in boys if w]
        self.girls = [(w[0], _russian(w)) for w in girls if w]
        self.boy = zipf_choice(self.rng, self.boys, 0.7)
        self.girl = zipf_choice(self.rng, self.girls, 0.7)
        self.father = zipf_choice(self.rng, [w[0] for w in boys if w], 1.1)
        self.settlement = zipf_choice(self.rng, SETTLEMENTS, 0.8)

    def child(self) -> dict[str, object]:
        girl = self.rng.random() < 0.5
        given, russian = (self.girl if girl else self.boy)()
        family = str(self.family())
        if girl and family.endswith("ський"):
            family = family[:-5] + "ська"
        father = str(self.father())
        patronymic = _patronymic(father, girl) if self.rng.random() < 0.85 else ""
        year = self.rng.randint(2006, 2024)
        precision = self.rng.choices(["day", "year", "month"], weights=[85, 12, 3])[0]
        birth = datetime.date(year, self.rng.randint(1, 12) if precision != "year" else 1,
                              self.rng.randint(1, 28) if precision == "day" else 1)
        return {"family_name": family, "given_name": given, "given_russian": russian, "patronymic": patronymic,
                "birth_date": birth, "birth_date_precision": precision, "sex": "F" if girl else "M",
                "home_settlement": str(self.settlement())}


def _russian(words: list[str]) -> str:
    cyrillic = [w for w in words[1:] if any("а" <= c.lower() <= "я" for c in w)]
    return cyrillic[0] if cyrillic else words[0]


def _patronymic(father: str, girl: bool) -> str:
    base = father[:-1] if father.endswith(("й", "о")) else father
    if father.endswith("о"):
        return base + ("івна" if girl else "ович")
    if father.endswith("й"):
        return base + ("ївна" if girl else "йович")
    return base + ("івна" if girl else "ович")


def connect_admin_database(url: str, *, recreate: bool) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and recreate:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        if not exists or recreate:
            conn.execute(f'CREATE DATABASE "{name}"')


def fill(population: Population, count: int, *, batch: int = 5000) -> list[dict[str, object]]:
    """Bulk-load `count` children with their cases and match keys; returns a sample of them."""
    from django.db import connection

    from cases.matching.candidates import backfill_match_keys
    from cases.models import Case, Child

    sample: list[dict[str, object]] = []
    made = 0
    started = time.perf_counter()
    while made < count:
        people = [population.child() for _ in range(min(batch, count - made))]
        children = []
        for person in people:
            child = Child(**{k: v for k, v in person.items() if k in CHILD_COLUMNS})
            child.family_name_latin = ""
            children.append(child)
        for child in children:
            _prepare(child)
        Child.objects.bulk_create(children, batch_size=batch)
        backfill_match_keys(children, batch_size=batch)
        Case.objects.bulk_create([Case(child=child) for child in children], batch_size=batch)
        for person, child in zip(people, children, strict=True):
            person["id"] = child.pk
        sample += people[:: max(1, count // 20000)]
        made += len(children)
        rate = made / (time.perf_counter() - started)
        print(f"\r  loaded {made:,} children ({rate:,.0f}/s)", end="", file=sys.stderr)
    print(file=sys.stderr)
    # A register is read and written for months after it is loaded: let the tables settle as
    # autovacuum would leave them, rather than have autovacuum start in the middle of a measurement.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return sample


def _prepare(child: Child) -> None:
    """What Child.save does before writing, for rows loaded in bulk."""
    from cases.matching import names

    child.family_name_latin = names.transliterate_uk(child.family_name)
    child.given_name_latin = names.transliterate_uk(child.given_name)
    child.patronymic_latin = names.transliterate_uk(child.patronymic) if child.patronymic else ""
    child.search_names = child.compute_search_names()


def variant(rng: random.Random, person: dict[str, object]) -> dict[str, object]:
    """A stored child as another body writes it: Latin, Russian given name, capitals, year only, swapped."""
    from cases.matching import names

    row = dict(person)
    how = rng.choice(["latin", "russian", "capitals", "year", "swapped", "no_patronymic"])
    if how == "latin":
        for field in ("family_name", "given_name", "patronymic"):
            row[field] = names.transliterate_uk(str(row[field]))
    elif how == "russian":
        row["given_name"] = row["given_russian"]
    elif how == "capitals":
        row["family_name"] = str(row["family_name"]).upper()
    elif how == "year":
        row["birth_date_precision"] = "year"
    elif how == "swapped":
        row["family_name"], row["given_name"] = row["given_name"], row["family_name"]
    else:
        row["patronymic"] = ""
    return row


def list_csv(rows: list[dict[str, object]]) -> bytes:
    lines = ["№;Прізвище;Ім'я;По батькові;Дата народження;Стать;Населений пункт"]
    for number, row in enumerate(rows, start=1):
        birth = row["birth_date"]
        assert isinstance(birth, datetime.date)
        date = f"{birth:%Y}" if row["birth_date_precision"] == "year" else f"{birth:%d.%m.%Y}"
        lines.append(f"{number};{row['family_name']};{row['given_name']};{row['patronymic']};{date};"
                     f"{'ж' if row['sex'] == 'F' else 'ч'};{row['home_settlement']}")
    return ("\n".join(lines) + "\n").encode("utf-8-sig")


def timed(label: str, action: Callable[[], T]) -> tuple[float, T]:
    """Wall-clock time, and beside it the time this process spent on the CPU (the rest is the
    database's work, and waiting for it)."""
    started, cpu = time.perf_counter(), time.process_time()
    result = action()
    elapsed = time.perf_counter() - started
    print(f"  {label:<52} {elapsed:8.2f} s   (Python {time.process_time() - cpu:5.2f} s)")
    return elapsed, result


def measure_search(sample: list[dict[str, object]], rng: random.Random) -> None:
    from django.db import connection

    from cases.matching import names
    from cases.models import Child
    from cases.selectors import search_by_name

    queries = []
    for person in rng.sample(sample, 40):
        form = rng.choice(["latin", "cyrillic", "russian"])
        if form == "latin":
            queries.append(f"{names.transliterate_uk(str(person['family_name']))} "
                           f"{names.transliterate_uk(str(person['given_name']))}")
        elif form == "cyrillic":
            queries.append(f"{person['family_name']} {person['given_name']}")
        else:
            queries.append(f"{person['family_name']} {person['given_russian']}")

    def page(query: str) -> tuple[int, int]:
        found = search_by_name(Child.objects.all(), "search_names", query)
        return found.count(), len(list(found.order_by("family_name", "given_name", "id")[:50]))

    page(queries[0])  # warm the connection and the cache of the index's pages
    times, hits = [], []
    for query in queries:
        started = time.perf_counter()
        total, _ = page(query)
        times.append((time.perf_counter() - started) * 1000)
        hits.append(total)
    times.sort()
    print(f"  name search, count + first page of 50 (40 names)       median {statistics.median(times):6.1f} ms,"
          f" p95 {times[int(len(times) * 0.95) - 1]:6.1f} ms, max {times[-1]:6.1f} ms;"
          f" matches per name: median {statistics.median(hits):.0f}")
    # The same work in raw SQL, for comparison: one LIKE per folded word, served by the trigram index.
    raw = []
    with connection.cursor() as cursor:
        for query in queries:
            keys = names.latin_key(query).split()
            where = " AND ".join(["search_names LIKE %s"] * len(keys))
            params = [f"%{key}%" for key in keys]
            started = time.perf_counter()
            cursor.execute(f"SELECT count(*) FROM cases_child WHERE {where}", params)
            cursor.fetchone()
            cursor.execute(f"SELECT id FROM cases_child WHERE {where} ORDER BY family_name, given_name, id LIMIT 50",
                           params)
            cursor.fetchall()
            raw.append((time.perf_counter() - started) * 1000)
        raw.sort()
        print(f"  the same in raw SQL (LIKE on the trigram index)          median {statistics.median(raw):6.1f} ms,"
              f" p95 {raw[int(len(raw) * 0.95) - 1]:6.1f} ms")
        keys = names.latin_key(queries[0]).split()
        cursor.execute("EXPLAIN SELECT id FROM cases_child WHERE " + " AND ".join(
            ["search_names LIKE %s"] * len(keys)), [f"%{key}%" for key in keys])
        plan = " / ".join(row[0].strip() for row in cursor.fetchall() if "Scan" in row[0])
        print(f"  plan: {plan}")


def measure_import(population: Population, sample: list[dict[str, object]], rng: random.Random, rows: int,
                   label: str, seen: set[frozenset[str]]) -> float:
    """One list imported; returns its time. `seen` keeps the lists of one run apart: each names
    other stored children, and new children no list named before."""
    from cases.matching import names
    from tracker.models import ImportBatch, ImportRow, Organisation
    from tracker.services.imports import (
        import_batch_create,
        import_batch_run,
        import_batch_start,
        import_batch_validate,
    )

    # One row per child: two rows the engine takes for one child refuse the whole file, as they should.
    # (Family and given name only, in either order: year-only dates a year apart are taken for one
    # child too, and so are swapped names.)

    def unique(people: Iterator[dict[str, object]], wanted: int) -> list[dict[str, object]]:
        kept = []
        for person in people:
            family, given = str(person["family_name"]), str(person["given_name"])
            identity = frozenset((names.latin_key(family), names.latin_key(given),
                                  names.canonical_given_name(family), names.canonical_given_name(given)))
            if identity not in seen:
                seen.add(identity)
                kept.append(person)
            if len(kept) == wanted:
                break
        return kept

    shuffled = rng.sample(sample, len(sample))
    known = [variant(rng, person) for person in unique(iter(shuffled), rows // 2)]
    new = unique((population.child() for _ in iter(int, 1)), rows - len(known))
    listed = known + new
    rng.shuffle(listed)
    sender = Organisation.objects.get_or_create(name="Ukrainian delegation", defaults={"kind": "party"})[0]
    recipient = Organisation.objects.get_or_create(name="Russian delegation", defaults={"kind": "party"})[0]
    for attempt in range(1, 4):
        content = list_csv(listed)
        batch = import_batch_create(kind=ImportBatch.Kind.LIST, content=content,
                                    file_name=f"bench-{label}-{attempt}.csv", actor=None, sender=sender,
                                    recipient=recipient, reference=f"BENCH-{label}-{attempt}-{time.time_ns()}",
                                    handed_over_on=datetime.date(2025, 6, 2),
                                    response_due_on=datetime.date(2025, 7, 2))
        checked, batch = timed(f"import {len(listed):,} rows: read, check and match",
                               partial(import_batch_validate, batch_id=batch.pk))
        if batch.status == ImportBatch.Status.VALIDATED:
            break
        # Two made-up rows the engine takes for one child refuse the file, as a real list would be
        # refused: drop the later line of each pair, as a case worker would, and import again.
        twins = {error["line"] for error in batch.errors if "the same child as line" in error["reason"]}
        assert twins and len(twins) == len(batch.errors), batch.errors[:5]
        print(f"  (refused for {len(twins)} line(s) naming one child twice; those lines dropped)")
        listed = [row for number, row in enumerate(listed, start=2) if number not in twins]
    assert batch.status == ImportBatch.Status.VALIDATED, batch.errors[:5]
    verdicts = {v: batch.rows.filter(verdict=v).count() for v in ImportRow.Verdict.values}
    batch = import_batch_start(batch=batch, actor=None, proposed="reject")
    written, batch = timed(f"import {len(listed):,} rows: write list, children, cases", lambda: import_batch_run(
        batch_id=batch.pk, actor=None))
    assert batch.status == ImportBatch.Status.DONE, batch.errors[:5]
    print(f"  import {len(listed):,} rows in all{'':<34} {checked + written:8.2f} s"
          f"   (verdicts: {', '.join(f'{k} {v}' for k, v in verdicts.items() if v)};"
          f" {len(known):,} rows were stored children)")
    return checked + written


def measure_sweep() -> None:
    from tracker.models import ListEntry
    from tracker.services.flags import sweep_deadlines

    entries = ListEntry.objects.count()
    timed(f"deadline sweep over {entries:,} entries, first run", lambda: sweep_deadlines(
        today=datetime.date(2025, 7, 20)))
    timed("deadline sweep again (nothing to do)", lambda: sweep_deadlines(today=datetime.date(2025, 7, 20)))
    timed("deadline sweep 14 days on (escalates all)", lambda: sweep_deadlines(today=datetime.date(2025, 8, 1)))


def stored_sample() -> tuple[int, list[dict[str, object]]]:
    """With --keep: how many children are stored, and 20,000 of them to search for and re-list."""
    from cases.models import Child

    fields = ("pk", *CHILD_COLUMNS)
    rows = Child.objects.order_by("?").values_list(*fields)[:20000]
    sample = [dict(zip(("id", *CHILD_COLUMNS), row, strict=True)) for row in rows]
    for person in sample:
        person["given_russian"] = person["given_name"]
    return Child.objects.count(), sample


def sizes(text: str) -> Iterator[int]:
    return (int(part) for part in text.split(","))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="children in the database, comma-separated")
    parser.add_argument("--rows", type=int, default=10_000, help="rows in the imported list")
    parser.add_argument("--imports", type=int, default=3, help="lists imported one after another at each size")
    parser.add_argument("--keep", action="store_true", help="add to the database instead of making it anew")
    args = parser.parse_args()

    url = os.environ["DATABASE_URL"]
    import django

    loaded = 0
    population = Population(seed=2025)
    sample: list[dict[str, object]] = []
    for index, size in enumerate(sizes(args.sizes)):
        if index == 0:
            connect_admin_database(url, recreate=not args.keep)
            django.setup()
            from django.core.management import call_command

            call_command("migrate", verbosity=0)
            if args.keep:
                loaded, stored = stored_sample()
                sample[:] = stored
                # New children must be new: not the same draws as the ones already stored.
                population = Population(seed=2025 + loaded)
        now = datetime.datetime.now(datetime.UTC)
        print(f"\n== {size:,} children ({url.rsplit('/', 1)[1]}, {now:%Y-%m-%d %H:%M} UTC) ==")
        more = size - loaded
        if more > 0:
            _, loaded_sample = timed(f"load {more:,} more children (bulk)", partial(fill, population, more))
            sample.extend(loaded_sample)
            loaded = size
        rng = random.Random(size)
        measure_search(sample, rng)
        # Timings on a shared machine wander from run to run: several lists, each reported, then the median.
        seen: set[frozenset[str]] = set()
        took = [measure_import(population, sample, rng, args.rows, label=f"{size}-{n}", seen=seen)
                for n in range(1, args.imports + 1)]
        if len(took) > 1:
            print(f"  import {args.rows:,} rows, median of {len(took)} lists{'':<21} {statistics.median(took):8.2f} s"
                  f"   (each: {', '.join(f'{t:.2f}' for t in took)} s)")
        measure_sweep()


if __name__ == "__main__":
    main()
