"""Online detectors: plain, fast, serialisable objects with no Kafka and no Faust.

``REGISTRY`` names every detector class; the conformance tests run over all of it.
"""

from detectors.base import Detector
from detectors.chi_square import ChiSquareDrift
from detectors.count_spike import CountSpike
from detectors.drift_base import DriftDetector
from detectors.ensemble import MetricEnsemble
from detectors.error_ratio import ErrorRatio
from detectors.jensen_shannon import JensenShannonDrift
from detectors.ks import KSDrift
from detectors.latency_spike import LatencySpike
from detectors.mean_shift import MeanShift
from detectors.out_of_range import OutOfRange
from detectors.psi import PSIDrift
from detectors.rate_increase import RateIncrease
from detectors.seasonal import SeasonalBaseline
from detectors.tail_latency import TailLatency
from detectors.unseen_categories import UnseenCategories
from detectors.wasserstein import WassersteinDrift

REGISTRY: dict[str, type[Detector] | type[DriftDetector]] = {
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
    "MetricEnsemble",
    "OutOfRange",
    "PSIDrift",
    "RateIncrease",
    "SeasonalBaseline",
    "TailLatency",
    "UnseenCategories",
    "WassersteinDrift",
]
