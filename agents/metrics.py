"""All of fireline's Prometheus metrics, built in one place against an injected registry."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from agents.kafka.lag import ConsumerLag
from fireline import __version__

# Seconds to process one micro-batch: sub-millisecond for small batches up to a
# few hundred milliseconds for a full one under load.
BATCH_SECONDS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Events per micro-batch: powers of two up to worker.max_poll_records (10,000) and beyond.
BATCH_SIZE_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384)


@dataclass(frozen=True)
class Metrics:
    """The metric bundle the agents update."""

    registry: CollectorRegistry
    events_consumed: Counter
    events_invalid: Counter
    batch_seconds: Histogram
    batch_size: Histogram
    detections: Counter
    incidents: Counter
    actions: Counter
    playbooks_loaded: Gauge
    playbook_reload_errors: Counter
    playbooks_rejected: Gauge
    series_tracked: Gauge
    series_released: Counter
    states_tombstoned: Counter
    step_records_pruned: Counter
    detection_to_incident: Histogram
    detector_state_unreadable: Counter
    label_joins: Counter
    incidents_open: Gauge
    action_seconds: Histogram
    silences_active: Gauge
    consumer_lag: ConsumerLag
    last_event: Gauge
    ready: Gauge
    readiness_checks: Gauge
    chat_calls: Counter
    offsets_reset: Counter
    model_performance: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry, prefix: str = "fireline") -> Metrics:
        """Register every metric on ``registry`` (never the global one)."""
        info = Info(f"{prefix}_build", "fireline build information.", registry=registry)
        info.info({"version": __version__})
        consumer_lag = ConsumerLag(f"{prefix}_consumer_lag")
        registry.register(consumer_lag)  # computed from the last refresh on each scrape
        return cls(
            registry=registry,
            events_consumed=Counter(
                f"{prefix}_events_consumed",
                "Events read from an input topic, valid or not.",
                ["topic"],
                registry=registry,
            ),
            events_invalid=Counter(
                f"{prefix}_events_invalid",
                "Events that broke their contract and went to the dead-letter topic.",
                ["topic", "reason"],
                registry=registry,
            ),
            batch_seconds=Histogram(
                f"{prefix}_batch_duration_seconds",
                "Time to validate and process one micro-batch.",
                ["topic"],
                buckets=BATCH_SECONDS_BUCKETS,
                registry=registry,
            ),
            batch_size=Histogram(
                f"{prefix}_batch_events",
                "Events per micro-batch.",
                ["topic"],
                buckets=BATCH_SIZE_BUCKETS,
                registry=registry,
            ),
            detections=Counter(
                f"{prefix}_detections",
                "Detector alarms that rose or cleared.",
                ["kind", "state"],
                registry=registry,
            ),
            incidents=Counter(
                f"{prefix}_incident_events",
                "Incident events published, by transition.",
                ["kind", "transition"],
                registry=registry,
            ),
            actions=Counter(
                f"{prefix}_actions",
                "Playbook steps by outcome (ok, failed, dry_run, skipped).",
                ["action", "outcome"],
                registry=registry,
            ),
            playbooks_loaded=Gauge(
                f"{prefix}_playbooks_loaded",
                "Playbooks in the current good set.",
                registry=registry,
            ),
            playbook_reload_errors=Counter(
                f"{prefix}_playbook_reload_errors",
                "Playbook directory loads rejected for errors.",
                registry=registry,
            ),
            playbooks_rejected=Gauge(
                f"{prefix}_playbooks_rejected",
                "1 while the playbook directory holds a rejected change (the last good set runs).",
                registry=registry,
            ),
            series_tracked=Gauge(
                f"{prefix}_series_tracked",
                "Metric series with a live detector on this worker.",
                registry=registry,
            ),
            series_released=Counter(
                f"{prefix}_series_released",
                "Metric series released from memory (checkpointed; reloaded if they return), "
                "by reason: idle (detection.idle_ttl_s) or memory (detection.max_series).",
                ["reason"],
                registry=registry,
            ),
            states_tombstoned=Counter(
                f"{prefix}_states_tombstoned",
                "Checkpoints of released series deleted after detection.state_ttl_s.",
                registry=registry,
            ),
            step_records_pruned=Counter(
                f"{prefix}_step_records_pruned",
                "Playbook step records deleted step_retention_s after their last write.",
                registry=registry,
            ),
            detection_to_incident=Histogram(
                f"{prefix}_detection_to_incident_seconds",
                "From the event time of the sample that raised a detection to the publish of "
                "the incident event it caused (opened or updated).",
                buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2.5, 5, 10, 30, 60),
                registry=registry,
            ),
            detector_state_unreadable=Counter(
                f"{prefix}_detector_state_unreadable",
                "Detector checkpoints dropped as unreadable (old format or version, unknown "
                "class, foreign bytes); each such detector re-warmed.",
                registry=registry,
            ),
            label_joins=Counter(
                f"{prefix}_label_joins",
                "Labels matched to their prediction, labels that found none waiting "
                "(unmatched), and predictions dropped unlabelled (expired), per model.",
                ["model", "outcome"],
                registry=registry,
            ),
            action_seconds=Histogram(
                f"{prefix}_action_duration_seconds",
                "Time a playbook step took, retries included.",
                ["action"],
                buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
                registry=registry,
            ),
            incidents_open=Gauge(
                f"{prefix}_incidents_open",
                "Open or acknowledged incidents (every worker sees them all: use max()).",
                ["severity"],
                registry=registry,
            ),
            silences_active=Gauge(
                f"{prefix}_silences_active",
                "Silences in force now (every worker sees them all: use max()).",
                registry=registry,
            ),
            consumer_lag=consumer_lag,
            # A timestamp rather than an age, as Prometheus advises: time() - it is
            # the age, and it stays right between scrapes and after the worker stops.
            last_event=Gauge(
                f"{prefix}_last_event_timestamp_seconds",
                "Unix time this worker last finished a batch of an input topic.",
                ["topic"],
                registry=registry,
            ),
            ready=Gauge(
                f"{prefix}_ready",
                "1 when /readyz would answer 200, else 0 (refreshed every 15 s).",
                registry=registry,
            ),
            readiness_checks=Gauge(
                f"{prefix}_readiness_check",
                "1 when this /readyz check passes (broker, topics, consumer_group, playbooks).",
                ["check"],
                registry=registry,
            ),
            chat_calls=Counter(
                f"{prefix}_chat_calls",
                "Calls to Slack's Web API (or the console sink) by outcome "
                "(ok, rejected, unreachable, failed).",
                ["method", "outcome"],
                registry=registry,
            ),
            offsets_reset=Counter(
                f"{prefix}_offsets_reset",
                "Consumer positions the broker lost (committed offset gone, gone back or past "
                "the log end): the partition restarts where the broker says; see the ERROR log.",
                ["topic", "partition"],
                registry=registry,
            ),
            model_performance=Gauge(
                f"{prefix}_model_performance",
                "A model version's performance: source=estimated from its scores (CBPE), "
                "realised from joined labels (metric: accuracy, precision, recall, roc_auc, "
                "mae, rmse; calibrated is 1 or 0).",
                ["model", "version", "metric", "source"],
                registry=registry,
            ),
        )

    def start_at_zero(
        self, input_topics: Iterable[str], reasons: Iterable[str], actions: Iterable[str]
    ) -> None:
        """Create the failure series the alert rules watch, at 0.

        A labelled counter's series is born at its first increment, and Prometheus's
        ``increase()`` cannot see a series born at 1: the first dead letter or failed
        step of a kind would never alert. ``deploy/prometheus/rules`` relies on this.
        """
        reasons = list(reasons)
        for topic in input_topics:
            for reason in reasons:
                self.events_invalid.labels(topic, reason)
        for action in actions:
            self.actions.labels(action, "failed")
