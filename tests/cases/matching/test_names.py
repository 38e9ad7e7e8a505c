"""Name normalisation: the official transliteration and the keys under which spellings of one name meet."""

from __future__ import annotations

import pytest

from cases.matching.names import (
    canonical_given_name,
    canonical_patronymic,
    given_name_sex,
    latin_key,
    search_forms,
    search_key,
    search_text,
    settlement_key,
    transliterate_uk,
)

# Examples from the table of Cabinet of Ministers resolution No. 55 (27 January 2010).
OFFICIAL_TABLE_EXAMPLES = [
    ("Алушта", "Alushta"), ("Андрій", "Andrii"), ("Борщагівка", "Borshchahivka"),
    ("Вінниця", "Vinnytsia"), ("Гадяч", "Hadiach"), ("Богдан", "Bohdan"), ("Згурський", "Zghurskyi"),
    ("Ґалаґан", "Galagan"), ("Донецьк", "Donetsk"), ("Рівне", "Rivne"), ("Олег", "Oleh"),
    ("Єнакієве", "Yenakiieve"), ("Гаєвич", "Haievych"), ("Короп'є", "Koropie"), ("Житомир", "Zhytomyr"),
    ("Закарпаття", "Zakarpattia"), ("Медвин", "Medvyn"), ("Михайленко", "Mykhailenko"),
    ("Іванків", "Ivankiv"), ("Іващенко", "Ivashchenko"), ("Їжакевич", "Yizhakevych"),
    ("Кадиївка", "Kadyivka"), ("Мар'їне", "Marine"), ("Йосипівка", "Yosypivka"), ("Стрий", "Stryi"),
    ("Олексій", "Oleksii"), ("Київ", "Kyiv"), ("Наталія", "Nataliia"), ("Онищенко", "Onyshchenko"),
    ("Соломія", "Solomiia"), ("Тернопіль", "Ternopil"), ("Троць", "Trots"), ("Ужгород", "Uzhhorod"),
    ("Уляна", "Uliana"), ("Харків", "Kharkiv"), ("Христина", "Khrystyna"), ("Біла Церква", "Bila Tserkva"),
    ("Чернівці", "Chernivtsi"), ("Шевченко", "Shevchenko"), ("Щербухи", "Shcherbukhy"),
    ("Гоща", "Hoshcha"), ("Юрій", "Yurii"), ("Корюківка", "Koriukivka"), ("Яготин", "Yahotyn"),
    ("Ярошенко", "Yaroshenko"), ("Костянтин", "Kostiantyn"), ("Знам'янка", "Znamianka"),
    ("Феодосія", "Feodosiia"),
]


@pytest.mark.parametrize(("cyrillic", "latin"), OFFICIAL_TABLE_EXAMPLES)
def test_transliteration_follows_the_official_table(cyrillic: str, latin: str) -> None:
    assert transliterate_uk(cyrillic) == latin


def test_transliteration_distinguishes_word_initial_iotated_letters() -> None:
    assert transliterate_uk("Єва Ковалєва") == "Yeva Kovalieva"
    assert transliterate_uk("Юлія Ярова Їжак Йосип") == "Yuliia Yarova Yizhak Yosyp"
    assert transliterate_uk("Анна-Юлія") == "Anna-Yuliia"


def test_transliteration_keeps_letter_case() -> None:
    assert transliterate_uk("ЩУР Щур щур") == "SHCHUR Shchur shchur"
    assert transliterate_uk("ЄВГЕНІЯ") == "YEVHENIIA"
    assert transliterate_uk("Є") == "Ye"


def test_transliteration_drops_soft_sign_and_apostrophe_and_passes_latin_through() -> None:
    assert transliterate_uk("Мар’яна Ковальчук") == "Mariana Kovalchuk"
    assert transliterate_uk("Mel'nyk, 2015") == "Mel'nyk, 2015"


def test_transliteration_romanises_russian_letters() -> None:
    assert transliterate_uk("Фёдор Рыбаков Эдуард") == "Fiodor Rybakov Eduard"


@pytest.mark.parametrize(
    "spellings",
    [
        ("Шевченко", "Shevchenko", "SHEVCHENKO", "Szewczenko"),
        ("Олександр", "Oleksandr", "Olexandr"),
        ("Юлія", "Юлия", "Yuliia", "Yulia", "Yuliya", "Julia", "Iuliia"),
        ("Кирило", "Kyrylo"),
        ("Лисичанськ", "Лисичанск", "Lysychansk", "Lysychans'k", "Lisichansk"),
        ("Гриценко", "Hrytsenko", "Gritsenko", "Grytsenko", "Grycenko"),
        ("Поліщук", "Polishchuk", "Polischuk", "Polishuk"),
        ("Євгенія", "Евгения", "Yevheniia", "Evgeniya", "Ievgeniia"),
        ("Мар'яна", "Марьяна", "Mariana", "Maryana", "Mar'yana"),
        ("Ковальов", "Ковалёв", "Kovalyov", "Kovaliov"),
        ("Ковальська", "Ковальская", "Kovalska", "Koval'skaya", "Kovalskaia"),
        ("Савицький", "Савицкий", "Savytskyi", "Savitskiy", "Savitsky", "Savitskii"),
        ("Вікторія", "Viktoriia", "Victoria"),
        ("Сєвєродонецьк", "Северодонецк", "Sievierodonetsk", "Severodonetsk", "Syevyerodonets'k"),
        ("Харків", "Kharkiv", "Harkiv"),
    ],
)
def test_latin_key_brings_spellings_of_one_name_together(spellings: tuple[str, ...]) -> None:
    assert len({latin_key(spelling) for spelling in spellings}) == 1


def test_latin_key_of_a_query_is_found_in_the_key_of_a_longer_name() -> None:
    assert latin_key("Олександр") in latin_key("Oleksandrivna")
    assert latin_key("Олек") in latin_key("Oleksandr")


def test_latin_key_is_stable_and_idempotent() -> None:
    for text in ("Щербина", "Zghurskyi", "Мар'яна", "Kup'yans'k", "Ilyich", "Skhidnytsia", "Олександрівна"):
        key = latin_key(text)
        assert latin_key(text) == key
        assert latin_key(key) == key
        assert key == key.lower() and key.isascii()


def test_latin_key_treats_hyphens_and_punctuation_as_word_breaks() -> None:
    assert latin_key("Бондар-Литвиненко") == "bondar litvinenko"
    assert latin_key("  г. Нова   Каховка ") == "g nova kagovka"


def test_search_text_lists_each_word_once_with_the_canonical_given_name() -> None:
    text = search_text("Мельник", "Александр", "Melnyk", "Aleksandr", "Анна-Марія")
    words = text.split()
    assert len(words) == len(set(words))
    assert {"milnik", "aliksandr", "oliksandr", "ana", "maria"} <= set(words)
    assert search_key("Oleksandr") in text


@pytest.mark.parametrize(
    "forms",
    [
        ("Олександр", "Александр", "Oleksandr", "Aleksandr", "Alexander"),
        ("Микола", "Николай", "Mykola", "Nikolay"),
        ("Ганна", "Анна", "Hanna", "Anna"),
        ("Олексій", "Алексей", "Oleksii", "Aleksey", "Alexei"),
        ("Дмитро", "Дмитрий", "Dmytro", "Dmitriy", "Dmitry"),
        ("Кирило", "Кирилл", "Kyrylo", "Kirill"),
        ("Євгенія", "Евгения", "Yevheniia", "Evgeniya"),
        ("Софія", "София", "Sofiia", "Sofia", "Sophia"),
        ("Наталія", "Наталья", "Nataliia", "Natalya"),
        ("Іван", "Иван", "Ivan"),
        ("Юрій", "Юрий", "Георгій", "Yurii", "Yuriy"),
        ("Катерина", "Екатерина", "Kateryna", "Yekaterina"),
        ("Артем", "Артём", "Artem", "Artyom"),
        ("Тимофій", "Тимофей", "Tymofii", "Timofey"),
    ],
)
def test_ukrainian_and_russian_forms_of_a_given_name_share_one_key(forms: tuple[str, ...]) -> None:
    assert len({canonical_given_name(form) for form in forms}) == 1


def test_different_given_names_keep_different_keys() -> None:
    for first, second in (("Іван", "Іванна"), ("Олександр", "Олександра"), ("Яна", "Анна"),
                          ("Марія", "Мар'яна"), ("Данило", "Дмитро")):
        assert canonical_given_name(first) != canonical_given_name(second)


def test_a_typo_in_a_known_given_name_still_finds_it() -> None:
    assert canonical_given_name("Єгвен") == canonical_given_name("Євген")
    assert canonical_given_name("Dmittiy") == canonical_given_name("Дмитро")


def test_given_name_sex() -> None:
    assert given_name_sex("Олександра") == "F"
    assert given_name_sex("Aleksandr") == "M"
    assert given_name_sex("Xyzzy") == ""


@pytest.mark.parametrize(
    "forms",
    [
        ("Олександрович", "Александрович", "Oleksandrovych", "Aleksandrovich"),
        ("Олександрівна", "Александровна", "Oleksandrivna", "Aleksandrovna"),
        ("Миколайович", "Николаевич", "Mykolaiovych", "Nikolayevich"),
        ("Андріївна", "Андреевна", "Andriivna", "Andreevna", "Andriyivna"),
        ("Юріївна", "Юрьевна", "Yuriivna", "Yurevna"),
        ("Сергійович", "Сергеевич", "Serhiiovych", "Sergeevich"),
        ("Тарасівна", "Тарасовна"),
        ("Ілліч", "Ильич"),
    ],
)
def test_ukrainian_and_russian_forms_of_a_patronymic_share_one_key(forms: tuple[str, ...]) -> None:
    assert len({canonical_patronymic(form) for form in forms}) == 1


def test_a_brothers_and_a_sisters_patronymic_stay_apart() -> None:
    assert canonical_patronymic("Олександрович") != canonical_patronymic("Олександрівна")


def test_settlement_key_folds_russian_and_former_names_and_drops_the_kind_of_place() -> None:
    assert settlement_key("г. Артёмовск") == settlement_key("Бахмут") == settlement_key("Bakhmut")
    assert settlement_key("г. Новая Каховка") == settlement_key("Nova Kakhovka")
    assert settlement_key("Алешки") == settlement_key("Oleshky")
    assert settlement_key("Рубежное") == settlement_key("м. Рубіжне")
    assert settlement_key("Херсон") != settlement_key("Мелітополь")


@pytest.mark.parametrize(
    ("ukrainian", "spellings"),
    [
        # Ukrainian passports since 2010 (the national table), before it, BGN/PCGN, ISO 9, GOST 7.79
        # system B, German, Polish and Czech.
        ("Шевченко", ("Shevchenko", "Ševčenko", "Schewtschenko", "Szewczenko", "Shevchenko")),
        ("Хмельницький", ("Khmelnytskyi", "Khmelnitskiy", "Khmel'nyts'kyy", "Hmelʹnicʹkij", "Xmel`ny`cz`ky`j",
                          "Chmelnyckyj", "Chmielnicki", "Chmelnyćkyj")),
        ("Щербина", ("Shcherbyna", "Shcherbina", "Shcherbyna", "Ŝerbina", "Shherby`na", "Schtscherbyna",
                     "Szczerbyna", "Ščerbyna")),
        ("Юлія", ("Yuliia", "Yuliya", "Yuliya", "Ûlìâ", "Yuliya", "Julija", "Julija", "Julija")),
        ("Ющенко", ("Yushchenko", "Yushchenko", "Yushchenko", "Ûŝenko", "Yushhenko", "Juschtschenko",
                    "Juszczenko", "Juščenko")),
        ("Кравець", ("Kravets", "Kravets", "Kravets'", "Kravecʹ", "Kravecz`", "Krawetz", "Krawec", "Kravec")),
    ],
)
def test_every_transliteration_system_folds_to_the_ukrainian_key(ukrainian: str, spellings: tuple[str, ...]) -> None:
    assert {form: search_key(form) for form in spellings} == {form: search_key(ukrainian) for form in spellings}


@pytest.mark.parametrize(
    ("ukrainian", "russian"),
    [("Білоус", "Белоус"), ("Олійник", "Олейник"), ("Bilous", "Belous"), ("Oliinyk", "Oleinik"),
     ("Сидоренко", "Сідоренко"), ("Гаїна", "Гайина")],
)
def test_i_e_y_and_yi_variants_share_a_search_key(ukrainian: str, russian: str) -> None:
    assert search_key(ukrainian) == search_key(russian)


def test_a_short_form_is_searched_as_every_full_name_it_stands_for() -> None:
    (forms,) = search_forms("Женя")
    assert {search_key("Євген"), search_key("Євгенія")} <= forms
    (forms,) = search_forms("Sasha")
    assert {search_key("Олександр"), search_key("Олександра")} <= forms
    (forms,) = search_forms("Настя")
    assert search_key("Анастасія") in forms
