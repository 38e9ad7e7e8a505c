"""Conditional requests (RFC 9110, section 13): `If-Match` guards a write, `If-None-Match` spares a
read of a record the client already holds."""

from __future__ import annotations

from django.utils.http import parse_etags


def _opaque(tag: str) -> str:
    return tag.removeprefix("W/")


def if_match_holds(header: str, current: str) -> bool:
    """Strong comparison: `*`, or a listed tag that is the current one and not weak."""
    tags = parse_etags(header)
    return tags == ["*"] or any(not tag.startswith("W/") and tag == current for tag in tags)


def if_none_match_holds(header: str | None, current: str) -> bool:
    """True when the client's copy is current (answer 304): weak comparison, `*` matching any."""
    if not header:
        return False
    tags = parse_etags(header)
    return tags == ["*"] or any(_opaque(tag) == _opaque(current) for tag in tags)
