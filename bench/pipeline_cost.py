"""Detection cost per event on the throughput benchmark's events, without Kafka.

Validates the same 400,000 events as bench/throughput.py and feeds them to the
worker's two detection pipelines in per-partition-sized micro-batches, and
prints CPU µs per record validated (the msgspec path, and the pydantic contract
alone for comparison), per prediction event (PredictionPipeline:
the per-model-version monitors) and per metric sample (MetricPipeline: a
detector per series). This is the work that separates the worker with every detector on
from the latency-only worker in bench/throughput.py.

    .venv/bin/python bench/pipeline_cost.py [--events 400000] [--batch 2500] [--default-gc]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import throughput

from agents.kafka.batching import tune_collector
from agents.pipelines.events import MetricEvent, PredictionEvent
from agents.pipelines.fast_events import FastMetricEvent, FastPredictionEvent
from agents.pipelines.ingest import Record, Validator
from agents.pipelines.metric_pipeline import MetricPipeline
from agents.pipelines.prediction_pipeline import PredictionPipeline
from agents.settings import DetectionSettings
from detectors.drift.domain_classifier import classifier_process


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--batch", type=int, default=2500)
    parser.add_argument(
        "--default-gc", action="store_true", help="CPython's collector thresholds, not the worker's"
    )
    args = parser.parse_args()
    if not args.default_gc:
        tune_collector()  # as `fireline run` does
    events = throughput.events(args.events)
    records = [Record(topic, 0, i, key, value) for i, (topic, key, value) in enumerate(events)]
    metric_records = [r for r in records if r.topic == throughput.TOPICS.metrics]
    prediction_records = [r for r in records if r.topic == throughput.TOPICS.predictions]
    # CPU time, not wall time: the development machine is shared.
    clock = time.process_time
    reference = clock()  # the contract alone, as before the msgspec path: for comparison
    for topic_records, model in (
        (metric_records, MetricEvent),
        (prediction_records, PredictionEvent),
    ):
        for i in range(0, len(topic_records), args.batch):
            Validator(model, 65_536).validate(topic_records[i : i + args.batch])
    started = clock()
    metrics: list[FastMetricEvent] = []
    for i in range(0, len(metric_records), args.batch):
        metrics += (
            Validator(FastMetricEvent, 65_536).validate(metric_records[i : i + args.batch]).events
        )
    predictions: list[FastPredictionEvent] = []
    for i in range(0, len(prediction_records), args.batch):
        batch = prediction_records[i : i + args.batch]
        predictions += Validator(FastPredictionEvent, 65_536).validate(batch).events
    validated = clock()
    prediction_pipeline = PredictionPipeline(executor=classifier_process())  # as the worker runs
    metric_pipeline = MetricPipeline(DetectionSettings())
    for i in range(0, len(predictions), args.batch):
        prediction_pipeline.process(predictions[i : i + args.batch])
    middle = clock()
    for i in range(0, len(metrics), args.batch):
        metric_pipeline.process(metrics[i : i + args.batch], 0)
    ended = clock()
    print(
        f"validation:  {len(records):,} records, "
        f"{1e6 * (started - reference) / len(records):.1f} µs/record (pydantic alone)"
    )
    print(
        f"validation:  {len(records):,} records, "
        f"{1e6 * (validated - started) / len(records):.1f} µs/record (msgspec, pydantic for the rest)"
    )
    print(
        f"predictions: {len(predictions):,} events, "
        f"{1e6 * (middle - validated) / len(predictions):.1f} µs/event (all monitors)"
    )
    print(
        f"metrics:     {len(metrics):,} samples over {len(metric_pipeline.detectors)} series, "
        f"{1e6 * (ended - middle) / len(metrics):.1f} µs/sample"
    )
    print(
        f"all:         {1e6 * (ended - started) / len(records):.1f} µs of CPU per event "
        f"= {len(records) / (ended - started):,.0f} events per CPU-second (no Kafka)"
    )
    if prediction_pipeline.monitor.executor is not None:
        prediction_pipeline.monitor.executor.shutdown()  # the classifier's child process


if __name__ == "__main__":
    main()
