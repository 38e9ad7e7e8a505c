"""Signals other apps listen to, so that cases never has to import them."""

from django.dispatch import Signal

# Sent inside the transaction that moved the case: receivers' writes commit or roll back with it.
# Arguments: changes (a list of (case, from_status, to_status), one or many cases moved together), actor.
case_status_changed = Signal()

# Sent inside the transaction of `child_merge`, after the cases moved, so that the apps that hold
# other records of a child (the tracker's list entries) move them with it.
# Arguments: keep, merged, actor.
child_merged = Signal()

# Sent inside the transaction that anonymised children past the retention period, so that the apps
# holding other free text about them (the tracker's replies and imported rows) blank it too.
# Arguments: child_ids, actor.
children_anonymised = Signal()
