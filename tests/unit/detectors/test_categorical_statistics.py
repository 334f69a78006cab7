"""Chi-square and Jensen-Shannon in fewer NumPy calls, one table or many: the very same values."""

import numpy as np
import pytest

from detectors.drift.chi_square import ChiSquareDrift, chi_square
from detectors.drift.jensen_shannon import JensenShannonDrift, jensen_shannon


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


@pytest.mark.parametrize("cls", [ChiSquareDrift, JensenShannonDrift], ids=lambda c: c.__name__)
@pytest.mark.parametrize("seed", range(20))
def test_the_statistics_of_many_tables_at_once_equal_each_table_alone_to_the_bit(cls, seed):
    """Rows of one width, with every pattern of empty cells: as the scalar statistic of each."""
    rng = np.random.default_rng(seed)
    rows, cells = int(rng.integers(1, 12)), int(rng.integers(1, 60))
    ref = rng.integers(0, 400, (rows, cells)).astype(np.float64)
    recent = rng.integers(0, 50, (rows, cells)).astype(np.float64)
    for g in range(rows):  # each row its own zeros: none, only "other", "other" in ref, anywhere
        zeros = g % 4
        if zeros in (1, 2):
            ref[g, -1] = 0.0
            recent[g, -1] = 0.0 if zeros == 1 else recent[g, -1]
        elif zeros == 3:
            ref[g, rng.random(cells) < 0.3] = 0.0
            recent[g, rng.random(cells) < 0.3] = 0.0
        ref[g, 0] += 1.0
        recent[g, 0] += 1.0
    alone = chi_square if cls is ChiSquareDrift else jensen_shannon
    together = cls._table_statistics(ref, recent).tolist()
    assert together == [alone(ref[g], recent[g]) for g in range(rows)]


@pytest.mark.parametrize("cls", [ChiSquareDrift, JensenShannonDrift], ids=lambda c: c.__name__)
@pytest.mark.parametrize("other_empty", [False, True], ids=["no empty cell", "other empty"])
def test_tables_of_one_shape_take_the_short_way_to_the_same_bits(cls, other_empty):
    """Every row without an empty cell (or with only "other" empty): summed without a mask."""
    rng = np.random.default_rng(11)
    ref = rng.integers(1, 400, (9, 37)).astype(np.float64)
    recent = rng.integers(1, 50, (9, 37)).astype(np.float64)
    if other_empty:
        ref[:, -1] = recent[:, -1] = 0.0
    alone = chi_square if cls is ChiSquareDrift else jensen_shannon
    together = cls._table_statistics(ref, recent).tolist()
    assert together == [alone(ref[g], recent[g]) for g in range(9)]
