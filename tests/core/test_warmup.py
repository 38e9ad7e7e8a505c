"""A web worker's start: the WSGI module readies the process and freezes what is alive."""

from __future__ import annotations

import gc
import importlib
import sys

from django.urls import get_resolver


def test_loading_the_wsgi_application_freezes_the_start_up_objects():
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    sys.modules.pop("config.wsgi", None)
    try:
        wsgi = importlib.import_module("config.wsgi")
        assert callable(wsgi.application)
        # Thousands of objects (models, URL patterns, views), not a handful.
        assert gc.get_freeze_count() > 10_000
        assert "tracker.api.views" in sys.modules and get_resolver().url_patterns
    finally:
        gc.unfreeze()
