"""NoveltyLikelihood: how unusual a raw anomaly score is against its own recent past."""

from __future__ import annotations

import math
from collections import deque

_SQRT2 = math.sqrt(2.0)
# Reported on a log scale: a tail probability of 1e-10 or less scores 1 (as in
# HTM's anomaly likelihood, which NAB's Numenta detector uses).
_TAIL_FLOOR = 1e-10
_LOG_TAIL_FLOOR = math.log(_TAIL_FLOOR)
BLOCKS = 20  # the window is kept as this many block sums


class NoveltyLikelihood:
    """The anomaly likelihood of a raw score in [0, 1], as HTM post-processes its own.

    Each raw score is compared with the mean and standard deviation (floored at
    ``min_spread``) of the raw scores of the last ``window`` points, itself
    included; the Gaussian upper-tail probability is put on a log scale (tail
    1e-10 → 1). A noisy series whose raw score is always high therefore needs a
    much higher one to score high than a quiet series. The window is kept as
    :data:`BLOCKS` block sums, not ``window`` floats. Scores 0 for the first
    ``warmup`` points.

    Example:
        >>> likelihood = NoveltyLikelihood(window=200, min_spread=0.03, warmup=10)
        >>> quiet = [likelihood.score(0.0) for _ in range(100)]
        >>> likelihood.score(1.0) > 0.99
        True
    """

    __slots__ = (
        "_block",
        "_blocks",
        "_min_spread",
        "_n",
        "_open_n",
        "_open_s1",
        "_open_s2",
        "_s1",
        "_s2",
        "_seen",
        "_warmup",
    )

    def __init__(self, window: int, min_spread: float, warmup: int) -> None:
        self._block = max(1, window // BLOCKS)
        self._min_spread = min_spread
        self._warmup = warmup
        # Completed blocks (count, sum, sum of squares), their totals, the open block.
        self._blocks: deque[tuple[int, float, float]] = deque()
        self._n = 0
        self._s1 = 0.0
        self._s2 = 0.0
        self._open_n = 0
        self._open_s1 = 0.0
        self._open_s2 = 0.0
        self._seen = 0

    def score(self, raw: float) -> float:
        """Learn ``raw`` and return its likelihood score in [0, 1]."""
        return self.scores([raw])[0]

    def scores(self, raws: list[float]) -> list[float]:
        """Learn raw scores in order; return the likelihood score of each, as :meth:`score`.

        One call per micro-batch keeps the running sums in local variables.
        """
        block, floor, warmup = self._block, self._min_spread, self._warmup
        n, s1, s2 = self._n, self._s1, self._s2
        open_n, open_s1, open_s2 = self._open_n, self._open_s1, self._open_s2
        seen = self._seen
        blocks = self._blocks
        out: list[float] = []
        for raw in raws:
            open_n += 1
            open_s1 += raw
            open_s2 += raw * raw
            count = n + open_n
            total = s1 + open_s1
            squares = s2 + open_s2
            if open_n == block:  # close the block; the oldest leaves the window
                blocks.append((open_n, open_s1, open_s2))
                n += open_n
                s1 += open_s1
                s2 += open_s2
                open_n, open_s1, open_s2 = 0, 0.0, 0.0
                if len(blocks) > BLOCKS:
                    old_n, old_s1, old_s2 = blocks.popleft()
                    n -= old_n
                    s1 -= old_s1
                    s2 -= old_s2
            seen += 1
            if seen < warmup:
                out.append(0.0)
                continue
            mean = total / count
            var = squares / count - mean * mean
            spread = math.sqrt(var) if var > floor * floor else floor
            score = math.log(0.5 * math.erfc((raw - mean) / (spread * _SQRT2)) + _TAIL_FLOOR)
            score /= _LOG_TAIL_FLOOR
            # Clamped to [0, 1] by comparisons, not min(max()) calls: the same value, per point.
            out.append(1.0 if score > 1.0 else score if score > 0.0 else 0.0)  # noqa: FURB136
        self._n, self._s1, self._s2 = n, s1, s2
        self._open_n, self._open_s1, self._open_s2 = open_n, open_s1, open_s2
        self._seen = seen
        return out

    def __getstate__(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict[str, object]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)
