"""CountSpike, ErrorRatio, TailLatency and SeasonalBaseline specifics (the generic checks
are in test_detectors.py's conformance suite)."""

import pickle
import re
from datetime import UTC, datetime

import numpy as np
import pytest

from detectors import CountSpike, ErrorRatio, LatencySpike, SeasonalBaseline, TailLatency
from detectors.base import Detector
from fireline.errors import DetectorError


def raises(detector: Detector, values, size: int = 500, times=None) -> list[int]:
    """Positions where the alarm rose, feeding micro-batches of ``size``."""
    values = np.asarray(values, dtype=np.float64)
    found = []
    for start in range(0, values.size, size):
        chunk = slice(start, start + size)
        stamps = None if times is None else times[chunk]
        found += [
            start + c.index for c in detector.update(values[chunk], stamps).changes if c.raised
        ]
    return found


# --- CountSpike ---


def test_count_spike__zero_heavy_series_does_not_alarm_and_a_burst_does():
    rng = np.random.default_rng(1)
    quiet = rng.poisson(0.05, 20_000)  # 95% zeros, now and then one error
    detector = CountSpike()
    assert raises(detector, quiet) == []
    assert raises(detector, [4, 6, 5, 7]) == [2]


def test_count_spike__overdispersed_counts_do_not_alarm_where_poisson_would():
    rng = np.random.default_rng(2)
    bursty = rng.negative_binomial(1.0, 1.0 / 21.0, 20_000)  # mean 20, sd ~20
    assert len(raises(CountSpike(), bursty)) <= 2
    # The same counts against a fixed Poisson law would alarm all the time.
    detector = CountSpike()
    detector.update(rng.poisson(20, 200))
    assert raises(detector, [60, 65, 70]) == [2]


def test_count_spike__fewer_errors_never_alarm():
    detector = CountSpike().update(np.full(200, 40.0))
    assert raises(detector, np.zeros(300)) == []


def test_count_spike__lasting_level_becomes_the_baseline():
    rng = np.random.default_rng(3)
    detector = CountSpike(window=40, adapt_after=60).update(rng.poisson(2, 200))
    changes = [
        (c.index, c.raised, c.adapted) for c in detector.update(rng.poisson(30, 200)).changes
    ]
    assert changes[:2] == [(2, True, False), (61, False, True)]
    assert detector.baseline == pytest.approx(30, rel=0.2)
    assert not detector.update(rng.poisson(30, 200)).alarm


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": 5}, "window must be at least 10; got 5."),
        ({"p_value": 0.7}, "p_value must be less than 0.5; got 0.7."),
        ({"p_value": 0}, "p_value must be positive; got 0."),
        ({"min_delta": -1}, "min_delta must not be negative; got -1."),
        ({"warmup": 500}, "warmup must be at most window (120); got 500."),
        ({"adapt_after": 2}, "adapt_after must be larger than consecutive (3); got 2."),
    ],
)
def test_count_spike__rejects_bad_parameters(kwargs, message):
    with pytest.raises(DetectorError, match=f"^CountSpike: {re.escape(message)}$"):
        CountSpike(**kwargs)


# --- ErrorRatio ---


def ratios(n: int, requests: float, rate: float, seed: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    trials = np.maximum(rng.poisson(requests, n), 1)
    return rng.binomial(trials, rate) / trials


def test_error_ratio__learns_the_effective_sample_size_from_dispersion():
    for requests in (50, 2000):
        detector = ErrorRatio().update(ratios(3000, requests, 0.02))
        assert detector.effective_trials == pytest.approx(requests, rel=0.25)


def test_error_ratio__same_ratio_is_an_incident_at_high_traffic_and_noise_at_low():
    rising = np.r_[np.full(10, 0.035)]  # from 2% to 3.5%
    busy = ErrorRatio().update(ratios(1000, 5000, 0.02))
    quiet = ErrorRatio().update(ratios(1000, 40, 0.02))
    assert busy.update(rising).alarm
    assert not quiet.update(rising).alarm


def test_error_ratio__low_traffic_zero_heavy_series_rarely_alarms():
    stream = ratios(50_000, 5, 0.01, seed=5)  # mostly 0, sometimes 0.2, 0.25, 0.5
    assert float(np.mean(stream == 0)) > 0.9
    # Three intervals in a row with errors happen about once in 10,000 intervals at
    # 1% of ~5 requests; one error each is no evidence of a rise (min_errors).
    assert raises(ErrorRatio(), stream) == []
    assert len(raises(ErrorRatio(min_errors=0), stream)) >= 2  # what min_errors removes


def test_error_ratio__a_rise_at_low_traffic_is_still_caught():
    for seed in range(3):
        stream = np.r_[ratios(3000, 5, 0.01, seed), ratios(100, 5, 0.5, seed + 10)]
        found = raises(ErrorRatio(), stream)
        assert found and 3000 <= found[0] <= 3010, found  # half the requests failing


def test_error_ratio__a_falling_ratio_never_alarms_and_out_of_range_values_are_clipped():
    detector = ErrorRatio().update(ratios(500, 2000, 0.05))
    assert raises(detector, np.zeros(200)) == []
    detector = ErrorRatio().update(ratios(500, 2000, 0.05))
    assert raises(detector, [7.0, 5.0, 3.0]) == [2]  # read as 100%
    assert detector.changes[0].observed == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_delta": 1.0}, "min_delta must be less than 1; got 1.0."),
        ({"max_trials": 1}, "max_trials must be at least 2; got 1."),
        ({"min_errors": -1}, "min_errors must not be negative; got -1."),
        ({"consecutive": 0}, "consecutive must be at least 1; got 0."),
    ],
)
def test_error_ratio__rejects_bad_parameters(kwargs, message):
    with pytest.raises(DetectorError, match=f"^ErrorRatio: {re.escape(message)}$"):
        ErrorRatio(**kwargs)


# --- TailLatency ---


def tail_regression(seed: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    before = rng.lognormal(np.log(40), 0.3, 30_000)
    after = rng.lognormal(np.log(40), 0.3, 10_000)
    after[rng.random(after.size) < 0.03] *= 8
    return before, after


def test_tail_latency__catches_a_tail_regression_the_median_and_a_point_detector_miss():
    before, after = tail_regression()
    assert np.median(after) / np.median(before) < 1.05
    samples = np.concatenate([before, after])
    found = raises(TailLatency(), samples)
    assert len(found) == 1 and 30_000 <= found[0] < 30_600
    assert raises(LatencySpike(), samples) == []


def test_tail_latency__no_alarm_on_a_long_stationary_stream():
    before, _ = tail_regression(seed=7)
    rng = np.random.default_rng(7)
    assert raises(TailLatency(), np.concatenate([before, rng.permutation(before)])) == []


def test_tail_latency__window_value_is_the_numpy_quantile_of_the_window():
    rng = np.random.default_rng(8)
    samples = rng.exponential(30, 1234)
    detector = TailLatency(quantile=0.95, window=100, step=100).update(samples)
    # Tumbling windows: the last value is that of samples 1100..1199.
    assert detector.last == pytest.approx(np.quantile(samples[1100:1200], 0.95))


def test_tail_latency__state_stays_bounded():
    rng = np.random.default_rng(9)
    detector = TailLatency().update(rng.exponential(30, 100_000))
    assert len(pickle.dumps(detector)) < 20_000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quantile": 1.0}, "quantile must be less than 1; got 1.0."),
        ({"step": 600}, "step must be at most window (500); got 600."),
        ({"history": 2, "warmup": 2}, "history must be at least 5; got 2."),
        ({"warmup": 40}, "warmup must be at most history (30); got 40."),
        ({"min_ratio": 0.9}, "min_ratio must be at least 1; got 0.9."),
    ],
)
def test_tail_latency__rejects_bad_parameters(kwargs, message):
    with pytest.raises(DetectorError, match=f"^TailLatency: {re.escape(message)}$"):
        TailLatency(**kwargs)


# --- SeasonalBaseline ---

DAY = 86_400.0


def nightly_job(days: int = 10, seed: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """5-minute CPU samples: 30% all day, 85% during a nightly job at 02:00 UTC."""
    rng = np.random.default_rng(seed)
    times = np.arange(0, days * DAY, 300.0)
    hour = times // 3600 % 24
    return times, np.where(hour == 2, 85.0, 30.0) + rng.normal(0, 2, times.size)


def test_seasonal__daily_peak_alarms_only_while_its_hour_learns_unlike_a_flat_baseline():
    times, cpu = nightly_job()
    seasonal = [times[i] // DAY for i in raises(SeasonalBaseline(), cpu, 60, times)]
    flat = [times[i] // DAY for i in raises(LatencySpike(), cpu, 60)]
    assert seasonal == [0, 1]  # hour 2 has its 20 points after two nights
    assert flat == list(range(10))  # a non-seasonal baseline flags every night's job


def test_seasonal__real_anomaly_at_an_unusual_hour_alarms():
    times, cpu = nightly_job()
    at_14h = (times >= 8 * DAY + 14 * 3600) & (times < 8 * DAY + 15 * 3600)
    cpu[at_14h] = 85.0
    found = raises(SeasonalBaseline(), cpu, 60, times)
    assert [times[i] for i in found[2:]] == [8 * DAY + 14 * 3600 + 600]  # third hot point


def test_seasonal__a_drop_alarms_unless_only_rises_are_watched():
    times, cpu = nightly_job()
    cpu[(times >= 5 * DAY + 10 * 3600) & (times < 5 * DAY + 11 * 3600)] = 0.0
    assert len(raises(SeasonalBaseline(), cpu, 60, times)) == 3
    assert len(raises(SeasonalBaseline(direction="up"), cpu, 60, times)) == 2


def test_seasonal__week_buckets_start_monday_and_follow_the_utc_offset():
    monday = datetime(2026, 11, 23, tzinfo=UTC).timestamp()
    assert datetime.fromtimestamp(monday, UTC).weekday() == 0
    times = monday + 60.0 * np.arange(30)  # Monday 00:00-00:29 UTC
    weekly = SeasonalBaseline(season="week", min_bucket_points=20).update(np.full(30, 7.0), times)
    assert weekly.bucket_baseline(0) == 7.0
    shifted = SeasonalBaseline(min_bucket_points=20, utc_offset_hours=2).update(
        np.full(30, 7.0), times
    )
    assert shifted.bucket_baseline(2) == 7.0 and np.isnan(shifted.bucket_baseline(0))


def test_seasonal__without_timestamps_points_are_interval_apart():
    detector = SeasonalBaseline(min_bucket_points=20, interval=3600.0).update(np.arange(48.0))
    assert detector.ready_buckets == 0  # 2 points per hour of day: none has 20
    detector = SeasonalBaseline(min_bucket_points=20, interval=60.0).update(np.arange(48.0))
    assert detector.ready_buckets == 1


def test_seasonal__state_stays_small_with_week_buckets():
    rng = np.random.default_rng(11)
    times = np.arange(0, 21 * DAY, 60.0)
    detector = SeasonalBaseline(season="week").update(rng.normal(50, 5, times.size), times)
    assert detector.ready_buckets == 168
    assert len(pickle.dumps(detector)) < 10_000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"season": "month"}, "season must be 'day' or 'week'; got 'month'."),
        ({"min_bucket_points": 2}, "min_bucket_points must be at least 5; got 2."),
        ({"direction": "sideways"}, "direction must be 'both', 'up' or 'down'; got 'sideways'."),
        ({"utc_offset_hours": 30}, "utc_offset_hours must be less than 24; got 30."),
        ({"utc_offset_hours": -24}, "utc_offset_hours must be greater than -24; got -24."),
        ({"interval": 0}, "interval must be positive; got 0."),
    ],
)
def test_seasonal__rejects_bad_parameters(kwargs, message):
    with pytest.raises(DetectorError, match=f"^SeasonalBaseline: {re.escape(message)}$"):
        SeasonalBaseline(**kwargs)
