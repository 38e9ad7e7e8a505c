"""The case workers' pages of the tracker, by concern; each module registers its own."""

from tracker.admin import cases, exchange, exports, flags, imports, partners

__all__ = ["cases", "exchange", "exports", "flags", "imports", "partners"]
