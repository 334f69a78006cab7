"""Online detectors: plain, fast, serialisable objects with no Kafka and no Faust."""

from detectors.base import Detector
from detectors.ensemble import MetricEnsemble
from detectors.latency_spike import LatencySpike

__all__ = ["Detector", "LatencySpike", "MetricEnsemble"]
