"""Numenta Anomaly Benchmark (NAB v1.1) scoring, written from NAB's published description.

Scores a detector's per-row anomaly scores against NAB's labelled windows: each window
earns up to A_TP for an early detection (or costs A_FN if missed), each false positive
costs up to A_FP, one threshold per profile is tuned over the whole corpus, and the
total is normalised so the null detector scores 0 and a perfect one 100.

Results are aligned with the data by row, never by timestamp: some NAB files repeat
timestamps and one steps back in time.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

PROBATION_PERCENT = 0.15
# NAB caps probation at 15% of a 5000-row file.
MAX_PROBATION = math.floor(PROBATION_PERCENT * 5000)
# Above every valid score, so this threshold means "no detections at all".
NO_DETECTION_THRESHOLD = 1.1


@dataclass(frozen=True)
class Profile:
    """A scoring profile: weights of a true positive, a false positive and a miss."""

    name: str
    tp: float
    fp: float
    fn: float


# eq=False: field-wise equality is meaningless (and raises) with a numpy array field.
@dataclass(frozen=True, eq=False)
class LabelledFile:
    """One NAB data file with its anomaly windows as inclusive row-index ranges."""

    name: str
    timestamps: list[str]
    values: FloatArray
    windows: list[tuple[int, int]]


@dataclass(frozen=True)
class FileScore:
    """Raw score and detection counts of one file at one threshold."""

    raw: float
    tp: int
    fp: int
    fn: int


@dataclass(frozen=True)
class ProfileResult:
    """Corpus score of a detector under one profile, at its best global threshold."""

    profile: str
    threshold: float
    raw: float
    normalized: float
    tp: int
    fp: int
    fn: int


def scaled_sigmoid(y: float) -> float:
    """NAB's scaled sigmoid: 2 / (1 + e^(5y)) - 1, and -1 past y = 3.

    >>> round(scaled_sigmoid(-1.0), 5), scaled_sigmoid(0.0), scaled_sigmoid(4.0)
    (0.98661, 0.0, -1.0)
    """
    return float(_sigmoid(np.array([y], dtype=np.float64))[0])


def _sigmoid(y: FloatArray) -> FloatArray:
    # Clip before exp so far-away rows cannot overflow (warnings are errors in tests).
    curve = 2.0 / (1.0 + np.exp(5.0 * np.minimum(y, 3.0))) - 1.0
    return np.where(y > 3.0, -1.0, curve)


def probation_length(n_rows: int) -> int:
    """Rows at the start of a file that are never scored (detectors are still learning)."""
    return min(math.floor(PROBATION_PERCENT * n_rows), MAX_PROBATION)


def load_profiles(nab_dir: Path) -> list[Profile]:
    """Read the cost matrices from ``config/profiles.json``, in file order."""
    raw = json.loads((nab_dir / "config" / "profiles.json").read_text())
    profiles = []
    for name, spec in raw.items():
        cost = spec["CostMatrix"]
        profiles.append(
            Profile(name, float(cost["tpWeight"]), float(cost["fpWeight"]), float(cost["fnWeight"]))
        )
    return profiles


def published_scores(nab_dir: Path) -> dict[str, dict[str, float]]:
    """NAB's published normalised scores: detector -> profile name -> score."""
    raw = json.loads((nab_dir / "results" / "final_results.json").read_text())
    return {det: {prof: float(s) for prof, s in by.items()} for det, by in raw.items()}


def window_rows(timestamps: list[str], start: str, end: str) -> tuple[int, int]:
    """Map a labelled ``[start, end]`` window to an inclusive row-index range.

    The start is the first row stamped ``start``; the end is the last row stamped ``end``
    at or after it. Timestamps are compared as instants, so ``...00`` and
    ``...00.000000`` match.

    Raises:
        ValueError: if either timestamp is missing (the end must not precede the start).
    """
    stamps = np.array(timestamps, dtype="datetime64[us]")
    starts = np.flatnonzero(stamps == np.datetime64(start, "us"))
    if starts.size == 0:
        raise ValueError(f"window start {start!r} is not a timestamp of the file")
    first = int(starts[0])
    ends = np.flatnonzero(stamps[first:] == np.datetime64(end, "us"))
    if ends.size == 0:
        raise ValueError(f"window end {end!r} does not occur at or after its start")
    return first, first + int(ends[-1])


def load_corpus(nab_dir: Path) -> list[LabelledFile]:
    """Load every data file and its windows, sorted by relative path.

    Raises:
        ValueError: if the data files and the label file do not list the same files.
    """
    labels = json.loads((nab_dir / "labels" / "combined_windows.json").read_text())
    data_dir = nab_dir / "data"
    paths = sorted(data_dir.glob("*/*.csv"))
    names = [p.relative_to(data_dir).as_posix() for p in paths]
    if sorted(labels) != names:
        raise ValueError("data files and labels/combined_windows.json disagree")
    corpus = []
    for name, path in zip(names, paths, strict=True):
        with path.open(newline="") as fh:
            rows = list(csv.reader(fh))[1:]  # skip the header
        stamps = [r[0] for r in rows]
        values = np.array([float(r[1]) for r in rows], dtype=np.float64)
        windows = [window_rows(stamps, s, e) for s, e in labels[name]]
        corpus.append(LabelledFile(name, stamps, values, windows))
    return corpus


def _check_windows(n_rows: int, windows: list[tuple[int, int]]) -> None:
    prev_end = -1
    for start, end in windows:
        if not prev_end < start <= end < n_rows:
            raise ValueError(f"windows must be sorted, disjoint and in range: {windows}")
        prev_end = end


def row_weights(n_rows: int, windows: list[tuple[int, int]], profile: Profile) -> FloatArray:
    """Score a detection at each row would earn; probation rows are 0.

    Inside a window of width W ending at row r, row i earns A_TP*s(y)/s(-1) with
    y = -(r - i + 1)/W, i.e. A_TP at the left edge, falling towards the right edge.
    Past a window, row i costs A_FP*s(|r - i|/(W - 1)), so a detection just after the
    window is cheap and a far one costs ~A_FP. Before any window a row costs A_FP.

    Raises:
        ValueError: if ``windows`` are not sorted, disjoint, inclusive row ranges.
    """
    _check_windows(n_rows, windows)
    weights = np.full(n_rows, -profile.fp, dtype=np.float64)
    rows = np.arange(n_rows, dtype=np.float64)
    edge = scaled_sigmoid(-1.0)
    for k, (start, end) in enumerate(windows):
        width = end - start + 1
        inside = rows[start : end + 1]
        weights[start : end + 1] = profile.tp * _sigmoid(-(end - inside + 1) / width) / edge
        stop = windows[k + 1][0] if k + 1 < len(windows) else n_rows
        if width > 1:  # a 1-row window has no scale; its trailing rows keep -A_FP
            after = rows[end + 1 : stop]
            weights[end + 1 : stop] = profile.fp * _sigmoid(np.abs(end - after) / (width - 1))
    weights[: probation_length(n_rows)] = 0.0
    return weights


def _window_ids(
    n_rows: int, windows: list[tuple[int, int]], first_id: int
) -> npt.NDArray[np.int64]:
    """Per-row index of the containing window (numbered from ``first_id``), or -1."""
    ids = np.full(n_rows, -1, dtype=np.int64)
    for k, (start, end) in enumerate(windows):
        ids[start : end + 1] = first_id + k
    return ids


def _checked_scores(file: LabelledFile, scores: dict[str, FloatArray]) -> FloatArray:
    if file.name not in scores:
        raise ValueError(f"no anomaly scores for {file.name}")
    s = np.asarray(scores[file.name], dtype=np.float64)
    if s.shape != (len(file.timestamps),):
        raise ValueError(f"{file.name}: {s.shape[0]} scores for {len(file.timestamps)} rows")
    if not np.all((s >= 0.0) & (s <= 1.0)):  # also rejects NaN
        raise ValueError(f"{file.name}: anomaly scores must lie in [0, 1]")
    return s


def score_file(
    file: LabelledFile, scores: FloatArray, profile: Profile, threshold: float
) -> FileScore:
    """Raw NAB score of one file when rows scoring ``>= threshold`` are detections.

    Each window adds its best (earliest) detection's weight, or -A_FN if it has none;
    every detection outside all windows adds its (negative) weight. Probation rows
    never count.
    """
    n = len(file.timestamps)
    weights = row_weights(n, file.windows, profile)
    detected = np.asarray(scores, dtype=np.float64) >= threshold
    detected[: probation_length(n)] = False
    ids = _window_ids(n, file.windows, 0)
    raw, tp = 0.0, 0
    for k in range(len(file.windows)):
        hits = weights[detected & (ids == k)]
        tp += int(hits.size > 0)
        raw += float(hits.max()) if hits.size else -profile.fn
    false_pos = detected & (ids < 0)
    raw += float(weights[false_pos].sum())
    return FileScore(raw, tp, int(false_pos.sum()), len(file.windows) - tp)


def sweep_thresholds(
    files: list[LabelledFile], scores: dict[str, FloatArray], profile: Profile
) -> tuple[FloatArray, FloatArray]:
    """Corpus raw score at every candidate threshold, in one O(N log N) sweep.

    Candidates are 1.1 (no detections) and each distinct anomaly score of a scored row,
    in decreasing order. Lowering the threshold to a value adds that value's rows: a
    false positive adds its weight, a window row raises its window's best weight.

    Returns:
        ``(thresholds, totals)``, both ordered from 1.1 downwards.
    """
    parts: list[tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]] = []
    n_windows = 0
    for file in files:
        s = _checked_scores(file, scores)
        n = len(file.timestamps)
        skip = probation_length(n)
        weights = row_weights(n, file.windows, profile)
        ids = _window_ids(n, file.windows, n_windows)
        parts.append((s[skip:], weights[skip:], ids[skip:]))
        n_windows += len(file.windows)
    score = np.concatenate([p[0] for p in parts])
    order = np.argsort(-score, kind="stable")
    score = score[order]
    weight = np.concatenate([p[1] for p in parts])[order]
    ids = np.concatenate([p[2] for p in parts])[order]

    delta = np.where(ids < 0, weight, 0.0)
    # Window rows, grouped by window but kept in sweep order: the gain of each is how far
    # it lifts its window's running best above the previous best (which starts at -A_FN).
    in_win = np.flatnonzero(ids >= 0)
    in_win = in_win[np.argsort(ids[in_win], kind="stable")]
    bounds = np.flatnonzero(np.diff(ids[in_win])) + 1
    for group in np.split(in_win, bounds):
        best = np.maximum.accumulate(np.concatenate([[-profile.fn], weight[group]]))
        delta[group] = np.diff(best)

    base = -profile.fn * n_windows
    # Rows sharing a score enter together, so evaluate only at the end of each run.
    ends = np.flatnonzero(np.diff(score) != 0)
    if score.size:
        ends = np.append(ends, score.size - 1)
    totals = np.concatenate([[base], base + np.cumsum(delta)[ends]])
    thresholds = np.concatenate([[NO_DETECTION_THRESHOLD], score[ends]])
    return thresholds, totals


def score_corpus(
    files: list[LabelledFile], scores: dict[str, FloatArray], profile: Profile
) -> ProfileResult:
    """Tune one global threshold for ``profile`` and return the normalised corpus score.

    Ties go to the highest threshold. The reported raw score and counts are recomputed
    file by file at that threshold, so they carry no accumulated rounding from the sweep.

    Raises:
        ValueError: if scores are missing, misaligned or outside [0, 1], or the corpus
            has no windows (the normalisation is then undefined).
    """
    n_windows = sum(len(f.windows) for f in files)
    if n_windows == 0:
        raise ValueError("corpus has no anomaly windows; the score cannot be normalised")
    thresholds, totals = sweep_thresholds(files, scores, profile)
    threshold = float(thresholds[int(np.argmax(totals))])
    per_file = [score_file(f, scores[f.name], profile, threshold) for f in files]
    raw = sum(p.raw for p in per_file)
    null, perfect = -profile.fn * n_windows, profile.tp * n_windows
    return ProfileResult(
        profile=profile.name,
        threshold=threshold,
        raw=raw,
        normalized=100.0 * (raw - null) / (perfect - null),
        tp=sum(p.tp for p in per_file),
        fp=sum(p.fp for p in per_file),
        fn=sum(p.fn for p in per_file),
    )
