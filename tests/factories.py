"""Builders of test objects shared by unit and integration tests."""

from __future__ import annotations

from typing import Any

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
