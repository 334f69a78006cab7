"""ContextModel: how new is the latest value, in level and in sequence, to this series?

A small online model in the spirit of NAB's contextual anomaly detectors (CAD OSE):
values become coarse symbols and the model remembers which short sequences of
symbols it has met. It never assumes the series' range in advance, so it can run
from the first point of a series nobody described.

The model is a building block of :class:`detectors.metric.ensemble.MetricEnsemble`; it has
no alarm of its own and is not a :class:`detectors.base.Detector`.
"""

from __future__ import annotations

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
    max_contexts: int = Field(
        default=8192, ge=16, description="Symbol sequences remembered per series at most."
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

    At most ``max_contexts`` sequences are remembered (a noisy series would
    otherwise grow the memory without bound); beyond that, unseen sequences
    still count as new but are not stored.

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
        "_contexts",
        "_hi",
        "_history",
        "_lo",
        "_margin",
        "_max_contexts",
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
        self._max_contexts = self.params.max_contexts
        self._margin = self.params.margin
        self._warmup = self.params.warmup
        # A context is the latest order+1 symbols of a grid (each 0..bins) as one
        # integer in base bins+1; its suffix of length k+1 is that integer modulo
        # base**(k+1). Keys of different grids and lengths are tagged apart.
        self._plan = tuple(
            (
                bins,
                bins + 1,
                (bins + 1) ** (order + 1),
                tuple(((g << 60) | (k << 56), (bins + 1) ** (k + 1)) for k in range(1, order + 1)),
            )
            for g, bins in enumerate(grids)
        )
        self.reset()

    def reset(self) -> None:
        """Forget everything learned."""
        self._lo = float("nan")
        self._hi = float("nan")
        self._seen = 0
        self._widened_at = 0  # the point at which the range last widened
        self._history = [0] * len(self.params.grids)  # the latest order+1 symbols per grid
        self._contexts: set[int] = set()

    def step(self, x: float) -> tuple[float, bool]:
        """Learn one finite value; return (novelty in [0, 1], spatial anomaly)."""
        lo, hi, seen = self._lo, self._hi, self._seen
        if seen == 0:
            lo = hi = x
        width = hi - lo
        margin = self._margin
        spatial = seen >= self._warmup and (x > hi + margin * width or x < lo - margin * width)
        if x < lo:
            lo = x
            self._widened_at = seen
        elif x > hi:
            hi = x
            self._widened_at = seen
        self._lo, self._hi = lo, hi
        width = hi - lo
        scale = 1.0 / width if width > 0 else 0.0
        contexts = self._contexts
        max_contexts = self._max_contexts
        room = len(contexts) < max_contexts
        depth = min(self._order, seen)  # contexts that exist yet
        novel = 0
        history = self._history
        for g, (bins, base, top, suffixes) in enumerate(self._plan):
            symbol = int((x - lo) * scale * bins)  # 0..bins: the maximum is its own symbol
            context = (history[g] * base + symbol) % top
            history[g] = context
            for tag, modulus in suffixes if depth == self._order else suffixes[:depth]:
                key = tag | (context % modulus)
                if key not in contexts:
                    novel += 1
                    if room:
                        contexts.add(key)
                        room = len(contexts) < max_contexts
        self._seen = seen + 1
        if depth == 0:
            return 0.0, spatial
        return novel / (depth * len(history)), spatial

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
    def contexts(self) -> int:
        """Symbol sequences remembered."""
        return len(self._contexts)

    def __getstate__(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict[str, object]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return ContextModelParams.render("ContextModel", self.params)
