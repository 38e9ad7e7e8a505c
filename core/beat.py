"""The beat scheduler: one leader among any number of beats, and the schedule edited in the admin kept.

django-celery-beat keeps the schedule in the database, where administrators change it; its own
scheduler writes the schedule from settings over those edits at every start. Here the settings only
install the entries that are missing. A second beat started by mistake (or a stand-by on another
machine) stays idle: only the holder of a PostgreSQL advisory lock sends anything, and if it dies
its connection closes, the lock is released and another beat takes over at its next tick.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import psycopg
from django.db import connection
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from core.db import direct_connection_params

log = logging.getLogger(__name__)
# The advisory lock's key: any number no other part of the product uses (here: "beat" in ASCII).
LEADER_LOCK_KEY = 0x62656174
# How often a leader checks that its lock's connection is alive, and a follower asks for the lock.
LEADER_CHECK_SECONDS = 10.0


class LeaderLock:
    """A session advisory lock held on a connection of its own, so that nothing Django does with its
    connections (closing them between tasks, a pool) can drop it."""

    def __init__(self, key: int = LEADER_LOCK_KEY) -> None:
        self.key = key
        self._conn: psycopg.Connection[Any] | None = None
        self._checked_at = 0.0

    def held(self) -> bool:
        """Whether this process holds the lock now, asking for it when it does not (at most every
        `LEADER_CHECK_SECONDS`)."""
        if connection.vendor != "postgresql":
            return True  # one machine, one SQLite file: there is no second beat to keep out
        now = time.monotonic()
        if now - self._checked_at < LEADER_CHECK_SECONDS:
            return self._conn is not None
        self._checked_at = now
        if self._conn is not None:
            try:
                self._conn.execute("SELECT 1")
                return True
            except psycopg.Error:
                log.warning("beat: the connection holding the leader lock was lost")
                self.release()
        try:
            conn = psycopg.connect(**direct_connection_params(), autocommit=True)
            acquired = conn.execute("SELECT pg_try_advisory_lock(%s)", [self.key]).fetchone()
        except psycopg.Error as error:
            log.warning("beat: cannot ask for the leader lock: %s", error)
            return False
        if acquired and acquired[0]:
            self._conn = conn
            log.info("beat: this beat is the leader")
            return True
        conn.close()
        return False

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None
        self._checked_at = 0.0


class SingleLeaderScheduler(DatabaseScheduler):
    """django-celery-beat's scheduler, sending only while it holds the leader lock, and installing the
    settings' schedule only where the database has no entry of that name yet."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.leader = LeaderLock()
        self._was_leader: bool | None = None
        super().__init__(*args, **kwargs)

    def setup_schedule(self) -> None:
        self.install_default_entries(self.schedule)
        wanted = dict(self.app.conf.beat_schedule or {})
        present = set(PeriodicTask.objects.filter(name__in=list(wanted)).values_list("name", flat=True))
        self.update_from_dict({name: entry for name, entry in wanted.items() if name not in present})

    def install_default_entries(self, data: Any) -> None:
        if not PeriodicTask.objects.filter(name="celery.backend_cleanup").exists():
            super().install_default_entries(data)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        leader = self.leader.held()
        if leader != self._was_leader:
            log.info("beat: %s", "leading: sending due tasks" if leader else "idle: another beat is the leader")
            self._was_leader = leader
        if not leader:
            return LEADER_CHECK_SECONDS
        return super().tick(*args, **kwargs)

    def close(self) -> None:
        super().close()
        self.leader.release()
