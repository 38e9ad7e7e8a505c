"""Name search as case workers and partners use it: the admin's search box and the API's ``q=`` find a
child by any spelling the matching engine knows, and a search that finds nothing offers the closest
children."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from cases.models import Child
from tests.factories import CaseFactory, ChildFactory, OrganisationFactory, UserFactory
from tracker.models import CaseShare, Organisation
from tracker.services.partners import api_key_issue

pytestmark = pytest.mark.django_db


@pytest.fixture
def children() -> dict[str, Child]:
    made = {
        "bilous": ChildFactory(family_name="Білоус", given_name="Євгенія", patronymic="Андріївна"),
        "oliinyk": ChildFactory(family_name="Олійник", given_name="Зоряна", patronymic="Вікторівна"),
        "yevhen": ChildFactory(family_name="Гнатюк", given_name="Євген", patronymic="Миколайович"),
        "khmelnytskyi": ChildFactory(family_name="Хмельницький", given_name="Юрій", patronymic="Петрович"),
        "shevchenko": ChildFactory(family_name="Шевченко", given_name="Олександра", patronymic="Іванівна"),
        "shcherbyna": ChildFactory(family_name="Щербина", given_name="Юлія", patronymic="Олегівна"),
        "other": ChildFactory(family_name="Бондаренко", given_name="Марія", patronymic="Петрівна"),
    }
    for child in made.values():
        CaseFactory(child=child)
    return made


@pytest.fixture
def case_worker_client() -> Client:
    worker = UserFactory(username="searching.worker")
    worker.user_permissions.add(*Permission.objects.filter(codename__in=["view_child", "view_case"]))
    client = Client()
    client.force_login(worker)
    return client


def found(client: Client, model: str, term: str) -> list[Any]:
    response = client.get(reverse(f"admin:cases_{model}_changelist"), {"q": term})
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


SEARCHES = [
    # і / е / и and ій / ей between Ukrainian and Russian spellings
    ("Белоус", "bilous"), ("Belous", "bilous"), ("Bilous Yevheniia", "bilous"),
    ("Олейник", "oliinyk"), ("Oleynik Zoryana", "oliinyk"), ("Олейник Зоряна Викторовна", "oliinyk"),
    # short forms of given names
    ("Женя Білоус", "bilous"), ("Женя Гнатюк", "yevhen"), ("Zhenya Hnatiuk", "yevhen"),
    ("Саша Шевченко", "shevchenko"), ("Sasha Shevchenko", "shevchenko"), ("Юля Щербина", "shcherbyna"),
    # transliteration systems: passports, BGN/PCGN, ISO 9, GOST 7.79, German, Polish, Czech
    ("Khmelnytskyi", "khmelnytskyi"), ("Khmelnitskiy Yuriy", "khmelnytskyi"), ("Khmel'nyts'kyy", "khmelnytskyi"),
    ("Hmelʹnicʹkij", "khmelnytskyi"), ("Xmel`ny`cz`ky`j", "khmelnytskyi"), ("Chmielnicki", "khmelnytskyi"),
    ("Chmelnyckyj Jurij", "khmelnytskyi"), ("Schewtschenko", "shevchenko"), ("Szewczenko", "shevchenko"),
    ("Ševčenko", "shevchenko"), ("Schtscherbyna Julija", "shcherbyna"), ("Ŝerbina Ûlìâ", "shcherbyna"),
    ("Shherby`na", "shcherbyna"), ("Szczerbyna", "shcherbyna"), ("Ščerbyna", "shcherbyna"),
]


@pytest.mark.parametrize(("term", "who"), SEARCHES)
def test_the_admin_finds_a_child_by_any_form_the_engine_knows(case_worker_client, children, term, who):
    assert found(case_worker_client, "child", term) == [children[who]]
    assert [case.child for case in found(case_worker_client, "case", term)] == [children[who]]


def test_a_short_form_finds_the_boy_and_the_girl_it_may_stand_for(case_worker_client, children):
    assert set(found(case_worker_client, "child", "Женя")) == {children["bilous"], children["yevhen"]}


@pytest.mark.parametrize(("term", "who"), SEARCHES)
def test_the_api_finds_a_child_by_any_form_the_engine_knows(children, term, who):
    cache.clear()
    organisation = OrganisationFactory(name="Search Partner", kind=Organisation.Kind.PARTNER)
    _, key = api_key_issue(organisation=organisation, name="sync", scopes=("read",), actor=None)
    for child in children.values():
        CaseShare.objects.create(case=child.cases.get(), organisation=organisation)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    response = client.get("/api/v1/cases/", {"q": term})
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [children[who].cases.get().pk]


def test_a_search_that_finds_nothing_offers_the_closest_children(case_worker_client, children):
    response = case_worker_client.get(reverse("admin:cases_child_changelist"), {"q": "Shevchnko Oleksadra"})
    assert list(response.context["cl"].result_list) == []
    assert response.context["did_you_mean"][0] == children["shevchenko"]
    page = response.content.decode()
    assert "Did you mean" in page
    assert reverse("admin:cases_child_change", args=[children["shevchenko"].pk]) in page


def test_a_search_that_finds_someone_offers_nothing_else(case_worker_client, children):
    response = case_worker_client.get(reverse("admin:cases_child_changelist"), {"q": "Shevchenko"})
    assert "did_you_mean" not in response.context
