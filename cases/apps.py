"""Children and their case files."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CasesConfig(AppConfig):
    name = "cases"
    verbose_name = _("Children and cases")

    def ready(self) -> None:
        # A child's match keys follow its saves.
        from cases import receivers  # noqa: F401
        from core.i18n import translate_model_labels

        translate_model_labels(self)
