"""``fireline actions pause|resume|status``: the runtime kill switch, through a worker's API.

A pause holds every step that has not started yet, on every worker, until
resumed (see docs/playbooks.md "Kill switch"); ``--playbook`` narrows it to one.
"""

from __future__ import annotations

import argparse
from typing import Any

from agents.cli.incidents import _client, _time, _whoami
from agents.settings import Settings


def add_commands(sub: Any) -> None:
    """Add the ``actions`` command group to the CLI's subparsers."""
    actions = sub.add_parser("actions", help="pause, resume or show the actions' kill switch")
    actions.add_argument("--url", help="worker API base URL (default: http://127.0.0.1:PORT)")
    act_sub = actions.add_subparsers(required=True, metavar="ACTION")
    for name, help_ in (
        ("pause", "hold every action (or one playbook's) until resumed"),
        ("resume", "let actions (or one playbook's) run again"),
    ):
        command = act_sub.add_parser(name, help=help_)
        command.add_argument("--playbook", help="only this playbook (default: all actions)")
        command.add_argument("--reason", default="", help="said in every held step's record")
        command.add_argument("--by", default=_whoami(), help="who (default: $USER)")
        command.set_defaults(handler=_switch, verb=name)
    status = act_sub.add_parser("status", help="what is paused, and who switched it last")
    status.set_defaults(handler=_status)


def _switch(args: argparse.Namespace, settings: Settings) -> int:
    body = {"by": args.by, "reason": args.reason}
    if args.playbook:
        body["playbook"] = args.playbook
    result = _client(args, settings).call("POST", f"/actions/{args.verb}", body)
    switch = result["switch"]
    what = "all actions" if switch["scope"] == "*" else f"playbook {switch['scope']}"
    print(f"{what}: {'paused' if switch['paused'] else 'resumed'} by {switch['by']}")
    return 0


def _status(args: argparse.Namespace, settings: Settings) -> int:
    result = _client(args, settings).call("GET", "/actions/status")
    if not result["switches"]:
        print("nothing was ever paused")
        return 0
    print(f"{'SCOPE':<24} {'STATE':<8} {'SINCE':<20} {'BY':<16} REASON")
    for s in result["switches"]:
        state = "paused" if s["paused"] else "running"
        print(f"{s['scope']:<24} {state:<8} {_time(s['at']):<20} {s['by']:<16} {s['reason']}")
    return 0
