"""The incident manager: detections in, incident state changes out. Pure logic, no Kafka.

State is kept per subject (a model or a service; see :mod:`fireline.detections`)
in a :class:`SubjectState` that the worker stores in a Faust table. Rules:

- **Dedup**: a detection whose fingerprint is already in an open incident
  updates it (count, last seen, peak severity); it never opens a second one.
- **Correlation**: a detection on a subject with an open incident active within
  ``correlation_window_s`` joins that incident as another signal.
- **Lifecycle**: an incident resolves once all its signals cleared (or expired,
  not re-sent for ``signal_expiry_s``) and ``quiet_period_s`` passed; a
  fingerprint raising more than ``flap_threshold`` times in ``flap_window_s`` is
  flapping (no notifications); severity escalates; a resolved incident that
  recurs within ``reopen_window_s`` is reopened, not duplicated.
- **Silences** mark matching incidents; they are recorded, not notified.
- **Deploys**: a ``version_regression`` names its cause itself: the worse
  version going live, however long ago (the change record when the subject
  still has it), and the incident keeps the latest comparison of both versions.

Times: event time (the detection's ``at``) for what the incident reports;
the worker's clock (``now``) for timers, so late or replayed events cannot
resolve or expire anything early.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from agents.incidents.silences import Silence, silence_for
from agents.settings import Incidents as IncidentPolicy
from fireline.detections import Detection
from fireline.durations import human_duration
from fireline.errors import IncidentStateError
from fireline.incident import (
    Change,
    Evidence,
    Incident,
    Resolution,
    Severity,
    Status,
    Transition,
    fingerprint,
    incident_id,
)


class Tracked(BaseModel):
    """An incident with the bookkeeping the manager needs and playbooks do not."""

    incident: Incident
    active: dict[str, float] = Field(default_factory=dict)  # fingerprint → last fired (now)
    activity: float  # worker time of the last raise, refresh or clear
    expired: bool = False  # some signal vanished without clearing
    new_normal: bool = False  # some signal cleared by adapting to a new level


class SubjectState(BaseModel):
    """Everything the manager keeps about one subject; stored in the incidents table."""

    partition: int = -1  # the table partition it lives in, for partition-wise ticks
    # Offset of the last fireline.detections record folded in (the subject's key fixes
    # its partition), stored with the state it produced: a record redelivered after a
    # crash or a rebalance, or handed over in-process first, is never applied twice.
    applied: int = -1
    # ...in this partition: an offset orders records of its own partition only (a
    # producer with another partitioner may send a subject's record elsewhere).
    applied_partition: int = -1
    tracked: list[Tracked] = Field(default_factory=list)  # open, and recently resolved
    raises: dict[str, list[float]] = Field(default_factory=dict)  # fingerprint → raise times
    changes: list[Change] = Field(default_factory=list)  # recent, oldest first (event time)
    # Worker time each change arrived: kept for change_window_s of *worker* time, so
    # replayed or late events (old event times) are not dropped on the next tick.
    changes_received: list[float] = Field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing worth keeping: the table entry can go."""
        return not self.tracked and not self.raises and not self.changes

    def find(self, incident_id_: str) -> Tracked | None:
        """The tracked incident with this id."""
        return next((t for t in self.tracked if t.incident.id == incident_id_), None)


class IncidentManager:
    """Applies inputs to a subject's state; returns the incident events to publish."""

    def __init__(self, policy: IncidentPolicy) -> None:
        self.policy = policy

    # -- detections ---------------------------------------------------------------

    def on_detection(
        self, state: SubjectState, detection: Detection, now: float, silences: Sequence[Silence]
    ) -> list[Incident]:
        """Fold one detection into the subject's incidents."""
        labels = detection.labels
        subject = labels.get("service") or labels.get("model") or detection.series
        key = detection.fingerprint or fingerprint(
            detection.kind, subject, labels.get("model_version"), detection.series
        )
        signal = detection.signal.model_copy(
            update={"kind": detection.kind, "fingerprint": key, "cleared": detection.cleared}
        )
        detection = detection.model_copy(update={"signal": signal})
        holder = next((t for t in state.tracked if t.incident.is_open and key in t.active), None)
        if detection.cleared:
            if holder is not None:
                del holder.active[key]
                holder.activity = now
                holder.incident = holder.incident.model_copy(
                    update={"last_seen": max(holder.incident.last_seen, signal.at)}
                )
                holder.new_normal |= detection.adapted
                self._add_signal(holder, detection)
            return []
        if detection.refresh and holder is not None:
            holder.active[key] = now
            holder.activity = now
            incident = holder.incident
            update: dict[str, object] = {"last_seen": max(incident.last_seen, signal.at)}
            if detection.comparison is not None:  # more events behind the figures: keep them
                update["comparison"] = detection.comparison
            severity = self._severity(detection)
            if severity.rank > incident.severity.rank:  # the signal grew while it lasted
                update["severity"] = severity
                holder.incident = incident.model_copy(update=update)
                self._add_signal(holder, detection)
                return [self._emit(holder, Transition.ESCALATED)]
            holder.incident = incident.model_copy(update=update)
            return []
        return self._on_raise(state, detection, key, now, silences)

    def _on_raise(
        self,
        state: SubjectState,
        detection: Detection,
        key: str,
        now: float,
        silences: Sequence[Silence],
    ) -> list[Incident]:
        raises = [t for t in state.raises.get(key, []) if t > now - self.policy.flap_window_s]
        state.raises[key] = [*raises, now]
        tracked = self._incident_for(state, key, now)
        if tracked is None:
            tracked = self._open(state, detection, key, now)
            transition = Transition.OPENED
        elif tracked.incident.is_open:
            transition = Transition.UPDATED
        else:
            transition = Transition.REOPENED
            tracked.expired = tracked.new_normal = False
            tracked.incident = tracked.incident.model_copy(
                update={
                    "status": Status.OPEN,
                    "resolution": None,
                    "resolved_at": None,
                    "resolved_by": None,
                    "acknowledged_by": None,
                    "acknowledged_at": None,
                    "reopened": tracked.incident.reopened + 1,
                }
            )
        before = tracked.incident.severity
        tracked.active[key] = now
        tracked.activity = now
        incident = tracked.incident
        severity = max(before, self._severity(detection), key=lambda s: s.rank)
        update: dict[str, object] = {
            "last_seen": max(incident.last_seen, detection.signal.at),
            "severity": severity,
            "flapping": incident.flapping or self._flapping(state, incident, key),
        }
        if transition is not Transition.OPENED:
            update["count"] = incident.count + 1
        if detection.comparison is not None:
            update["comparison"] = detection.comparison
        if key not in incident.fingerprints:
            update["fingerprints"] = [*incident.fingerprints, key]
        if detection.evidence:
            update["evidence"] = [
                *(e for e in incident.evidence if e.series != detection.series),
                Evidence(
                    series=detection.series,
                    baseline=detection.signal.baseline,
                    detected_at=detection.signal.at,
                    points=detection.evidence,
                ),
            ]
        tracked.incident = incident.model_copy(update=update)
        tracked.incident = tracked.incident.model_copy(
            update={"silenced_by": silence_for(tracked.incident, list(silences), now)}
        )
        self._add_signal(tracked, detection)
        if transition is Transition.UPDATED and severity.rank > before.rank:
            transition = Transition.ESCALATED
        return [self._emit(tracked, transition)]

    def _incident_for(self, state: SubjectState, key: str, now: float) -> Tracked | None:
        """The incident a raise belongs to: dedup, then correlation, then reopening."""
        open_ = [t for t in state.tracked if t.incident.is_open]
        for tracked in open_:
            if key in tracked.incident.fingerprints:
                return tracked
        window = self.policy.correlation_window_s
        recent = [t for t in open_ if now - t.activity <= window]
        if recent:
            return max(recent, key=lambda t: t.activity)
        for tracked in reversed(state.tracked):
            incident = tracked.incident
            if (
                not incident.is_open
                and key in incident.fingerprints
                and now - tracked.activity <= self.policy.reopen_window_s
            ):
                return tracked
        return None

    def _open(self, state: SubjectState, detection: Detection, key: str, now: float) -> Tracked:
        signal = detection.signal
        labels = detection.labels
        earliest = signal.at - self.policy.change_window_s
        changes = [c for c in state.changes if earliest <= c.at <= signal.at]
        cause = None
        if changes:
            latest = changes[-1]
            cause = f"{latest.describe()} {human_duration(signal.at - latest.at)} before"
        if detection.comparison is not None:
            changes, cause = _deploy_cause(state.changes, changes, detection)
        related = [t.incident.id for t in state.tracked]
        incident = Incident(
            id=incident_id(key, signal.at),
            fingerprint=key,
            kind=detection.kind,
            transition=Transition.OPENED,
            status=Status.OPEN,
            severity=Severity.INFO,
            title=f"{_kind_words(detection.kind)} on "
            f"{labels.get('service') or labels.get('model') or detection.series}",
            service=labels.get("service"),
            model=labels.get("model"),
            model_version=labels.get("model_version"),
            subject_key=detection.subject_key,
            first_seen=signal.at,
            last_seen=signal.at,
            revision=0,  # _emit makes the opened event revision 1
            labels=dict(labels),
            changes=changes,
            likely_cause=cause,
            related=related,
        )
        tracked = Tracked(incident=incident, activity=now)
        state.tracked.append(tracked)
        return tracked

    # -- changes, time and humans --------------------------------------------------

    def on_change(self, state: SubjectState, change: Change, now: float) -> list[Incident]:
        """Remember a change; it is linked to incidents that start within the change window."""
        if change not in state.changes:
            known = sorted(
                [*zip(state.changes, state.changes_received, strict=True), (change, now)],
                key=lambda pair: pair[0].at,
            )[-20:]
            state.changes = [c for c, _ in known]
            state.changes_received = [r for _, r in known]
        return []

    def tick(self, state: SubjectState, now: float, silences: Sequence[Silence]) -> list[Incident]:
        """Expire lost signals, auto-resolve quiet incidents, update flapping and silences."""
        events: list[Incident] = []
        policy = self.policy
        for tracked in state.tracked:
            if not tracked.incident.is_open:
                continue
            for key, fired in list(tracked.active.items()):
                if now - fired > policy.signal_expiry_s:
                    del tracked.active[key]
                    tracked.expired = True
            incident = tracked.incident
            flapping = incident.flapping and any(
                self._flapping(state, incident, key, now) for key in incident.fingerprints
            )
            silenced_by = silence_for(incident, list(silences), now)
            changed = (flapping, silenced_by) != (incident.flapping, incident.silenced_by)
            if changed:
                tracked.incident = incident.model_copy(
                    update={"flapping": flapping, "silenced_by": silenced_by}
                )
            if not tracked.active and now - tracked.activity >= policy.quiet_period_s:
                events.append(self._resolve(tracked, now, _resolution(tracked), None))
            elif changed:
                events.append(self._emit(tracked, Transition.UPDATED))
        self._forget_old(state, now)
        return events

    def acknowledge(self, state: SubjectState, incident_id_: str, by: str, now: float) -> Incident:
        """A human took the incident."""
        tracked = self._require_open(state, incident_id_)
        if tracked.incident.status is Status.ACKNOWLEDGED:
            raise IncidentStateError(f"incident {incident_id_} is already acknowledged")
        tracked.incident = tracked.incident.model_copy(
            update={"status": Status.ACKNOWLEDGED, "acknowledged_by": by, "acknowledged_at": now}
        )
        return self._emit(tracked, Transition.ACKNOWLEDGED)

    def escalate(self, state: SubjectState, incident_id_: str, by: str) -> Incident:
        """A playbook's remediation failed: the incident becomes critical, `escalated`."""
        tracked = self._require_open(state, incident_id_)
        labels = {**tracked.incident.labels, "escalated_by": by}
        tracked.incident = tracked.incident.model_copy(
            update={"severity": Severity.CRITICAL, "labels": labels}
        )
        return self._emit(tracked, Transition.ESCALATED)

    def resolve(self, state: SubjectState, incident_id_: str, by: str, now: float) -> Incident:
        """A human resolved the incident; a recurrence reopens it."""
        tracked = self._require_open(state, incident_id_)
        tracked.active.clear()
        return self._resolve(tracked, now, Resolution.MANUAL, by)

    # -- helpers ----------------------------------------------------------------------

    def _require_open(self, state: SubjectState, incident_id_: str) -> Tracked:
        tracked = state.find(incident_id_)
        if tracked is None:
            raise IncidentStateError(f"no incident {incident_id_} on this subject")
        if not tracked.incident.is_open:
            raise IncidentStateError(f"incident {incident_id_} is already resolved")
        return tracked

    def _resolve(
        self, tracked: Tracked, now: float, resolution: Resolution, by: str | None
    ) -> Incident:
        tracked.activity = now
        tracked.incident = tracked.incident.model_copy(
            update={
                "status": Status.RESOLVED,
                "resolution": resolution,
                "resolved_at": now,
                "resolved_by": by,
            }
        )
        return self._emit(tracked, Transition.RESOLVED)

    def _emit(self, tracked: Tracked, transition: Transition) -> Incident:
        incident = tracked.incident.model_copy(
            update={"transition": transition, "revision": tracked.incident.revision + 1}
        )
        tracked.incident = incident
        return incident

    def _add_signal(self, tracked: Tracked, detection: Detection) -> None:
        signals = [*tracked.incident.signals, detection.signal][-self.policy.max_signals :]
        tracked.incident = tracked.incident.model_copy(update={"signals": signals})

    def _flapping(
        self, state: SubjectState, incident: Incident, key: str, now: float | None = None
    ) -> bool:
        times = state.raises.get(key, [])
        if now is not None:
            times = [t for t in times if t > now - self.policy.flap_window_s]
        return len(times) > self.policy.flap_threshold

    def _severity(self, detection: Detection) -> Severity:
        if detection.severity is not None:  # the source judged it (an alert's severity label)
            return detection.severity
        signal = detection.signal
        if signal.baseline > 0 and signal.observed / signal.baseline >= self.policy.critical_ratio:
            return Severity.CRITICAL
        return Severity.WARNING

    def _forget_old(self, state: SubjectState, now: float) -> None:
        policy = self.policy
        keep_for = max(policy.reopen_window_s, policy.correlation_window_s)
        state.tracked = [
            t for t in state.tracked if t.incident.is_open or now - t.activity <= keep_for
        ]
        for key, times in list(state.raises.items()):
            recent = [t for t in times if t > now - policy.flap_window_s]
            if recent:
                state.raises[key] = recent
            else:
                del state.raises[key]
        if not state.tracked:  # changes only matter to incidents opening soon after
            horizon = now - policy.change_window_s
            kept = [
                (c, r)
                for c, r in zip(state.changes, state.changes_received, strict=True)
                if r >= horizon
            ]
            state.changes = [c for c, _ in kept]
            state.changes_received = [r for _, r in kept]


def _deploy_cause(
    known: Sequence[Change], linked: list[Change], detection: Detection
) -> tuple[list[Change], str]:
    """A version regression's changes and cause: the worse version going live.

    The subject's record of that deploy when it still has one (linked even when
    it is older than the change window: the comparison says it is the cause),
    else the comparison's own words.
    """
    comparison = detection.comparison
    assert comparison is not None
    model = detection.labels.get("model") or detection.series
    candidate = comparison.candidate_version
    deploy = next((c for c in reversed(known) if c.model == model and c.version == candidate), None)
    at = detection.signal.at
    if deploy is None:
        went = "started serving beside" if comparison.mode == "canary" else "went live after"
        return linked, f"{model} v{candidate} {went} v{comparison.baseline_version}"
    if deploy not in linked:
        linked = sorted([*linked, deploy], key=lambda c: c.at)
    return linked, f"{deploy.describe()} {human_duration(max(0.0, at - deploy.at))} before"


def _resolution(tracked: Tracked) -> Resolution:
    if tracked.expired:
        return Resolution.QUIET
    return Resolution.NEW_NORMAL if tracked.new_normal else Resolution.RECOVERED


def _kind_words(kind: str) -> str:
    """A kind as the start of a title, its case kept (alert names are CamelCase).

    >>> _kind_words("latency_spike"), _kind_words("alert:HighErrorRate")
    ('Latency spike', 'Alert: HighErrorRate')
    """
    words = kind.replace("_", " ").replace(":", ": ")
    return words[:1].upper() + words[1:]
