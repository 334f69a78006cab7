"""docs/incidents.md: the generated fields reference and its hand-written example stay true."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fireline.incident import Incident
from playbooks.tools.incident_reference import (
    END,
    START,
    render_incident_reference,
    required_fields,
    rewrite,
)

PAGE = Path(__file__).parents[3] / "docs" / "incidents.md"


def test_reference__the_page_is_current():
    section = PAGE.read_text().split(START)[1].split(END)[0]
    assert section.strip() == render_incident_reference().strip(), (
        "docs/incidents.md is stale: run "
        ".venv/bin/python -m playbooks.tools.incident_reference docs/incidents.md"
    )


def test_reference__lists_every_field_with_json_types_and_defaults():
    text = render_incident_reference()
    for name in Incident.model_fields:
        assert f"| `{name}` |" in text
    assert '| `status` | one of `"open"`, `"acknowledged"`, `"resolved"` | **required** |' in text
    assert "| `signals` | array of [Signal](#signal) | `[]` |" in text
    assert "| `score` | number (≥ 0, ≤ 1) | **required** |" in text
    assert "| `model` | string or null | `null` |" in text


def test_reference__rewrite_fills_the_markers_once(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(f"# Title\n\n{START}\nSTALE TABLE\n{END}\ntail\n")
    assert rewrite(page) is True
    assert rewrite(page) is False
    text = page.read_text()
    assert text.startswith("# Title\n\n") and text.endswith(f"{END}\ntail\n")
    assert "STALE TABLE" not in text and "### EvidencePoint" in text


def test_hand_written_example__is_the_smallest_valid_incident():
    (block,) = re.findall(
        r"## Writing one by hand.*?```json\n(.*?)```", PAGE.read_text(), re.DOTALL
    )
    example = json.loads(block)
    Incident.model_validate(example)
    assert sorted(example) == sorted(required_fields())
