"""The playbook engine's rules with in-process test actions (pure logic, no I/O)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from fireline.incident import Incident, Severity, Status, Transition
from playbooks.approvals import Decision
from playbooks.context import ActionContext
from playbooks.engine import DryRunNotifier, Guardrails, PlaybookEngine, Reload, redact
from playbooks.kill_switch import ALL, Pause
from playbooks.loader import load_file
from playbooks.registry import ActionParams, ActionRegistry, ActionResult, Reconciliation, Verdict
from playbooks.steps import Outcome, StepRecord


class EchoParams(ActionParams):
    text: str = "hi"
    token: str | None = None


class FlakyParams(ActionParams):
    failures: int = 1  # fail this many times, then succeed
    sleep_s: float = 0.0


def registry_with_calls() -> tuple[ActionRegistry, list[str]]:
    registry = ActionRegistry()
    calls: list[str] = []
    state = {"flaky": 0}

    @registry.action("echo")
    async def echo(incident: Incident, params: EchoParams, context: ActionContext) -> ActionResult:
        calls.append(params.text)
        return ActionResult("echo", ok=True, detail=params.text, target="echo-target")

    @registry.action("flaky")
    async def flaky(
        incident: Incident, params: FlakyParams, context: ActionContext
    ) -> ActionResult:
        calls.append("flaky")
        await asyncio.sleep(params.sleep_s)
        state["flaky"] += 1
        ok = state["flaky"] > params.failures
        return ActionResult("flaky", ok=ok, detail="ok" if ok else "boom")

    return registry, calls


def incident(**update: object) -> Incident:
    base = Incident(
        id="inc-1",
        fingerprint="latency_spike|fraud-api|7|latency_ms",
        kind="latency_spike",
        transition=Transition.OPENED,
        status=Status.OPEN,
        severity=Severity.CRITICAL,
        title="Latency spike on fraud-api",
        service="fraud-api",
        model="fraud",
        model_version="7",
        first_seen=100.0,
        last_seen=100.0,
        labels={"env": "prod", "team": "payments"},
    )
    return base.model_copy(update=update)


def engine_for(
    tmp_path: Path, yaml_text: str, notifier: DryRunNotifier | None = None, **guardrails: bool
) -> tuple[PlaybookEngine, list[str]]:
    registry, calls = registry_with_calls()
    (tmp_path / "p.yaml").write_text(yaml_text)
    playbook, problems = load_file(tmp_path / "p.yaml", registry)
    assert problems == [] and playbook is not None
    engine = PlaybookEngine(
        registry, ActionContext(), guardrails=Guardrails(**guardrails), notifier=notifier
    )
    engine.playbooks, engine.loaded = [playbook], True
    return engine, calls


def run(engine: PlaybookEngine, event: Incident, now: float = 1000.0):
    return asyncio.run(engine.handle(event, now))


BASIC = """\
name: basic
match: {kinds: ["latency_*"], transitions: [opened, resolved]}
steps:
  - echo: {text: "{{ incident.title }} in {{ incident.labels.env }}"}
"""


def test_params_are_rendered_from_the_incident_and_recorded(tmp_path):
    engine, calls = engine_for(tmp_path, BASIC)
    (record,) = run(engine, incident())
    assert calls == ["Latency spike on fraud-api in prod"]
    assert (record.outcome, record.target, record.attempts) == (Outcome.OK, "echo-target", 1)
    assert record.params == {"text": "Latency spike on fraud-api in prod", "token": None}


def test_a_redelivered_event_never_runs_a_step_twice_but_a_new_revision_does(tmp_path):
    engine, calls = engine_for(tmp_path, BASIC)
    run(engine, incident())
    assert run(engine, incident()) == []  # the same event again (same id and revision)
    run(engine, incident(transition=Transition.RESOLVED, revision=2))
    assert len(calls) == 2


def test_match_conditions_and_why_not(tmp_path):
    engine, _ = engine_for(
        tmp_path,
        """\
name: picky
match:
  kinds: ["*_drift"]
  severity_at_least: critical
  models: ["fraud*"]
  environment: prod
  labels: {team: pay*}
  expression: 'incident.count > 2'
steps:
  - echo: {}
""",
    )
    match = engine.playbooks[0].match
    drift = incident(kind="covariate_drift", count=3)
    assert match.mismatches(drift) == []
    assert match.mismatches(incident(kind="covariate_drift", count=1)) == [
        "expression is not true: incident.count > 2"
    ]
    assert match.mismatches(
        incident(kind="latency_spike", severity=Severity.WARNING, labels={"env": "dev"}, count=3)
    ) == [
        "kind 'latency_spike' is not one of ['*_drift']",
        "severity 'warning' is below 'critical'",
        "environment 'dev' does not match 'prod'",
        "label team=None does not match 'pay*'",
    ]


def test_when_skips_a_step(tmp_path):
    engine, calls = engine_for(
        tmp_path,
        """\
name: conditional
match: {kinds: [latency_spike]}
steps:
  - echo: {text: never}
    when: 'incident.severity == "info"'
  - echo: {text: always}
""",
    )
    records = run(engine, incident())
    assert [r.outcome for r in records] == [Outcome.SKIPPED, Outcome.OK]
    assert calls == ["always"]


def test_retries_with_backoff_then_success(tmp_path):
    engine, calls = engine_for(
        tmp_path,
        """\
name: retrying
match: {kinds: [latency_spike]}
steps:
  - flaky: {failures: 2}
    retries: 2
    backoff: 10ms
""",
    )
    (record,) = run(engine, incident())
    assert (record.outcome, record.attempts) == (Outcome.OK, 3)
    assert calls == ["flaky"] * 3


def test_timeout_and_on_failure(tmp_path):
    engine, calls = engine_for(
        tmp_path,
        """\
name: failing
match: {kinds: [latency_spike]}
steps:
  - flaky: {failures: 5, sleep_s: 1}
    timeout: 50ms
    on_failure: continue
  - flaky: {failures: 5}
  - echo: {text: unreachable}
""",
    )
    records = run(engine, incident())
    assert [(r.outcome, r.detail) for r in records] == [
        (Outcome.FAILED, "timed out after 0.05s"),
        (Outcome.FAILED, "boom"),  # stop (the default) ends the playbook here
    ]
    assert "unreachable" not in calls


def test_a_failed_step_is_tried_again_when_its_event_comes_back(tmp_path):
    engine, _ = engine_for(
        tmp_path, "name: f\nmatch: {kinds: [latency_spike]}\nsteps:\n  - flaky: {}\n"
    )
    assert run(engine, incident())[0].outcome is Outcome.FAILED
    assert run(engine, incident())[0].outcome is Outcome.OK  # not remembered as done


def test_dry_run_playbook_and_global_dry_run_run_nothing(tmp_path):
    engine, calls = engine_for(tmp_path, BASIC.replace("name: basic", "name: basic\nmode: dry-run"))
    (record,) = run(engine, incident())
    assert (record.outcome, record.params["text"]) == (
        Outcome.DRY_RUN,
        "Latency spike on fraud-api in prod",
    )
    engine2, calls2 = engine_for(tmp_path, BASIC, dry_run=True)
    assert run(engine2, incident())[0].outcome is Outcome.DRY_RUN
    assert calls == calls2 == []


class HeardDryRuns:
    """A dry-run notifier that keeps what it is told, in memory."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, str, list[StepRecord]]] = []

    async def announce_dry_run(self, playbook, incident, records) -> None:
        self.heard.append((playbook, incident.id, list(records)))


def test_dry_run__the_notifier_hears_what_would_have_run(tmp_path):
    notifier = HeardDryRuns()
    dry = BASIC.replace("name: basic", "name: basic\nmode: dry-run")
    engine, calls = engine_for(tmp_path, dry, notifier)
    records = run(engine, incident())
    assert notifier.heard == [("basic", "inc-1", records)]
    assert [r.outcome for r in records] == [Outcome.DRY_RUN] and calls == []
    assert run(engine, incident()) == [] and len(notifier.heard) == 1  # a redelivery: silent


def test_dry_run__a_live_run_announces_nothing_and_no_notifier_is_fine(tmp_path):
    notifier = HeardDryRuns()
    engine, calls = engine_for(tmp_path, BASIC, notifier)
    assert [r.outcome for r in run(engine, incident())] == [Outcome.OK]
    assert notifier.heard == [] and len(calls) == 1
    silent, _ = engine_for(tmp_path, BASIC, dry_run=True)  # nobody to tell: records only
    assert [r.outcome for r in run(silent, incident())] == [Outcome.DRY_RUN]


def test_kill_switch_runs_nothing(tmp_path):
    engine, calls = engine_for(tmp_path, BASIC, actions_enabled=False)
    (record,) = run(engine, incident())
    assert record.outcome is Outcome.SKIPPED and "kill switch" in record.detail
    assert calls == []


def test_cooldown_per_fingerprint_and_hourly_rate_limit(tmp_path):
    engine, calls = engine_for(
        tmp_path, BASIC.replace("steps:", "cooldown: 10m\nmax_runs_per_hour: 2\nsteps:")
    )
    run(engine, incident(), now=1000.0)
    held = run(engine, incident(revision=2), now=1100.0)
    assert held[0].outcome is Outcome.SKIPPED and held[0].detail.startswith("cooldown")
    run(engine, incident(id="inc-2", fingerprint="other", revision=1), now=1200.0)
    limited = run(engine, incident(id="inc-3", fingerprint="third", revision=1), now=1300.0)
    assert limited[0].detail == "rate limit: 2 runs in the last hour"
    run(engine, incident(id="inc-4", fingerprint="fourth", revision=1), now=1000.0 + 3601)
    assert len(calls) == 3


def test_bad_templates_and_conditions_are_load_errors_with_lines(tmp_path):
    registry, _ = registry_with_calls()
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: bad\nmatch: {kinds: [x], expression: 'incident.count >'}\n"
        "steps:\n  - echo: {text: '{{ incident.title '}\n    retries: many\n"
    )
    playbook, problems = load_file(path, registry)
    assert playbook is None
    assert any(p.startswith(f"{path}:2:") and "not a valid CEL expression" in p for p in problems)
    assert any(p.startswith(f"{path}:4:") and "template" in p for p in problems)


def test_an_undefined_template_name_fails_the_step_not_the_worker(tmp_path):
    engine, calls = engine_for(
        tmp_path, BASIC.replace("{{ incident.title }}", "{{ incident.no_such_field }}")
    )
    (record,) = run(engine, incident())
    assert record.outcome is Outcome.FAILED and "no_such_field" in record.detail
    assert calls == []


def test_an_empty_field_renders_as_an_empty_string_never_none(tmp_path):
    engine, calls = engine_for(
        tmp_path,
        BASIC.replace(
            "{{ incident.title }} in {{ incident.labels.env }}",
            "@oncall {{ incident.likely_cause }}|{{ incident.likely_cause or 'no deploy' }}",
        ),
    )
    (record,) = run(engine, incident(likely_cause=None))
    assert record.outcome is Outcome.OK
    assert calls == ["@oncall |no deploy"]


def test_the_playbooks_runbook_reaches_its_actions(tmp_path):
    registry = ActionRegistry()
    seen: list[str | None] = []

    @registry.action("look")
    async def look(incident: Incident, params: EchoParams, context: ActionContext) -> ActionResult:
        seen.append(context.runbook_url)
        return ActionResult("look", ok=True, detail="")

    for name, runbook in (("with", "runbook_url: https://wiki/lat\n"), ("without", "")):
        path = tmp_path / f"{name}.yaml"
        path.write_text(f"name: {name}\n{runbook}match: {{kinds: [x]}}\nsteps:\n  - look: {{}}\n")
        playbook, problems = load_file(path, registry)
        assert problems == [] and playbook is not None
        engine = PlaybookEngine(registry, ActionContext(runbook_url=None))
        engine.playbooks, engine.loaded = [playbook], True
        run(engine, incident(kind="x"))
    assert seen == ["https://wiki/lat", None]


class ModelParams(ActionParams):
    model: str | None = None

    def resolved(self, incident: Incident, context: ActionContext) -> ModelParams:
        return self.model_copy(update={"model": self.model or incident.model})


def test_approvals_and_dry_runs_show_the_defaults_the_action_fills_in(tmp_path):
    registry = ActionRegistry()

    @registry.action("act")
    async def act(incident: Incident, params: ModelParams, context: ActionContext) -> ActionResult:
        return ActionResult("act", ok=True, detail=str(params.resolved(incident, context).model))

    path = tmp_path / "p.yaml"
    path.write_text(
        "name: p\nmatch: {kinds: [x]}\nsteps:\n  - act: {}\n    require_approval: true\n"
    )
    playbook, problems = load_file(path, registry)
    assert problems == [] and playbook is not None
    engine = PlaybookEngine(registry, ActionContext())
    engine.playbooks, engine.loaded = [playbook], True
    (waiting,) = run(engine, incident(kind="x"))
    assert waiting.approval is not None and waiting.approval.params == {"model": "fraud"}
    dry = PlaybookEngine(registry, ActionContext(), guardrails=Guardrails(dry_run=True))
    dry.playbooks, dry.loaded = [playbook], True
    (would,) = run(dry, incident(kind="x"))
    assert (would.outcome, would.params) == (Outcome.DRY_RUN, {"model": "fraud"})


def test_redact_hides_secret_looking_values():
    assert redact(EchoParams(text="x", token="xoxb-123")) == {"text": "x", "token": "<redacted>"}


@pytest.mark.parametrize("text", ["{{ ''.__class__.__mro__ }}", "{{ incident.__class__ }}"])
def test_templates_are_sandboxed(tmp_path, text):
    engine, calls = engine_for(
        tmp_path, BASIC.replace("{{ incident.title }} in {{ incident.labels.env }}", text)
    )
    (record,) = run(engine, incident())
    assert record.outcome is Outcome.FAILED or "class" not in calls[0]


GATED = """\
name: gated
match: {kinds: [latency_spike]}
steps:
  - echo: {text: before}
  - echo: {text: "roll back {{ incident.model }}"}
    require_approval: true
  - echo: {text: after}
"""


def test_approval__the_gated_step_waits_and_resumes_once_approved(tmp_path):
    engine, calls = engine_for(tmp_path, GATED)
    records = run(engine, incident())
    assert [r.outcome for r in records] == [Outcome.OK, Outcome.PENDING_APPROVAL]
    request = records[1].approval
    assert request is not None and request.params == {"text": "roll back fraud", "token": None}
    assert calls == ["before"]
    assert run(engine, incident()) == []  # redelivered: no second request, nothing run
    approved = request.decided(Decision.APPROVED, "alice", 2000.0)
    resumed = asyncio.run(engine.resume(approved))
    assert [(r.step, r.outcome, r.approved_by) for r in resumed] == [
        ("echo", Outcome.OK, "alice"),
        ("echo", Outcome.OK, None),
    ]
    assert calls == ["before", "roll back fraud", "after"]
    assert asyncio.run(engine.resume(approved)) == []  # a repeated decision runs nothing


def test_approval__a_rejection_stops_the_playbook(tmp_path):
    engine, calls = engine_for(tmp_path, GATED)
    request = run(engine, incident())[1].approval
    assert request is not None
    (rejected,) = asyncio.run(engine.resume(request.decided(Decision.REJECTED, "bob", 1.0)))
    assert (rejected.outcome, rejected.detail, rejected.ok) == (
        Outcome.REJECTED,
        "rejected by bob",
        False,
    )
    assert run(engine, incident()) == []
    assert calls == ["before"]


def test_step_state__written_as_a_typed_json_record(tmp_path):
    engine, _ = engine_for(tmp_path, GATED)
    run(engine, incident())
    written = {key: json.loads(value) for key, value in engine.done.items()}
    assert {key: state["outcome"] for key, state in written.items()} == {
        b"inc-1|1|gated|0": "ok",
        b"inc-1|1|gated|1": "pending_approval",
    }
    assert all(set(state) == {"outcome", "at"} for state in written.values())


def as_previous_version_wrote(raw: bytes) -> bytes:
    """The previous engine wrote ``json.dumps({"outcome": ...})``: a space after the colon."""
    return json.dumps({"outcome": json.loads(raw)["outcome"]}).encode()


def test_step_state__records_of_the_previous_version_wait_and_resume(tmp_path):
    engine, calls = engine_for(tmp_path, GATED)
    request = run(engine, incident())[1].approval
    assert request is not None
    for key, raw in list(engine.done.items()):
        engine.done[key] = as_previous_version_wrote(raw)
    assert b'{"outcome": "pending_approval"}' in engine.done.values()
    assert run(engine, incident()) == []  # the first step ran, the second still waits
    resumed = asyncio.run(engine.resume(request.decided(Decision.APPROVED, "alice", 2.0)))
    assert [r.outcome for r in resumed] == [Outcome.OK, Outcome.OK]
    assert calls == ["before", "roll back fraud", "after"]


def test_step_state__a_rejection_of_the_previous_version_still_stops(tmp_path):
    engine, calls = engine_for(tmp_path, GATED)
    engine.done[b"inc-1|1|gated|0"] = b'{"outcome": "ok"}'
    engine.done[b"inc-1|1|gated|1"] = b'{"outcome": "rejected"}'
    assert run(engine, incident()) == []
    assert calls == []


def test_step_state__an_unreadable_record_counts_as_done(tmp_path, caplog):
    engine, calls = engine_for(tmp_path, BASIC)
    engine.done[b"inc-1|1|basic|0"] = b"\x00not json"
    assert run(engine, incident()) == []  # never run twice for want of a readable record
    assert calls == [] and "unreadable playbook step state" in caplog.text


def test_reload__a_change_takes_effect_and_a_broken_one_is_reported_once(tmp_path):
    registry, _ = registry_with_calls()
    (tmp_path / "p.yaml").write_text(BASIC)
    engine = PlaybookEngine(registry, ActionContext())
    assert engine.reload_if_changed(tmp_path) is Reload.LOADED
    assert engine.reload_if_changed(tmp_path) is Reload.UNCHANGED
    (tmp_path / "p.yaml").write_text("name: [broken\n")
    assert engine.reload_if_changed(tmp_path) is Reload.REJECTED
    assert engine.reload_if_changed(tmp_path) is Reload.UNCHANGED  # not reported again
    assert [p.name for p in engine.playbooks] == ["basic"]  # the previous set stays


def test_approval__dry_run_never_asks(tmp_path):
    engine, calls = engine_for(tmp_path, GATED, dry_run=True)
    assert [r.outcome for r in run(engine, incident())] == [Outcome.DRY_RUN] * 3
    assert calls == []


VERIFIED = """\
name: remediate
match: {kinds: [latency_spike]}
steps:
  - echo: {text: remediate}
verify:
  resolved_within: 10m
  on_unverified:
    - echo: {text: "page: {{ incident.status }}"}
"""


def test_verify__resolved_in_time_is_verified(tmp_path):
    engine, calls = engine_for(tmp_path, VERIFIED)
    run(engine, incident(), now=1000.0)
    assert engine.due(["remediate"], 1500.0) == []
    ((name, due),) = engine.due(["remediate"], 1600.0)
    resolved = incident(status=Status.RESOLVED, transition=Transition.RESOLVED, revision=2)
    (record,) = asyncio.run(engine.handle_deadline(name, due, resolved))
    assert (record.step, record.outcome, record.detail) == (
        "verify",
        Outcome.OK,
        "verified: the incident resolved within 10 min",
    )
    assert calls == ["remediate"]
    assert engine.due(["remediate"], 1601.0) == []  # handled: forgotten


def test_verify__the_deadline_is_kept_in_the_guard_state_a_new_engine_reads(tmp_path):
    engine, _ = engine_for(tmp_path, VERIFIED)
    run(engine, incident(), now=1000.0)
    restarted, _ = engine_for(tmp_path, VERIFIED)
    restarted.guards, restarted.done = engine.guards, engine.done  # what the changelog restores
    ((_, due),) = restarted.due(["remediate"], 1600.0)
    assert (due.kind, due.due, due.incident.id) == ("verify", 1600.0, "inc-1")


def test_verify__still_open_runs_on_unverified_once(tmp_path):
    engine, calls = engine_for(tmp_path, VERIFIED)
    run(engine, incident(), now=1000.0)
    ((name, due),) = engine.due(["remediate"], 2000.0)
    records = asyncio.run(engine.handle_deadline(name, due, incident(revision=3)))
    assert [(r.step, r.outcome) for r in records] == [
        ("verify", Outcome.FAILED),
        ("echo", Outcome.OK),
    ]
    assert calls == ["remediate", "page: open"]
    asyncio.run(engine.handle_deadline(name, due, incident(revision=3)))  # a redelivered deadline
    assert calls == ["remediate", "page: open"]


def test_verify__nothing_to_verify_when_the_remediation_did_not_run(tmp_path):
    engine, _ = engine_for(tmp_path, VERIFIED, dry_run=True)
    run(engine, incident(), now=1000.0)
    assert engine.due(["remediate"], 5000.0) == []


def test_on_failure_escalate_stops_and_marks_the_record(tmp_path):
    engine, calls = engine_for(
        tmp_path,
        """\
name: escalating
match: {kinds: [latency_spike]}
steps:
  - flaky: {failures: 5}
    on_failure: escalate
  - echo: {text: unreachable}
""",
    )
    (record,) = run(engine, incident())
    assert (record.outcome, record.escalate) == (Outcome.FAILED, True)
    assert calls == ["flaky"]


def test_per_target_rate_limit_counts_the_playbooks_own_runs(tmp_path):
    # One partition owns a playbook's counters, so the limit counts that playbook's runs.
    registry, calls = registry_with_calls()
    for name, limit in (("a", 2), ("b", 5)):
        (tmp_path / f"{name}.yaml").write_text(
            f"name: {name}\nmatch: {{kinds: [latency_spike]}}\n"
            f"max_runs_per_target_per_hour: {limit}\nsteps:\n  - echo: {{text: same}}\n"
        )
    from playbooks.loader import load_directory

    engine = PlaybookEngine(registry, ActionContext())
    engine.playbooks, engine.loaded = load_directory(tmp_path, registry), True
    runs = [run(engine, incident(id=f"inc-{n}")) for n in range(3)]
    assert [[r.outcome for r in records] for records in runs] == [
        [Outcome.OK, Outcome.OK],
        [Outcome.OK, Outcome.OK],
        [Outcome.SKIPPED, Outcome.OK],
    ]
    assert runs[2][0].detail == "rate limit: 2 runs against echo:default in the last hour"
    assert calls == ["same"] * 5


def test_rendering_keeps_only_the_params_the_author_wrote(tmp_path):
    """Re-validating filled-in defaults would trip provider checks (a real rollback step)."""
    from playbooks.actions import default_registry
    from playbooks.templating import render_params

    path = tmp_path / "rb.yaml"
    path.write_text(
        "name: rb\nmatch: {kinds: [x]}\nsteps:\n"
        '  - rollback: {provider: http, url: "http://deployer/rollback", to_version: "{{ incident.model_version }}"}\n'
    )
    playbook, problems = load_file(path, default_registry())
    assert problems == [] and playbook is not None
    rendered = render_params(playbook.steps[0].params, {"incident": {"model_version": "6"}})
    assert rendered.to_version == "6" and rendered.provider == "http"


# -- at most once: intent before the side effect, reconciliation after a crash ---------

ONCE = """\
name: once
match: {kinds: [latency_spike]}
steps:
  - recorded: {}
  - echo: {text: after}
"""


class Died(BaseException):
    """The worker dying between a side effect and its record (not an Exception: not caught)."""


def engine_with_reconciler(
    tmp_path: Path, verdict: Verdict, die_after: bool = False
) -> tuple[PlaybookEngine, list[str]]:
    registry, calls = registry_with_calls()
    seen: list[bytes | None] = []

    @registry.action("recorded")
    async def recorded(
        incident: Incident, params: EchoParams, context: ActionContext
    ) -> ActionResult:
        calls.append(f"acted with {context.idempotency_key}")
        seen.append(engine.done.get(b"inc-1|1|once|0"))
        return ActionResult("recorded", ok=True, detail="acted")

    @registry.reconciler("recorded")
    async def reconcile(
        incident: Incident, params: EchoParams, context: ActionContext
    ) -> Reconciliation:
        calls.append("asked the target")
        return Reconciliation(verdict, f"the target says {verdict.value}")

    def die(action: str) -> None:
        if die_after and action == "recorded":
            raise Died

    (tmp_path / "p.yaml").write_text(ONCE)
    playbook, problems = load_file(tmp_path / "p.yaml", registry)
    assert problems == [] and playbook is not None
    engine = PlaybookEngine(registry, ActionContext(), after_side_effect=die)
    engine.playbooks, engine.loaded = [playbook], True
    engine.seen = seen  # type: ignore[attr-defined]
    return engine, calls


def outcome_of(raw: bytes) -> str:
    return str(json.loads(raw)["outcome"])


def crash_then_redeliver(engine: PlaybookEngine) -> list[StepRecord]:
    with pytest.raises(Died):
        run(engine, incident())
    assert outcome_of(engine.done[b"inc-1|1|once|0"]) == "started"
    engine.after_side_effect = None
    return run(engine, incident())  # the restarted owner gets the same request


def test_once__the_intent_is_durable_before_the_action_acts(tmp_path):
    engine, calls = engine_with_reconciler(tmp_path, Verdict.DONE)
    run(engine, incident())
    assert [outcome_of(raw) for raw in engine.seen] == ["started"]  # type: ignore[attr-defined]
    assert outcome_of(engine.done[b"inc-1|1|once|0"]) == "ok"
    assert calls[0].startswith("acted with fireline-") and calls[1:] == ["after"]


def test_once__a_crash_after_the_act_is_reconciled_not_repeated(tmp_path):
    engine, calls = engine_with_reconciler(tmp_path, Verdict.DONE, die_after=True)
    records = crash_then_redeliver(engine)
    assert [(r.step, r.outcome) for r in records] == [
        ("recorded", Outcome.OK),
        ("echo", Outcome.OK),
    ]
    assert records[0].detail == "reconciled after a restart: the target says done"
    assert [c.split(" with ")[0] for c in calls] == ["acted", "asked the target", "after"]


def test_once__a_target_that_dedups_is_asked_again_with_the_same_key(tmp_path):
    engine, calls = engine_with_reconciler(tmp_path, Verdict.REPEAT, die_after=True)
    records = crash_then_redeliver(engine)
    assert [r.outcome for r in records] == [Outcome.OK, Outcome.OK]
    first, asked, second, after = calls
    assert (asked, after) == ("asked the target", "after")
    assert first == second  # the same idempotency key both times


def test_once__an_unknown_outcome_is_said_and_holds_the_playbook(tmp_path):
    engine, calls = engine_with_reconciler(tmp_path, Verdict.UNKNOWN, die_after=True)
    (record,) = crash_then_redeliver(engine)
    assert record.outcome is Outcome.UNKNOWN and not record.ok
    assert "the target says unknown. Check the target by hand" in record.detail
    assert [c.split(" with ")[0] for c in calls] == ["acted", "asked the target"]
    assert run(engine, incident()) == []  # said once; the steps after it never run
    assert calls[-1] == "asked the target"


def test_once__a_redelivered_run_is_not_held_by_its_own_cooldown(tmp_path):
    engine, _ = engine_with_reconciler(tmp_path, Verdict.DONE, die_after=True)
    engine.playbooks = [engine.playbooks[0].model_copy(update={"cooldown": 600.0})]
    records = crash_then_redeliver(engine)
    assert [r.outcome for r in records] == [Outcome.OK, Outcome.OK]
    (held,) = run(engine, incident(id="inc-2"))  # another incident, same fingerprint
    assert held.outcome is Outcome.SKIPPED and held.detail.startswith("cooldown")


def pause(scope: str, paused: bool = True) -> tuple[bytes, bytes]:
    record = Pause(scope=scope, paused=paused, by="ann", at=1.0, reason="freeze")
    return scope.encode(), record.model_dump_json().encode()


def test_kill_switch__a_paused_playbook_is_held_then_runs_when_resumed(tmp_path):
    engine, calls = engine_for(tmp_path, BASIC)
    engine.kill_switch.apply(*pause("basic"))
    (held,) = run(engine, incident())
    assert (held.outcome, held.detail) == (
        Outcome.HELD,
        "paused: playbook basic paused by ann: freeze",
    )
    assert calls == [] and engine.done == {}
    engine.kill_switch.apply(*pause("basic", paused=False))
    assert [r.outcome for r in run(engine, incident())] == [Outcome.OK]


def test_kill_switch__a_pause_landing_mid_playbook_holds_the_next_step(tmp_path):
    registry, calls = registry_with_calls()
    engine = PlaybookEngine(registry, ActionContext())

    @registry.action("pauser")
    async def pauser(
        incident: Incident, params: EchoParams, context: ActionContext
    ) -> ActionResult:
        engine.kill_switch.apply(*pause(ALL))
        return ActionResult("pauser", ok=True, detail="paused everything")

    (tmp_path / "p.yaml").write_text(BASIC.replace("steps:", "steps:\n  - pauser: {}"))
    playbook, problems = load_file(tmp_path / "p.yaml", registry)
    assert problems == [] and playbook is not None
    engine.playbooks, engine.loaded = [playbook], True
    first, second = run(engine, incident())
    assert (first.outcome, second.outcome) == (Outcome.OK, Outcome.HELD)
    assert second.detail == "paused: all actions paused by ann: freeze" and calls == []
