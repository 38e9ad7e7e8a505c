"""The candidate search against stored children (what an import and "possible duplicates" use): a slip
in a name's first letter, a year-only date a year off, a half of a double family name and a Russian
spelling of the vowels all still find the stored child."""

from __future__ import annotations

import datetime

import pytest

from cases.matching.candidates import find_candidates
from cases.matching.engine import PersonRecord
from tests.factories import ChildFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def stored():
    return {
        "kravchuk": ChildFactory(family_name="Кравчук", given_name="Сергій", patronymic="Миколайович",
                                 birth_date=datetime.date(2011, 6, 15), sex="M", home_settlement="Херсон"),
        "bilous": ChildFactory(family_name="Ткаченко-Білоус", given_name="Наталія", patronymic="Вікторівна",
                               birth_date=datetime.date(2013, 2, 4), sex="F", home_settlement="Маріуполь"),
        "other": ChildFactory(family_name="Кравченко", given_name="Сергій", patronymic="Петрович",
                              birth_date=datetime.date(2016, 1, 2), sex="M", home_settlement="Мелітополь"),
    }


@pytest.mark.parametrize(("record", "who"), [
    (PersonRecord(family_name="Уравчук", given_name="Сергій", patronymic="Миколайович", birth_date="2011-06-15",
                  sex="M"), "kravchuk"),
    (PersonRecord(family_name="Uravchuk", given_name="Serhii", patronymic="Mykolaiovych", sex="M",
                  settlement="Kherson"), "kravchuk"),
    (PersonRecord(family_name="Кравчук", given_name="Сергей", patronymic="Николаевич", birth_date="2012",
                  sex="M", settlement="Херсон"), "kravchuk"),
    (PersonRecord(family_name="Белоус", given_name="Наталья", patronymic="Викторовна", birth_date="2013",
                  settlement="Мариуполь"), "bilous"),
    (PersonRecord(family_name="Ткаченко", given_name="Наталія", patronymic="Вікторівна", birth_date="2013-02-04",
                  sex="F"), "bilous"),
])
def test_the_stored_child_is_found_and_judged_the_same(stored, record, who):
    (found,) = find_candidates([record])
    assert found, record
    assert found[0].child == stored[who]
    assert found[0].verdict == "same", found[0].score.reasons
    assert all(candidate.child != stored["other"] or candidate.verdict != "same" for candidate in found)
