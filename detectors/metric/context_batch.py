"""Many context models learning at once: one NumPy step for the k-th point of every series.

:func:`learn_many` gives exactly what :meth:`ContextModel.learn` gives model by
model (the same outputs, the same states, bit for bit), at a fraction of the
cost when a micro-batch holds many series: the points of different series are
independent, so step k runs for the k-th point of every series together, on
their states stacked into arrays (the bit sets into one buffer, a row each).

The float operations are those of the scalar code, in the same order, and the
integer ones are exact in int64 (a context is below (64 + 1) ** 9 times 65 <
2**63; a hash product below the bit set's prime squared). A step of a series
takes the scalar code instead when the vector one could differ: while its
history is shorter than ``order`` (fewer contexts to look up), when its range's
width is too narrow to invert or too wide to hold, and when two of the point's
look-ups hash to the same bit (then a look-up may find a bit the same point has
just set; the vector step reads the bit set as it was before the point).
"""

from __future__ import annotations

import functools
import itertools
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.metric.contextual import ContextModel, Plan

_HASHES = npt.NDArray[Any]  # int32 or int64
# Fewer series than this, or fewer points per series on average, learn faster one by
# one (the scalar code): stacking and writing back a series' state costs about a point.
_MIN_ROWS = 24
_MIN_POINTS = 2
_LO, _HI = operator.attrgetter("_lo"), operator.attrgetter("_hi")
_SEEN, _WIDENED_AT = operator.attrgetter("_seen"), operator.attrgetter("_widened_at")
_MASKS = np.array([1, 2, 4, 8, 16, 32, 64, 128], dtype=np.uint8)


def learn_many(
    models: Sequence[ContextModel], batches: Sequence[list[float]]
) -> list[tuple[list[float], list[bool]]]:
    """``[model.learn(batch) for model, batch in zip(models, batches)]``, computed together.

    Models with different parameters are learnt in groups of equal ones.
    """
    if len(models) != len(batches):
        raise ValueError(f"learn_many: {len(models)} models for {len(batches)} batches")
    results: list[tuple[list[float], list[bool]]] = [([], []) for _ in models]
    groups: dict[tuple[object, ...], list[int]] = {}
    for i, (model, batch) in enumerate(zip(models, batches, strict=True)):
        if batch:
            key = (id(model._plan), model._bits, model._order, model._margin, model._warmup)
            groups.setdefault(key, []).append(i)
    for rows in groups.values():
        if len(rows) < _MIN_ROWS or sum(len(batches[i]) for i in rows) < _MIN_POINTS * len(rows):
            for i in rows:
                results[i] = models[i].learn(batches[i])
            continue
        # Longest batch first: the series still learning at step k are a prefix.
        rows.sort(key=lambda i: len(batches[i]), reverse=True)
        learnt = _Stack([models[i] for i in rows], [batches[i] for i in rows]).learn()
        for i, result in zip(rows, learnt, strict=True):
            results[i] = result
    return results


class _Plan:
    """A hash plan as arrays: one column per (grid, suffix), grids in order, longest first."""

    def __init__(self, plan: Plan, size: int, order: int) -> None:
        self.bins = np.array([bins for bins, _, _, _ in plan], dtype=np.float64)
        self.base = np.array([base for _, base, _, _ in plan], dtype=np.int64)
        self.top = np.array([top for _, _, top, _ in plan], dtype=np.int64)
        self.grid_of = np.array([g for g, step in enumerate(plan) for _ in step[3]], dtype=np.intp)
        suffixes = [suffix for step in plan for suffix in step[3]]
        # The hash in int32 when its products fit (the default memory's do): faster.
        hashed = np.int32 if size * (size + 1) < 2**31 else np.int64
        self.a: _HASHES = np.array([a for a, _, _ in suffixes], dtype=hashed)
        self.b: _HASHES = np.array([b for _, b, _ in suffixes], dtype=hashed)
        self.modulus = np.array([m for _, _, m in suffixes], dtype=np.int64)
        self.rank = np.arange(order, dtype=np.int64)


@functools.cache
def _plan_arrays(plan: Plan, size: int, order: int) -> _Plan:
    return _Plan(plan, size, order)


class _Stack:
    """The states of models sharing one plan, stacked in arrays (a row per model)."""

    def __init__(self, models: list[ContextModel], batches: list[list[float]]) -> None:
        first = models[0]
        self.models = models
        self.batches = batches
        self.lengths = lengths = [len(batch) for batch in batches]
        n, longest = len(models), lengths[0]
        flat = np.array(list(itertools.chain.from_iterable(batches)))
        if lengths[-1] == longest:
            self.values = flat.reshape(n, longest)
        else:  # a row's values, then zeros (a boolean mask fills row by row)
            self.values = np.zeros((n, longest))
            self.values[np.arange(longest) < np.array(lengths)[:, None]] = flat
        self.lo = np.fromiter(map(_LO, models), np.float64, n)
        self.hi = np.fromiter(map(_HI, models), np.float64, n)
        self.seen = np.fromiter(map(_SEEN, models), np.int64, n)
        self.widened_at = np.fromiter(map(_WIDENED_AT, models), np.int64, n)
        self.history = np.array([m._history for m in models], dtype=np.int64)
        self.width = len(first._memory)
        self.buffer = bytearray().join(m._memory for m in models)
        self.memory = np.frombuffer(self.buffer, dtype=np.uint8)
        self.row_start = np.arange(n, dtype=np.int64) * self.width
        self.novelties = np.zeros((n, longest))
        self.spatials = np.zeros((n, longest), dtype=bool)
        self.size, self.order = first._bits, first._order
        self.margin, self.warmup = first._margin, first._warmup
        self.contexts = self.order * len(first._plan)
        self.plan = _plan_arrays(first._plan, self.size, self.order)

    def learn(self) -> list[tuple[list[float], list[bool]]]:
        """Every batch learnt, step by step; the models' states written back.

        Once fewer than ``_MIN_ROWS`` series are left, a NumPy step costs more than
        their scalar points: the rest of their batches goes through :meth:`ContextModel.learn`.
        """
        active, k = len(self.models), 0
        with np.errstate(all="ignore"):  # the rows left to the scalar code may hold NaN or inf
            while k < self.lengths[0]:
                while self.lengths[active - 1] <= k:
                    active -= 1
                if active < _MIN_ROWS:
                    break
                scalar = self._vector_step(k, active)
                for row in np.flatnonzero(scalar).tolist():
                    self._scalar_step(row, k)
                k += 1
        self._write_back()
        novelties, spatials = self.novelties[:, :k].tolist(), self.spatials[:, :k].tolist()
        learnt = []
        for row, n in enumerate(self.lengths):
            if n <= k:
                learnt.append((novelties[row][:n], spatials[row][:n]))
            else:
                rest = self.models[row].learn(self.batches[row][k:])
                learnt.append((novelties[row] + rest[0], spatials[row] + rest[1]))
        return learnt

    def _vector_step(self, k: int, n: int) -> npt.NDArray[np.bool_]:
        """Point k of the first n rows, where the vector step is exact; return the others."""
        x, plan = self.values[:n, k], self.plan
        lo, hi, seen = self.lo[:n], self.hi[:n], self.seen[:n]
        width = hi - lo
        spatial = (seen >= self.warmup) & (
            (x > hi + self.margin * width) | (x < lo - self.margin * width)
        )
        lower = x < lo
        higher = ~lower & (x > hi)
        new_lo = np.where(lower, x, lo)
        new_hi = np.where(higher, x, hi)
        width = new_hi - new_lo
        scale = np.divide(1.0, width, out=np.zeros_like(width), where=width > 0)
        exact = (seen >= self.order) & (scale < np.inf) & (width < np.inf)
        position = np.where(exact, (x - new_lo) * scale, 0.0)
        symbols = (position[:, None] * plan.bins).astype(np.int64)
        contexts = (self.history[:n] * plan.base + symbols) % plan.top
        keys = (contexts[:, plan.grid_of] % plan.modulus % self.size).astype(plan.a.dtype)
        bits = (plan.a * keys + plan.b) % self.size
        ordered = np.sort(bits, axis=1)
        exact &= ~(ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
        # Rows setting two bits of one byte: one fancy |= would keep only the last.
        crowded = ((ordered[:, 1:] >> 3) == (ordered[:, :-1] >> 3)).any(axis=1)
        where = self.row_start[:n, None] + (bits >> 3)
        masks = _MASKS[bits & 7]
        known = (self.memory[where] & masks).astype(bool).reshape(n, -1, self.order)
        # Per grid, the look-ups before the first one seen are novel (and learnt).
        novel = np.where(known.any(axis=2), known.argmax(axis=2), self.order)
        learnt = (plan.rank < novel[:, :, None]).reshape(n, -1) & exact[:, None]
        alone = learnt & ~crowded[:, None]
        self.memory[where[alone]] |= masks[alone]
        learnt &= crowded[:, None]
        if learnt.any():
            np.bitwise_or.at(self.memory, where[learnt], masks[learnt])
        rows = np.flatnonzero(exact)
        self.lo[rows] = new_lo[rows]
        self.hi[rows] = new_hi[rows]
        self.widened_at[rows] = np.where(lower | higher, seen, self.widened_at[:n])[rows]
        self.history[rows] = contexts[rows]
        self.novelties[rows, k] = novel.sum(axis=1)[rows] / self.contexts
        self.spatials[rows, k] = spatial[rows]
        self.seen[rows] += 1
        return ~exact

    def _scalar_step(self, row: int, k: int) -> None:
        """Point k of one row through the scalar code, on the row's stacked state."""
        model = self.models[row]
        model._lo, model._hi = float(self.lo[row]), float(self.hi[row])
        model._seen, model._widened_at = int(self.seen[row]), int(self.widened_at[row])
        model._history = self.history[row].tolist()
        start = row * self.width
        memory = memoryview(self.buffer)[start : start + self.width]
        try:
            (novelty,), (spatial,) = model._learn([float(self.values[row, k])], memory)
        finally:
            memory.release()
        self.lo[row], self.hi[row] = model._lo, model._hi
        self.seen[row], self.widened_at[row] = model._seen, model._widened_at
        self.history[row] = model._history
        self.novelties[row, k] = novelty
        self.spatials[row, k] = spatial

    def _write_back(self) -> None:
        view = memoryview(self.buffer)
        width = self.width
        for model, lo, hi, seen, widened_at, history, start in zip(
            self.models,
            self.lo.tolist(),
            self.hi.tolist(),
            self.seen.tolist(),
            self.widened_at.tolist(),
            self.history.tolist(),
            range(0, len(self.buffer), width),
            strict=True,
        ):
            model._lo, model._hi, model._seen, model._widened_at = lo, hi, seen, widened_at
            model._history = history
            model._memory[:] = view[start : start + width]
        view.release()
