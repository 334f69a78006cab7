"""The docs' rendered example incident builds, renders, and matches the committed files."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

from fireline.incident import Severity
from playbooks.chat.blocks import SlackMessage
from playbooks.chat.chart import PNG_MAGIC
from scripts.render_example import (
    CHART_FILE,
    MESSAGE_FILE,
    example_incident,
    main,
    message_as_text,
    render_example,
)

ROOT = Path(__file__).resolve().parents[3]
COMMITTED = ROOT / "docs" / "images"


def test_example_incident__is_a_critical_latency_spike_after_the_deploy():
    incident = example_incident()
    assert (incident.kind, incident.severity, incident.service) == (
        "latency_spike",
        Severity.CRITICAL,
        "checkout-api",
    )
    assert incident.likely_cause == "checkout-ranker v42 went live (was v41) 4 min before"
    [evidence] = incident.evidence
    assert len(evidence.points) == 120 and evidence.points[-1].at == evidence.detected_at


def test_render_example__a_png_chart_and_the_root_message_as_text():
    rendering = render_example()
    assert rendering.png.startswith(PNG_MAGIC)
    assert struct.unpack(">II", rendering.png[16:24]) == (800, 320)  # the IHDR chunk
    incident = example_incident()
    lines = rendering.text.splitlines()
    assert lines[0] == "fireline  APP  14:23"
    assert "🚨 [CRITICAL] Latency spike on checkout-api" in lines
    for part in (
        "Severity                            Subject",
        "🔴 Open",
        "checkout-ranker v42 went live (was v41) 4 min before",
        "Runbook · Dashboard",
        "[ Acknowledge ]  [ Resolve ]  [ Silence 1h ]",
        f"Incident `{incident.id}`",
    ):
        assert part in rendering.text, part
    assert "*" not in rendering.text and ":red_circle:" not in rendering.text


def test_committed_rendering__is_current_rerun_scripts_render_example_if_not():
    rendering = render_example()
    assert (COMMITTED / CHART_FILE).read_bytes().startswith(PNG_MAGIC)
    assert (COMMITTED / MESSAGE_FILE).read_text(encoding="utf-8") == rendering.text


def test_main__writes_both_files_to_the_directory_given(tmp_path, capsys):
    assert main([str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / CHART_FILE).read_bytes() == render_example().png
    assert (tmp_path / "out" / MESSAGE_FILE).read_text(encoding="utf-8") == render_example().text
    assert capsys.readouterr().out.startswith("wrote ")
    assert main(["a", "b"]) == 2


def test_the_script__renders_where_it_is_told(tmp_path):
    done = subprocess.run(
        [str(ROOT / "scripts" / "render-example"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / CHART_FILE).read_bytes().startswith(PNG_MAGIC)
    assert (tmp_path / MESSAGE_FILE).read_text(encoding="utf-8").strip()


def test_message_as_text__fields_in_two_columns_links_by_label_and_buttons():
    message = SlackMessage(
        "fallback",
        [
            {"type": "header", "text": {"type": "plain_text", "text": ":warning: Hi"}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*A*\n1"},
                    {"type": "mrkdwn", "text": "*B*\n2"},
                    {"type": "mrkdwn", "text": "*C*\n3"},
                ],
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": "<https://x/y|Runbook>"}},
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Go"}}],
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "id `x`"}]},
        ],
    )
    assert message_as_text(message, "bot").splitlines() == [
        "bot  APP",
        "",
        "⚠️ Hi",
        "━━━━━",
        "",
        "A" + " " * 35 + "B",
        "1" + " " * 35 + "2",
        "",
        "C",
        "3",
        "",
        "Runbook",
        "",
        "[ Go ]",
        "",
        "id `x`",
    ]


def test_the_readme_shows_the_committed_rendering():
    readme = (ROOT / "README.md").read_text()
    text = (COMMITTED / MESSAGE_FILE).read_text().rstrip("\n")
    assert f"```text\n{text}\n```" in readme, "README's example is stale: paste the new one"
    assert f"](docs/images/{CHART_FILE})" in readme
