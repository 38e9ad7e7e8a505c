"""The exchange with other parties and the jobs that watch its deadlines."""

from django.apps import AppConfig


class TrackerConfig(AppConfig):
    name = "tracker"
    verbose_name = "Lists and replies"
