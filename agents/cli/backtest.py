"""``fireline backtest``: what would fireline have done over recorded traffic?

Two sources: JSON-lines files in the input events' format (metric, prediction
and label events mixed or in separate files), or the input topics by event-time
range (read-only: no consumer group, nothing committed). Either way the events
go through the worker's detectors, incident desk and playbook engine on event
time with every action dry-run (:mod:`agents.backtest.simulation`), and the
report says which incidents would have opened and what each playbook set would
have run (:mod:`agents.backtest.report`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from agents.backtest.report import to_json, to_text
from agents.backtest.simulation import Backtest
from agents.cli.progress import Progress, add_progress_flag, progress_bar
from agents.pipelines.events import LabelEvent, MetricEvent, PredictionEvent
from agents.pipelines.ingest import Validator
from agents.recorded.contracts import InputEvent, LineValidator
from agents.recorded.jsonl import read_merged, total_size
from agents.recorded.rejects import Rejects
from agents.recorded.topics import TimeRange, read_topic_range
from agents.settings import Settings
from fireline.errors import ConfigError


def add_command(sub: argparse._SubParsersAction[Any]) -> None:
    """``fireline backtest [FILE ...] [--from T --to T] [--playbooks DIR] [--compare DIR]``."""
    parser = sub.add_parser(
        "backtest",
        help="what would fireline have done? recorded traffic through detectors, incidents "
        "and playbooks, every action dry-run",
    )
    parser.add_argument(
        "files",
        nargs="*",
        type=Path,
        help="JSON-lines files of metric/prediction/label events (default: read the topics)",
    )
    parser.add_argument("--from", dest="start", type=_time, help="event time, ISO 8601 or epoch")
    parser.add_argument("--to", dest="end", type=_time, help="event time (exclusive)")
    parser.add_argument("--broker", help="broker URL (default: the configured broker_url)")
    parser.add_argument(
        "--lateness",
        type=float,
        default=3600.0,
        help="seconds a record may be produced after its event time (3600)",
    )
    parser.add_argument(
        "--playbooks", type=Path, help="playbooks directory (default: the configured one)"
    )
    parser.add_argument(
        "--compare", type=Path, metavar="DIR", help="a second playbooks directory to compare"
    )
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    add_progress_flag(parser)
    parser.set_defaults(handler=run_backtest)


def run_backtest(args: argparse.Namespace, settings: Settings) -> int:
    """Run it and print the report."""
    directories = [args.playbooks or settings.playbooks_dir]
    if args.compare is not None:
        directories.append(args.compare)
    backtest = Backtest(settings, directories)
    rejects = Rejects()
    progress = progress_bar(args.progress, "backtest", 0, "bytes" if args.files else "records")
    try:
        if args.files:
            events = _from_files(args, settings, rejects, progress)
        else:
            events = _from_topics(args, settings, rejects, progress)
        result = asyncio.run(backtest.run(events))
    finally:
        progress.close()
    render = to_json if args.json else to_text
    sys.stdout.write(render(result, rejects.count, rejects.examples))
    return 0


def _from_files(
    args: argparse.Namespace, settings: Settings, rejects: Rejects, progress: Progress
) -> Iterator[InputEvent]:
    progress.total = total_size(args.files)
    validator = LineValidator(settings.max_event_bytes)
    events = read_merged(args.files, validator, rejects, progress.advance)
    if args.start is None and args.end is None:
        return events
    start = args.start if args.start is not None else float("-inf")
    end = args.end if args.end is not None else float("inf")
    return (event for event in events if start <= event.timestamp < end)


def _from_topics(
    args: argparse.Namespace, settings: Settings, rejects: Rejects, progress: Progress
) -> Iterator[InputEvent]:
    if args.start is None or args.end is None:
        raise ConfigError("reading the topics needs --from and --to (or give JSON-lines files)")
    window = TimeRange(args.start, args.end, args.lateness)
    bootstrap = settings.bootstrap_servers
    if args.broker:
        bootstrap = args.broker.partition("://")[2] or args.broker
    topics: dict[str, Validator[Any]] = {
        settings.topics.metrics: Validator(MetricEvent, settings.max_event_bytes),
        settings.topics.predictions: Validator(PredictionEvent, settings.max_event_bytes),
        settings.topics.labels: Validator(LabelEvent, settings.max_event_bytes),
    }

    def _set_total(total: int) -> None:
        progress.total = total

    return read_topic_range(
        bootstrap, topics, window, rejects, on_record=progress.advance, on_total=_set_total
    )


def _time(text: str) -> float:
    """Epoch seconds, or ISO 8601 with a zone (``2026-11-20T00:00Z``)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: use ISO 8601 with a zone (2026-11-20T00:00Z) or epoch seconds"
        ) from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone: add Z or +HH:MM")
    return parsed.timestamp()
