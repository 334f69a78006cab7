"""Detection cost per event on the throughput benchmark's events, without Kafka.

Feeds the same 400,000 events as bench/throughput.py (validated once, outside
the timing) to the worker's two detection pipelines in per-partition-sized
micro-batches, and prints µs per prediction event (PredictionPipeline: the
per-model-version monitors) and per metric sample (MetricPipeline: a detector
per series). This is the work that separates the worker with every detector on
from the latency-only worker in bench/throughput.py.

    .venv/bin/python bench/pipeline_cost.py [--events 400000] [--batch 2500]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import throughput

from agents.pipelines.events import MetricEvent, PredictionEvent
from agents.pipelines.metric_pipeline import MetricPipeline
from agents.pipelines.prediction_pipeline import PredictionPipeline, classifier_thread
from agents.settings import DetectionSettings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--batch", type=int, default=2500)
    args = parser.parse_args()
    events = throughput.events(args.events)
    predictions = [
        PredictionEvent.model_validate_json(value)
        for topic, _, value in events
        if topic == throughput.TOPICS.predictions
    ]
    metrics = [
        MetricEvent.model_validate_json(value)
        for topic, key, value in events
        if topic == throughput.TOPICS.metrics and key != b"bad"
    ]
    prediction_pipeline = PredictionPipeline(executor=classifier_thread())  # as the worker runs
    metric_pipeline = MetricPipeline(DetectionSettings())
    started = time.perf_counter()
    for i in range(0, len(predictions), args.batch):
        prediction_pipeline.process(predictions[i : i + args.batch])
    middle = time.perf_counter()
    for i in range(0, len(metrics), args.batch):
        metric_pipeline.process(metrics[i : i + args.batch], 0)
    ended = time.perf_counter()
    print(
        f"predictions: {len(predictions):,} events, "
        f"{1e6 * (middle - started) / len(predictions):.1f} µs/event (all monitors)"
    )
    print(
        f"metrics:     {len(metrics):,} samples over {len(metric_pipeline.detectors)} series, "
        f"{1e6 * (ended - middle) / len(metrics):.1f} µs/sample"
    )
    if prediction_pipeline.monitor.executor is not None:
        prediction_pipeline.monitor.executor.shutdown()  # the classifier's thread


if __name__ == "__main__":
    main()
