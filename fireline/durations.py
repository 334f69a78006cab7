"""Durations as people write and read them: ``15m`` in, ``12 min`` out."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``15m``, ``1h`` or ``2d``.

    >>> parse_duration("1h"), parse_duration("90")
    (3600.0, 90.0)
    """
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"expected a duration like 90s, 15m, 1h or 2d, got {text!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]


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
