"""A one-line progress bar on stderr for long CLI runs; stdout stays the data's alone.

The bar is redrawn in place with a carriage return, at most every ``interval_s``,
and only after ``delay_s``: a run that ends sooner prints nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")
BAR_WIDTH = 24
ESTIMATE_AFTER_S = 1.0  # an estimate from the first moments is noise


def add_progress_flag(parser: argparse.ArgumentParser) -> None:
    """``--progress`` / ``--no-progress``: a command's bar on stderr."""
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        help="progress bar on stderr (default: only when stderr is a terminal)",
    )


def progress_bar(asked: bool | None, label: str, total: int, unit: str) -> Progress:
    """The bar of a command's ``--progress`` flag, on stderr (stdout stays the data's)."""
    stream = sys.stderr if progress_wanted(asked, sys.stderr) else None
    # Asked for: shown from the start; on a terminal by default: only if the run is long.
    return Progress(label, total, unit, stream, delay_s=0.0 if asked else 1.0)


def progress_wanted(asked: bool | None, stream: TextIO) -> bool:
    """``--progress`` / ``--no-progress`` if given, else whether ``stream`` is a terminal."""
    if asked is not None:
        return asked
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Progress:
    """Counts work done out of ``total`` units and draws it on ``stream`` (None: silent)."""

    def __init__(
        self,
        label: str,
        total: int,
        unit: str,
        stream: TextIO | None,
        delay_s: float = 1.0,
        interval_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = stream
        self.delay_s = delay_s
        self.interval_s = interval_s
        self.clock = clock
        self.done = 0
        self._started = clock()
        self._drawn_at: float | None = None
        self._width = 0

    def advance(self, amount: int = 1) -> None:
        """Count ``amount`` more units; redraw if it is time."""
        self.done += amount
        if self.stream is None:
            return
        now = self.clock()
        if now - self._started < self.delay_s:
            return
        if self._drawn_at is None or now - self._drawn_at >= self.interval_s:
            self._draw(now)

    def track(self, items: Iterable[T]) -> Iterator[T]:
        """Yield ``items``, counting one unit for each."""
        for item in items:
            yield item
            self.advance()

    def close(self) -> None:
        """Draw the final state and end the line, if the bar was ever shown."""
        if self.stream is None:
            return
        now = self.clock()
        if self._drawn_at is not None or now - self._started >= self.delay_s:
            self._draw(now)
            self.stream.write("\n")
            self.stream.flush()

    def line(self, now: float) -> str:
        """The bar as text, e.g. ``replay [######------] 50% 5,000/10,000 rows, 0:04 left``."""
        fraction = min(1.0, self.done / self.total) if self.total else 1.0
        filled = round(fraction * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        text = f"{self.label} [{bar}] {fraction:4.0%} {self._amount()}"
        elapsed = now - self._started
        if 0 < fraction < 1 and elapsed >= ESTIMATE_AFTER_S:
            text += f", {_clock_time(elapsed * (1 - fraction) / fraction)} left"
        return text

    def _amount(self) -> str:
        if self.unit == "bytes":
            return f"{self.done / 1e6:,.1f}/{self.total / 1e6:,.1f} MB"
        return f"{self.done:,}/{self.total:,} {self.unit}"

    def _draw(self, now: float) -> None:
        assert self.stream is not None
        text = self.line(now)
        # Pad over a longer previous line: no terminal escape codes, so a log file
        # that asked for the bar stays plain text.
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)
        self._drawn_at = now


def _clock_time(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
