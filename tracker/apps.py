"""The exchange with other parties and the jobs that watch its deadlines."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TrackerConfig(AppConfig):
    name = "tracker"
    verbose_name = _("Lists and replies")

    def ready(self) -> None:
        # The outbox hears the domain events; list entries follow a child merge.
        from core.i18n import translate_model_labels
        from tracker import receivers  # noqa: F401

        translate_model_labels(self)
