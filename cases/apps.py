"""Children and their case files."""

from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "cases"
    verbose_name = "Children and cases"

    def ready(self) -> None:
        # A child's match keys follow its saves.
        from cases import receivers  # noqa: F401
