"""Statements run through `core.prepared`: numbered once for the server, their values bound by it."""

from __future__ import annotations

import pytest
from django.db import connection

from core.prepared import numbered, run_prepared

pytestmark = pytest.mark.django_db


def test_placeholders_are_numbered_and_a_doubled_percent_is_one():
    assert numbered("SELECT %s, '100%%', %s || '%%s'", 2) == "SELECT $1, '100%', $2 || '%s'"


def test_a_long_statement_is_numbered_once_and_runs_with_its_values():
    # Longer than psycopg caches its own conversion of (4 kB), as the API's page of cases is.
    sql = "SELECT %s::int + %s::int" + " + 0" * 2000
    numbered.cache_clear()
    assert run_prepared(sql, [2, 3]) == [(5,)]
    assert run_prepared(sql, [4, 5]) == [(9,)]
    assert (numbered.cache_info().misses, numbered.cache_info().hits) == (1, 1)
    assert run_prepared("SELECT '50%%' || %s", ["!"]) == [("50%!",)]


def test_the_connection_s_execute_wrappers_see_the_statement():
    # Whatever instruments or guards the database (connection.execute_wrapper) sees these statements
    # as it sees the ORM's.
    seen = []

    def spy(execute, sql, params, many, context):
        seen.append((sql, list(params)))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        assert run_prepared("SELECT %s::int * 2", [7]) == [(14,)]
    assert seen == [("SELECT %s::int * 2", [7])]

    def refuse(execute, sql, params, many, context):
        raise RuntimeError("no database here")

    with connection.execute_wrapper(refuse), pytest.raises(RuntimeError, match="no database here"):
        run_prepared("SELECT 1", [])
