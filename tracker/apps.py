"""The exchange with other parties and the jobs that watch its deadlines."""

from django.apps import AppConfig


class TrackerConfig(AppConfig):
    name = "tracker"
    verbose_name = "Lists and replies"

    def ready(self) -> None:
        # Connects the outbox to cases' status-change signal, and list entries to child merges.
        from tracker import services, webhooks  # noqa: F401
