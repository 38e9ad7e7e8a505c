"""The exchange with other parties and the jobs that watch its deadlines."""

from django.apps import AppConfig


class TrackerConfig(AppConfig):
    name = "tracker"
    verbose_name = "Lists and replies"

    def ready(self) -> None:
        # The outbox hears the domain events; list entries follow a child merge.
        from tracker import receivers  # noqa: F401
