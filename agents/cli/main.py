"""The ``fireline`` command: run, demo, broker, simulate, replay, playbooks, incidents, config."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.cli.actions import add_commands as add_action_commands
from agents.cli.backtest import add_command as add_backtest_command
from agents.cli.config import add_commands as add_config_commands
from agents.cli.incidents import add_commands as add_incident_commands
from agents.cli.progress import Progress, progress_wanted
from agents.settings import Settings, load_settings
from fireline import __version__
from fireline.errors import FirelineError, PlaybookValidationError


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; FirelineErrors become a message on stderr and exit code 2."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        return int(args.handler(args, settings) or 0)
    except FirelineError as exc:
        print(f"fireline: error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fireline", description=__doc__)
    parser.add_argument("--version", action="version", version=f"fireline {__version__}")
    parser.add_argument("--config", type=Path, help="YAML settings file (also FIRELINE_CONFIG)")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a worker (Faust) with its HTTP server")
    run.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    run.set_defaults(handler=_run)

    demo = sub.add_parser("demo", help="embedded broker + worker + traffic with a latency spike")
    demo.add_argument("--spike-at", type=float, default=30.0, help="seconds until the spike (30)")
    demo.add_argument(
        "--duration", type=float, help="stop after this many seconds (default: Ctrl-C)"
    )
    demo.add_argument(
        "--scenario",
        choices=["latency-spike", "bad-deploy"],
        default="latency-spike",
        help="latency-spike (default), or bad-deploy: a worse model version goes live, is "
        "rolled back with approval, verified",
    )
    demo.set_defaults(handler=_demo)

    broker = sub.add_parser("broker", help="run the embedded broker and create the topics")
    broker.add_argument("--port", type=int, default=9092)
    broker.add_argument("--host", default="127.0.0.1")
    broker.add_argument(
        "--storage",
        default="memory://tansu/",
        help="memory://tansu/ (default: lost on restart) or s3://BUCKET/ (kept; AWS_* variables)",
    )
    broker.set_defaults(handler=_broker)

    simulate = sub.add_parser("simulate", help="send demo traffic to the configured broker")
    simulate.add_argument("--rate", type=float, default=300.0, help="predictions per second")
    simulate.add_argument("--spike-at", type=float, default=30.0, help="seconds until the spike")
    simulate.add_argument("--duration", type=float, help="stop after this many seconds")
    simulate.set_defaults(handler=_simulate)

    replay = sub.add_parser("replay", help="run a detector offline over recorded data")
    replay_sub = replay.add_subparsers(required=True, metavar="KIND")
    replay_metrics = replay_sub.add_parser(
        "metrics",
        help="timestamp,value CSV in: adds anomaly_score and alarm per row; or metric events "
        "as JSON lines (any number of series) in: one JSON line per alarm raised",
    )
    replay_metrics.add_argument("file", type=Path)
    replay_metrics.add_argument("--out", type=Path, help="output file (default: stdout)")
    _add_progress_flag(replay_metrics)
    replay_metrics.set_defaults(handler=_replay_metrics)
    _add_replay_predictions(replay_sub)

    playbooks = sub.add_parser("playbooks", help="playbook tools")
    playbooks_sub = playbooks.add_subparsers(required=True, metavar="TOOL")
    validate = playbooks_sub.add_parser("validate", help="check a playbook directory")
    validate.add_argument("directory", type=Path)
    validate.set_defaults(handler=_validate)
    test = playbooks_sub.add_parser(
        "test", help="offline: which playbooks an incident event triggers and what would run"
    )
    test.add_argument("directory", type=Path)
    test.add_argument("--incident", type=Path, required=True, help="incident event JSON file")
    test.add_argument("--json", action="store_true", help="print the plan as JSON")
    test.set_defaults(handler=_test_playbooks)
    schema = playbooks_sub.add_parser("schema", help="print the JSON Schema of playbook files")
    schema.set_defaults(handler=_schema)

    add_incident_commands(sub)
    add_backtest_command(sub)
    add_config_commands(sub)
    add_action_commands(sub)
    return parser


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from agents.service.worker import run_worker

    run_worker(settings, args.loglevel)
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from agents.cli.demo import run_demo

    return run_demo(settings, args.spike_at, args.duration, args.scenario)


def _broker(args: argparse.Namespace, settings: Settings) -> int:
    from agents.kafka.broker import EmbeddedBroker, create_topics, run_forever

    broker = EmbeddedBroker(args.port, args.host, storage=args.storage).start()
    created = asyncio.run(
        create_topics(
            broker.bootstrap_servers,
            settings.topics.all(),
            settings.partitions,
            configs=settings.topics.configs(),
        )
    )
    print(
        f"embedded broker on {broker.bootstrap_servers} ({broker.storage}); "
        f"created topics: {', '.join(created) or 'none'}"
    )
    print(f"use FIRELINE_BROKER_URL={broker.url}; Ctrl-C to stop", flush=True)
    run_forever(broker)
    return 0


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from agents.cli.simulator import TrafficProfile, TrafficSimulator

    async def go() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        profile = TrafficProfile(predictions_per_s=args.rate, spike_at_s=args.spike_at)
        simulator = TrafficSimulator(settings.bootstrap_servers, settings.topics, profile)
        return await simulator.run(stop, args.duration)

    sent = asyncio.run(go())
    print(f"sent {sent} events")
    return 0


def _replay_metrics(args: argparse.Namespace, settings: Settings) -> int:
    from agents.cli.replay import is_json_lines

    if is_json_lines(args.file):
        return _replay_metric_events(args, settings)
    from agents.cli.replay import read_metric_csv, replay_values, write_replay_csv

    timestamps, values = read_metric_csv(args.file)
    progress = _progress(args.progress, "replay metrics", len(values), "rows")
    rows = progress.track(replay_values(timestamps, values, settings.detection))
    try:
        if args.out is None:
            write_replay_csv(rows, sys.stdout)
        else:
            with args.out.open("w", newline="", encoding="utf-8") as out:
                count = write_replay_csv(rows, out)
    finally:
        progress.close()
    if args.out is not None:
        print(f"{count} rows scored into {args.out}", file=sys.stderr)
    return 0


def _replay_metric_events(args: argparse.Namespace, settings: Settings) -> int:
    from agents.cli.replay import read_metric_events, replay_metric_events, write_detections

    progress = _progress(args.progress, "replay metrics", args.file.stat().st_size, "bytes")
    events = read_metric_events(args.file, settings.max_event_bytes, on_bytes=progress.advance)
    detections = replay_metric_events(events, settings.detection)
    try:
        if args.out is None:
            write_detections(detections, sys.stdout)
        else:
            with args.out.open("w", encoding="utf-8") as out:
                count = write_detections(detections, out)
    finally:
        progress.close()
    if args.out is not None:
        print(f"{count} detection(s) written to {args.out}", file=sys.stderr)
    return 0


def _add_progress_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        help="progress bar on stderr (default: only when stderr is a terminal)",
    )


def _progress(asked: bool | None, label: str, total: int, unit: str) -> Progress:
    stream = sys.stderr if progress_wanted(asked, sys.stderr) else None
    # Asked for: shown from the start; on a terminal by default: only if the run is long.
    return Progress(label, total, unit, stream, delay_s=0.0 if asked else 1.0)


# -- fireline replay predictions (prediction-log detectors) -------------------------


def _add_replay_predictions(replay_sub: argparse._SubParsersAction[Any]) -> None:
    predictions = replay_sub.add_parser(
        "predictions",
        help="prediction/label JSON lines in; one JSON line per detection out",
    )
    predictions.add_argument("file", type=Path)
    predictions.add_argument("--out", type=Path, help="output JSON lines (default: stdout)")
    _add_progress_flag(predictions)
    predictions.set_defaults(handler=_replay_predictions)


def _replay_predictions(args: argparse.Namespace, settings: Settings) -> int:
    from agents.cli.replay import read_prediction_log, replay_predictions, write_detections

    try:
        size = args.file.stat().st_size
    except OSError:
        size = 0  # read_prediction_log says what is wrong with the file
    progress = _progress(args.progress, "replay predictions", size, "bytes")
    events = read_prediction_log(args.file, settings.max_event_bytes, on_bytes=progress.advance)
    detections = replay_predictions(events)
    try:
        if args.out is None:
            write_detections(detections, sys.stdout)
        else:
            with args.out.open("w", encoding="utf-8") as out:
                count = write_detections(detections, out)
    finally:
        progress.close()
    if args.out is not None:
        print(f"{count} detection(s) written to {args.out}", file=sys.stderr)
    return 0


# -- end of fireline replay predictions -----------------------------------------------


def _validate(args: argparse.Namespace, settings: Settings) -> int:
    from playbooks.actions import default_registry
    from playbooks.loader import load_directory

    try:
        playbooks = load_directory(args.directory, default_registry())
    except PlaybookValidationError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) found", file=sys.stderr)
        return 1
    print(f"{len(playbooks)} playbook(s) valid: {', '.join(p.name for p in playbooks)}")
    return 0


def _test_playbooks(args: argparse.Namespace, settings: Settings) -> int:
    import dataclasses
    import json

    from pydantic import ValidationError

    from fireline.incident import Incident
    from playbooks.actions import default_registry
    from playbooks.context import ActionContext
    from playbooks.loader import load_directory
    from playbooks.tools.explain import explain, render_report

    try:
        incident = Incident.model_validate_json(args.incident.read_bytes())
    except OSError as exc:
        print(f"fireline: error: cannot read {args.incident}: {exc.strerror}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"fireline: error: {args.incident} is not an incident event:\n{exc}", file=sys.stderr)
        return 2
    try:
        playbooks = load_directory(args.directory, default_registry())
    except PlaybookValidationError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    defaults = ActionContext(
        default_channel=settings.slack_channel, dashboard_url=settings.slack_dashboard_url
    )
    plans = explain(playbooks, incident, defaults)
    if args.json:
        print(json.dumps([dataclasses.asdict(p) for p in plans], indent=2))
    else:
        print(render_report(plans))
    return 0


def _schema(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from playbooks.actions import default_registry
    from playbooks.tools.json_schema import playbook_schema

    print(json.dumps(playbook_schema(default_registry()), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
