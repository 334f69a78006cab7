"""The ``fireline`` command: run, demo, broker, simulate, replay, playbooks, incidents, config."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fireline import __version__
from fireline.errors import FirelineError, PlaybookValidationError

# The subcommands and the settings are imported when the command runs, not with this
# module: a spawned child process (the chart and classifier children) imports the
# parent's main module first, and these cost ~2.5 s of CPU (the settings pull in the
# playbook engine and the detectors).
if TYPE_CHECKING:
    from agents.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; FirelineErrors become a message on stderr and exit code 2."""
    args = _parser().parse_args(argv)
    try:
        from agents.settings import load_settings

        settings = load_settings(args.config)
        return int(args.handler(args, settings) or 0)
    except FirelineError as exc:
        print(f"fireline: error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    from agents.cli.actions import add_commands as add_action_commands
    from agents.cli.backtest import add_command as add_backtest_command
    from agents.cli.config import add_commands as add_config_commands
    from agents.cli.incidents import add_commands as add_incident_commands
    from agents.cli.replay import add_command as add_replay_command

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

    add_replay_command(sub)

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
