"""The numeric detectors of many features, fed together (the monitor's hot path).

A :class:`~detectors.monitor.model_monitor.ModelMonitor` gives every numeric feature the
same seven window detectors (KS, PSI, Wasserstein, mean-shift CUSUM, out-of-range,
null rate, wrong-type rate), fitted at the same time and fed one value per event
while the feature has no missing or non-finite values. Such features stay in
step: same position in their rings, checks at the same events. Fed one by one,
each costs a few dozen NumPy calls per micro-batch and per check whatever its
size, which dominated the monitor's cost; here one call does all features (the
rings are sorted once for the three tests that need them sorted).

The results are those of feeding each detector on its own (same values, same
operations per element); features out of step, or with an invalid value in the
batch, are fed one by one by the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from detectors.drift.base import DriftDetector, WindowDriftDetector
from detectors.drift.ks import KSDrift
from detectors.drift.mean_shift import MeanShift, _lindley
from detectors.drift.out_of_range import OutOfRange
from detectors.drift.psi import PSIDrift
from detectors.drift.rate_increase import RateIncrease
from detectors.drift.wasserstein import WassersteinDrift

FloatArray = npt.NDArray[np.float64]


class NumericDetectors(NamedTuple):
    """One numeric feature's detectors, in the monitor's order."""

    ks: KSDrift
    psi: PSIDrift
    wasserstein: WassersteinDrift
    mean_shift: MeanShift
    out_of_range: OutOfRange
    missing: RateIncrease
    wrong_type: RateIncrease

    @classmethod
    def of(
        cls, drift: Sequence[DriftDetector], missing: RateIncrease, wrong: RateIncrease
    ) -> NumericDetectors | None:
        """The detectors as a group member, or None if they are not the standard set."""
        if len(drift) != 5:
            return None
        ks, psi, wasserstein, mean_shift, out_of_range = drift
        if not (
            type(ks) is KSDrift
            and type(psi) is PSIDrift
            and type(wasserstein) is WassersteinDrift
            and type(mean_shift) is MeanShift
            and type(out_of_range) is OutOfRange
        ):
            return None
        members = cls(ks, psi, wasserstein, mean_shift, out_of_range, missing, wrong)
        return members if all(d.fitted for d in members) else None

    def phase(self) -> tuple[int, ...] | None:
        """Where the detectors are in their rings and steps; None if not all alike."""
        key = (self.ks._since_check, self.ks._pos, self.ks._filled, self.ks.params.step)
        for d in self[1:]:
            ring = (d._pos, d._filled) if isinstance(d, WindowDriftDetector) else key[1:3]
            if (d._since_check, *ring, d.params.step) != key or (
                isinstance(d, WindowDriftDetector) and d.params.window != self.ks.params.window
            ):
                return None
        return key


def feed_group(group: list[NumericDetectors], block: FloatArray) -> None:
    """Feed row ``g`` of ``block`` (finite values) to ``group[g]``, as ``_feed`` would.

    Every member must have the same :meth:`NumericDetectors.phase`.
    """
    first = group[0].ks
    step, window = first.params.step, first.params.window
    since, pos, filled = first._since_check, first._pos, first._filled
    detectors = [d for members in group for d in members]
    windows: list[WindowDriftDetector] = [
        d
        for m in group
        for d in (m.ks, m.psi, m.wasserstein, m.out_of_range, m.missing, m.wrong_type)
    ]
    for d in detectors:
        d._changes = []
    ms = [m.mean_shift for m in group]
    ms_center = np.array([[d._center] for d in ms])
    ms_scale = np.array([[d._scale] for d in ms])
    ms_clip = np.array([[d.params.clip] for d in ms])
    ms_z_center = np.array([[d._z_center] for d in ms])
    ms_z_scale = np.array([[d._z_scale] for d in ms])
    ms_allowance = np.array([[d.params.shift / 2] for d in ms])
    low = np.array([[m.out_of_range._low] for m in group])
    high = np.array([[m.out_of_range._high] for m in group])
    n = block.shape[1]
    start = 0
    while start < n:
        take = min(n - start, step - since)
        chunk = block[:, start : start + take]
        outside = ((chunk < low) | (chunk > high)).astype(np.float64)
        _write_rings(group, chunk, outside, pos, window)
        pos, filled = (pos + take) % window, min(window, filled + take)
        _cusums(ms, chunk, ms_center, ms_scale, ms_clip, ms_z_center, ms_z_scale, ms_allowance)
        start += take
        since += take
        if since == step:
            since = 0
            for w in windows:
                w._pos, w._filled = pos, filled
            _check(group, start - 1, filled == window)
    for d in detectors:
        d._since_check = since
        d._seen += n
    for w in windows:
        w._pos, w._filled = pos, filled


def _write_rings(
    group: list[NumericDetectors], chunk: FloatArray, outside: FloatArray, pos: int, window: int
) -> None:
    # WindowDriftDetector._absorb of each window detector (the same slots in every ring).
    take = chunk.shape[1]
    zeros = np.zeros(take)  # nothing missing, nothing of the wrong type
    split = min(take, window - pos)
    for g, m in enumerate(group):
        for d, values in (
            (m.ks, chunk[g]),
            (m.psi, chunk[g]),
            (m.wasserstein, chunk[g]),
            (m.out_of_range, outside[g]),
            (m.missing, zeros),
            (m.wrong_type, zeros),
        ):
            d._ring[pos : pos + split] = values[:split]
            if split < take:  # wraps around
                d._ring[: take - split] = values[split:]


def _cusums(
    detectors: list[MeanShift],
    chunk: FloatArray,
    center: FloatArray,
    scale: FloatArray,
    clip: FloatArray,
    z_center: FloatArray,
    z_scale: FloatArray,
    allowance: FloatArray,
) -> None:
    # MeanShift._absorb, one row per detector (rows g: upward, G + g: downward).
    z = np.clip((chunk - center) / scale, -clip, clip)
    z = (z - z_center) / z_scale
    g = len(detectors)
    increments = np.empty((2 * g, z.shape[1]))
    np.subtract(z, allowance, out=increments[:g])
    np.subtract(-z, allowance, out=increments[g:])
    starts = np.array([[d._up] for d in detectors] + [[d._down] for d in detectors])
    last, peak = _lindley(starts, increments)
    for i, d in enumerate(detectors):
        d._up, d._down = float(last[i]), float(last[g + i])
        d._peak = max(d._peak, float(max(peak[i], peak[g + i])))


def _check(group: list[NumericDetectors], index: int, ready: bool) -> None:
    for m in group:  # the CUSUM checks whatever the window's state
        m.mean_shift._judge(index)
    if not ready:
        return
    ks, ordered = _ks_rows(group)
    wasserstein = _wasserstein_rows(group, ordered)
    psi = _psi_rows(group, ordered)
    outside = np.array([m.out_of_range._ring for m in group]).sum(axis=1)
    missing = np.array([m.missing._ring for m in group]).sum(axis=1)
    wrong = np.array([m.wrong_type._ring for m in group]).sum(axis=1)
    for g, m in enumerate(group):
        m.ks._judge(index, ks[g])
        m.psi._judge(index, psi[g])
        m.wasserstein._judge(index, wasserstein[g])
        # sums of 0/1 values: exact whatever the order of the additions
        m.out_of_range._judge(index, max(float(outside[g]) - m.out_of_range._expected, 0.0))
        m.missing._judge(index, max(float(missing[g]) - m.missing._expected, 0.0))
        m.wrong_type._judge(index, max(float(wrong[g]) - m.wrong_type._expected, 0.0))


def _keyed(values: FloatArray) -> npt.NDArray[np.complex128]:
    # Row g's values as g + value*i: complex numbers sort by real then imaginary
    # part, so one binary search serves every row (each row sorted, rows in order).
    keyed = np.empty(values.shape, dtype=np.complex128)
    keyed.real = np.arange(values.shape[0])[:, None]
    keyed.imag = values
    return keyed


def _ks_rows(group: list[NumericDetectors]) -> tuple[list[float], FloatArray]:
    """KSDrift's statistic per row, and the sorted windows.

    One stable sort of each window merged with its sketch gives both ECDFs at
    every point: at the last copy of a value, the counts of window and sketch
    values up to it are those KSDrift's binary searches find.
    """
    rings = [m.ks._ring for m in group]
    n = rings[0].size
    m = group[0].ks._sketch.size
    ordered = np.sort(np.array(rings), axis=1)
    merged = np.concatenate([ordered, np.array([k.ks._sketch for k in group])], axis=1)
    order = np.argsort(merged, axis=1, kind="stable")  # two sorted runs: a merge
    values = np.take_along_axis(merged, order, axis=1)
    from_window = order < n
    in_window = np.cumsum(from_window, axis=1)
    in_sketch = np.arange(1, n + m + 1) - in_window
    gap = np.abs(in_window / n - in_sketch / m)
    gap[:, :-1][values[:, 1:] == values[:, :-1]] = 0.0  # only the last copy of a value counts
    return [float(x) for x in gap.max(axis=1)], ordered


def _wasserstein_rows(group: list[NumericDetectors], ordered: FloatArray) -> list[float]:
    tests = [m.wasserstein for m in group]
    levels = tests[0]._levels
    if any(t._levels.shape != levels.shape or (t._levels != levels).any() for t in tests):
        return [t._compute_sorted(ordered[i]) for i, t in enumerate(tests)]
    sketch = np.array([t._sketch for t in tests])
    scale = np.array([t._scale for t in tests])
    distance = np.abs(ordered[:, levels] - sketch).mean(axis=1) / scale
    return [float(x) for x in distance]


def _psi_rows(group: list[NumericDetectors], ordered: FloatArray) -> list[float]:
    # PSIDrift._compute_sorted per row, for rows with as many bins as the first.
    tests = [m.psi for m in group]
    size = tests[0]._edges.size
    if any(t._edges.size != size for t in tests):
        return [t._compute_sorted(ordered[i]) for i, t in enumerate(tests)]
    g, n = ordered.shape
    edges = np.array([t._edges for t in tests])
    keyed = _keyed(ordered).ravel()
    offsets = np.arange(g)[:, None] * n
    bounds = np.empty((g, size + 2), dtype=np.int64)
    bounds[:, 0] = 0
    bounds[:, 1:-2] = np.searchsorted(keyed, _keyed(edges[:, :-1]).ravel(), side="left").reshape(
        g, size - 1
    )
    bounds[:, 1:-2] -= offsets
    bounds[:, -2] = np.searchsorted(keyed, _keyed(edges[:, -1:]).ravel(), side="right")
    bounds[:, -2] -= offsets[:, 0]
    bounds[:, -1] = n
    counts = np.diff(bounds, axis=1).astype(np.float64)
    floor = np.array([[t._floor] for t in tests])
    ref_p = np.array([t._ref_p for t in tests])
    # _smooth and the sum, row by row (sums along a row add as a 1-D sum does)
    smoothed = counts / counts.sum(axis=1, keepdims=True) + floor
    p = smoothed / smoothed.sum(axis=1, keepdims=True)
    return [float(x) for x in np.sum((p - ref_p) * np.log(p / ref_p), axis=1)]
