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
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from agents.backtest.report import to_json, to_text
from agents.backtest.simulation import Backtest
from agents.backtest.sources import (
    EventValidators,
    InputEvent,
    Rejects,
    TimeRange,
    read_event_files,
    read_topics,
)
from agents.cli.progress import Progress, progress_wanted
from agents.pipelines.ingest import Validator
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
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        help="progress bar on stderr (default: only when stderr is a terminal)",
    )
    parser.set_defaults(handler=run_backtest)


def run_backtest(args: argparse.Namespace, settings: Settings) -> int:
    """Run it and print the report."""
    directories = [args.playbooks or settings.playbooks_dir]
    if args.compare is not None:
        directories.append(args.compare)
    backtest = Backtest(settings, directories)
    rejects = Rejects()
    stream = sys.stderr if progress_wanted(args.progress, sys.stderr) else None
    progress = Progress("backtest", 0, "bytes" if args.files else "records", stream)
    if args.files:
        events = _from_files(args, settings, rejects, progress)
    else:
        events = _from_topics(args, settings, rejects, progress)
    try:
        result = asyncio.run(backtest.run(events))
    finally:
        progress.close()
    render = to_json if args.json else to_text
    sys.stdout.write(render(result, rejects.count, rejects.examples))
    return 0


async def _from_files(
    args: argparse.Namespace, settings: Settings, rejects: Rejects, progress: Progress
) -> AsyncIterator[InputEvent]:
    progress.total = sum(_size(path) for path in args.files)
    start = args.start if args.start is not None else float("-inf")
    end = args.end if args.end is not None else float("inf")
    events = read_event_files(args.files, rejects, settings.max_event_bytes, progress.advance)
    for event in events:
        if start <= event.timestamp < end:
            yield event


async def _from_topics(
    args: argparse.Namespace, settings: Settings, rejects: Rejects, progress: Progress
) -> AsyncIterator[InputEvent]:
    from aiokafka import AIOKafkaConsumer

    if args.start is None or args.end is None:
        raise ConfigError("reading the topics needs --from and --to (or give JSON-lines files)")
    window = TimeRange(args.start, args.end, args.lateness)
    bootstrap = settings.bootstrap_servers
    if args.broker:
        bootstrap = args.broker.partition("://")[2] or args.broker
    validators = EventValidators(settings.max_event_bytes)

    def _set_total(total: int) -> None:
        progress.total = total

    topics: dict[str, Validator[Any]] = {
        settings.topics.metrics: validators.metrics,
        settings.topics.predictions: validators.predictions,
        settings.topics.labels: validators.labels,
    }
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer.topics()  # metadata for partitions_for_topic
        async for event in read_topics(
            consumer, topics, window, rejects, on_record=progress.advance, on_total=_set_total
        ):
            yield event
    finally:
        await consumer.stop()


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


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # reading it names the problem
