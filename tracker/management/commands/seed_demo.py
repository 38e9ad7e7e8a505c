"""Load the synthetic demo story: the Istanbul list of 2 June 2025, a late partial reply, later lists.

Every name here is made up from common name parts; none is a real child. Running it twice adds
nothing the second time. One demo account per role (`DEMO_USERS`); `ensure_demo_logins` gives them
passwords and prints them. The timelines carry the story's dates: the Istanbul list shows as added
in May 2025 and handed over on 2 June 2025, its reply on 28 July 2025.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from cases.models import Case, CaseEvent, Child, Oblast
from cases.services import case_open, case_request_closing
from core.tasks import enqueue_on_commit
from tracker.models import (
    HandoverList,
    ListShare,
    Organisation,
    Outcome,
    ReplyOutcome,
    Round,
    Verification,
)
from tracker.roles import ADMINISTRATOR, CASE_WORKER, READ_ONLY, SUPERVISOR
from tracker.services.exchange import OutcomeInput, list_add_cases, list_hand_over, outcome_verify, reply_record
from tracker.services.partners import case_share_grant
from tracker.tasks import sweep_deadlines

ISTANBUL_LIST = "UA-RU-2025-06-02/1"

# The demo's accounts, one or more per role: (username, first name, last name, role). Staff, never superusers.
DEMO_USERS = [
    ("o.kovalenko", "Olena", "Demo-Kovalenko", CASE_WORKER),
    ("i.marchuk", "Iryna", "Demo-Marchuk", CASE_WORKER),
    ("t.savchenko", "Taras", "Demo-Savchenko", CASE_WORKER),
    ("s.bondar", "Svitlana", "Demo-Bondar", SUPERVISOR),
    ("r.lysenko", "Roman", "Demo-Lysenko", READ_ONLY),
    ("a.melnyk", "Andrii", "Demo-Melnyk", ADMINISTRATOR),
]


def demo_users() -> dict[str, User]:
    """The demo accounts, made where missing and put in their role's group (safe to run again)."""
    User = get_user_model()
    users = {}
    for username, first_name, last_name, role in DEMO_USERS:
        user, _ = User.objects.get_or_create(
            username=username,
            defaults={"first_name": first_name, "last_name": last_name, "email": f"{username}@example.org",
                      "is_staff": True},
        )
        user.groups.add(Group.objects.get(name=role))
        users[username] = user
    return users


def noon(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(12)))


@contextmanager
def dated(day: datetime.date) -> Iterator[None]:
    """The timeline lines written inside stand on `day`, as the story has them, not on the day of seeding."""
    before = CaseEvent.objects.aggregate(last=Max("pk"))["last"] or 0
    yield
    CaseEvent.objects.filter(pk__gt=before).update(happened_at=noon(day))

GIRLS = [("Софія", "Sofiia", "София"), ("Анна", "Anna", "Анна"), ("Марія", "Mariia", "Мария"),
         ("Вікторія", "Viktoriia", "Виктория"), ("Олександра", "Oleksandra", "Александра"),
         ("Дарина", "Daryna", "Дарина"), ("Поліна", "Polina", "Полина"), ("Єва", "Yeva", "Ева"),
         ("Злата", "Zlata", "Злата"), ("Анастасія", "Anastasiia", "Анастасия"), ("Юлія", "Yuliia", "Юлия"),
         ("Катерина", "Kateryna", "Екатерина"), ("Ганна", "Hanna", "Анна"), ("Мілана", "Milana", "Милана"),
         ("Вероніка", "Veronika", "Вероника"), ("Діана", "Diana", "Диана")]
BOYS = [("Олександр", "Oleksandr", "Александр"), ("Максим", "Maksym", "Максим"), ("Артем", "Artem", "Артём"),
        ("Дмитро", "Dmytro", "Дмитрий"), ("Микола", "Mykola", "Николай"), ("Кирило", "Kyrylo", "Кирилл"),
        ("Іван", "Ivan", "Иван"), ("Богдан", "Bohdan", "Богдан"), ("Матвій", "Matvii", "Матвей"),
        ("Андрій", "Andrii", "Андрей"), ("Денис", "Denys", "Денис"), ("Назар", "Nazar", "Назар"),
        ("Тимофій", "Tymofii", "Тимофей"), ("Данило", "Danylo", "Даниил"), ("Олексій", "Oleksii", "Алексей"),
        ("Євген", "Yevhen", "Евгений")]
FATHERS = [("Олександр", "Олександрович", "Олександрівна"), ("Сергій", "Сергійович", "Сергіївна"),
           ("Андрій", "Андрійович", "Андріївна"), ("Володимир", "Володимирович", "Володимирівна"),
           ("Юрій", "Юрійович", "Юріївна"), ("Віктор", "Вікторович", "Вікторівна"),
           ("Петро", "Петрович", "Петрівна"), ("Іван", "Іванович", "Іванівна"),
           ("Тарас", "Тарасович", "Тарасівна"), ("Богдан", "Богданович", "Богданівна")]
# Family names that do not change with sex, and ones with a feminine form.
FAMILY_SAME = ["Шевченко", "Бондаренко", "Коваленко", "Ткаченко", "Кравченко", "Мельник", "Бойко", "Ковальчук",
               "Савчук", "Кузьменко", "Поліщук", "Лисенко", "Марченко", "Руденко", "Павленко", "Шевчук",
               "Гончаренко", "Олійник", "Левченко", "Романюк"]
FAMILY_GENDERED = [("Ковальський", "Ковальська"), ("Литвинов", "Литвинова"), ("Соколов", "Соколова"),
                   ("Яковлев", "Яковлева"), ("Білоус", "Білоус"), ("Захарченко", "Захарченко")]
PLACES = [("Маріуполь", Oblast.DONETSK), ("Бахмут", Oblast.DONETSK), ("Херсон", Oblast.KHERSON),
          ("Нова Каховка", Oblast.KHERSON), ("Генічеськ", Oblast.KHERSON), ("Мелітополь", Oblast.ZAPORIZHZHIA),
          ("Бердянськ", Oblast.ZAPORIZHZHIA), ("Енергодар", Oblast.ZAPORIZHZHIA), ("Лисичанськ", Oblast.LUHANSK),
          ("Сєвєродонецьк", Oblast.LUHANSK), ("Ізюм", Oblast.KHARKIV), ("Куп'янськ", Oblast.KHARKIV)]
LAST_KNOWN = ["Children's home, Donetsk", "Boarding school, Rostov oblast", "Foster family, Moscow oblast",
              "Health camp, Crimea", "Institution, Krasnodar krai", "With relatives, occupied Melitopol", ""]

# The late, partial reply to the Istanbul list: how many children got each claim.
ISTANBUL_REPLY = [(Outcome.LOCATED, 34), (Outcome.NOT_FOUND, 28), (Outcome.NEVER_ON_TERRITORY, 11),
                  (Outcome.NOW_ADULT, 9), (Outcome.RETURNED, 8), (Outcome.LEFT_COUNTRY, 4), (Outcome.DECEASED, 2),
                  (Outcome.REFUSED, 3), (Outcome.MORE_INFORMATION_REQUESTED, 6), (Outcome.NO_INFORMATION, 5)]


class Command(BaseCommand):
    help = "Load synthetic demo data telling the Istanbul story (safe to run twice)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--children", type=int, default=339, help="Children on the Istanbul list.")
        parser.add_argument("--no-sweep", action="store_true", help="Do not queue a deadline sweep afterwards.")

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            demo_users()
        if HandoverList.objects.filter(reference=ISTANBUL_LIST).exists():
            self.stdout.write("Demo data already present; nothing to do.")
            return
        rng = random.Random(20250602)  # noqa: S311 synthetic demo data, repeatable on purpose
        with transaction.atomic():
            summary = self._seed(rng, options["children"])
            if not options["no_sweep"]:
                enqueue_on_commit(sweep_deadlines)
        self.stdout.write(summary)
        if not options["no_sweep"]:
            self.stdout.write("Queued a deadline sweep: the worker flags the overdue entries when it starts.")

    def _seed(self, rng: random.Random, istanbul_size: int) -> str:
        users = demo_users()
        workers = [users[name] for name, *_, role in DEMO_USERS if role == CASE_WORKER]

        def org(name: str, short: str, kind: str, country: str = "") -> Organisation:
            return Organisation.objects.get_or_create(
                name=name, defaults={"short_name": short, "kind": kind, "country": country}
            )[0]

        ukraine = org("Ukrainian delegation", "Ukraine", Organisation.Kind.PARTY, "Ukraine")
        russia = org("Russian delegation", "Russia", Organisation.Kind.PARTY, "Russia")
        turkiye = org("Republic of Türkiye (host and mediator)", "Türkiye", Organisation.Kind.MEDIATOR, "Türkiye")
        qatar = org("State of Qatar (mediator)", "Qatar", Organisation.Kind.MEDIATOR, "Qatar")
        tracing = org("Demo Tracing Network", "DTN", Organisation.Kind.PARTNER)
        org("Demo Children's Rights Group", "DCRG", Organisation.Kind.PARTNER)

        istanbul = Round.objects.get_or_create(
            name="Istanbul, 2 June 2025",
            defaults={"kind": Round.Kind.NEGOTIATION, "place": "Istanbul", "held_on": datetime.date(2025, 6, 2),
                      "mediator": turkiye},
        )[0]
        channel = Round.objects.get_or_create(
            name="Mediator channel (Qatar)", defaults={"kind": Round.Kind.MEDIATOR_CHANNEL, "mediator": qatar}
        )[0]

        total = istanbul_size + 40 + 30 + 10 + 80
        today = timezone.localdate()
        # The Istanbul children's cases were opened in the spring before the round; the others since.
        with dated(datetime.date(2025, 5, 12)):
            cases = [self._child_with_case(rng, workers[i % len(workers)]) for i in range(istanbul_size)]
        with dated(today - datetime.timedelta(days=60)):
            cases += [self._child_with_case(rng, workers[i % len(workers)]) for i in range(istanbul_size, total)]
        Case.objects.filter(pk__in=[case.pk for case in cases[:istanbul_size]]).update(
            opened_on=datetime.date(2025, 5, 12))
        Case.objects.filter(pk__in=[case.pk for case in cases[istanbul_size:]]).update(
            opened_on=today - datetime.timedelta(days=60))
        slices = iter([istanbul_size, 40, 30, 10])

        def take() -> list[Case]:
            n = next(slices)
            taken = cases[:n]
            del cases[:n]
            return taken

        def new_list(reference: str, title: str, rnd: Round) -> HandoverList:
            return HandoverList.objects.create(reference=reference, title=title, sender=ukraine, recipient=russia,
                                               round=rnd)

        first = new_list(ISTANBUL_LIST, "Children deported or forcibly transferred: list handed over in Istanbul",
                         istanbul)
        with dated(datetime.date(2025, 5, 28)):
            list_add_cases(handover_list=first, cases=take(), actor=workers[0])
        with dated(datetime.date(2025, 6, 2)):
            list_hand_over(handover_list=first, handed_over_on=datetime.date(2025, 6, 2),
                           response_due_on=datetime.date(2025, 7, 2), actor=workers[0])
        positions = list(range(1, istanbul_size + 1))
        rng.shuffle(positions)
        answers = []
        for outcome, count in ISTANBUL_REPLY:
            answers += [OutcomeInput(position=positions.pop(), outcome=outcome, details="As stated in the reply.")
                        for _ in range(min(count, len(positions)))]
        with dated(datetime.date(2025, 7, 28)):
            recorded = reply_record(handover_list=first, received_on=datetime.date(2025, 7, 28), outcomes=answers,
                                    actor=workers[1], reference="Reply No. 1 (partial)",
                                    notes="Partial answer covering part of the list, received after the deadline.")
        # Two claims did not hold up when checked: case workers dispute them, which asks the other
        # side again (the entries await a further reply, with a flag of their own).
        for claim in ReplyOutcome.objects.filter(reply=recorded.reply, outcome__in=[Outcome.RETURNED,
                                                                                    Outcome.NOW_ADULT])[:2]:
            outcome_verify(outcome=claim, verification=Verification.DISPUTED, actor=workers[1],
                           note="Family reports the child is still held; birth record shows age 14.",
                           follow_up_due_on=today + datetime.timedelta(days=21))

        second = new_list(f"UA-RU-{today - datetime.timedelta(days=25):%Y-%m-%d}/QA",
                          "Follow-up list through the Qatari mediator", channel)
        with dated(today - datetime.timedelta(days=27)):
            list_add_cases(handover_list=second, cases=take(), actor=workers[1])
        with dated(today - datetime.timedelta(days=25)):
            list_hand_over(handover_list=second, handed_over_on=today - datetime.timedelta(days=25),
                           response_due_on=today - datetime.timedelta(days=5), actor=workers[1])

        third = new_list(f"UA-RU-{today - datetime.timedelta(days=10):%Y-%m-%d}/QA",
                         "Second follow-up list through the Qatari mediator", channel)
        with dated(today - datetime.timedelta(days=12)):
            list_add_cases(handover_list=third, cases=take(), actor=workers[2])
        with dated(today - datetime.timedelta(days=10)):
            list_hand_over(handover_list=third, handed_over_on=today - datetime.timedelta(days=10),
                           response_due_on=today + datetime.timedelta(days=4), actor=workers[2])

        draft = new_list("UA-RU-next-round/draft", "Being prepared for the next round", istanbul)
        with dated(today - datetime.timedelta(days=2)):
            list_add_cases(handover_list=draft, cases=take(), actor=workers[0])

        # A death the reply claimed and the family has since confirmed: the case worker asks to close
        # the case, which waits in the supervisor's queue.
        deceased = ReplyOutcome.objects.filter(reply=recorded.reply, outcome=Outcome.DECEASED).select_related(
            "entry__case__assignee").order_by("pk").first()
        if deceased is not None:
            case_request_closing(case=deceased.entry.case, actor=deceased.entry.case.assignee,
                                 reason=Case.ClosingReason.CONFIRMED_DECEASED,
                                 note="Death confirmed by the family's letter (synthetic demo).")

        # The tracing partner follows part of the Istanbul list through the API: it is shown the
        # list, and 25 of its cases are shared with it, 5 of them with the restricted fields.
        ListShare.objects.create(handover_list=first, organisation=tracing, shared_by=workers[0])
        for index, entry in enumerate(first.entries.order_by("position")[:25]):
            case_share_grant(case=entry.case, organisation=tracing, include_restricted=index < 5,
                             can_contribute=True, actor=workers[0])

        return (f"Seeded {Child.objects.count()} synthetic children, {HandoverList.objects.count()} lists, "
                f"{len(answers)} answers in the Istanbul reply.")

    def _child_with_case(self, rng: random.Random, assignee: Any) -> Case:
        girl = rng.random() < 0.5
        given, given_latin, given_russian = rng.choice(GIRLS if girl else BOYS)
        father, patronymic_m, patronymic_f = rng.choice(FATHERS)
        if rng.random() < 0.75:
            family = rng.choice(FAMILY_SAME)
        else:
            male_form, female_form = rng.choice(FAMILY_GENDERED)
            family = female_form if girl else male_form
        settlement, oblast = rng.choice(PLACES)
        year = rng.randint(2008, 2022)
        precision = rng.choices(["day", "month", "year"], weights=[80, 5, 15])[0]
        birth = datetime.date(year, rng.randint(1, 12) if precision != "year" else 1,
                              rng.randint(1, 28) if precision == "day" else 1)
        child = Child.objects.create(
            family_name=family, given_name=given, patronymic=patronymic_f if girl else patronymic_m,
            given_name_latin=given_latin,
            aliases=[given_russian] if given_russian != given and rng.random() < 0.4 else [],
            birth_date=birth, birth_date_precision=precision, sex="F" if girl else "M",
            home_settlement=settlement, home_oblast=oblast,
            circumstances=rng.choices(list(Child.Circumstances.values), weights=[40, 25, 15, 8, 10, 2])[0],
            category=rng.choice(list(Child.Category.values)),
            last_known_location=rng.choice(LAST_KNOWN),
            guardian_name=f"{family} {father} (synthetic)",
            guardian_contact="+380 00 000 0000",
        )
        return case_open(child=child, actor=assignee, assignee=assignee,
                         priority=rng.choices([1, 2, 3, 4], weights=[10, 60, 20, 10])[0])
