"""Connections to PostgreSQL of their own, beside Django's pooled ones: for what must neither wait for
nor hold a connection of the pool (the beat's leader lock, the readiness probe)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

# Connection options of Django's settings that libpq understands as they are.
_PASSED_OPTIONS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "options", "application_name")


def direct_connection_params(*, connect_timeout: int = 5, alias: str = "default") -> dict[str, Any]:
    """psycopg.connect()'s keyword arguments for the database Django uses under `alias`. libpq waits
    at least 2 s for a connection whatever `connect_timeout` says."""
    database = settings.DATABASES[alias]
    params = {"dbname": database["NAME"], "user": database.get("USER"), "password": database.get("PASSWORD"),
              "host": database.get("HOST"), "port": database.get("PORT"), "connect_timeout": connect_timeout}
    params.update({key: value for key, value in database.get("OPTIONS", {}).items() if key in _PASSED_OPTIONS})
    return {key: value for key, value in params.items() if value not in (None, "")}
