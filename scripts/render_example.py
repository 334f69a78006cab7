"""A rendered example incident for the docs: its evidence chart and its Slack root message.

``python -m scripts.render_example [OUT_DIR]`` (or ``scripts/render-example``) builds
one realistic incident (a latency spike on checkout-api right after a model deploy) with
the same code the worker uses, and writes ``evidence-chart.png`` (the chart uploaded
into the incident's thread) and ``root-message.txt`` (the Block Kit root message drawn
as plain text) to ``OUT_DIR``, ``docs/images`` by default. Deterministic: rerunning it
rewrites the same files.
"""

from __future__ import annotations

import random
import re
import sys
import textwrap
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fireline import promql
from fireline.durations import human_duration
from fireline.incident import (
    Change,
    Evidence,
    EvidencePoint,
    Incident,
    Severity,
    Signal,
    Status,
    Transition,
    fingerprint,
    incident_id,
)
from playbooks.chat.blocks import Block, Links, SlackMessage, dashboard_url, root_message
from playbooks.chat.chart import render_chart

DEFAULT_OUT_DIR = Path("docs/images")
CHART_FILE = "evidence-chart.png"
MESSAGE_FILE = "root-message.txt"

DETECTED_AT = datetime(2026, 3, 12, 14, 23, 5, tzinfo=UTC).timestamp()
DEPLOYED_AT = DETECTED_AT - 4 * 60 - 10
ROLLED_OUT_AT = DETECTED_AT - 50
BASELINE_MS = 48.0
SERVICE, MODEL, VERSION, PREVIOUS = "checkout-api", "checkout-ranker", "42", "41"
LABELS = {"service": SERVICE, "model": MODEL, "model_version": VERSION}
SERIES = "latency_ms{" + ",".join(f"{k}={v}" for k, v in sorted(LABELS.items())) + "}"
RUNBOOK = "https://wiki.example.com/runbooks/checkout-latency"
DASHBOARD = "https://grafana.example.com/d/fireline?var-service={service}&from={from_ms}"

WIDTH = 88  # wrap like a narrow Slack window, and fit a README code block
COLUMN = 36  # section fields are shown in two columns
_EMOJI = {
    "rotating_light": "🚨",
    "warning": "⚠️",
    "information_source": "ℹ️",  # noqa: RUF001 - the emoji, as Slack draws it
    "red_circle": "🔴",
    "eyes": "👀",
    "white_check_mark": "✅",
    "raised_hand": "✋",
}
_LINK = re.compile(r"<[^|>]+\|([^>]+)>")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_SHORTCODE = re.compile(r":([a-z0-9_+-]+):")


def example_evidence() -> Evidence:
    """The last 120 points of p50 latency, 15 s apart: steady, a canary, then the rollout."""
    rng = random.Random(20260312)
    points = []
    for step in range(-119, 1):
        at = DETECTED_AT + step * 15
        if at < DEPLOYED_AT:
            level = BASELINE_MS
        elif at < ROLLED_OUT_AT:  # the canary: a tenth of the traffic on v42
            level = BASELINE_MS * 1.25
        else:  # everyone on v42
            level = BASELINE_MS * 12.5
        points.append(EvidencePoint(at=at, value=round(rng.gauss(level, level * 0.04), 1)))
    return Evidence(series=SERIES, baseline=BASELINE_MS, detected_at=DETECTED_AT, points=points)


def example_incident() -> Incident:
    """An open, critical latency spike on checkout-api, 4 min after checkout-ranker v42."""
    evidence = example_evidence()
    observed = evidence.points[-1].value
    key = fingerprint("latency_spike", SERVICE, VERSION, SERIES)
    signal = Signal(
        detector="LatencySpike",
        series=SERIES,
        observed=observed,
        baseline=BASELINE_MS,
        score=0.998,
        at=DETECTED_AT,
        kind="latency_spike",
        fingerprint=key,
        selector=promql.selector("latency_ms", LABELS),  # as the metric pipeline names it
    )
    deploy = Change(
        kind="model_version_change",
        model=MODEL,
        service=SERVICE,
        version=VERSION,
        previous_version=PREVIOUS,
        at=DEPLOYED_AT,
    )
    return Incident(
        id=incident_id(key, DETECTED_AT),
        fingerprint=key,
        kind="latency_spike",
        transition=Transition.OPENED,
        status=Status.OPEN,
        severity=Severity.CRITICAL,
        title=f"Latency spike on {SERVICE}",
        service=SERVICE,
        model=MODEL,
        model_version=VERSION,
        subject_key=f"model:{MODEL}",
        first_seen=DETECTED_AT,
        last_seen=DETECTED_AT,
        fingerprints=[key],
        signals=[signal],
        evidence=[evidence],
        labels=dict(LABELS),
        changes=[deploy],
        likely_cause=f"{deploy.describe()} {human_duration(DETECTED_AT - deploy.at)} before",
    )


def example_links(incident: Incident) -> Links:
    """A runbook, and a dashboard filled in the way the worker fills its template."""
    return Links(runbook=RUNBOOK, dashboard=dashboard_url(DASHBOARD, incident))


def message_as_text(
    message: SlackMessage, sender: str = "fireline", at: float | None = None
) -> str:
    """The message as Slack shows it, in plain text: who posted it, then each block.

    Bold markers are dropped, emoji shortcodes drawn, links shown by their label (as
    Slack does), section fields laid out in two columns and buttons drawn as ``[ Label ]``.
    """
    posted = "" if at is None else "  " + datetime.fromtimestamp(at, UTC).strftime("%H:%M")
    lines = [f"{sender}  APP{posted}"]
    for block in message.blocks:
        lines += _block_lines(block)
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _block_lines(block: Block) -> list[str]:
    kind = block.get("type")
    if kind == "header":
        text = _inline(block["text"]["text"])
        return ["", text, "━" * min(WIDTH, _width(text))]
    if kind == "section" and "fields" in block:
        return ["", *_columns([_mrkdwn(f["text"]) for f in block["fields"]])]
    if kind == "section":
        return ["", *_wrap(_mrkdwn(block["text"]["text"]))]
    if kind == "actions":
        return ["", "  ".join(f"[ {_inline(e['text']['text'])} ]" for e in block["elements"])]
    if kind == "context":
        return ["", *_wrap(" ".join(_mrkdwn(e.get("text", "")) for e in block["elements"]))]
    return ["", f"[{kind} block]"]


def _columns(fields: list[str]) -> list[str]:
    """Fields two by two: name lines side by side, then value lines."""
    lines: list[str] = []
    for i in range(0, len(fields), 2):
        pair = [f.split("\n") for f in fields[i : i + 2]]
        height = max(len(p) for p in pair)
        if i:
            lines.append("")
        for row in range(height):
            cells = [p[row] if row < len(p) else "" for p in pair]
            left = cells[0] + " " * max(1, COLUMN - _width(cells[0]))
            lines.append(left + cells[1] if len(cells) > 1 else cells[0])
    return lines


def _mrkdwn(text: str) -> str:
    return _BOLD.sub(r"\1", _inline(text))


def _inline(text: str) -> str:
    text = _LINK.sub(r"\1", text)  # Slack shows a link's label
    return _SHORTCODE.sub(lambda m: _EMOJI.get(m.group(1), m.group(0)), text)


def _wrap(text: str) -> list[str]:
    wrapped: list[str] = []
    for paragraph in text.split("\n"):
        wrapped += textwrap.wrap(
            paragraph, WIDTH, break_long_words=False, break_on_hyphens=False
        ) or [""]
    return wrapped


def _width(text: str) -> int:
    """Columns a terminal gives ``text``: wide characters (emoji) and emoji-styled ones take 2."""
    return sum(
        1 if ch == "\ufe0f" else 2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text
    )


@dataclass(frozen=True)
class Rendering:
    """The example's chart and message text."""

    png: bytes
    text: str


def render_example() -> Rendering:
    """The example incident's evidence chart and root message, as the worker would make them."""
    incident = example_incident()
    png = render_chart(incident.evidence[0], incident.title)
    message = root_message(incident, example_links(incident))
    return Rendering(png, message_as_text(message, at=incident.first_seen + 2))


def write_example(out_dir: Path = DEFAULT_OUT_DIR) -> tuple[Path, Path]:
    """Write ``evidence-chart.png`` and ``root-message.txt`` to ``out_dir``; their paths."""
    rendering = render_example()
    out_dir.mkdir(parents=True, exist_ok=True)
    chart, text = out_dir / CHART_FILE, out_dir / MESSAGE_FILE
    chart.write_bytes(rendering.png)
    text.write_text(rendering.text, encoding="utf-8")
    return chart, text


def main(argv: Sequence[str] | None = None) -> int:
    """Render into the directory given (default docs/images) and say what was written."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) > 1 or (args and args[0].startswith("-")):
        print("usage: python -m scripts.render_example [OUT_DIR]", file=sys.stderr)
        return 2
    chart, text = write_example(Path(args[0]) if args else DEFAULT_OUT_DIR)
    print(f"wrote {chart} and {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
