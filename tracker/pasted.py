"""Reply rows pasted from a spreadsheet into a page: tab-separated, as Excel and LibreOffice copy them.

Each row is the child (its number on the list, or its name as on the list), the outcome claimed, and
optionally the location the reply gives and its details, in that order. Like the spreadsheet reader,
this never touches the database: it turns the text into the reply writer's inputs, or into problems
that name the pasted row and the column.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from django.utils.translation import gettext

from tracker.models import Outcome
from tracker.services.exchange import OutcomeInput
from tracker.spreadsheets import REPLY_COLUMNS, UnknownPhrase, parse_outcome

# A number on the list as people write it: "12", "12.", "№ 12", "#12".
NUMBER_ON_LIST = re.compile(r"^(?:№|#|no\.?)?\s*(\d+)\.?$", re.IGNORECASE)
LOCATION_MAX = 255


@dataclass
class PastedReply:
    outcomes: list[OutcomeInput] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


def _folded(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip().rstrip(":.").strip()


_OUTCOME_HEADERS = {_folded(name) for name in REPLY_COLUMNS["outcome"]}


def parse_pasted_reply(text: str) -> PastedReply:
    """The rows of a reply pasted as text: every row checked, every problem reported with its row."""
    pasted = PastedReply()
    # Excel quotes a cell holding a line break or a tab; the csv reader takes such a cell whole.
    rows = csv.reader(io.StringIO(text.replace("\r\n", "\n").strip("\n")), delimiter="\t")
    first = True
    for number, cells in enumerate(rows, start=1):
        cells = [cell.strip() for cell in cells]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        label = gettext("pasted row %(number)s") % {"number": number}
        if first and len(cells) > 1 and _folded(cells[1]) in _OUTCOME_HEADERS:
            first = False
            continue  # the header row, copied with the rows
        first = False
        if len(cells) < 2:
            pasted.problems.append((label, gettext(
                "the outcome is missing: give the child's number or name, then the outcome, separated by a tab "
                "(copy the cells from the spreadsheet)")))
            continue
        who, said = cells[0], cells[1]
        location = cells[2] if len(cells) > 2 else ""
        details = " ".join(cell for cell in cells[3:] if cell)
        try:
            outcome, place = parse_outcome(said)
        except UnknownPhrase as error:
            # The importer's wording names its preview and command; on this page the row is typed again.
            pasted.problems.append((gettext("%(row)s, outcome") % {"row": label}, (
                gettext("“%(value)s” is not a firm outcome (“%(hedge)s” hedges it); write one of: %(known)s")
                if error.hedge else
                gettext("“%(value)s” reads as more than one outcome; write one of: %(known)s") if error.several else
                gettext("“%(value)s” is not a known outcome; write one of: %(known)s"))
                % {"value": said, "hedge": error.hedge,
                   "known": ", ".join(str(choice.label).lower() for choice in Outcome)}))
            continue
        # "находится в …": the phrase names the place when no column does.
        location = location or place
        if len(location) > LOCATION_MAX:
            pasted.problems.append((gettext("%(row)s, location") % {"row": label},
                                    gettext("longer than %(max)s characters") % {"max": LOCATION_MAX}))
            continue
        numbered = NUMBER_ON_LIST.match(who)
        if numbered and int(numbered.group(1)) < 1:
            pasted.problems.append((label, gettext("“%(value)s” is not a number on the list") % {"value": who}))
            continue
        pasted.outcomes.append(OutcomeInput(
            outcome=outcome, position=int(numbered.group(1)) if numbered else None,
            name="" if numbered else who, reported_location=location, details=details, label=label))
    return pasted
