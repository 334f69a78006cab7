"""The worker's parts, each built from settings and the parts it is given.

``agents.service.worker.build_worker`` calls these in dependency order: the
Faust app, its publisher and tables first, then the chat and the action
context, then the engine, then the runtime. Nothing is set on a part after it
is built.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from agents.incidents.desk import IncidentDesk
from agents.incidents.manager import IncidentManager
from agents.incidents.view import IncidentView
from agents.kafka.detector_store import DetectorStore
from agents.metrics import Metrics
from agents.pipelines.metric_pipeline import MetricPipeline
from agents.pipelines.prediction_pipeline import PredictionPipeline
from agents.service.app import FaustPublisher, WorkerTables
from agents.service.runtime import Runtime
from agents.settings import Settings
from agents.slack.thread_notes import ReminderPolicy, ThreadNotes
from detectors.drift.domain_classifier import classifier_process
from detectors.monitor.model_monitor import MonitorConfig
from fireline.errors import ConfigError, PlaybookValidationError
from playbooks.actions import default_registry
from playbooks.chat.root_keeper import RootKeeper
from playbooks.chat.sinks import ChatSink
from playbooks.chat.threads import ThreadStore
from playbooks.context import ActionContext
from playbooks.engine import DryRunNotifier, Guardrails, PlaybookEngine
from playbooks.kill_switch import KillSwitch
from playbooks.templating import RenderLimits


def build_notes(settings: Settings, chat: ChatSink, threads: ThreadStore) -> ThreadNotes:
    """Thread notes through the actions' chat sink, in the slack action's threads."""
    reminders = ReminderPolicy(
        settings.slack_remind_after_s, settings.slack_max_reminders, settings.slack_remind_mention
    )
    return ThreadNotes(
        chat, threads, settings.slack_channel, reminders, settings.slack_step_replies
    )


def build_engine(
    settings: Settings,
    metrics: Metrics,
    context: ActionContext,
    tables: WorkerTables,
    notifier: DryRunNotifier,
    kill_switch: KillSwitch,
) -> PlaybookEngine:
    """The playbook engine acting through ``context``, its playbooks loaded."""
    engine = PlaybookEngine(
        default_registry(),
        context,
        tables.steps,
        Guardrails(actions_enabled=settings.actions_enabled, dry_run=settings.dry_run),
        notifier,
        guards=tables.guardrails,
        kill_switch=kill_switch,
        after_side_effect=exit_after_action_hook(),
        render_limits=RenderLimits(settings.template_max_chars, settings.template_max_seconds),
    )
    try:
        engine.load(settings.playbooks_dir)
    except PlaybookValidationError as exc:
        raise ConfigError(f"playbooks in {settings.playbooks_dir} are invalid:\n{exc}") from exc
    metrics.playbooks_loaded.set(len(engine.playbooks))
    return engine


TEST_EXIT_AFTER_ACTION = "FL_TEST_EXIT_AFTER_ACTION"


def exit_after_action_hook() -> Callable[[str], None] | None:
    """A test hook: ``FL_TEST_EXIT_AFTER_ACTION=<action>`` kills the worker after that action.

    The worker dies at once (``os._exit``, like kill -9) right after the action's
    side effect, before its result is recorded. Never set in production; the
    integration and chaos tests use it to check that a redelivered step is
    reconciled, not repeated.
    """
    action = os.environ.get(TEST_EXIT_AFTER_ACTION)
    if not action:
        return None

    def exit_after(done: str) -> None:
        if done == action:
            os._exit(137)

    return exit_after


def build_runtime(
    settings: Settings,
    metrics: Metrics,
    engine: PlaybookEngine,
    publisher: FaustPublisher,
    notes: ThreadNotes,
    roots: RootKeeper,
    tables: WorkerTables,
    owns_detections: Callable[[int], bool] = lambda _: False,
) -> Runtime:
    """The incident desk and the detection pipelines on the worker's tables, in a Runtime.

    ``owns_detections(partition)``: whether the worker owns that partition of the
    detections topic now (its own detections there are handed over in-process).
    """
    policy = settings.incidents
    view = IncidentView()
    checkpoints = DetectorStore(
        tables.detectors, unreadable=metrics.detector_state_unreadable, deferred=True
    )
    return Runtime(
        settings,
        metrics,
        engine,
        publisher,
        view=view,
        desk=IncidentDesk(IncidentManager(policy), tables.incidents, view),
        notes=notes,
        roots=roots,
        pipeline=MetricPipeline(
            settings.detection, policy.signal_refresh_s, policy.evidence_points, checkpoints
        ),
        predictions=PredictionPipeline(
            MonitorConfig(versions=settings.detection.versions),
            refresh_s=policy.signal_refresh_s,
            store=checkpoints,
            executor=classifier_process(preload=settings.detection.watch_predictions),
        ),
        owns_detections=owns_detections,
    )
