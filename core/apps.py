"""Shared infrastructure; it has no models of its own, only abstract bases."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"
