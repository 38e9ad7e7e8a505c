"""factory_boy factories for the tracker's models; every name they make is synthetic."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User

from cases.models import Case, Child
from tracker.models import HandoverList, ListEntry, Organisation

M = TypeVar("M")

FAMILY = ["Шевченко", "Бондаренко", "Коваленко", "Ткаченко", "Мельник", "Бойко", "Кравчук", "Олійник"]
GIVEN = ["Софія", "Олександр", "Марія", "Дмитро", "Анна", "Кирило", "Юлія", "Микола"]


class ModelFactory(factory.django.DjangoModelFactory[M]):
    """A factory for the model M: calling it creates and returns an M."""

    class Meta:
        abstract = True

    if TYPE_CHECKING:
        # Calling a factory class runs factory_boy's metaclass, which returns the model instance it
        # created, not an instance of the factory; __new__ is how that reads to a type checker.
        def __new__(cls, *args: Any, **kwargs: Any) -> M:  # type: ignore[misc]
            ...


class UserFactory(ModelFactory[User]):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"worker{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    is_staff = True


class ChildFactory(ModelFactory[Child]):
    class Meta:
        model = Child

    family_name = factory.Sequence(lambda n: FAMILY[n % len(FAMILY)])
    given_name = factory.Sequence(lambda n: GIVEN[(n // len(FAMILY)) % len(GIVEN)])
    patronymic = "Іванович"
    birth_date = factory.Sequence(lambda n: datetime.date(2010 + n % 10, 1 + n % 12, 1 + n % 28))
    sex = "U"
    home_settlement = "Маріуполь"
    home_oblast = "donetsk"


class CaseFactory(ModelFactory[Case]):
    class Meta:
        model = Case

    child = factory.SubFactory(ChildFactory)
    assignee = factory.SubFactory(UserFactory)


class OrganisationFactory(ModelFactory[Organisation]):
    class Meta:
        model = Organisation
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Party {n}")
    kind = Organisation.Kind.PARTY


class HandoverListFactory(ModelFactory[HandoverList]):
    class Meta:
        model = HandoverList

    reference = factory.Sequence(lambda n: f"LIST-{n:04d}")
    sender = factory.SubFactory(OrganisationFactory, name="Ukrainian delegation")
    recipient = factory.SubFactory(OrganisationFactory, name="Russian delegation")


class ListEntryFactory(ModelFactory[ListEntry]):
    """An entry made directly, for constraint tests; workflows go through the services."""

    class Meta:
        model = ListEntry

    handover_list = factory.SubFactory(HandoverListFactory)
    case = factory.SubFactory(CaseFactory)
    child = factory.LazyAttribute(lambda e: e.case.child)
    position = factory.Sequence(lambda n: n + 1)


def role_user(role: str, username: str | None = None) -> User:
    """A staff account in one of the shipped roles (`tracker.roles`), as an administrator makes one."""
    user = UserFactory(**({"username": username} if username else {}))
    user.groups.add(Group.objects.get(name=role))
    return user
