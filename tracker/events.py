"""What the exchange tells the rest of the product, as domain events.

Each is sent inside the transaction of the write that raised it, so a receiver's writes (the
partners' outbox) commit or roll back with it. The exchange knows nothing of who listens.
"""

from django.dispatch import Signal

# A reply was recorded. Arguments: reply_id, answered (a list of (case id, entry id, outcome claimed)).
reply_recorded = Signal()

# The deadline sweep raised or escalated flags. Arguments: raised_at, escalated_at (the sweep's
# moment, which every flag it raised or escalated carries in that column).
flags_swept = Signal()

# Shares of cases with partner organisations began, changed or ended. Arguments: events (the
# `ShareEvent` rows just written).
shares_changed = Signal()
