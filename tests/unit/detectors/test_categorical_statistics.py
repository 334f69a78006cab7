"""Chi-square and Jensen-Shannon in fewer NumPy calls: the very same values as the plain formulas."""

import numpy as np
import pytest

from detectors.drift.chi_square import chi_square
from detectors.drift.jensen_shannon import jensen_shannon


def plain_chi_square(ref, recent):
    total = ref + recent
    used = total > 0
    ref, recent, total = ref[used], recent[used], total[used]
    m, n = ref.sum(), recent.sum()
    expected_ref, expected_recent = total * (m / (m + n)), total * (n / (m + n))
    return float(
        np.sum((ref - expected_ref) ** 2 / expected_ref)
        + np.sum((recent - expected_recent) ** 2 / expected_recent)
    )


def plain_jensen_shannon(ref, recent):
    def entropy(p):
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())

    m, n = ref.sum(), recent.sum()
    mixture = (ref + recent) / (m + n)
    return float(entropy(mixture) - (m * entropy(ref / m) + n * entropy(recent / n)) / (m + n))


@pytest.mark.parametrize("seed", range(40))
def test_the_statistics_equal_the_plain_formulas_to_the_bit(seed):
    rng = np.random.default_rng(seed)
    cells = int(rng.integers(1, 60))
    ref = rng.integers(0, 400, cells).astype(np.float64)
    recent = rng.integers(0, 50, cells).astype(np.float64)
    # zeros where the shortcuts branch: none, only "other" (last), elsewhere too
    zeros = rng.choice(["none", "other", "other in ref", "anywhere"])
    if zeros in ("other", "other in ref"):
        ref[-1] = 0.0
        recent[-1] = 0.0 if zeros == "other" else recent[-1]
    elif zeros == "anywhere":
        ref[rng.random(cells) < 0.3] = 0.0
        recent[rng.random(cells) < 0.3] = 0.0
    ref[0] += 1.0  # neither side empty
    recent[0] += 1.0
    assert chi_square(ref, recent) == plain_chi_square(ref, recent)
    assert jensen_shannon(ref, recent) == plain_jensen_shannon(ref, recent)
