"""The deploy loop's wiring: a version_regression's cause, figures, rollback target,
Slack table and accept button, and the accept command's way to the model's worker."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agents.incidents.access import AccessPolicy
from agents.incidents.api import IncidentApi
from agents.incidents.view import IncidentView
from agents.pipelines.ingest import Record
from agents.pipelines.model_commands import ModelCommand, split_commands
from agents.settings import Topics
from agents.slack.approvers import SlackApprovers
from fireline.detections import Detection
from fireline.incident import (
    Change,
    ComparedFigureModel,
    Signal,
    Transition,
    VersionComparisonModel,
)
from playbooks.actions import default_registry
from playbooks.actions.rollback import _registered, rollback_target
from playbooks.chat.blocks import root_message
from playbooks.chat.messages import comparison_table, incident_text
from playbooks.loader import load_file
from tests.factories import make_incident
from tests.unit.agents.test_incidents import Desk
from tests.unit.agents.test_slack_interactions import (
    RecordingPublisher,
    block_actions,
    make_buttons,
    published,
)

ROOT = Path(__file__).parents[3]
COMPARISON = VersionComparisonModel(
    baseline_version="7",
    candidate_version="8",
    figures=(
        ComparedFigureModel(
            metric="error_rate",
            baseline=0.012,
            candidate=0.036,
            baseline_events=9000,
            candidate_events=1800,
            worse=True,
        ),
        ComparedFigureModel(
            metric="mean_score",
            baseline=0.63,
            candidate=0.58,
            baseline_events=9000,
            candidate_events=2000,
            worse=False,
        ),
    ),
)


def regression(at: float, comparison: VersionComparisonModel = COMPARISON) -> Detection:
    message = "fraud v8 is worse than v7: error rate 3.6% vs 1.2% (1,800 labelled)"
    signal = Signal(
        detector="version_regression",
        series="fraud:version_regression",
        observed=0.036,
        baseline=0.012,
        score=1.0,
        at=at,
        message=message,
    )
    labels = {"model": "fraud", "model_version": "8", "previous_version": "7"}
    return Detection(
        kind="version_regression",
        series=signal.series,
        labels=labels,
        signal=signal,
        comparison=comparison,
    )


def test_manager__a_regression_names_its_deploy_however_long_ago_and_keeps_the_figures():
    desk = Desk()
    deploy = Change(
        kind="model_version_change", model="fraud", version="8", previous_version="7", at=10.0
    )
    desk.manager.on_change(desk.state, deploy, 10.0)
    # Two hours later: far outside the change window, still the cause.
    (opened,) = desk.manager.on_detection(desk.state, regression(7210.0), 7210.0, [])
    assert opened.changes == [deploy]
    assert opened.likely_cause == "fraud v8 went live (was v7) 2.0 h before"
    assert opened.comparison == COMPARISON
    assert opened.labels["previous_version"] == "7"


def test_manager__without_the_deploy_record_the_comparison_words_the_cause():
    desk = Desk()
    canary = COMPARISON.model_copy(update={"mode": "canary"})
    (opened,) = desk.manager.on_detection(desk.state, regression(100.0, canary), 100.0, [])
    assert opened.changes == []
    assert opened.likely_cause == "fraud v8 started serving beside v7"


def test_manager__a_refresh_brings_the_latest_figures_to_the_next_event():
    desk = Desk()
    desk.manager.on_detection(desk.state, regression(100.0), 100.0, [])
    grown = COMPARISON.model_copy(update={"figures": COMPARISON.figures[:1]})
    refresh = regression(130.0, grown).model_copy(update={"refresh": True})
    assert desk.manager.on_detection(desk.state, refresh, 130.0, []) == []
    acked = desk.manager.acknowledge(desk.state, desk.state.tracked[0].incident.id, "bob", 140.0)
    assert acked.comparison == grown


def test_playbook__the_shipped_rollback_answers_a_regression_without_a_linked_deploy():
    playbook, problems = load_file(
        ROOT / "playbooks/library/prediction-drift-rollback.yaml", default_registry()
    )
    assert problems == [] and playbook is not None
    regressed = make_incident(kind="version_regression", model_version="8", comparison=COMPARISON)
    assert playbook.match.mismatches(regressed) == []
    drift = make_incident(kind="prediction_drift")
    assert playbook.match.mismatches(drift) != []  # a drift must follow a deploy


def test_rollback_target__the_compared_version_first_then_the_version_before_the_change():
    change = Change(
        kind="model_version_change", model="fraud", version="8", previous_version="6", at=1.0
    )
    regressed = make_incident(model_version="8", comparison=COMPARISON, changes=[change])
    assert rollback_target(regressed, "fraud", None) == "7"
    assert rollback_target(regressed, "fraud", "5") == "5"
    assert rollback_target(regressed, "other", None) is None
    assert rollback_target(make_incident(changes=[change]), "fraud", None) == "6"
    assert _registered("7", [5, 6, 7, 8], current=8) == 7
    assert _registered("v7", [5, 6, 7, 8], current=8) is None  # not an MLflow number
    assert _registered("9", [5, 6, 7, 8], current=8) is None  # not registered
    assert _registered("8", [5, 6, 7, 8], current=8) is None  # the current one


def test_slack__the_root_shows_both_versions_side_by_side_and_an_accept_button():
    incident = make_incident(kind="version_regression", model_version="8", comparison=COMPARISON)
    assert comparison_table(COMPARISON).splitlines() == [
        "metric      v7    v8      events v7 / v8",
        "error rate  1.2%  3.6% ✗  9,000 / 1,800 labelled",
        "mean score  0.63  0.58    9,000 / 2,000",
    ]
    message = root_message(incident)
    (table,) = [b for b in message.blocks if b["type"] == "rich_text"]
    assert table["elements"][0]["elements"] == [
        {"type": "text", "text": comparison_table(COMPARISON)}
    ]
    (actions,) = [b for b in message.blocks if b["type"] == "actions"]
    accept = actions["elements"][-1]
    assert (accept["text"]["text"], accept["action_id"]) == ("Accept v8", f"accept:{incident.id}")
    assert comparison_table(COMPARISON) in incident_text(incident)
    resolved = incident.model_copy(update={"transition": Transition.RESOLVED})
    assert "events v7 / v8" not in incident_text(resolved)
    assert not any(b["type"] == "rich_text" for b in root_message(make_incident()).blocks)


def test_slack__a_version_name_is_literal_text_in_the_table():
    hostile = COMPARISON.model_copy(update={"candidate_version": "<!channel>"})
    (table,) = [
        b
        for b in root_message(make_incident(comparison=hostile)).blocks
        if b["type"] == "rich_text"
    ]
    (element,) = table["elements"][0]["elements"]
    assert element["type"] == "text"  # rich text's text is never read as markup


async def test_slack__accept_publishes_the_command_to_the_models_prediction_partition():
    incident = make_incident(kind="version_regression", model_version="8", comparison=COMPARISON)
    buttons = make_buttons(incident)
    notes = await buttons.handle_payload(block_actions(f"accept:{incident.id}"))
    assert notes == "accept fraud v8 by slack:alice"
    [(topic, key, command)] = published(buttons)
    assert (topic, key) == ("fireline.predictions", b"fraud")
    assert command == {
        "fireline_command": "accept",
        "model": "fraud",
        "version": "8",
        "by": "slack:alice",
        "at": 1795255300.0,
    }


async def test_slack__accept_by_a_user_not_on_the_approvers_list_is_refused():
    incident = make_incident(kind="version_regression", model_version="8", comparison=COMPARISON)
    buttons = make_buttons(incident, approvers=SlackApprovers(["U9"]))
    notes = await buttons.handle_payload(block_actions(f"accept:{incident.id}"))
    assert notes.startswith("slack:alice may not accept a model version")
    assert published(buttons) == []


async def test_api__accept_answers_202_and_publishes_the_command():
    publisher = RecordingPublisher()
    access = AccessPolicy.from_tokens(None, "secret")  # the single admin token, named "api"
    api = IncidentApi(IncidentView(), publisher, Topics(), access, clock=lambda: 5.0)
    app = web.Application()
    api.add_routes(app)
    async with TestClient(TestServer(app)) as client:
        path = "/models/fraud/versions/8/accept"
        assert (await client.post(path, json={"by": "alice"})).status == 401
        reply = await client.post(
            path, json={"by": "alice"}, headers={"Authorization": "Bearer secret"}
        )
        assert reply.status == 202
        assert (await reply.json())["accepted"]["version"] == "8"
    [(topic, key, command)] = publisher.sent
    assert (topic, key, command["by"], command["at"]) == (
        "fireline.predictions",
        b"fraud",
        "api",  # the token's name: the body's "by" is ignored
        5.0,
    )


def test_split_commands__runs_of_events_each_followed_by_the_command_after_it():
    def record(offset: int, value: bytes) -> Record:
        return Record("fireline.predictions", 0, offset, b"fraud", value)

    command = ModelCommand(model="fraud", version="8", by="alice", at=1.0)
    prediction = json.dumps({"model": "fraud"}).encode()
    batch = [
        record(0, prediction),
        record(1, command.to_record()[1]),
        record(2, prediction),
        record(3, b'{"fireline_command": "nonsense"}'),
    ]
    runs = split_commands(batch)
    assert [([r.offset for r in run], c) for run, c in runs] == [([0], command), ([2, 3], None)]
    plain = [record(0, prediction)]
    assert split_commands(plain) == [(plain, None)]


def test_slack__a_regression_is_told_in_the_detectors_words_not_as_a_ratio():
    signal = regression(100.0).signal
    incident = make_incident(
        kind="version_regression", model_version="8", comparison=COMPARISON, signals=[signal]
    )
    words = "fraud v8 is worse than v7: error rate 3.6% vs 1.2% (1,800 labelled)"
    assert f"{signal.series}: {words}, detector version_regression" in incident_text(incident)
    section = next(b["text"]["text"] for b in root_message(incident).blocks if "Detected" in str(b))
    assert section == f"*Detected:* {words}, detector `version_regression`"
