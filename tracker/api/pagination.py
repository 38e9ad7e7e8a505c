"""Cursor pagination in a stable order, so that a sync never skips or repeats a record."""

from rest_framework.pagination import CursorPagination


class StableCursorPagination(CursorPagination):
    ordering: tuple[str, ...] = ("updated_at", "id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class RemovalCursorPagination(StableCursorPagination):
    """Removals in the order they happened."""

    ordering = ("occurred_at", "id")


class DeliveryCursorPagination(StableCursorPagination):
    """Deliveries, newest first."""

    ordering = ("-id",)
