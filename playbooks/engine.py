"""The playbook engine: match an incident event to playbooks and run their steps safely.

For each matching playbook, in order: guardrails (kill switches, cooldown per
incident fingerprint, runs per hour), then each step: its ``when`` condition,
params rendered from the incident in a sandbox, the per-target limit, the
action with a timeout and retries (exponential backoff), and ``on_failure``.
A dry-run playbook (or a global dry run) records what it would have run and
runs nothing.

State, all in :class:`DurableMap` s (Faust tables in the worker, whose writes
are acknowledged by the broker before ``put`` returns):

- ``done``: each (incident event, playbook, step) as a
  :class:`~playbooks.steps.StepState`. A step about to act is recorded
  ``started`` first and with its result after, so a redelivered event never
  runs a step that finished, and one that started without a result is
  reconciled (the action's reconciler asks its target) instead of repeated.
- ``guards``: each playbook's :class:`~playbooks.guardrails.GuardState`
  (counters and the verify deadlines), written before anything acts. Approvals
  expire elsewhere: ``approval_ttl_s``, agents/incidents/approval_expiry.py.

In the worker one partition owns a playbook (``fireline.action-requests`` is
keyed by its name), so these counters hold across workers and restarts.

The engine talks to no chat itself: what a dry run would have done goes to the
:class:`DryRunNotifier` it was given.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel

from fireline.durations import human_duration
from fireline.errors import ActionError, PlaybookValidationError
from fireline.incident import Incident
from playbooks.approvals import ApprovalRequest, Decision, VerificationDue, approval_id
from playbooks.context import ActionContext
from playbooks.expressions import incident_variables
from playbooks.guardrails import (
    Deadline,
    GuardState,
    add_deadline,
    admit_run,
    admit_target,
    drop_deadlines,
    due_deadlines,
)
from playbooks.kill_switch import KillSwitch
from playbooks.loader import load_directory, playbook_files
from playbooks.registry import ActionRegistry, ActionResult, Verdict
from playbooks.schema import Mode, OnFailure, Playbook, Step
from playbooks.steps import Outcome, StepRecord, StepState
from playbooks.templating import RenderError, RenderLimits, render_params

log = logging.getLogger(__name__)

_SECRET_WORDS = ("token", "secret", "password", "authorization", "api_key", "routing_key")


class DryRunNotifier(Protocol):
    """Tells people what a dry-run playbook would have done (the chat side implements it)."""

    async def announce_dry_run(
        self, playbook: str, incident: Incident, records: Sequence[StepRecord]
    ) -> None:
        """Say it where the incident's people look; a failed post is logged, never raised."""
        ...


class DurableMap(Protocol):
    """Bytes by key, where ``put`` returns once the value is durable (acknowledged)."""

    def get(self, key: bytes) -> bytes | None:
        """The value under ``key``, if any."""
        ...

    async def put(self, key: bytes, value: bytes) -> None:
        """Store ``value``; return only when a restart would find it."""
        ...

    def put_soon(self, key: bytes, value: bytes) -> None:
        """Store ``value`` now and make it durable without waiting (a loss is recoverable)."""
        ...

    def all_keys(self) -> Iterable[bytes]:
        """Every key held."""
        ...

    def delete_soon(self, key: bytes) -> None:
        """Forget ``key`` (a tombstone in the changelog), without waiting."""
        ...


class MemoryMap(dict[bytes, bytes]):
    """A :class:`DurableMap` in memory: for one process (tests, tools), durable as that."""

    async def put(self, key: bytes, value: bytes) -> None:
        """Store it."""
        self[key] = value

    def put_soon(self, key: bytes, value: bytes) -> None:
        """Store it."""
        self[key] = value

    def all_keys(self) -> Iterable[bytes]:
        """Every key held."""
        return list(self)

    def delete_soon(self, key: bytes) -> None:
        """Forget it."""
        self.pop(key, None)


class Reload(StrEnum):
    """What a poll of the playbooks directory did."""

    UNCHANGED = "unchanged"
    LOADED = "loaded"  # a new set took effect
    REJECTED = "rejected"  # the change is invalid; the previous set stays


@dataclass(frozen=True)
class Guardrails:
    """Global switches from the settings."""

    actions_enabled: bool = True  # the static kill switch: False runs nothing at all
    dry_run: bool = False  # every playbook behaves as mode: dry-run
    # A backtest asks what would have happened: its dry runs get verify deadlines as
    # if their steps had acted, so an incident still open at the deadline shows the page.
    verify_dry_runs: bool = False


class PlaybookEngine:
    """Holds the current good playbook set and runs it."""

    def __init__(
        self,
        registry: ActionRegistry,
        context: ActionContext,
        done: DurableMap | None = None,
        guardrails: Guardrails | None = None,
        notifier: DryRunNotifier | None = None,
        *,
        guards: DurableMap | None = None,
        kill_switch: KillSwitch | None = None,
        after_side_effect: Callable[[str], None] | None = None,
        render_limits: RenderLimits | None = None,
    ) -> None:
        """``done``: step key → :class:`StepState` JSON; ``guards``: playbook → GuardState JSON.

        ``notifier``: None announces nothing. ``after_side_effect(action)`` is a
        test hook called between an action's return and its result record.
        ``render_limits``: how big and slow a step param's template may be.
        """
        self.render_limits = render_limits or RenderLimits()
        self.registry = registry
        self.context = context
        self.done: DurableMap = MemoryMap() if done is None else done
        self.guards: DurableMap = MemoryMap() if guards is None else guards
        self.guardrails = guardrails or Guardrails()
        self.notifier = notifier
        self.kill_switch = kill_switch or KillSwitch()
        self.after_side_effect = after_side_effect
        self.playbooks: list[Playbook] = []
        self.loaded = False
        self._signature: tuple[tuple[str, float, int], ...] = ()

    # -- loading -----------------------------------------------------------------------

    def load(self, directory: Path) -> None:
        """Load ``directory``; on error keep the previous set and re-raise the problems."""
        signature = _signature(directory)
        try:
            playbooks = load_directory(directory, self.registry)
        except PlaybookValidationError:
            self._signature = signature  # do not re-report the same broken files every poll
            raise
        self.playbooks = playbooks
        self.loaded = True
        self._signature = signature

    def reload_if_changed(self, directory: Path) -> Reload:
        """Reload when a file changed; say whether a new set took effect or was rejected.

        A rejected change is reported once: the next poll finds nothing new.
        """
        if _signature(directory) == self._signature:
            return Reload.UNCHANGED
        try:
            self.load(directory)
        except PlaybookValidationError as exc:
            log.error(
                "playbooks in %s rejected, keeping the previous %d:\n%s",
                directory,
                len(self.playbooks),
                exc,
            )
            return Reload.REJECTED
        log.info("loaded %d playbooks from %s", len(self.playbooks), directory)
        return Reload.LOADED

    def playbook(self, name: str) -> Playbook | None:
        """The loaded playbook called ``name``."""
        return next((p for p in self.playbooks if p.name == name), None)

    # -- running -----------------------------------------------------------------------

    def matching(self, incident: Incident) -> list[Playbook]:
        """The enabled playbooks this incident event triggers."""
        return [p for p in self.playbooks if p.enabled and p.match.matches(incident)]

    async def handle(self, incident: Incident, now: float | None = None) -> list[StepRecord]:
        """Run every matching playbook here and now; return what each step did.

        One process's path (tests, tools); the worker hands each matching
        playbook to its owner instead, which calls :meth:`run_playbook`.
        """
        records: list[StepRecord] = []
        for playbook in self.matching(incident):
            records.extend(await self.run_playbook(incident, playbook.name, now))
        return records

    async def run_playbook(
        self, incident: Incident, name: str, now: float | None = None
    ) -> list[StepRecord]:
        """Run one playbook for an incident event, behind its guardrails."""
        now = time.time() if now is None else now
        playbook = self.playbook(name)
        if playbook is None:
            detail = f"playbook {name} is no longer loaded; nothing run"
            return [StepRecord(name, "-", "-", Outcome.SKIPPED, detail)]
        if not self.guardrails.actions_enabled:
            detail = "actions are disabled (kill switch: actions_enabled is false)"
            return [StepRecord(name, "-", "-", Outcome.SKIPPED, detail)]
        if (paused := self.kill_switch.held(name)) is not None:
            return [StepRecord(name, "-", "-", Outcome.HELD, paused)]
        if (held := await self._admit(playbook, incident, now)) is not None:
            return [StepRecord(name, "-", "-", Outcome.SKIPPED, held)]
        ran = await self._run(playbook, incident)
        await self._schedule_verify(playbook, incident, ran, now)
        return ran

    async def _admit(self, playbook: Playbook, incident: Incident, now: float) -> str | None:
        """Why the playbook's guardrails hold this run back, or None (counted, durably).

        A redelivered event of a run already admitted is admitted again without
        counting, so its steps finish (or reconcile) rather than being held.
        """
        if playbook.cooldown is None and playbook.max_runs_per_hour is None:
            return None  # nothing to count, nothing to write
        run_key = f"{incident.id}|{incident.revision}"
        state = self._guard(playbook.name)
        if run_key in state.admitted:
            return None
        held, counted = admit_run(
            state, incident.fingerprint, now, playbook.cooldown, playbook.max_runs_per_hour
        )
        if held is None:
            await self._put_guard(playbook.name, counted.with_admitted(run_key, now))
        return held

    async def _schedule_verify(
        self, playbook: Playbook, incident: Incident, ran: list[StepRecord], now: float
    ) -> None:
        acted = {Outcome.OK, Outcome.DRY_RUN} if self.guardrails.verify_dry_runs else {Outcome.OK}
        if playbook.verify is None or not any(r.outcome in acted for r in ran):
            return
        deadline = Deadline(
            kind="verify",
            due=now + playbook.verify.resolved_within,
            incident=incident,
            ran_at=now,
        )
        await self._put_guard(playbook.name, add_deadline(self._guard(playbook.name), deadline))

    def due(self, playbooks: Iterable[str], now: float) -> list[tuple[str, Deadline]]:
        """The deadlines of ``playbooks`` that passed (each stays until handled)."""
        return [
            (name, deadline)
            for name in playbooks
            for deadline in due_deadlines(self._guard(name), now)
        ]

    async def handle_deadline(
        self, playbook: str, deadline: Deadline, current: Incident | None
    ) -> list[StepRecord]:
        """Verify a remediation at its deadline, then forget the deadline.

        The deadline is dropped only after its steps ran (each at most once,
        through ``done``): a worker that dies in between handles it again.
        """
        due = VerificationDue(
            incident=deadline.incident,
            playbook=playbook,
            ran_at=deadline.ran_at,
            deadline=deadline.due,
        )
        records = await self.verify(due, current)
        await self._put_guard(playbook, drop_deadlines(self._guard(playbook), {deadline.id}))
        return records

    async def verify(self, due: VerificationDue, current: Incident | None) -> list[StepRecord]:
        """Check a remediation at its deadline: resolved is verified, else run on_unverified."""
        playbook = self.playbook(due.playbook)
        if playbook is None or playbook.verify is None:
            return []
        waited = human_duration(due.deadline - due.ran_at)
        if current is not None and not current.is_open:
            detail = f"verified: the incident resolved within {waited}"
            return [StepRecord(playbook.name, "verify", "verify", Outcome.OK, detail)]
        incident = current or due.incident
        records = [
            StepRecord(
                playbook.name,
                "verify",
                "verify",
                Outcome.FAILED,
                f"unverified: still {incident.status.value} {waited} after the playbook ran",
            )
        ]
        variables = incident_variables(incident)
        dry = self.guardrails.dry_run
        for index, step in enumerate(playbook.verify.on_unverified):
            key = (
                f"{due.incident.id}|{due.incident.revision}|{playbook.name}|verify|{index}".encode()
            )
            record = await self._once(playbook, step, key, incident, variables, dry)
            if record is None:
                continue
            records.append(record)
            if record.outcome in (Outcome.HELD, Outcome.UNKNOWN):
                break
            if record.outcome is Outcome.FAILED and step.on_failure is OnFailure.STOP:
                break
        return records

    async def resume(self, request: ApprovalRequest) -> list[StepRecord]:
        """Go on with a playbook after a human decided on its waiting step."""
        playbook = self.playbook(request.playbook)
        step = request.step
        if playbook is None or request.step_index >= len(playbook.steps):
            detail = f"playbook {request.playbook} no longer has that step; nothing run"
            return [StepRecord(request.playbook, step, request.action, Outcome.SKIPPED, detail)]
        key = _step_key(request.incident, playbook.name, request.step_index)
        raw = self.done.get(key)
        if raw is not None and not StepState.decode(raw).waits_for_approval:
            return []  # decided already (a repeated decision, or an expiry first)
        if request.status is Decision.REJECTED:
            detail = f"rejected by {request.decided_by}"
            await self._put_step(key, Outcome.REJECTED)
            record = StepRecord(
                playbook.name,
                step,
                request.action,
                Outcome.REJECTED,
                detail,
                approved_by=request.decided_by,
            )
            return [record]
        return await self._run(
            playbook, request.incident, request.step_index, approved_by=request.decided_by
        )

    async def _run(
        self,
        playbook: Playbook,
        incident: Incident,
        start: int = 0,
        approved_by: str | None = None,
    ) -> list[StepRecord]:
        dry = playbook.mode is Mode.DRY_RUN or self.guardrails.dry_run
        variables = incident_variables(incident)
        records = []
        for index in range(start, len(playbook.steps)):
            step = playbook.steps[index]
            key = _step_key(incident, playbook.name, index)
            approved = approved_by is not None and index == start
            raw = self.done.get(key)
            state = None if raw is None else StepState.decode(raw)
            if state is not None and state.holds_the_playbook and not approved:
                # waiting for (or refused by) a human, or unknown: a human must look
                log.info(
                    "playbook %s for incident %s: step %s is %s; the steps after it wait",
                    playbook.name,
                    incident.id,
                    step.label,
                    state.outcome.value,
                )
                break
            fresh = state is None or state.may_run_again
            asks = step.require_approval and not approved and not dry
            if fresh and asks and step.applies(incident):
                record = self._request_approval(playbook, step, index, incident, variables)
                await self._put_step(key, Outcome.PENDING_APPROVAL)
                records.append(record)
                break
            found = await self._once(
                playbook, step, key, incident, variables, dry, resuming_approval=approved
            )
            if found is None:
                continue  # already ran for this very event (a redelivery or a replay)
            record = replace(found, approved_by=approved_by) if approved else found
            record = _after_failure(playbook, index, step, record)
            records.append(record)
            if record.outcome in (Outcome.HELD, Outcome.UNKNOWN, Outcome.REJECTED):
                break
            if record.outcome is Outcome.FAILED and step.on_failure is not OnFailure.CONTINUE:
                break
        if dry and records and self.notifier is not None:
            await self.notifier.announce_dry_run(playbook.name, incident, records)
        return records

    async def _once(
        self,
        playbook: Playbook,
        step: Step,
        key: bytes,
        incident: Incident,
        variables: dict[str, Any],
        dry: bool,
        resuming_approval: bool = False,
    ) -> StepRecord | None:
        """Run one step at most once for this key: None when it already ran.

        A step that started without a result (the worker died during it) is
        reconciled with its target; a failed one is tried again.
        """
        raw = self.done.get(key)
        state = None if raw is None else StepState.decode(raw)
        if state is not None and state.started_without_result:
            return await self._reconcile(playbook, step, key, incident, variables)
        resumable = resuming_approval and state is not None and state.waits_for_approval
        if state is not None and not state.may_run_again and not resumable:
            return None
        return await self._step(playbook, step, key, incident, variables, dry)

    async def _reconcile(
        self,
        playbook: Playbook,
        step: Step,
        key: bytes,
        incident: Incident,
        variables: dict[str, Any],
    ) -> StepRecord:
        """Ask the target whether a started step acted; record it done, act again, or unknown."""
        try:
            params = render_params(step.params, variables)
        except (RenderError, ValueError) as exc:
            return await self._unknown(playbook, step, key, f"reconcile: params: {exc}")
        context = self.context.for_playbook(playbook.runbook_url).for_step(_idempotency(key))
        action = self.registry.get(step.action)
        try:
            found = await asyncio.wait_for(
                action.reconcile(incident, params, context), step.timeout
            )
        except (TimeoutError, ActionError) as exc:
            return await self._unknown(playbook, step, key, f"reconcile failed: {exc!r}")
        shown = redact(params.resolved(incident, context))
        target = target_of(step.action, params)
        if found.verdict is Verdict.DONE:
            await self._put_step(key, Outcome.OK)
            detail = f"reconciled after a restart: {found.detail}"
            return StepRecord(
                playbook.name, step.label, step.action, Outcome.OK, detail, shown, target
            )
        if found.verdict is Verdict.UNKNOWN:
            return await self._unknown(playbook, step, key, found.detail, shown, target)
        log.info("step %s of %s: %s; acting again", step.label, playbook.name, found.detail)
        return await self._step(playbook, step, key, incident, variables, dry=False, counted=True)

    async def _unknown(
        self,
        playbook: Playbook,
        step: Step,
        key: bytes,
        why: str,
        params: dict[str, Any] | None = None,
        target: str | None = None,
    ) -> StepRecord:
        await self._put_step(key, Outcome.UNKNOWN)
        detail = f"unknown: the worker stopped during this step; {why}. Check the target by hand"
        log.error("playbook %s step %s (%s): %s", playbook.name, step.label, key.decode(), detail)
        return StepRecord(
            playbook.name, step.label, step.action, Outcome.UNKNOWN, detail, params or {}, target
        )

    def _guard(self, playbook: str) -> GuardState:
        return GuardState.decode(self.guards.get(playbook.encode()))

    async def _put_guard(self, playbook: str, state: GuardState) -> None:
        await self.guards.put(playbook.encode(), state.encode())

    async def _put_step(self, key: bytes, outcome: Outcome) -> None:
        await self.done.put(key, StepState.written_now(outcome).encode())

    def _request_approval(
        self,
        playbook: Playbook,
        step: Step,
        index: int,
        incident: Incident,
        variables: dict[str, Any],
    ) -> StepRecord:
        try:
            context = self.context.for_playbook(playbook.runbook_url)
            # What the human approves: the params as the action will act with them.
            rendered = render_params(step.params, variables, self.render_limits)
            shown = redact(rendered.resolved(incident, context))
        except (RenderError, ValueError) as exc:
            shown = {"error": f"params would fail: {exc}"}
        request = ApprovalRequest(
            id=approval_id(incident, playbook.name, index),
            incident=incident,
            playbook=playbook.name,
            step_index=index,
            step=step.label,
            action=step.action,
            params=shown,
            requested_at=time.time(),
        )
        detail = f"waiting for approval {request.id}"
        return StepRecord(
            playbook.name,
            step.label,
            step.action,
            Outcome.PENDING_APPROVAL,
            detail,
            params=shown,
            approval=request,
        )

    async def _step(
        self,
        playbook: Playbook,
        step: Step,
        key: bytes,
        incident: Incident,
        variables: dict[str, Any],
        dry: bool,
        counted: bool = False,
    ) -> StepRecord:
        """Render, check the per-target limit and the pause, record the intent, act, record.

        ``counted``: the per-target limit already counted this step (acting again
        after a reconciliation).
        """

        def record(outcome: Outcome, detail: str, **extra: Any) -> StepRecord:
            return StepRecord(playbook.name, step.label, step.action, outcome, detail, **extra)

        if not step.applies(incident):
            return record(Outcome.SKIPPED, f"when is false: {step.when}")
        try:
            params = render_params(step.params, variables, self.render_limits)
        except (RenderError, ValueError) as exc:
            return record(Outcome.FAILED, f"params: {exc}")
        context = self.context.for_playbook(playbook.runbook_url).for_step(_idempotency(key))
        shown = redact(params.resolved(incident, context))  # the defaults shown, not None
        if dry:
            await self._put_step(key, Outcome.DRY_RUN)
            return record(Outcome.DRY_RUN, f"dry-run: would run {step.action}", params=shown)
        target = target_of(step.action, params)
        if (paused := self.kill_switch.held(playbook.name)) is not None:
            return record(Outcome.HELD, paused, params=shown, target=target)
        if not counted and (held := await self._admit_target(playbook, target)) is not None:
            return record(Outcome.SKIPPED, held, params=shown, target=target)
        await self._put_step(key, Outcome.STARTED)  # the intent, durable before the act
        started = time.perf_counter()
        result, attempts = await self._attempts(step, incident, params, context)
        if self.after_side_effect is not None:
            self.after_side_effect(step.action)
        # Not awaited: a lost result leaves ``started``, which a redelivery reconciles.
        self.done.put_soon(
            key, StepState.written_now(Outcome.OK if result.ok else Outcome.FAILED).encode()
        )
        return record(
            Outcome.OK if result.ok else Outcome.FAILED,
            result.detail,
            params=shown,
            target=result.target,
            attempts=attempts,
            duration_s=round(time.perf_counter() - started, 6),
        )

    async def _admit_target(self, playbook: Playbook, target: str) -> str | None:
        """Why the per-target limit holds this step back, or None (counted, durably)."""
        limit = playbook.max_runs_per_target_per_hour
        if limit is None:
            return None
        held, counted = admit_target(self._guard(playbook.name), target, time.time(), limit)
        if held is None:
            await self._put_guard(playbook.name, counted)
        return held

    async def _attempts(
        self, step: Step, incident: Incident, params: BaseModel, context: ActionContext
    ) -> tuple[ActionResult, int]:
        action = self.registry.get(step.action)
        result = ActionResult(step.action, ok=False, detail="not run")
        for attempt in range(1, step.retries + 2):
            try:
                result = await asyncio.wait_for(action.run(incident, params, context), step.timeout)
            except TimeoutError:
                result = ActionResult(
                    step.action, ok=False, detail=f"timed out after {step.timeout}s"
                )
            except ActionError as exc:
                result = ActionResult(step.action, ok=False, detail=str(exc))
            except Exception as exc:
                log.exception("action %s crashed", step.action)
                result = ActionResult(step.action, ok=False, detail=f"action crashed: {exc!r}")
            if result.ok or attempt > step.retries:
                return result, attempt
            await asyncio.sleep(step.backoff * 2 ** (attempt - 1))
        return result, step.retries + 1


_TARGET_FIELDS = ("channel", "url", "topic", "model", "tracking_uri", "routing_key_env", "argv")


def target_of(action: str, params: BaseModel) -> str:
    """What a step acts on, for per-target rate limits: its action and main param.

    >>> from pydantic import BaseModel
    >>> class P(BaseModel):
    ...     channel: str | None = None
    >>> target_of("slack", P(channel="#oncall")), target_of("slack", P())
    ('slack:#oncall', 'slack:default')
    """
    values = params.model_dump(mode="json")
    for name in _TARGET_FIELDS:
        if values.get(name):
            return f"{action}:{values[name]}"
    return f"{action}:default"


def _after_failure(playbook: Playbook, index: int, step: Step, record: StepRecord) -> StepRecord:
    """Log a failed step and mark it for escalation when its playbook says so."""
    if record.outcome is not Outcome.FAILED:
        return record
    log.warning(
        "playbook %s step %d (%s) failed: %s", playbook.name, index, step.label, record.detail
    )
    return replace(record, escalate=step.on_failure is OnFailure.ESCALATE)


def _step_key(incident: Incident, playbook: str, index: int) -> bytes:
    return f"{incident.id}|{incident.revision}|{playbook}|{index}".encode()


def _idempotency(step_key: bytes) -> str:
    """The step's idempotency key: stable across attempts, redeliveries and workers."""
    return "fireline-" + hashlib.sha256(step_key).hexdigest()[:32]


def redact(params: BaseModel) -> dict[str, Any]:
    """Params as JSON-able data with secret-looking values replaced.

    Names ending in ``_env`` or ``_file`` say *where* a secret lives and are kept.

    >>> from pydantic import BaseModel
    >>> class P(BaseModel):
    ...     url: str
    ...     token: str
    ...     secret_env: str
    >>> redact(P(url="https://x", token="s3cr3t", secret_env="HOOK_SECRET"))
    {'url': 'https://x', 'token': '<redacted>', 'secret_env': 'HOOK_SECRET'}
    """

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: "<redacted>" if v not in (None, "") and _secret_name(str(k)) else clean(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return dict(clean(params.model_dump(mode="json")))


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    if lowered.endswith(("_env", "_file")):
        return False
    return any(word in lowered for word in _SECRET_WORDS)


def _signature(directory: Path) -> tuple[tuple[str, float, int], ...]:
    try:
        files = playbook_files(directory)
    except OSError:
        return ()
    out = []
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            continue
        out.append((path.name, stat.st_mtime, stat.st_size))
    return tuple(out)
