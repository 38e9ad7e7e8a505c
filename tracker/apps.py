"""The exchange with other parties and the jobs that watch its deadlines."""

from django.apps import AppConfig


class TrackerConfig(AppConfig):
    name = "tracker"
    verbose_name = "Lists and replies"

    def ready(self) -> None:
        # Connects the outbox to cases' status-change signal.
        from tracker import webhooks  # noqa: F401
