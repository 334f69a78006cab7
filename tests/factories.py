"""Builders of test objects shared by unit and integration tests."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import numpy as np

import detectors
from detectors.base import Detector
from fireline.incident import Incident, Severity, Status, Transition


def make_incident(**overrides: Any) -> Incident:
    """An open latency incident of model fraud v3 on service fraud-api."""
    fields: dict[str, Any] = {
        "id": "inc-0123456789abcdef",
        "fingerprint": "latency_spike|fraud-api|3|latency_ms",
        "kind": "latency_spike",
        "transition": Transition.OPENED,
        "status": Status.OPEN,
        "severity": Severity.CRITICAL,
        "title": "latency_ms of fraud-api is 5x its baseline",
        "service": "fraud-api",
        "model": "fraud",
        "model_version": "3",
        "first_seen": 1795255200.0,
        "last_seen": 1795255260.0,
    }
    return Incident(**(fields | overrides))


def detector_classes() -> list[type[Detector[Any]]]:
    """Every concrete detector class under detectors/, found by walking Detector's subclasses.

    Every module of the package is imported first, so a detector added later is
    covered without being listed anywhere.
    """
    for module in pkgutil.walk_packages(detectors.__path__, "detectors."):
        importlib.import_module(module.name)
    found: list[type[Detector[Any]]] = []
    pending: list[type[Detector[Any]]] = [Detector]
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if not inspect.isabstract(cls) and cls not in found:
            found.append(cls)
    return sorted(found, key=lambda c: c.__name__)


def detector_stream(cls: type[Detector[Any]], n: int, seed: int = 0) -> np.ndarray:
    """``n`` values of ``cls``'s input kind with a change in the second half."""
    rng = np.random.default_rng(seed)
    before, after = n // 2, n - n // 2
    if cls.input_kind == "binary":
        return np.concatenate([rng.random(before) < 0.05, rng.random(after) < 0.5]).astype(float)
    if cls.input_kind == "categorical":
        return np.concatenate(
            [rng.choice(["a", "b", "c"], before), rng.choice(["a", "d", "e"], after)]
        )
    return np.concatenate([rng.normal(50, 3, before), rng.normal(90, 10, after)])
