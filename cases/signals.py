"""Signals other apps listen to, so that cases never has to import them."""

from django.dispatch import Signal

# Sent inside the transaction that moved the case: receivers' writes commit or roll back with it.
# Arguments: case, from_status, to_status, actor.
case_status_changed = Signal()
