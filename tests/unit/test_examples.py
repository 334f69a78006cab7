"""docs/examples: every event keeps its contract, and the incident is usable as published."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.cli.main import main
from agents.pipelines.events import EventModel, LabelEvent, MetricEvent, PredictionEvent
from agents.pipelines.ingest import Record, Validator
from fireline.incident import Incident

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "docs" / "examples"
LIBRARY = ROOT / "playbooks" / "library"


@pytest.mark.parametrize(
    ("name", "contract", "count"),
    [
        ("predictions.jsonl", PredictionEvent, 9),
        ("labels.jsonl", LabelEvent, 6),
        ("metrics.jsonl", MetricEvent, 9),
    ],
)
def test_examples__every_line_keeps_its_topics_contract(name, contract, count):
    """Checked by the worker's own validator, as if read from the topic."""
    validator = Validator(contract, max_bytes=65_536)
    path = EXAMPLES / name
    events: list[EventModel] = []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        record = Record(str(path), 0, number, None, line)
        events.append(validator.validate_one(record))  # EventError names what is wrong
    assert len(events) == count
    assert {getattr(e, "model", "fraud") for e in events} == {"fraud"}


def test_examples__labels_belong_to_example_predictions():
    def ids(name: str) -> list[str]:
        lines = (EXAMPLES / name).read_text().splitlines()
        return [json.loads(line)["prediction_id"] for line in lines]

    assert set(ids("labels.jsonl")) < set(ids("predictions.jsonl"))


def test_example_incident__is_the_published_form_with_every_field():
    """The file's JSON is what model_dump_json publishes (same keys, order and values)."""
    text = (EXAMPLES / "incident.json").read_text()
    incident = Incident.model_validate_json(text)
    published = json.loads(incident.model_dump_json())
    assert json.loads(text) == published
    assert list(json.loads(text)) == list(published)  # every field, in the published order


def test_example_incident__playbooks_test_plans_the_rollback(capsys):
    incident = str(EXAMPLES / "incident.json")
    assert main(["playbooks", "test", str(LIBRARY), "--incident", incident, "--json"]) == 0
    plans = {plan["playbook"]: plan for plan in json.loads(capsys.readouterr().out)}
    assert [name for name, plan in plans.items() if plan["matches"]] == [
        "prediction-drift-rollback"
    ]
    steps = plans["prediction-drift-rollback"]["steps"]
    assert [(s["action"], s["runs"]) for s in steps] == [("slack", True), ("rollback", True)]
    assert steps[0]["params"]["mention"] == "@oncall fraud v2 went live (was v1) 9 min before:"
    assert main(["playbooks", "test", str(LIBRARY), "--incident", incident]) == 0
    assert "✓ prediction-drift-rollback: matches" in capsys.readouterr().out
