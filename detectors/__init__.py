"""Online detectors: plain, fast, serialisable objects with no Kafka and no Faust.

Every detector is a :class:`Detector` (one ``update(values, timestamps=None)``), of
one of two families: :class:`MetricDetector` (a metric series, point by point) and
:class:`DriftDetector` (recent values against a reference). ``REGISTRY`` names every
detector class; the conformance tests run over all of it.
"""

from typing import Any

from detectors.base import Detector
from detectors.drift.base import DriftDetector
from detectors.drift.chi_square import ChiSquareDrift
from detectors.drift.jensen_shannon import JensenShannonDrift
from detectors.drift.ks import KSDrift
from detectors.drift.mean_shift import MeanShift
from detectors.drift.out_of_range import OutOfRange
from detectors.drift.psi import PSIDrift
from detectors.drift.rate_increase import RateIncrease
from detectors.drift.unseen_categories import UnseenCategories
from detectors.drift.wasserstein import WassersteinDrift
from detectors.metric.base import MetricDetector
from detectors.metric.count_spike import CountSpike
from detectors.metric.ensemble import MetricEnsemble
from detectors.metric.error_ratio import ErrorRatio
from detectors.metric.latency_spike import LatencySpike
from detectors.metric.seasonal import SeasonalBaseline
from detectors.metric.tail_latency import TailLatency

REGISTRY: dict[str, type[Detector[Any]]] = {
    cls.__name__: cls
    for cls in (
        LatencySpike,
        MetricEnsemble,
        CountSpike,
        ErrorRatio,
        TailLatency,
        SeasonalBaseline,
        KSDrift,
        PSIDrift,
        WassersteinDrift,
        MeanShift,
        OutOfRange,
        RateIncrease,
        ChiSquareDrift,
        JensenShannonDrift,
        UnseenCategories,
    )
}

__all__ = [
    "REGISTRY",
    "ChiSquareDrift",
    "CountSpike",
    "Detector",
    "DriftDetector",
    "ErrorRatio",
    "JensenShannonDrift",
    "KSDrift",
    "LatencySpike",
    "MeanShift",
    "MetricDetector",
    "MetricEnsemble",
    "OutOfRange",
    "PSIDrift",
    "RateIncrease",
    "SeasonalBaseline",
    "TailLatency",
    "UnseenCategories",
    "WassersteinDrift",
]
