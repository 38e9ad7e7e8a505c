"""The brief a delegation takes into the next round of talks: for one round, the lists handed over in it,
how many children were answered, the claims by outcome and how far they are verified, the children still
without an answer (named as on the list), and what is overdue since when. As a page and a PDF, in the
language asked for.

Only what may be handed over is in it: the handover document's fields (`exports.HANDOVER_FIELDS`), never
guardian, contacts, relatives or notes. Four queries, whatever the number of lists and children.
"""

from __future__ import annotations

import datetime
import io
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Min, Q, QuerySet
from django.utils import formats, timezone, translation
from django.utils.translation import gettext, ngettext
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.platypus.flowables import Flowable

from tracker.models import HandoverList, ListEntry, Outcome, ReplyOutcome, Round, Verification
from tracker.selectors import entry_past_due, handover_lists_with_counts
from tracker.services.exports import FONT, FONT_BOLD, NONE, PagedCanvas, escape_markup, register_fonts


@dataclass(frozen=True)
class BriefList:
    handover_list: HandoverList
    n_entries: int
    n_answered: int
    n_awaiting: int
    n_overdue: int
    # The earliest deadline among its children still unanswered past it: overdue since then.
    overdue_since: datetime.date | None


@dataclass(frozen=True)
class OutcomeClaims:
    outcome: str
    label: str
    claimed: int
    verified: int
    disputed: int

    @property
    def unverified(self) -> int:
        return self.claimed - self.verified - self.disputed


@dataclass
class RoundBrief:
    round: Round
    today: datetime.date
    lists: list[BriefList]
    claims: list[OutcomeClaims]
    # The children still awaiting an answer, by list, in the list's order.
    awaiting: list[ListEntry] = field(default_factory=list)

    @property
    def n_entries(self) -> int:
        return sum(bl.n_entries for bl in self.lists)

    @property
    def n_answered(self) -> int:
        return sum(bl.n_answered for bl in self.lists)

    @property
    def n_awaiting(self) -> int:
        return sum(bl.n_awaiting for bl in self.lists)

    @property
    def n_overdue(self) -> int:
        return sum(bl.n_overdue for bl in self.lists)

    @property
    def overdue(self) -> list[BriefList]:
        """The lists with children overdue, the longest overdue first."""
        late = [bl for bl in self.lists if bl.n_overdue]
        return sorted(late, key=lambda bl: (bl.overdue_since or self.today, bl.handover_list.reference))

    def days_overdue(self, since: datetime.date | None) -> int:
        return (self.today - since).days if since else 0

    def awaiting_by_list(self) -> list[tuple[HandoverList, list[ListEntry]]]:
        grouped: dict[int, list[ListEntry]] = defaultdict(list)
        for entry in self.awaiting:
            grouped[entry.handover_list_id].append(entry)
        return [(bl.handover_list, grouped[bl.handover_list.pk]) for bl in self.lists if grouped[bl.handover_list.pk]]


def round_lists(round_: Round) -> QuerySet[HandoverList]:
    """The lists handed over in the round (drafts are not handed over yet)."""
    return HandoverList.objects.filter(round=round_).exclude(status=HandoverList.Status.DRAFT)


def round_brief(*, round_: Round, today: datetime.date | None = None) -> RoundBrief:
    today = today or timezone.localdate()
    lists = (handover_lists_with_counts(round_lists(round_).select_related("sender", "recipient"), today=today)
             .annotate(overdue_since=Min("entries__due_on", filter=entry_past_due(today, "entries__")))
             .order_by("handed_over_on", "reference"))
    # The counts are annotations that the stubs cannot follow through a second annotate().
    brief_lists = [BriefList(hl, hl.n_entries, hl.n_answered, hl.n_awaiting, hl.n_overdue,  # type: ignore[attr-defined]
                             hl.overdue_since) for hl in lists]
    rows = (ReplyOutcome.objects.filter(entry__handover_list__in=round_lists(round_)).order_by()
            .values("outcome").annotate(
                claimed=Count("id"),
                verified=Count("id", filter=Q(verification=Verification.VERIFIED)),
                disputed=Count("id", filter=Q(verification=Verification.DISPUTED))))
    by_outcome = {row["outcome"]: row for row in rows}
    claims = [OutcomeClaims(code, str(label), by_outcome[code]["claimed"], by_outcome[code]["verified"],
                            by_outcome[code]["disputed"]) for code, label in Outcome.choices if code in by_outcome]
    awaiting = list(
        ListEntry.objects.filter(handover_list__in=round_lists(round_), reply_state=ListEntry.ReplyState.AWAITING)
        .select_related("child").order_by("handover_list__handed_over_on", "handover_list__reference", "position")
    )
    return RoundBrief(round=round_, today=today, lists=brief_lists, claims=claims, awaiting=awaiting)


def _date(value: datetime.date | None) -> str:
    return formats.date_format(value, "SHORT_DATE_FORMAT") if value else NONE


def child_name(entry: ListEntry) -> str:
    """The child's name as it stands on the list: family name, given name, patronymic."""
    child = entry.child
    return " ".join(part for part in (child.family_name, child.given_name, child.patronymic) if part)


def round_brief_pdf(brief: RoundBrief, *, language: str) -> bytes:
    """The brief as an A4 PDF in `language` ("uk" or "en"), with "page X of Y" on every page."""
    with translation.override(language):
        return _pdf(brief)


def _pdf(brief: RoundBrief) -> bytes:
    register_fonts()
    margin = 15 * mm
    out = io.BytesIO()
    round_ = brief.round
    title_text = gettext("Brief for the next round: %(round)s") % {"round": round_.name}
    doc = SimpleDocTemplate(out, pagesize=A4, leftMargin=margin, rightMargin=margin, topMargin=margin,
                            bottomMargin=18 * mm, title=title_text, author=gettext("Case tracker"))
    title = ParagraphStyle("title", fontName=FONT_BOLD, fontSize=15, leading=19, spaceAfter=6)
    heading = ParagraphStyle("heading", fontName=FONT_BOLD, fontSize=11.5, leading=15, spaceBefore=8, spaceAfter=4)
    text = ParagraphStyle("text", fontName=FONT, fontSize=9.5, leading=12.5)
    cell = ParagraphStyle("cell", fontName=FONT, fontSize=8.5, leading=10.5)
    head = ParagraphStyle("head", fontName=FONT_BOLD, fontSize=8.5, leading=10.5)

    def table(header: list[str], rows: list[list[Any]], widths: list[float]) -> Table:
        data = [[Paragraph(escape_markup(h), head) for h in header]]
        data += [[Paragraph(escape_markup(str(v)), cell) for v in row] for row in rows]
        total = sum(widths)
        t = Table(data, colWidths=[doc.width * w / total for w in widths], repeatRows=1)
        t.setStyle(TableStyle([
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e4e8ee")),
            ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#9aa3ad")),
            ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f5f6f8")]),
        ]))
        return t

    story: list[Flowable] = [Paragraph(escape_markup(title_text), title)]
    facts = [(gettext("Round"), round_.name), (gettext("Held on"), _date(round_.held_on)),
             (gettext("Place"), round_.place or NONE), (gettext("As of"), _date(brief.today))]
    for label, value in facts:
        story.append(Paragraph(f"<b>{escape_markup(label)}:</b> {escape_markup(value)}", text))
    story.append(Paragraph(escape_markup(summary_sentence(brief)), text))

    story.append(Paragraph(escape_markup(gettext("Lists handed over")), heading))
    story.append(table(
        [gettext("List"), gettext("From → to"), gettext("Handed over"), gettext("Reply due"), gettext("Children"),
         gettext("Answered"), gettext("Awaiting"), gettext("Overdue")],
        [[bl.handover_list.reference, f"{bl.handover_list.sender} → {bl.handover_list.recipient}",
          _date(bl.handover_list.handed_over_on), _date(bl.handover_list.response_due_on), bl.n_entries,
          bl.n_answered, bl.n_awaiting, bl.n_overdue] for bl in brief.lists]
        or [[gettext("No list was handed over in this round."), "", "", "", "", "", "", ""]],
        [16, 22, 11, 11, 8, 9, 9, 9]))

    story.append(Paragraph(escape_markup(gettext("Claims by outcome")), heading))
    story.append(table(
        [gettext("Outcome claimed"), gettext("Claims"), gettext("Verified"), gettext("Disputed"),
         gettext("Not yet verified")],
        [[c.label, c.claimed, c.verified, c.disputed, c.unverified] for c in brief.claims]
        or [[gettext("No claims yet."), "", "", "", ""]],
        [34, 12, 12, 12, 14]))

    story.append(Paragraph(escape_markup(gettext("Overdue, and since when")), heading))
    story.append(table(
        [gettext("List"), gettext("Children overdue"), gettext("Overdue since"), gettext("Days")],
        [[bl.handover_list.reference, bl.n_overdue, _date(bl.overdue_since), brief.days_overdue(bl.overdue_since)]
         for bl in brief.overdue] or [[gettext("Nothing is overdue."), "", "", ""]],
        [30, 16, 16, 10]))

    story.append(Paragraph(escape_markup(gettext("Children still without an answer")), heading))
    groups = brief.awaiting_by_list()
    if not groups:
        story.append(Paragraph(escape_markup(gettext("Every child on these lists has been answered.")), text))
    for handover_list, entries in groups:
        block: list[Flowable] = [Paragraph(escape_markup(
            ngettext("%(list)s: %(n)d child", "%(list)s: %(n)d children", len(entries))
            % {"list": handover_list.reference, "n": len(entries)}), text), Spacer(1, 2 * mm)]
        block.append(table(
            [gettext("No."), gettext("Name as on the list"), gettext("Date of birth"), gettext("Settlement"),
             gettext("Due")],
            [[e.position, child_name(e), e.child.birth_date_display if e.child.birth_date else NONE,
              e.child.home_settlement or NONE, _date(e.due_on)] for e in entries],
            [6, 36, 14, 20, 11]))
        story.append(KeepTogether(block[:2]))
        story.extend(block[2:])
        story.append(Spacer(1, 3 * mm))

    class BriefCanvas(PagedCanvas):
        """The brief's pages, each with its footer."""

    BriefCanvas.footer = f"{round_.name} · {_date(brief.today)}"
    BriefCanvas.page_label = gettext("Page %(number)d of %(total)d")
    doc.build(story, canvasmaker=BriefCanvas)
    return out.getvalue()


def summary_sentence(brief: RoundBrief) -> str:
    """The brief in one sentence: handed over, answered, awaiting, overdue."""
    return gettext(
        "%(lists)d list(s) handed over with %(children)d children: %(answered)d answered, %(awaiting)d awaiting "
        "an answer, %(overdue)d of them past the deadline."
    ) % {"lists": len(brief.lists), "children": brief.n_entries, "answered": brief.n_answered,
         "awaiting": brief.n_awaiting, "overdue": brief.n_overdue}
