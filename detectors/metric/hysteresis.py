"""Hysteresis shared by the metric detectors: a run of points must disagree to flip."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True)
class Hysteresis:
    """Counts points in a row that disagree with the alarm state.

    ``consecutive`` hot points raise the alarm and as many normal ones clear it, so
    one odd point never flips it. Small and picklable: it lives in the detector.
    """

    consecutive: int
    run: int = 0
    peak: float = math.nan  # the most severe value of the current run
    peak_severity: float = -math.inf
    alarmed_for: int = 0  # points since the alarm rose

    def step(self, alarm: bool, hot: bool, value: float, severity: float) -> bool:
        """Account one point; return whether the alarm flips at it."""
        flip = False
        if hot == alarm:
            self.run = 0
        else:
            self.run += 1
            if self.run == 1 or severity > self.peak_severity:
                self.peak, self.peak_severity = value, severity
            if self.run >= self.consecutive:
                self.run = 0
                self.alarmed_for = 0
                flip = True
        if alarm != flip:  # alarmed after this point
            self.alarmed_for += 1
        return flip

    def reset(self) -> None:
        """Forget the run (the alarm state itself lives in the detector)."""
        self.run = 0
        self.peak, self.peak_severity = math.nan, -math.inf
        self.alarmed_for = 0
