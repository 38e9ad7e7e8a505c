"""Estimating the model from the register: EM finds that one child's records agree and different
children's do not, without being told which are which."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from cases.matching.engine import PersonRecord
from cases.matching.estimate import estimate_parameters
from cases.matching.parameters import PARAMETERS_FILE, model_parameters
from tests.factories import ChildFactory

FAMILIES = ["Коваленко", "Шевчук", "Бондар", "Мельник", "Ткаченко", "Кравець", "Олійник", "Лисенко"]
GIVEN = ["Марія", "Іван", "Софія", "Максим", "Анна", "Артем", "Дарина", "Богдан"]


def register() -> list[PersonRecord]:
    """Sixty-four children, each written twice: once in Cyrillic with the day, once in Latin with the year."""
    records = []
    for number, (family, given) in enumerate((f, g) for f in FAMILIES for g in GIVEN):
        born = f"{2006 + number % 16}-{1 + number % 12:02d}-{1 + number % 28:02d}"
        records.append(PersonRecord(family_name=family, given_name=given, birth_date=born,
                                    settlement=["Херсон", "Маріуполь"][number % 2]))
        records.append(PersonRecord(family_name=family, given_name=given, birth_date=born[:4],
                                    settlement=["Kherson", "Mariupol"][number % 2]))
    return records


def test_em_tells_one_childs_records_from_different_children_without_labels() -> None:
    parameters = estimate_parameters(register(), thresholds=model_parameters(), sample=20_000).parameters
    assert parameters.weight("date", "year-only, same year") > 0
    assert parameters.weight("settlement", "same") > 0
    assert parameters.weight("settlement", "different") < 0
    assert parameters.weight("family", "exact") > parameters.weight("family", "different")
    assert parameters.prior_weight < 0


@pytest.mark.django_db
def test_the_command_estimates_from_the_stored_children_and_writes_only_when_asked() -> None:
    ChildFactory.create_batch(120)
    before = PARAMETERS_FILE.read_text(encoding="utf-8")
    out = io.StringIO()
    call_command("estimate_match_parameters", "--sample", "120", stdout=out)
    assert "blocked pairs" in out.getvalue()
    assert "weight" in out.getvalue()
    assert PARAMETERS_FILE.read_text(encoding="utf-8") == before


@pytest.mark.django_db
def test_the_command_refuses_a_register_too_small() -> None:
    ChildFactory.create_batch(5)
    with pytest.raises(CommandError, match="at least 100"):
        call_command("estimate_match_parameters")
