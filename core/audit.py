"""The one sanctioned rewrite of the append-only history: blanking what names an anonymised child.

The database refuses UPDATE and DELETE on the history tables (triggers registered with
django-pgtrigger under the name `append_only`). Anonymisation after the retention period must blank
the names in the history rows too, or they would outlive the policy; `history_rewrite` lifts the
refusal for the history tables only, in this thread, for the duration of the block.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pgtrigger

from core.append_only import APPEND_ONLY, trigger_uris


@contextmanager
def history_rewrite() -> Iterator[None]:
    uris = trigger_uris(APPEND_ONLY, history_only=True)
    if not uris:
        # No append-only trigger on any history table (a database without them): nothing to lift.
        yield
        return
    with pgtrigger.ignore(*uris):
        yield
