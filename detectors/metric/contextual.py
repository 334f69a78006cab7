"""ContextModel: how new is the latest value, in level and in sequence, to this series?

A small online model in the spirit of NAB's contextual anomaly detectors (CAD OSE):
values become coarse symbols and the model remembers which short sequences of
symbols it has met, in a fixed-size hashed bit set. It never assumes the series'
range in advance, so it can run from the first point of a series nobody described.

The model is a building block of :class:`detectors.metric.ensemble.MetricEnsemble`; it has
no alarm of its own and is not a :class:`detectors.base.Detector`.
"""

from __future__ import annotations

import functools
import math
from typing import Annotated, Any, ClassVar

from pydantic import Field

from detectors.params import DetectorParams


class ContextModelParams(DetectorParams):
    """Parameters of :class:`ContextModel` (and of the ensemble that owns one)."""

    grids: tuple[Annotated[int, Field(ge=2, le=64)], ...] = Field(
        default=(3, 5, 8),
        min_length=1,
        description="Bins of each coarse grid over the running range (context model).",
    )
    order: int = Field(
        default=6, ge=1, le=8, description="Longest context, in preceding symbols (context model)."
    )
    memory_kib: int = Field(
        default=3,
        ge=1,
        le=64,
        description="Size of the bit set remembering the symbol sequences seen, in KiB "
        "(one bit per sequence, hashed; the state's largest part).",
    )
    margin: float = Field(
        default=0.05,
        ge=0,
        description="A value beyond the range seen by this fraction of its width is a range "
        "break (spatial anomaly).",
    )
    warmup: int = Field(
        default=100, ge=1, description="Points seen before spatial anomalies are reported."
    )


class ContextModel:
    """Novelty of the latest value's context, and whether it leaves the known range.

    Each value is placed on several coarse grids (``grids`` bins each) spanning the
    range seen so far (running min and max, so nothing is known in advance and
    the grids stretch when a new extreme arrives). On each grid, the model keeps
    the set of symbol sequences it has seen of lengths 2 to ``order + 1``: the
    latest symbol with the 1 to ``order`` symbols before it. :meth:`step` returns
    the fraction of these sequences, over all grids and lengths, that were never
    seen before (0 for a value that repeats a familiar pattern, 1 when no context
    is familiar), and whether the value lies beyond the range seen so far by more
    than ``margin`` times its width (a *spatial* anomaly; from point ``warmup`` on).

    Several coarse grids of different widths, rather than one fine grid, make the
    novelty graded and robust to a value that falls next to a bin edge.

    The sequences seen are remembered as bits of a fixed bit set of ``memory_kib``
    KiB, one bit per hashed sequence, so the state keeps the same small size
    however noisy the series (3 KiB: 24,576 bits). A sequence whose bit another
    one set reads as seen: when a tenth of the bits are set, one new sequence in
    ten is missed, which lowers every novelty alike (the ensemble's likelihood
    compares the novelty with its own past). Every suffix of a sequence is learnt
    with it, so :meth:`step` looks the longest up first and stops at the first
    one seen: a familiar pattern costs one look-up per grid.

    Parameters: :class:`ContextModelParams`.

    Example:
        >>> model = ContextModel()
        >>> for x in [1.0, 2.0, 3.0] * 40:
        ...     novelty, spatial = model.step(x)
        >>> novelty, spatial  # a familiar cycle
        (0.0, False)
        >>> model.step(3.0)[0] > 0.5  # 3 after 3 breaks the cycle
        True
        >>> novelty, spatial = model.step(10.0)  # far above anything seen
        >>> spatial, novelty > 0.5
        (True, True)
    """

    __slots__ = (
        "_bits",
        "_hi",
        "_history",
        "_lo",
        "_margin",
        "_memory",
        "_order",
        "_plan",
        "_seen",
        "_warmup",
        "_widened_at",
        "params",
    )

    Params: ClassVar[type[ContextModelParams]] = ContextModelParams

    def __init__(self, params: ContextModelParams | None = None, /, **overrides: Any) -> None:
        # ``params`` may be a model extending ContextModelParams (the ensemble's): shared.
        self.params = ContextModelParams.of(params, overrides, "ContextModel")
        grids, order = self.params.grids, self.params.order
        # Read on every point: kept at hand rather than behind self.params.
        self._order = order
        self._margin = self.params.margin
        self._warmup = self.params.warmup
        # Shared by every model with these parameters: read on every point, so
        # one copy stays in the CPU's cache instead of one per series.
        self._bits, self._plan = _plan(grids, order, self.params.memory_kib)
        self.reset()

    def reset(self) -> None:
        """Forget everything learned."""
        self._lo = float("nan")
        self._hi = float("nan")
        self._seen = 0
        self._widened_at = 0  # the point at which the range last widened
        self._history = [0] * len(self.params.grids)  # the latest order+1 symbols per grid
        self._memory = bytearray(self.params.memory_kib * 1024)

    def step(self, x: float) -> tuple[float, bool]:
        """Learn one finite value; return (novelty in [0, 1], spatial anomaly)."""
        novelty, spatial = self.learn([x])
        return novelty[0], spatial[0]

    def learn(self, values: list[float]) -> tuple[list[float], list[bool]]:
        """Learn finite values in order; return each one's novelty and spatial anomaly.

        The same as :meth:`step` on each value (one call per micro-batch of a
        series keeps the per-point state in local variables).
        """
        return self._learn(values, self._memory)

    def _learn(
        self, values: list[float], memory: bytearray | memoryview
    ) -> tuple[list[float], list[bool]]:
        """:meth:`learn` on the bit set ``memory`` (this model's, or its row of a stacked copy)."""
        lo, hi, seen, widened_at = self._lo, self._hi, self._seen, self._widened_at
        size, order, plan = self._bits, self._order, self._plan
        margin, warmup, history, masks = self._margin, self._warmup, self._history, _MASKS
        contexts = order * len(history)  # sequences looked up once the history is full
        novelties: list[float] = []
        spatials: list[bool] = []
        for x in values:
            if seen == 0:
                lo = hi = x
            width = hi - lo
            spatials.append(seen >= warmup and (x > hi + margin * width or x < lo - margin * width))
            if x < lo:
                lo = x
                widened_at = seen
            elif x > hi:
                hi = x
                widened_at = seen
            width = hi - lo
            scale = 1.0 / width if width > 0 else 0.0
            # A span too narrow to invert (subnormal) or too wide to hold (overflow) is
            # one symbol: its position would be NaN or infinite (a property test's find).
            position = (x - lo) * scale if scale < _INF and width < _INF else 0.0
            # Contexts that exist yet; per point, so a comparison rather than a min() call.
            depth = order if seen >= order else seen  # noqa: FURB136
            novel = 0
            g = 0
            for bins, base, top, suffixes in plan:
                symbol = int(position * bins)  # 0..bins: the maximum is its own symbol
                context = (history[g] * base + symbol) % top
                history[g] = context
                g += 1
                # Longest first: every suffix of a sequence seen was learnt with it, so
                # the first one found ends the search (one look-up on a familiar pattern).
                for a, b, modulus in suffixes if depth == order else suffixes[order - depth :]:
                    bit = (a * (context % modulus % size) + b) % size
                    byte, mask = bit >> 3, masks[bit & 7]
                    old = memory[byte]
                    if old & mask:
                        break
                    memory[byte] = old | mask
                    novel += 1
            seen += 1
            if depth == order:
                novelties.append(novel / contexts)
            else:
                novelties.append(novel / (depth * g) if depth else 0.0)
        self._lo, self._hi, self._seen, self._widened_at = lo, hi, seen, widened_at
        return novelties, spatials

    @property
    def low(self) -> float:
        """The lowest value seen (NaN before the first)."""
        return self._lo

    @property
    def high(self) -> float:
        """The highest value seen (NaN before the first)."""
        return self._hi

    @property
    def steady(self) -> int:
        """Points since the range last widened (the grids last stretched)."""
        return self._seen - 1 - self._widened_at if self._seen else 0

    @property
    def memory_bytes(self) -> int:
        """Size of the bit set of sequences seen (fixed by ``memory_kib``)."""
        return len(self._memory)

    @property
    def fill(self) -> float:
        """Share of the bit set's bits that are set (sequences seen, less collisions)."""
        return sum(byte.bit_count() for byte in self._memory) / (8 * len(self._memory))

    def __getstate__(self) -> dict[str, object]:
        # The plan and the settings read per point follow from the parameters; the
        # bit set goes out as plain bytes.
        state = {name: getattr(self, name) for name in _STATE}
        state["_memory"] = bytes(self._memory)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(state["params"])  # type: ignore[misc]
        for name, value in state.items():
            object.__setattr__(self, name, value)
        # A state codec may hand the bit set back as immutable bytes.
        object.__setattr__(self, "_memory", bytearray(self._memory))

    def __repr__(self) -> str:
        return ContextModelParams.render("ContextModel", self.params)


_MASKS = (1, 2, 4, 8, 16, 32, 64, 128)  # a bit's mask within its byte
_INF = math.inf
_STATE = ("params", "_lo", "_hi", "_seen", "_widened_at", "_history", "_memory")


# Per grid: bins, base, base ** (order + 1), and (a, b, modulus) per suffix, longest first.
Plan = tuple[tuple[int, int, int, tuple[tuple[int, int, int], ...]], ...]


@functools.cache
def _plan(grids: tuple[int, ...], order: int, memory_kib: int) -> tuple[int, Plan]:
    """The bit set's size in bits and, per grid, how its contexts are hashed to bits.

    The sequences seen are bits of a bit set, picked by a universal hash
    ((a * key + b) mod p, a and b fixed per grid and length, p the largest prime
    below the number of bits): small-int arithmetic only. A context is the latest
    order+1 symbols of a grid (each 0..bins) as one integer in base bins+1; its
    suffix of length k+1 is that integer modulo base**(k+1). Per grid: bins, base,
    base**(order+1), and (a mod p, b mod p, base**(k+1)) per suffix, longest first
    (see :meth:`ContextModel.learn`). The hash is computed as
    ((a mod p) * (key mod p) + b mod p) mod p, the same bit, on operands below p
    (with the default memory, products below 2**30: CPython's one-digit ints).
    """
    bits = _largest_prime_at_most(8 * 1024 * memory_kib)
    return bits, tuple(
        (
            bins,
            bins + 1,
            (bins + 1) ** (order + 1),
            tuple(
                (a % bits, b % bits, (bins + 1) ** (k + 1))
                for k in range(order, 0, -1)
                for a, b in [_hash_pair(g * order + k)]
            ),
        )
        for g, bins in enumerate(grids)
    )


def _hash_pair(seed: int) -> tuple[int, int]:
    """A fixed, well-spread multiplier (odd, below 2**31) and offset for hash number ``seed``."""
    mixed = ((seed + 1) * 0x9E3779B97F4A7C15) & ((1 << 64) - 1)  # Fibonacci scrambling
    return (mixed >> 33) | 1, (mixed >> 7) & 0xFFFFFF


def _largest_prime_at_most(n: int) -> int:
    candidate = n
    while any(candidate % d == 0 for d in range(2, math.isqrt(candidate) + 1)):
        candidate -= 1
    return candidate
