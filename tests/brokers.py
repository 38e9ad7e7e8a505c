"""Pointing the test process's Celery producer at another broker, and back."""

from __future__ import annotations

import kombu.pools

from config.celery import app


def point_broker_at(url: str | None) -> None:
    """Send this process's tasks to `url` (None: back to the configured broker). The write URL, because
    the broker URL itself is read from the environment first, where the suite sets it; connections and
    producers are pooled (kombu's registries and the app's references to them), so new ones are made."""
    app.conf["broker_write_url"] = url
    kombu.pools.reset()
    app._pool = None  # type: ignore[attr-defined]
    app.amqp._producer_pool = None  # type: ignore[attr-defined]
