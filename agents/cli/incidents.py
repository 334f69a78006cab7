"""``fireline incidents|silence|approvals …``: a client of a worker's incident API.

The worker is found at ``--url`` (default: this host's ``http_port``); the API
token comes from the settings (``FIRELINE_API_TOKEN`` or ``api_token_file``). Who
acts is that token's name, as the worker knows it: there is no ``--by``.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

from agents.settings import Settings
from fireline.errors import ApiError

TIMEOUT_S = 15.0


def add_commands(sub: Any) -> None:
    """Add the ``incidents`` and ``silence`` command groups to the CLI's subparsers."""
    incidents = sub.add_parser("incidents", help="list, show, acknowledge or resolve incidents")
    incidents.add_argument("--url", help="worker API base URL (default: http://127.0.0.1:PORT)")
    inc_sub = incidents.add_subparsers(required=True, metavar="ACTION")
    listing = inc_sub.add_parser("list", help="incidents, newest first")
    listing.add_argument("--status", choices=["open", "acknowledged", "resolved", "active"])
    listing.add_argument("--model", help="glob, e.g. 'fraud*'")
    listing.add_argument("--service", help="glob")
    listing.add_argument("--since", help="epoch seconds or a duration back from now, e.g. 1h")
    listing.add_argument("--json", action="store_true", help="print the API's JSON")
    listing.set_defaults(handler=_list)
    for name, help_ in (
        ("show", "one incident as JSON"),
        ("ack", "acknowledge an incident"),
        ("resolve", "resolve an incident by hand"),
    ):
        command = inc_sub.add_parser(name, help=help_)
        command.add_argument("id")
        command.set_defaults(handler=_show if name == "show" else _change, action=name)

    silence = sub.add_parser("silence", help="add, list or remove silences")
    silence.add_argument("--url", help="worker API base URL (default: http://127.0.0.1:PORT)")
    sil_sub = silence.add_subparsers(required=True, metavar="ACTION")
    add = sil_sub.add_parser("add", help="silence matching incidents for a while")
    add.add_argument(
        "matchers", nargs="+", metavar="FIELD=GLOB", help="e.g. model='fraud*' labels.env=staging"
    )
    add.add_argument("--duration", default="1h", help="e.g. 30m, 2h (default 1h)")
    add.add_argument("--comment", default="")
    add.set_defaults(handler=_silence_add)
    sil_list = sil_sub.add_parser("list", help="silences, soonest to end first")
    sil_list.add_argument("--active", action="store_true", help="only those in force now")
    sil_list.set_defaults(handler=_silence_list)
    remove = sil_sub.add_parser("remove", help="end a silence now")
    remove.add_argument("id")
    remove.set_defaults(handler=_silence_remove)

    approvals = sub.add_parser("approvals", help="list, approve or reject steps waiting for you")
    approvals.add_argument("--url", help="worker API base URL (default: http://127.0.0.1:PORT)")
    apr_sub = approvals.add_subparsers(required=True, metavar="ACTION")
    apr_list = apr_sub.add_parser("list", help="approval requests, newest first")
    apr_list.add_argument("--status", choices=["pending", "approved", "rejected"])
    apr_list.set_defaults(handler=_approvals_list)
    for name in ("approve", "reject"):
        decide = apr_sub.add_parser(name, help=f"{name} a waiting step")
        decide.add_argument("id")
        decide.set_defaults(handler=_approval_decide, decision=name)


class Client:
    """Tiny JSON client of the worker's API."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Send a request; raise ApiError with the API's message on an error status."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, f"{method} {path}: {exc.code} {_message(exc)}") from None
        except OSError as exc:
            raise ApiError(0, f"cannot reach the worker at {self.base_url}: {exc}") from None


def _client(args: argparse.Namespace, settings: Settings) -> Client:
    url = args.url or f"http://127.0.0.1:{settings.http_port}"
    return Client(url, settings.api_secret())


def _list(args: argparse.Namespace, settings: Settings) -> int:
    query = {k: getattr(args, k) for k in ("status", "model", "service", "since")}
    params = urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
    found = _client(args, settings).call("GET", f"/incidents?{params}")["incidents"]
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(f"{'ID':<21} {'STATUS':<13} {'SEVERITY':<9} {'LAST SEEN':<20} TITLE")
    for incident in found:
        flags = "".join(
            f" [{flag}]"
            for flag, on in (
                ("silenced", incident["silenced_by"]),
                ("flapping", incident["flapping"]),
            )
            if on
        )
        print(
            f"{incident['id']:<21} {incident['status']:<13} {incident['severity']:<9} "
            f"{_time(incident['last_seen']):<20} {incident['title']}{flags}"
        )
    return 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    print(json.dumps(_client(args, settings).call("GET", f"/incidents/{args.id}"), indent=2))
    return 0


def _change(args: argparse.Namespace, settings: Settings) -> int:
    path = f"/incidents/{args.id}/{args.action}"
    result = _client(args, settings).call("POST", path, {})
    if result.get("accepted"):
        print(f"{args.id}: {args.action} accepted; the worker has not applied it yet")
    else:
        print(f"{args.id}: {result['status']} (revision {result['revision']})")
    return 0


def _silence_add(args: argparse.Namespace, settings: Settings) -> int:
    matchers = {}
    for item in args.matchers:
        name, sep, pattern = item.partition("=")
        if not sep or not name:
            raise ApiError(0, f"matcher {item!r}: expected FIELD=GLOB, e.g. model=fraud*")
        matchers[name] = pattern
    body = {
        "matchers": matchers,
        "duration": args.duration,
        "comment": args.comment,
    }
    silence = _client(args, settings).call("POST", "/silences", body)
    print(f"{silence['id']}: until {_time(silence['ends_at'])}")
    return 0


def _silence_list(args: argparse.Namespace, settings: Settings) -> int:
    path = "/silences?active=true" if args.active else "/silences"
    silences = _client(args, settings).call("GET", path)["silences"]
    print(f"{'ID':<17} {'ACTIVE':<7} {'ENDS':<20} {'BY':<12} MATCHERS")
    for s in silences:
        matchers = " ".join(f"{k}={v}" for k, v in s["matchers"].items())
        print(
            f"{s['id']:<17} {'yes' if s['active'] else 'no':<7} {_time(s['ends_at']):<20} "
            f"{s['created_by']:<12} {matchers}"
        )
    return 0


def _silence_remove(args: argparse.Namespace, settings: Settings) -> int:
    _client(args, settings).call("DELETE", f"/silences/{args.id}")
    print(f"{args.id}: removed")
    return 0


def _approvals_list(args: argparse.Namespace, settings: Settings) -> int:
    path = f"/approvals?status={args.status}" if args.status else "/approvals"
    found = _client(args, settings).call("GET", path)["approvals"]
    print(f"{'ID':<17} {'STATUS':<9} {'PLAYBOOK':<24} {'STEP':<16} INCIDENT")
    for a in found:
        print(
            f"{a['id']:<17} {a['status']:<9} {a['playbook']:<24} {a['step']:<16} "
            f"{a['incident']['id']} {a['incident']['title']}"
        )
    return 0


def _approval_decide(args: argparse.Namespace, settings: Settings) -> int:
    path = f"/approvals/{args.id}/{args.decision}"
    result = _client(args, settings).call("POST", path, {})
    print(f"{args.id}: {result['status']} by {result['decided_by']}")
    return 0


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read())["error"])
    except (ValueError, KeyError, TypeError):
        return str(exc.reason)


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
