"""The child and the case file: the core every other part of the tracker builds on."""

from __future__ import annotations

import datetime
from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from cases import read_chain
from cases.matching import names
from core.append_only import AppendOnlyHistory, append_only_triggers
from core.models import RecordDeletionRefused, TimeStampedModel, UndeletableQuerySet


class Oblast(models.TextChoices):
    CHERKASY = "cherkasy", _("Cherkasy")
    CHERNIHIV = "chernihiv", _("Chernihiv")
    CHERNIVTSI = "chernivtsi", _("Chernivtsi")
    CRIMEA = "crimea", _("Autonomous Republic of Crimea")
    DNIPROPETROVSK = "dnipropetrovsk", _("Dnipropetrovsk")
    DONETSK = "donetsk", _("Donetsk")
    IVANO_FRANKIVSK = "ivano_frankivsk", _("Ivano-Frankivsk")
    KHARKIV = "kharkiv", _("Kharkiv")
    KHERSON = "kherson", _("Kherson")
    KHMELNYTSKYI = "khmelnytskyi", _("Khmelnytskyi")
    KIROVOHRAD = "kirovohrad", _("Kirovohrad")
    KYIV_CITY = "kyiv_city", _("Kyiv (city)")
    KYIV = "kyiv", _("Kyiv")
    LUHANSK = "luhansk", _("Luhansk")
    LVIV = "lviv", _("Lviv")
    MYKOLAIV = "mykolaiv", _("Mykolaiv")
    ODESA = "odesa", _("Odesa")
    POLTAVA = "poltava", _("Poltava")
    RIVNE = "rivne", _("Rivne")
    SEVASTOPOL = "sevastopol", _("Sevastopol (city)")
    SUMY = "sumy", _("Sumy")
    TERNOPIL = "ternopil", _("Ternopil")
    VINNYTSIA = "vinnytsia", _("Vinnytsia")
    VOLYN = "volyn", _("Volyn")
    ZAKARPATTIA = "zakarpattia", _("Zakarpattia")
    ZAPORIZHZHIA = "zaporizhzhia", _("Zaporizhzhia")
    ZHYTOMYR = "zhytomyr", _("Zhytomyr")



class BirthDatePrecision(models.TextChoices):
    DAY = "day", _("Day")
    MONTH = "month", _("Month only")
    YEAR = "year", _("Year only")



class Sex(models.TextChoices):
    FEMALE = "F", _("Female")
    MALE = "M", _("Male")
    UNKNOWN = "U", _("Unknown")



class Circumstances(models.TextChoices):
    DEPORTED = "deported", _("Deported")
    FORCIBLY_TRANSFERRED = "forcibly_transferred", _("Forcibly transferred")
    HELD_IN_OCCUPIED_TERRITORY = "held_in_occupied_territory", _("Held in occupied territory")
    PLACED_WITH_FAMILY = "placed_with_family", _("Placed with a family")
    IN_INSTITUTION = "in_institution", _("In an institution")
    OTHER = "other", _("Other")



class ChildCategory(models.TextChoices):
    WITH_PARENTS = "with_parents", _("With parents")
    WITHOUT_PARENTAL_CARE = "without_parental_care", _("Without parental care")
    ORPHAN = "orphan", _("Orphan")
    INSTITUTION_PUPIL = "institution_pupil", _("Institution pupil")
    UNKNOWN = "unknown", _("Unknown")


# The fields the matching engine reads: a save touching any of them refreshes the child's match keys.
MATCH_FIELDS = frozenset({
    "family_name", "given_name", "patronymic", "family_name_latin", "given_name_latin", "patronymic_latin",
    "aliases", "birth_date", "birth_date_precision", "sex", "home_settlement", "merged_into",
})


class Child(TimeStampedModel):
    """A child as the family knows them, with every other spelling seen elsewhere."""

    DatePrecision = BirthDatePrecision
    Sex = Sex
    Circumstances = Circumstances
    Category = ChildCategory

    # Names as the family writes them (Ukrainian script), and the Latin form.
    family_name = models.CharField(max_length=120)
    given_name = models.CharField(max_length=120)
    patronymic = models.CharField(max_length=120, blank=True)
    family_name_latin = models.CharField(max_length=120, blank=True)
    given_name_latin = models.CharField(max_length=120, blank=True)
    patronymic_latin = models.CharField(max_length=120, blank=True)
    # Every other spelling as plain text, in the order seen: written from the child's alias rows
    # (`ChildAlias`, what case workers edit) by `child_aliases_refresh`, and read by name search,
    # matching, exports and the API. Kept on the row so that the child's history holds them.
    aliases = models.JSONField(
        default=list, blank=True, editable=False,
        help_text=_("Other spellings seen elsewhere (Russian, other transliterations)."),
    )
    # Derived from every spelling above; what name search and the trigram index run against.
    search_names = models.TextField(editable=False, default="")

    birth_date = models.DateField(null=True, blank=True, help_text=_("For a year or month only, its first day."))
    birth_date_precision = models.CharField(
        max_length=5, choices=DatePrecision.choices, default=DatePrecision.DAY
    )
    sex = models.CharField(max_length=1, choices=Sex.choices, default=Sex.UNKNOWN)
    home_settlement = models.CharField(max_length=160, blank=True)
    home_oblast = models.CharField(max_length=20, choices=Oblast.choices, blank=True)
    circumstances = models.CharField(max_length=32, choices=Circumstances.choices, default=Circumstances.DEPORTED)
    category = models.CharField(max_length=32, choices=Category.choices, default=Category.UNKNOWN)
    last_known_location = models.CharField(max_length=255, blank=True)
    last_known_on = models.DateField(null=True, blank=True)
    siblings = models.ManyToManyField("self", blank=True, symmetrical=True)
    icrc_reference = models.CharField("ICRC reference", max_length=64, blank=True)
    nib_reference = models.CharField("National Information Bureau reference", max_length=64, blank=True)
    # Set when a case worker found this record to be a duplicate: the record stays, with its
    # history, and everything it had (cases, list entries, names) now hangs on the child kept.
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, editable=False, on_delete=models.PROTECT, related_name="merged_records"
    )

    # Restricted: never shown to partners unless a share grants it.
    guardian_name = models.CharField(max_length=200, blank=True)
    guardian_contact = models.CharField(max_length=200, blank=True)
    relatives = models.TextField(blank=True, help_text=_("Relatives and how to reach them."))
    notes = models.TextField(blank=True)

    # Set when the retention period after the child's last case closed had passed and what could
    # name the child was blanked (`children_anonymise_closed`); the record stays, so counts hold.
    anonymised_at = models.DateTimeField(null=True, blank=True, editable=False)

    # History rows are read by record (`id`); the copies of the child's other indexes only slowed
    # every write of one.
    history = AppendOnlyHistory(no_db_index=["merged_into", "updated_at"])
    objects = UndeletableQuerySet.as_manager()

    RESTRICTED_FIELDS = ("guardian_name", "guardian_contact", "relatives", "notes")

    class Meta:
        verbose_name_plural = _("children")
        ordering = ["family_name", "given_name", "id"]
        permissions = [
            # Guardian, relatives, contacts and notes: read only by the roles whose work needs them.
            ("view_restricted_fields", "Can see a child's guardian, relatives, contacts and notes"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(birth_date_precision__in=["day", "month", "year"]), name="child_birth_precision_valid"
            ),
            models.CheckConstraint(condition=Q(sex__in=["F", "M", "U"]), name="child_sex_valid"),
            models.CheckConstraint(
                condition=Q(circumstances__in=Circumstances.values),
                name="child_circumstances_valid",
            ),
            models.CheckConstraint(
                condition=Q(category__in=ChildCategory.values), name="child_category_valid"
            ),
            # A merge points at another record, never at itself.
            models.CheckConstraint(condition=~Q(merged_into=F("id")), name="child_not_merged_into_itself"),
        ]
        indexes = [
            # Filters in the admin and the API.
            models.Index(fields=["home_oblast"], name="child_oblast_idx"),
            models.Index(fields=["circumstances"], name="child_circumstances_idx"),
            # Lookups by an outside body's reference number.
            models.Index(fields=["icrc_reference"], name="child_icrc_idx", condition=~Q(icrc_reference="")),
            models.Index(fields=["nib_reference"], name="child_nib_idx", condition=~Q(nib_reference="")),
        ]

    def __str__(self) -> str:
        return " ".join(p for p in (self.family_name, self.given_name, self.patronymic) if p)

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.fill_derived()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "search_names"}
        # Its match keys follow in `cases.receivers`, on every save that touches a name or the birth date.
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise RecordDeletionRefused("a child's record is never deleted")

    def fill_derived(self) -> None:
        """The Latin forms left blank, and the search column: what every write of a child, one by one
        or in bulk, stores with it."""
        (self.family_name_latin, self.given_name_latin, self.patronymic_latin,
         self.search_names) = derived_names(self.family_name, self.given_name, self.patronymic,
                                            self.family_name_latin, self.given_name_latin,
                                            self.patronymic_latin, self.aliases)

    @property
    def birth_date_display(self) -> str:
        if self.birth_date is None:
            return "unknown"
        if self.birth_date_precision == self.DatePrecision.YEAR:
            return f"{self.birth_date:%Y}"
        if self.birth_date_precision == self.DatePrecision.MONTH:
            return f"{self.birth_date:%Y-%m}"
        return f"{self.birth_date:%Y-%m-%d}"

    def age_on(self, day: Any) -> int | None:
        """Completed years on `day`; with a year-only birth date, the age reached during that year."""
        return age_on(self.birth_date, self.birth_date_precision, day)


def derived_names(family_name: str, given_name: str, patronymic: str, family_name_latin: str,
                  given_name_latin: str, patronymic_latin: str, aliases: list[str] | None,
                  ) -> tuple[str, str, str, str]:
    """What a child's names give it: the Latin forms (those left blank transliterated) and the search
    column. `Child.fill_derived` for values, not an instance: a register's import derives them for
    a hundred thousand children it never builds as instances."""
    family_name_latin = family_name_latin or names.transliterate_uk(family_name)
    given_name_latin = given_name_latin or names.transliterate_uk(given_name)
    patronymic_latin = patronymic_latin or (names.transliterate_uk(patronymic) if patronymic else "")
    search = names.search_text(family_name, given_name, patronymic, family_name_latin, given_name_latin,
                               patronymic_latin, *(aliases or []))
    return family_name_latin, given_name_latin, patronymic_latin, search


def age_on(birth_date: datetime.date | None, precision: str, day: datetime.date) -> int | None:
    """Completed years on `day` of a child born on `birth_date`, known to `precision` (a
    `Child.DatePrecision`); with a year-only date, the age reached during that year."""
    if birth_date is None:
        return None
    years = day.year - birth_date.year
    if (precision == BirthDatePrecision.DAY and (day.month, day.day) < (birth_date.month, birth_date.day)) or (
            precision == BirthDatePrecision.MONTH and day.month < birth_date.month):
        years -= 1
    return max(years, 0)



class ChildMatchKey(models.Model):
    """One blocking key of a child (see `cases.matching.blocking_keys`): the index the candidate
    search runs on, so that finding who a new record may be never reads every child.

    A plain indexed table rather than an array column, so that the same query serves PostgreSQL
    and the SQLite of `make run`. Kept in step by `Child.save`; merged records have none.
    """

    # No index of its own: the unique constraint below starts with the child and serves its lookups
    # (one index fewer to keep up on every import's tens of thousands of keys). No foreign key in the
    # database either: its check, one lookup and row lock of the child per key at commit, was the
    # largest single cost of importing a register (1.3 million keys for 146,000 new children). The
    # keys are derived from the children, written only beside the child they file (locked or just
    # made, in its transaction) and rebuilt by `backfill_match_keys`, and a child is never deleted.
    child = models.ForeignKey(Child, on_delete=models.CASCADE, related_name="match_keys", db_index=False,
                              db_constraint=False)
    key = models.CharField(max_length=80)

    class Meta:
        constraints = [
            # A child is filed once under a key; also serves "the keys of this child" when syncing.
            models.UniqueConstraint(fields=["child", "key"], name="match_key_once_per_child"),
        ]
        indexes = [
            # The candidate search: the children filed under any of a batch's keys.
            models.Index(fields=["key", "child"], name="match_key_lookup_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.child_id} {self.key}"



class AliasScript(models.TextChoices):
    UKRAINIAN = "uk", _("Ukrainian (Cyrillic)")
    RUSSIAN = "ru", _("Russian (Cyrillic)")
    CYRILLIC = "cyrillic", _("Cyrillic, language unknown")
    LATIN = "latin", _("Latin")
    OTHER = "other", _("Other")


class ChildAlias(models.Model):
    """Another spelling of a child's name, seen elsewhere: in a reply, an outside register, a relative's
    account. What case workers edit on the child's page; the child's `aliases` follow these rows."""

    Script = AliasScript

    child = models.ForeignKey(Child, on_delete=models.CASCADE, related_name="alias_rows", db_index=False,
                              verbose_name=_("child"))
    name = models.CharField(_("name"), max_length=255)
    script = models.CharField(_("script"), max_length=10, choices=Script.choices, blank=True,
                              help_text=_("Left blank, it is read off the letters."))
    source = models.CharField(_("source"), max_length=200, blank=True,
                              help_text=_("Where the spelling was seen: a reply, a register, a relative."))
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("other spelling")
        verbose_name_plural = _("other spellings")
        ordering = ["child", "id"]
        constraints = [
            # A spelling is kept once per child; also serves "the aliases of this child".
            models.UniqueConstraint(fields=["child", "name"], name="child_alias_once_per_child"),
            models.CheckConstraint(condition=Q(script__in=["", *AliasScript.values]), name="child_alias_script_valid"),
            models.CheckConstraint(condition=~Q(name=""), name="child_alias_name_not_blank"),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.name = " ".join(self.name.split())
        if not self.script:
            self.script = guess_script(self.name)
        super().save(*args, **kwargs)


UKRAINIAN_LETTERS = frozenset("іїєґІЇЄҐ")
RUSSIAN_LETTERS = frozenset("ыэъёЫЭЪЁ")


def guess_script(name: str) -> str:
    """The script a spelling is written in, read off its letters: Ukrainian or Russian by the letters
    only one of them has, Latin, or Cyrillic when no letter tells the language."""
    letters = {ch for ch in name if ch.isalpha()}
    if not letters:
        return AliasScript.OTHER
    if letters & UKRAINIAN_LETTERS:
        return AliasScript.UKRAINIAN
    if letters & RUSSIAN_LETTERS:
        return AliasScript.RUSSIAN
    if all("\u0400" <= ch <= "\u04ff" for ch in letters):
        return AliasScript.CYRILLIC
    if all(ch.isascii() or "\u00c0" <= ch <= "\u024f" for ch in letters):
        return AliasScript.LATIN
    return AliasScript.OTHER


class CaseStatus(models.TextChoices):
    OPEN = "open", _("Open")
    ON_LIST = "on_list", _("On a list")
    AWAITING_REPLY = "awaiting_reply", _("Awaiting reply")
    REPLY_RECEIVED = "reply_received", _("Reply received")
    VERIFYING = "verifying", _("Located / verifying")
    RETURN_IN_PROGRESS = "return_in_progress", _("Return in progress")
    RETURNED = "returned", _("Returned (reunified)")
    CLOSED = "closed", _("Closed")



class CasePriority(models.IntegerChoices):
    LOW = 1, _("Low")
    NORMAL = 2, _("Normal")
    HIGH = 3, _("High")
    URGENT = 4, _("Urgent")



class ClosingReason(models.TextChoices):
    REUNIFIED = "reunified", _("Reunified with family")
    CONFIRMED_DECEASED = "confirmed_deceased", _("Death confirmed")
    REACHED_ADULTHOOD = "reached_adulthood", _("Reached adulthood, followed elsewhere")
    DUPLICATE = "duplicate", _("Duplicate of another case")
    FAMILY_WITHDREW = "family_withdrew", _("Family withdrew the request")
    TRANSFERRED = "transferred", _("Transferred to another agency")
    OTHER = "other", _("Other")


class Case(TimeStampedModel):
    """A child's case file: where the search for the child stands now."""

    Status = CaseStatus
    Priority = CasePriority
    ClosingReason = ClosingReason

    child = models.ForeignKey(Child, on_delete=models.PROTECT, related_name="cases")
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_cases"
    )
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    opened_on = models.DateField(default=timezone.localdate)
    closed_on = models.DateField(null=True, blank=True)
    closing_reason = models.CharField(max_length=24, choices=ClosingReason.choices, blank=True)
    closing_note = models.TextField(blank=True)

    # Read by record (`id`), and by child when a child's history is anonymised.
    history = AppendOnlyHistory(no_db_index=["assignee", "updated_at"])
    objects = UndeletableQuerySet.as_manager()

    class Meta:
        ordering = ["-priority", "opened_on", "id"]
        permissions = [
            # Supervisors close a case themselves; a case worker's closing waits for their approval.
            ("close_case", _("Can close a case without a supervisor's approval")),
            ("approve_closing", _("Can approve or send back a case's closing")),
        ]
        constraints = [
            # One live case per child; a closed case may be followed by a new one.
            models.UniqueConstraint(fields=["child"], condition=~Q(status="closed"), name="case_one_open_per_child"),
            models.CheckConstraint(
                condition=Q(status__in=CaseStatus.values), name="case_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(closing_reason__in=["", *ClosingReason.values]),
                name="case_closing_reason_valid",
            ),
            # A closed case says when and why; an open one says neither.
            models.CheckConstraint(
                condition=(Q(status="closed") & Q(closed_on__isnull=False) & ~Q(closing_reason=""))
                | (~Q(status="closed") & Q(closed_on__isnull=True) & Q(closing_reason="")),
                name="case_closed_has_date_and_reason",
            ),
            models.CheckConstraint(condition=Q(priority__gte=1, priority__lte=4), name="case_priority_valid"),
        ]
        indexes = [
            # The admin's and the API's default filter and the digest's assignee lookup.
            models.Index(fields=["status", "-priority"], name="case_status_priority_idx"),
            models.Index(fields=["assignee", "status"], name="case_assignee_status_idx"),
            # The partners' sync order (`updated_since`, the cursor): a page read straight off the index,
            # where `updated_at` alone left the tie-break to a sort the planner spread over workers. The
            # child's key rides along, so that the API's page keys (id, updated_at, child_id) come from
            # the index alone, without a visit to each case's row (PostgreSQL; SQLite keeps the key columns only).
            models.Index(fields=["updated_at", "id"], include=["child"], name="case_sync_order_idx"),
        ]

    def __str__(self) -> str:
        return gettext("Case %(id)s · %(child)s") % {"id": self.pk, "child": self.child}

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise RecordDeletionRefused("a case file is never deleted; close it with a reason")



class CaseEventKind(models.TextChoices):
    OPENED = "opened", _("Case opened")
    STATUS_CHANGED = "status_changed", _("Status changed")
    ADDED_TO_LIST = "added_to_list", _("Added to a list")
    LIST_HANDED_OVER = "list_handed_over", _("List handed over")
    REPLY_RECORDED = "reply_recorded", _("Reply recorded")
    REPLY_VERIFIED = "reply_verified", _("Reply verified")
    FLAG_RAISED = "flag_raised", _("Flag raised")
    FLAG_RESOLVED = "flag_resolved", _("Flag resolved")
    ASSIGNED = "assigned", _("Assigned")
    NOTE = "note", _("Note")
    CLOSING_REQUESTED = "closing_requested", _("Closing requested")
    CLOSING_APPROVED = "closing_approved", _("Closing approved")
    CLOSING_SENT_BACK = "closing_sent_back", _("Closing sent back")
    CLAIM_DISPUTED = "claim_disputed", _("Claim disputed")


class ContactChannel(models.TextChoices):
    CALL = "call", _("Call")
    LETTER = "letter", _("Letter")
    MEETING = "meeting", _("Meeting")
    MESSAGE = "message", _("Message")


class CaseEvent(models.Model):
    """One line of a case's timeline: who did what, and when."""

    Kind = CaseEventKind
    Channel = ContactChannel

    # No index of its own: the timeline's index below starts with the case and serves every lookup by it.
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="events", db_index=False)
    kind = models.CharField(max_length=24, choices=Kind.choices)
    from_status = models.CharField(max_length=24, choices=Case.Status.choices, blank=True)
    to_status = models.CharField(max_length=24, choices=Case.Status.choices, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    happened_at = models.DateTimeField(default=timezone.now)
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    # A note of a contact: how it was made, and what came with it (a letter's scan, a photo).
    channel = models.CharField(_("channel"), max_length=8, choices=ContactChannel.choices, blank=True)
    attachment = models.FileField(_("attachment"), upload_to="case-notes/%Y/", blank=True)

    class Meta:
        ordering = ["-happened_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=CaseEventKind.values), name="case_event_kind_valid"),
            models.CheckConstraint(condition=Q(channel__in=["", *ContactChannel.values]),
                                   name="case_event_channel_valid"),
        ]
        indexes = [
            # The timeline of one case, newest first.
            models.Index(fields=["case", "-happened_at"], name="case_event_timeline_idx"),
        ]

    def __str__(self) -> str:
        # In local time, as the admin shows every other time: the stored value is in UTC.
        return f"{self.get_kind_display()} · {timezone.localtime(self.happened_at):%d.%m.%Y %H:%M}"



class ClosingRequestState(models.TextChoices):
    PENDING = "pending", _("Awaiting approval")
    APPROVED = "approved", _("Approved")
    SENT_BACK = "sent_back", _("Sent back")
    SUPERSEDED = "superseded", _("Closed otherwise")


class ClosingRequest(TimeStampedModel):
    """A case worker's request to close a case, recorded, not applied: a supervisor approves it (and the
    case closes through `cases_move`) or sends it back with a note. Both steps stand on the timeline."""

    State = ClosingRequestState

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="closing_requests",
                             verbose_name=_("case"))
    closing_reason = models.CharField(_("closing reason"), max_length=24, choices=ClosingReason.choices)
    note = models.TextField(_("why"), blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT,
                                     related_name="+", verbose_name=_("requested by"))
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.PENDING)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="+", verbose_name=_("decided by"))
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    decision_note = models.TextField(_("decision note"), blank=True)

    history = AppendOnlyHistory()
    objects = UndeletableQuerySet.as_manager()

    class Meta:
        verbose_name = _("closing awaiting approval")
        verbose_name_plural = _("closings awaiting approval")
        ordering = ["created_at", "id"]
        constraints = [
            # One closing awaits approval per case at a time; also the queue's "is one pending here".
            models.UniqueConstraint(fields=["case"], condition=Q(state="pending"), name="closing_one_pending_per_case"),
            models.CheckConstraint(condition=Q(state__in=ClosingRequestState.values), name="closing_state_valid"),
            models.CheckConstraint(condition=Q(closing_reason__in=ClosingReason.values),
                                   name="closing_request_reason_valid"),
            # A decided request says who decided and when; a pending one neither.
            models.CheckConstraint(
                condition=(Q(state="pending") & Q(decided_at__isnull=True))
                | (~Q(state="pending") & Q(decided_at__isnull=False)),
                name="closing_decided_has_time",
            ),
        ]
        indexes = [
            # The supervisors' queue: pending requests, oldest first.
            models.Index(fields=["created_at"], condition=Q(state="pending"), name="closing_pending_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.case} · {self.get_closing_reason_display()}"

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise RecordDeletionRefused("a closing request is decided, never deleted")


class AccessChannel(models.TextChoices):
    ADMIN = "admin", _("Admin")
    API = "api", _("API")
    EXPORT = "export", _("Export")


class RecordAccess(models.Model):
    """A read of a child's record: who read it, through what, and when. Written, never edited: the
    database refuses to change or remove a row, and each row is chained to the one before."""

    Channel = AccessChannel

    # No index of its own: `record_access_child_idx` (child, newest first) serves every search by child.
    child = models.ForeignKey(Child, on_delete=models.PROTECT, related_name="+", db_index=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    # For the API: the partner organisation (by id: cases knows nothing of the tracker's models)
    # and the key's public prefix, with a readable "organisation · key" for the log's reader.
    partner_id = models.PositiveBigIntegerField(null=True, blank=True, db_index=True)
    api_key_prefix = models.CharField(max_length=16, blank=True)
    client = models.CharField(max_length=200, blank=True)
    path = models.CharField(max_length=500, blank=True)
    accessed_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The hash chain (`cases.read_chain`): the hash of the row before, and of this row after it.
    # Written by the database on PostgreSQL, whatever the client sends; `verify_audit_log` checks them.
    prev_hash = models.CharField(max_length=64, editable=False, default="")
    row_hash = models.CharField(max_length=64, editable=False, default="")

    objects = UndeletableQuerySet.as_manager()

    class Meta:
        verbose_name_plural = _("record accesses")
        ordering = ["-accessed_at", "-id"]
        indexes = [models.Index(fields=["child", "-accessed_at"], name="record_access_child_idx")]
        # Append-only in the database, and chained as each row goes in (PostgreSQL only).
        triggers = [*append_only_triggers(), read_chain.chain_trigger()]

    def __str__(self) -> str:
        return gettext("%(child)s read via %(channel)s at %(time)s") % {
            "child": self.child_id, "channel": self.channel,
            "time": f"{timezone.localtime(self.accessed_at):%d.%m.%Y %H:%M}"}
