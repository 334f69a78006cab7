"""Durations as people read them, shared by chat messages, incidents and the engine."""

from __future__ import annotations


def human_duration(seconds: float) -> str:
    """Seconds as a short human duration.

    >>> human_duration(42), human_duration(720), human_duration(9000)
    ('42 s', '12 min', '2.5 h')
    """
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
