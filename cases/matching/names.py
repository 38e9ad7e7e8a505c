"""Name normalisation for children's names written in Ukrainian, Russian or any Latin romanisation.

No Django: the matching engine, the admin search column and imports all rely on the
same keys, so a name written "Олександр", "Oleksandr" or "Olexandr" ends up in one place.

Three layers:
- ``transliterate_uk``: the official Ukrainian national transliteration (Cabinet of Ministers
  resolution No. 55 of 27 January 2010), case preserved; for display and for exchange with partners.
- ``latin_key`` / ``search_text``: a lower-case folded Latin key in which the usual romanisations of
  one spelling meet (kh/h/g, y/i/j, ye/ie/e, yu/iu/ju, ts/tz/c, shch/sch/sh ...).
- ``canonical_given_name`` / ``canonical_patronymic``: a key shared by the Ukrainian and Russian
  forms of one given name or patronymic (Олександр / Александр, Миколайович / Николаевич).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import OSA

from cases.matching.name_data import DIMINUTIVES, FEMALE_NAMES, IRREGULAR_PATRONYMICS, MALE_NAMES, SETTLEMENT_NAMES

__all__ = [
    "canonical_given_name",
    "canonical_patronymic",
    "full_names_of",
    "given_name_sex",
    "is_known_given_name",
    "latin_key",
    "name_sounds",
    "patronymic_father",
    "patronymic_sex",
    "search_forms",
    "search_key",
    "search_text",
    "settlement_key",
    "transliterate_uk",
    "typo_distance",
]

# ---------------------------------------------------------------------------------------------
# Ukrainian national transliteration
# ---------------------------------------------------------------------------------------------

# Letters whose romanisation depends on the position in the word: (word-initial, elsewhere).
_POSITIONAL = {
    "є": ("ye", "ie"),
    "ї": ("yi", "i"),
    "й": ("y", "i"),
    "ю": ("yu", "iu"),
    "я": ("ya", "ia"),
    # Russian ё is outside the Ukrainian table; romanised the way є and ю are.
    "ё": ("yo", "io"),
}

_PLAIN = {
    "а": "a", "б": "b", "в": "v", "г": "h", "ґ": "g", "д": "d", "е": "e", "ж": "zh", "з": "z",
    "и": "y", "і": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ь": "",
    # Russian letters outside the Ukrainian alphabet, so that Russian spellings also come out Latin.
    "ы": "y", "э": "e", "ъ": "",
}

# Apostrophe look-alikes found in names typed on different keyboards.
_APOSTROPHES = "'’ʼ`‘´ʹ′ʻ"


def _is_cyrillic(char: str) -> bool:
    return "\u0400" <= char <= "\u04ff"


def _is_word_letter(char: str) -> bool:
    # An apostrophe inside a word (Мар'яна) does not start a new word.
    return char.isalpha() or char in _APOSTROPHES


@lru_cache(maxsize=1 << 18)
def transliterate_uk(text: str) -> str:
    """Romanise Ukrainian Cyrillic by the official 2010 table, keeping the letter case.

    Russian-only letters (ё ы э ъ) are romanised in the same spirit; characters that are not
    Cyrillic pass through unchanged, as do apostrophes that are not inside a Cyrillic word.
    """
    text = unicodedata.normalize("NFC", text)
    out: list[str] = []
    length = len(text)
    for index, char in enumerate(text):
        lower = char.lower()
        previous = text[index - 1] if index else ""
        following = text[index + 1] if index + 1 < length else ""
        if char in _APOSTROPHES and previous and _is_cyrillic(previous):
            continue
        if lower in _POSITIONAL:
            initial, inner = _POSITIONAL[lower]
            latin = initial if not previous or not _is_word_letter(previous) else inner
        elif lower in _PLAIN:
            latin = _PLAIN[lower]
            # зг is written zgh so that it cannot be read as ж.
            if lower == "г" and previous.lower() == "з":
                latin = "gh"
        else:
            out.append(char)
            continue
        if char != lower and latin:
            # A capital in an all-capitals word stays all capitals: ЩУР -> SHCHUR, Щур -> Shchur.
            shouting = following.isupper() or (previous.isupper() and not following.islower())
            latin = latin.upper() if shouting else latin[0].upper() + latin[1:]
        out.append(latin)
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Folded Latin key
# ---------------------------------------------------------------------------------------------

# Latin letters with diacritics from scholarly (ISO 9, Czech, Polish) romanisations.
_LATIN_DIACRITICS = {
    "š": "sh", "č": "ch", "ž": "zh", "ż": "zh", "ź": "z", "ś": "s", "ć": "ts", "ł": "l",
    "ŝ": "shch", "ê": "ye", "â": "ya", "û": "yu", "ß": "ss", "ø": "o", "æ": "ae", "œ": "oe",
}

# One symbol per sound.  Upper-case letters stand for the sounds written with two Latin letters,
# so that later rules cannot split them; they are spelled out again at the end.
_SOUNDS = {
    # щ and ш meet: Polishchuk, Polischuk and Polishuk are all written for Поліщук. German writes щ
    # schtsch (Juschtschenko), GOST 7.79 shh (Shherbyna).
    "schtsch": "Ш", "shch": "Ш", "szcz": "Ш", "sch": "Ш", "shh": "Ш",
    "tsch": "Ч", "tch": "Ч", "cz": "Ч",
    "sh": "Ш", "sz": "Ш",
    "zh": "Ж",
    "ts": "Ц", "tz": "Ц", "tc": "Ц",
    # х, г and ґ meet: Ukrainian h, Russian g and the kh of both are written for the same names.
    "kh": "g", "gh": "g", "h": "g",
    # ck is ц and к in the Czech and Polish spellings (Chmelnyckyj, Chmielnicki), not an English k.
    "ck": "Цk", "ph": "f", "x": "ks", "w": "v", "q": "k",
    "j": "i", "y": "i",
}
_SOUND_PATTERN = re.compile(r"schtsch|shch|szcz|tsch|sch|shh|tch|ch|cz|sh|sz|zh|ts|tz|tc|kh|gh|ck|ph|[hcxwqjy]")
_VOWELS = frozenset("aeiouy")
_SPELLED_OUT = {"Ш": "sh", "Ч": "ch", "Ж": "zh", "Ц": "ts"}


def _sound(match: re.Match[str]) -> str:
    found = match.group(0)
    following = match.string[match.end():match.end() + 1]
    if found == "c":
        # English and Polish c: ts before a front vowel (Grycenko) and at the end of a word (Czech and
        # Polish Kravec), k elsewhere (Victoria).
        return "Ц" if following in ("e", "i", "y", "") else "k"
    if found == "ch":
        # English ch is ч; the Czech, Polish and German ch is х. At the start of a word before a
        # consonant only х is met in names (Chmelnyckyj, Chrystyna, Chlopecki); inside a word ч before a
        # consonant is common (Bochkarov, Vechnyi), so there ch stays ч.
        return "g" if match.start() == 0 and following and following not in _VOWELS else "Ч"
    return _SOUNDS[found]


def _fold_word(word: str) -> str:
    """Fold one lower-case Latin word to its sound symbols."""
    word = _SOUND_PATTERN.sub(_sound, word)
    word = re.sub(r"(.)\1+", r"\1", word)
    # Iotation: ye/ie/je and plain e meet (Yevhen, Ievgen, Evgeniy); the soft sign before
    # o and u disappears (Kovaliov / Kovalov, Liudmyla / Ludmila); я keeps its i (Tetiana).
    word = word.replace("ie", "e")
    word = re.sub(r"([^aeiou])i([ou])", r"\1\2", word)
    # Russian feminine adjective ending -ая against Ukrainian -а (Kovalskaia / Kovalska).
    if len(word) > 5 and word.endswith("aia"):
        word = word[:-2]
    return re.sub(r"(.)\1+", r"\1", word)


# GOST 7.79 (system B) marks и as y` and writes ц cz, х x: a word with its backtick is read by its table.
_GOST_MARK = re.compile(r"[a-z]`")
_GOST_LETTERS = (("y`", "y"), ("e`", "e"), ("cz", "c"), ("x", "kh"))


def _to_latin_words(text: str) -> list[str]:
    text = transliterate_uk(text).lower()
    if "`" in text and _GOST_MARK.search(text) and ("y`" in text or "cz" in text or "x" in text):
        for gost, plain in _GOST_LETTERS:
            text = text.replace(gost, plain)
    text = "".join(_LATIN_DIACRITICS.get(char, char) for char in text)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(char for char in text if not unicodedata.combining(char))
    text = "".join("" if char in _APOSTROPHES else char for char in text)
    return re.sub(r"[^a-z0-9]+", " ", text).split()


# Large enough for the names of a 10,000-row import and its candidates; a miss costs ~70 µs.
@lru_cache(maxsize=1 << 18)
def name_sounds(text: str) -> str:
    """The folded key with one character per sound, for edit distances (ш counts as one letter)."""
    # Word by word: a full name is seldom seen twice, its words (Oleksandr, Kovalenko) very often.
    return " ".join(filter(None, map(_word_sounds, text.split())))


@lru_cache(maxsize=1 << 16)
def _word_sounds(word: str) -> str:
    return " ".join(filter(None, (_fold_word(part) for part in _to_latin_words(word))))


@lru_cache(maxsize=1 << 18)
def latin_key(text: str) -> str:
    """A lower-case Latin search key in which the usual spellings of a name meet.

    Stable and idempotent (``latin_key(latin_key(x)) == latin_key(x)``); words stay separated by
    single spaces, hyphens and punctuation become spaces.
    """
    return "".join(_SPELLED_OUT.get(char, char) for char in name_sounds(text))


@lru_cache(maxsize=1 << 16)
def search_key(word: str) -> str:
    """The folded key of one word with the vowels that Ukrainian and Russian spellings of one name
    trade made one: і / е / и (Білоус, Белоус, Bilous, Belous), ї / йи and ій / ей (Олійник, Олейник,
    Oliinyk, Oleynik). What search stores and looks for, and what the engine calls the same spelling.

    The consonants are latin_key's; only e and runs of i are folded, so a key still reads as the name.
    """
    key = latin_key(word).replace(" ", "")
    return re.sub(r"i+", "i", key.replace("e", "i"))


def search_text(*names: str) -> str:
    """Space-separated, de-duplicated search keys of every word of every name, for the search column.

    A word that is a known given name or patronymic also brings its canonical key, so that a
    child stored as Александр is found by Oleksandr as well as by Aleksandr.
    """
    seen: dict[str, None] = {}
    for name in names:
        for word in latin_key(name or "").split():
            seen.setdefault(search_key(word), None)
            if word in _GIVEN_NAMES:
                seen.setdefault(search_key(_GIVEN_NAMES[word]), None)
            elif _PATRONYMIC_SUFFIX.search(word) and patronymic_father(word) in _GIVEN_NAME_SEX:
                seen.setdefault(search_key(canonical_patronymic(word)), None)
    return " ".join(seen)


def search_forms(text: str) -> list[set[str]]:
    """For each word of a query, the search keys any of which a child's names must hold: the word's
    own, its canonical given name's or patronymic's (Aleksandr finds Oleksandr), and for a short form
    every full name it stands for (Женя finds Євген and Євгенія)."""
    forms = []
    for word in latin_key(text).split():
        keys = {search_key(word)}
        # Only a name of the table exactly: a family name one typo from a given name (Petrov, Petro)
        # stays itself.
        if word in _GIVEN_NAMES:
            keys.add(search_key(_GIVEN_NAMES[word]))
        elif _PATRONYMIC_SUFFIX.search(word) and patronymic_father(word) in _GIVEN_NAME_SEX:
            # Викторовна finds Вікторівна: both are stored and sought by the canonical patronymic.
            keys.add(search_key(canonical_patronymic(word)))
        keys |= {search_key(full) for full in full_names_of(word)}
        forms.append(keys)
    return forms


def typo_distance(first: str, second: str, limit: int | None = None) -> int:
    """Edit distance counting a swap of two neighbouring letters as one typo (optimal alignment).

    With ``limit``, any distance above it comes back as ``limit + 1``, which is much quicker.
    rapidfuzz computes it in C: the matching engine asks it hundreds of thousands of times per import.
    """
    if limit is None:
        return int(OSA.distance(first, second))
    return int(OSA.distance(first, second, score_cutoff=limit))


# ---------------------------------------------------------------------------------------------
# Given names: Ukrainian and Russian forms of one name
# ---------------------------------------------------------------------------------------------

_FEMININE_ENDINGS = ("vna", "chna")


def _ukrainian_patronymics(name: str) -> list[str]:
    if name.endswith(("ій", "ей", "ай")):
        stem = name[:-1]
        return [stem + "йович", stem + "ївна"]
    if name.endswith(("о", "а", "я")):
        stem = name[:-1]
        return [stem + "ович", stem + "івна"]
    if name.endswith("ь"):
        return [name + "ович", name[:-1] + "івна"]
    return [name + "ович", name + "івна"]


def _russian_patronymics(name: str) -> list[str]:
    # latin_key folds -ьевич and -иевич together, so the choice between them does not matter.
    if name.endswith("ий"):
        stem = name[:-2]
        return [stem + "ьевич", stem + "ьевна"]
    if name.endswith(("ей", "ай", "ь")):
        stem = name[:-1]
        return [stem + "евич", stem + "евна"]
    if name.endswith(("а", "я")):
        stem = name[:-1]
        return [stem + "ич", stem + "ична"]
    return [name + "ович", name + "овна"]


def _build_tables() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    given: dict[str, str] = {}
    sex: dict[str, str] = {}
    patronymics: dict[str, str] = {}
    for sex_letter, block in (("M", MALE_NAMES), ("F", FEMALE_NAMES)):
        for line in block.strip().splitlines():
            forms = line.split()
            canonical = latin_key(forms[0])
            for form in forms:
                key = latin_key(form)
                # The first line that claims a spelling keeps it, so the table reads top-down.
                given.setdefault(key, canonical)
                sex.setdefault(canonical, sex_letter)
            if sex_letter == "M":
                cyrillic = [form for form in forms if any(_is_cyrillic(char) for char in form)]
                derived = [p for form in cyrillic for p in _ukrainian_patronymics(form)]
                derived += [p for form in cyrillic for p in _russian_patronymics(form)]
                derived += IRREGULAR_PATRONYMICS.get(forms[0], "").split()
                for patronymic in derived:
                    patronymics.setdefault(latin_key(patronymic), canonical)
    return given, sex, patronymics


_GIVEN_NAMES, _GIVEN_NAME_SEX, _PATRONYMIC_FATHERS = _build_tables()


def _build_diminutives() -> dict[str, frozenset[str]]:
    table: dict[str, set[str]] = {}
    for line in DIMINUTIVES.strip().splitlines():
        short, full = line.split(":")
        canonicals = {_GIVEN_NAMES.get(latin_key(name), latin_key(name)) for name in full.split()}
        for form in short.split():
            table.setdefault(latin_key(form), set()).update(canonicals)
    return {key: frozenset(value) for key, value in table.items()}


_DIMINUTIVES = _build_diminutives()


@lru_cache(maxsize=1 << 16)
def full_names_of(word: str) -> frozenset[str]:
    """The canonical keys of the full given names a short form stands for (Женя: Євген, Євгенія);
    empty for a word that is no short form of the table."""
    return _DIMINUTIVES.get(latin_key(word).replace(" ", ""), frozenset())


# The known names by length: a name one typo from a word is at most one letter longer or shorter.
_GIVEN_BY_LENGTH: dict[int, list[str]] = {}
for _known in _GIVEN_NAMES:
    _GIVEN_BY_LENGTH.setdefault(len(_known), []).append(_known)


# Every family name of a large list comes here too (a family name may be a given name written in its
# place), so the cache holds as many words as a register has common names.
@lru_cache(maxsize=1 << 17)
def _canonical_word(key: str) -> str:
    if key in _GIVEN_NAMES:
        return _GIVEN_NAMES[key]
    if len(key) < 5:
        return key
    # One typo away from exactly one known name (Макси, Єгвен, Dmittiy): that name. The known names
    # are compared by rapidfuzz's own loop, only those of a length one typo can reach.
    near = {_GIVEN_NAMES[known] for length in (len(key) - 1, len(key), len(key) + 1)
            for known, _distance, _index in process.extract(key, _GIVEN_BY_LENGTH.get(length, ()),
                                                            scorer=OSA.distance, score_cutoff=1, limit=None)}
    return near.pop() if len(near) == 1 else key


def canonical_given_name(text: str) -> str:
    """One folded key shared by the Ukrainian, Russian and Latin forms of a given name.

    Names not in the table come back as their latin_key; a double name (Анна-Марія) is folded
    word by word.
    """
    return " ".join(_canonical_word(word) for word in latin_key(text).split())


def is_known_given_name(text: str) -> bool:
    """Whether every word of the text is a given name of the table (exactly, without typos)."""
    words = latin_key(text).split()
    return bool(words) and all(word in _GIVEN_NAMES for word in words)


def given_name_sex(text: str) -> str:
    """'M' or 'F' for a known given name, '' when the table does not say."""
    sexes = {_GIVEN_NAME_SEX.get(_canonical_word(word), "") for word in latin_key(text).split()}
    return sexes.pop() if len(sexes) == 1 else ""


# ---------------------------------------------------------------------------------------------
# Patronymics
# ---------------------------------------------------------------------------------------------

_PATRONYMIC_SUFFIX = re.compile(r"(ovich|evich|ich|ivna|ovna|evna|ichna|inichna)$")


def patronymic_sex(text: str) -> str:
    """'F' for -івна / -овна / -ична, 'M' for -ович / -евич / -ич, '' otherwise."""
    key = latin_key(text)
    if key.endswith(_FEMININE_ENDINGS):
        return "F"
    if key.endswith("ich"):
        return "M"
    return ""


@lru_cache(maxsize=16384)
def patronymic_father(text: str) -> str:
    """The canonical given name of the father a patronymic is formed from.

    Patronymics of fathers outside the table come back as their stem (Тарасівна -> taras).
    """
    key = latin_key(text).replace(" ", "")
    if not key:
        return ""
    for suffix in ("ovich", "ivna"):
        # A feminine form is looked up through the masculine one and the other way round.
        if key in _PATRONYMIC_FATHERS:
            return _PATRONYMIC_FATHERS[key]
        stem = _PATRONYMIC_SUFFIX.sub("", key)
        if stem + suffix in _PATRONYMIC_FATHERS:
            return _PATRONYMIC_FATHERS[stem + suffix]
    stem = _PATRONYMIC_SUFFIX.sub("", key)
    if len(stem) >= 4:
        near = {father for known, father in _PATRONYMIC_FATHERS.items()
                if typo_distance(known, key, 1) == 1}
        if len(near) == 1:
            return near.pop()
    return _canonical_word(stem) if stem else key


def canonical_patronymic(text: str) -> str:
    """One key shared by the Ukrainian and Russian forms of a patronymic.

    Олександрович and Александрович meet, and so do Олександрівна and Александровна; the
    masculine and feminine forms of one father's name stay apart (a brother and a sister).
    """
    father = patronymic_father(text)
    if not father:
        return ""
    ending = {"F": "ivna", "M": "ovich"}.get(patronymic_sex(text), "")
    return father + ending


# ---------------------------------------------------------------------------------------------
# Settlements
# ---------------------------------------------------------------------------------------------

# Words naming the kind of place (місто, г., смт, village ...) rather than the place itself.
_SETTLEMENT_KIND_WORDS = frozenset(
    latin_key(word) for word in (
        "м", "г", "с", "смт", "пгт", "сщ", "селище", "село", "місто", "город", "поселок", "посёлок",
        "city", "town", "village", "selo", "misto", "gorod",
    )
)


def _build_settlements() -> dict[str, str]:
    table: dict[str, str] = {}
    for line in SETTLEMENT_NAMES.strip().splitlines():
        forms = line.split("|")
        canonical = latin_key(forms[0])
        for form in forms:
            table.setdefault(latin_key(form), canonical)
    return table


_SETTLEMENTS = _build_settlements()


@lru_cache(maxsize=16384)
def settlement_key(text: str) -> str:
    """A key for a settlement name: the words for the kind of place dropped, old and Russian names
    folded onto the current Ukrainian one (Артемовск -> Бахмут, г. Новая Каховка -> Нова Каховка)."""
    words = [word for word in latin_key(text).split() if word not in _SETTLEMENT_KIND_WORDS]
    key = " ".join(words)
    return _SETTLEMENTS.get(key, key)
