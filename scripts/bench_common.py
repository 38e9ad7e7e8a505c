"""What the benchmark's modules share: the environment it runs in, the synthetic population, timing,
the machine's description and the table of results.

Imported before Django is set up: the environment below must be in place first.
"""

from __future__ import annotations

import atexit
import datetime
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tracker_bench"
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Production mode: no debug bookkeeping in the requests measured. The settings then want these.
# The test client speaks plain HTTP and signs in without a phone: no HTTPS redirect, no second factor.
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("TRACKER_REQUIRE_2FA", "false")
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "benchmark-only-not-secret")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
os.environ["CELERY_BROKER_URL"] = "memory://"  # no worker: what a measured path queues is dropped
# The API's rate limits and the import's progress live in the shared cache, Redis in production.
os.environ["CACHE_URL"] = os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/12")
os.environ["DATABASE_POOL"] = "false"
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Imported files are kept under MEDIA_ROOT: the benchmark's go to a directory of their own, removed at exit.
if "MEDIA_ROOT" not in os.environ:
    os.environ["MEDIA_ROOT"] = tempfile.mkdtemp(prefix="tracker-bench-media-")
    atexit.register(shutil.rmtree, os.environ["MEDIA_ROOT"], True)

STEMS = """Коваль Ткач Мельник Бондар Шевч Кравч Олій Лис Марч Руд Павл Савч Гонч Левч Роман Петр Іван Сидор
Кузьм Полі Гриц Мороз Сав Юрч Дем'ян Кушн Стась Гнат Бойч Климч Остап Панч Тимч Фед Харч Яковл Зінч Мар Нестер
Охрім Семен Тарас Устим Филип Швець Кучер Гуц Дяч Бабич Прок Мирон Антон Голуб Сокол Ворон Горобч Журавл Лебід
Соловй Вовч Медвед Козач Бурл Чорн Біл Сір Руса Кліщ Жук Мух Комар Рибал Рибч Пасіч Гайд Гончар Кожум Ковб Лук
Мосій Наум Гордій Данил Зах Карп Лавр Мака Онищ Пили Ради Свир Трох Хом Ярем Ярош Борис Вакул Гаври Дорош Єрем"""
ENDINGS = ["енко", "ук", "чук", "юк", "ко", "ишин", "ський", "ович", "ець", "ак", "ик", "ан", "ун", "ів", "ей"]
# Settlement and its oblast.
SETTLEMENTS = {
    "Маріуполь": "donetsk", "Херсон": "kherson", "Мелітополь": "zaporizhzhia", "Бердянськ": "zaporizhzhia",
    "Лисичанськ": "luhansk", "Сєвєродонецьк": "luhansk", "Ізюм": "kharkiv", "Бахмут": "donetsk",
    "Нова Каховка": "kherson", "Генічеськ": "kherson", "Енергодар": "zaporizhzhia", "Куп'янськ": "kharkiv",
    "Донецьк": "donetsk", "Луганськ": "luhansk", "Токмак": "zaporizhzhia", "Скадовськ": "kherson",
    "Олешки": "kherson", "Волноваха": "donetsk", "Попасна": "luhansk", "Краматорськ": "donetsk",
    "Харків": "kharkiv", "Запоріжжя": "zaporizhzhia", "Миколаїв": "mykolaiv", "Суми": "sumy",
}
CHILD_COLUMNS = ("family_name", "given_name", "patronymic", "birth_date", "birth_date_precision", "sex",
                 "home_settlement")


def zipf_choice(rng: random.Random, items: list, skew: float = 1.0) -> Callable[[], object]:
    weights = [1 / (rank + 1) ** skew for rank in range(len(items))]
    cumulative, total = [], 0.0
    for weight in weights:
        total += weight
        cumulative.append(total)
    return lambda: rng.choices(items, cum_weights=cumulative)[0]


class Population:
    """Synthetic children with realistic skew: a few very common names, a long tail of rare ones.
    Every name is made up from common stems and endings; no real register is read."""

    def __init__(self, seed: int) -> None:
        from cases.matching import names

        self.rng = random.Random(seed)
        stems = STEMS.split()
        families = [stem + ending for stem in stems for ending in ENDINGS]
        self.rng.shuffle(families)
        # A gentle skew: the commonest made-up family name is about 0.4% of children, as the
        # commonest Ukrainian family names are; a steeper one makes blocks no real register has.
        self.family = zipf_choice(self.rng, families, 0.3)
        boys = [line.split() for line in names.MALE_NAMES.strip().splitlines()]
        girls = [line.split() for line in names.FEMALE_NAMES.strip().splitlines()]
        self.boys = [(w[0], _russian(w)) for w in boys if w]
        self.girls = [(w[0], _russian(w)) for w in girls if w]
        self.boy = zipf_choice(self.rng, self.boys, 0.7)
        self.girl = zipf_choice(self.rng, self.girls, 0.7)
        self.father = zipf_choice(self.rng, [w[0] for w in boys if w], 1.1)
        self.settlement = zipf_choice(self.rng, list(SETTLEMENTS), 0.8)

    def child(self) -> dict[str, object]:
        girl = self.rng.random() < 0.5
        given, russian = cast(tuple[str, str], (self.girl if girl else self.boy)())
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


# --- Timing -----------------------------------------------------------------------------------


def timed(label: str, action: Callable[[], T]) -> tuple[float, T]:
    """Wall-clock time, and beside it the time this process spent on the CPU (the rest is the
    database's work, and waiting for it)."""
    started, cpu = time.perf_counter(), time.process_time()
    result = action()
    elapsed = time.perf_counter() - started
    print(f"  {label:<60} {elapsed:8.2f} s   (Python {time.process_time() - cpu:5.2f} s)", flush=True)
    return elapsed, result


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: the smallest value with at least `share` of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass
class Spread:
    """Several timings of one thing, in milliseconds."""

    times: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def p95(self) -> float:
        return percentile(self.times, 0.95)

    def __str__(self) -> str:
        return f"median {fmt_ms(self.median)}, p95 {fmt_ms(self.p95)} (n={len(self.times)})"


def fmt_ms(ms: float) -> str:
    if ms >= 10_000:
        return f"{ms / 1000:.1f} s"
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    if ms >= 100:
        return f"{ms:.0f} ms"
    return f"{ms:.1f} ms"


class Phases:
    """Each phase of the run with its wall-clock time, for the summary."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.done: list[tuple[str, float]] = []
        self.loads: list[tuple[str, float]] = []
        # Set once the database is there: what else the server is doing (other databases' busy sessions).
        self.activity: Callable[[], str] | None = None

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        print(f"\n-- {name} --   (load average {os.getloadavg()[0]:.2f})", flush=True)
        started = time.perf_counter()
        try:
            yield
        finally:
            took = time.perf_counter() - started
            self.done.append((name, took))
            self.loads.append((name, os.getloadavg()[0]))
            busy = f"; {self.activity()}" if self.activity is not None else ""
            print(f"   ({name}: {took:.1f} s; load average {os.getloadavg()[0]:.2f}{busy})", flush=True)

    def total(self) -> float:
        return time.perf_counter() - self.started


# --- The table of results -------------------------------------------------------------------


@dataclass
class Row:
    """One measured figure beside its raw SQL baseline, its query counts and its target."""

    what: str
    figure: str
    baseline: str = "—"
    ratio: str = "—"
    queries: str = "—"
    target: str = "—"
    met: bool | None = None
    note: str = ""


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def table(self) -> str:
        header = ("measured", "figure", "raw SQL baseline", "ratio", "SQL queries", "target", "met", "notes")
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in self.rows:
            met = "—" if row.met is None else ("yes" if row.met else "**no**")
            lines.append("| " + " | ".join((row.what, row.figure, row.baseline, row.ratio, row.queries, row.target,
                                            met, row.note or "")) + " |")
        return "\n".join(lines)


# --- The machine ----------------------------------------------------------------------------


def machine(cursor: Any) -> dict[str, str]:
    """CPU, cores, memory and PostgreSQL, as this run saw them."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    cursor.execute("SELECT version()")
    version = cursor.fetchone()[0].split(" on ")[0]
    settings = {}
    for name in ("shared_buffers", "work_mem", "maintenance_work_mem", "effective_cache_size", "max_wal_size",
                 "max_parallel_workers_per_gather"):
        cursor.execute(f"SHOW {name}")
        settings[name] = cursor.fetchone()[0]
    try:
        kernel = subprocess.run(["uname", "-r"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        kernel = ""
    return {
        "CPU": cpu or "unknown",
        "cores": str(os.cpu_count()),
        "memory": memory,
        "PostgreSQL": version,
        "PostgreSQL settings": ", ".join(f"{k} {v}" for k, v in settings.items()),
        "Python": platform.python_version(),
        "kernel": kernel,
    }
