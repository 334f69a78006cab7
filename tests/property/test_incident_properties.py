"""Invariants of the incident manager under any interleaving of detections, ticks and humans."""

from __future__ import annotations

import contextlib
import itertools
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.incidents.manager import IncidentManager, SubjectState
from agents.settings import Incidents
from fireline.detections import Detection
from fireline.errors import IncidentStateError
from fireline.incident import Incident, Signal, Transition

POLICY = Incidents(
    correlation_window_s=60,
    quiet_period_s=20,
    signal_refresh_s=10,
    signal_expiry_s=40,
    reopen_window_s=120,
    flap_threshold=3,
    flap_window_s=200,
)
SERIES = ["latency_ms{service=a}", "latency_ms{service=b}", "errors{service=a}"]

steps = st.lists(
    st.tuples(
        st.sampled_from(["raise", "refresh", "clear", "tick", "ack", "resolve"]),
        st.sampled_from(SERIES),
        st.floats(min_value=0.5, max_value=30.0),  # seconds since the previous step
        st.floats(min_value=60.0, max_value=600.0),  # observed (baseline 50)
    ),
    max_size=60,
)


def detection(kind: str, series: str, at: float, observed: float) -> Detection:
    signal = Signal(
        detector="LatencySpike", series=series, observed=observed, baseline=50.0, score=0.9, at=at
    )
    return Detection(
        kind="latency_spike",
        series=series,
        labels={"service": "svc", "model": "m"},
        signal=signal,
        cleared=kind == "clear",
        refresh=kind == "refresh",
    )


def run(script: list[tuple[str, str, float, float]]) -> list[Incident]:
    """Play the script; check after every step that no problem is open twice."""
    manager = IncidentManager(POLICY)
    state = SubjectState()
    now = 1000.0
    events: list[Incident] = []
    for kind, series, gap, observed in script:
        now += gap
        if kind == "tick":
            events += manager.tick(state, now, [])
        elif kind in {"ack", "resolve"}:
            open_ = [t.incident.id for t in state.tracked if t.incident.is_open]
            act = manager.acknowledge if kind == "ack" else manager.resolve
            with contextlib.suppress(IncidentStateError):  # e.g. acknowledged twice
                events += [act(state, open_[0], "prop", now)] if open_ else []
        else:
            events += manager.on_detection(state, detection(kind, series, now, observed), now, [])
        # The table round trip between inputs changes nothing.
        state = SubjectState.model_validate_json(state.model_dump_json())
        open_fingerprints = [
            fp for t in state.tracked if t.incident.is_open for fp in t.incident.fingerprints
        ]
        assert len(open_fingerprints) == len(set(open_fingerprints)), "a problem open twice"
    return events


@settings(max_examples=300, deadline=None)
@given(steps)
def test_incident_invariants(script: list[tuple[str, str, float, float]]) -> None:
    events = run(script)
    by_id: dict[str, list[Incident]] = defaultdict(list)
    for event in events:
        by_id[event.id].append(event)
    for history in by_id.values():
        assert [e.revision for e in history] == list(range(1, len(history) + 1))
        assert history[0].transition is Transition.OPENED
        for before, after in itertools.pairwise(history):
            if after.transition is Transition.REOPENED:
                assert not before.is_open
            else:
                assert after.severity.rank >= before.severity.rank  # peak severity
            if after.transition is Transition.RESOLVED:
                assert before.is_open
