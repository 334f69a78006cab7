"""The playbook engine: match an incident event to playbooks and run their steps safely.

For each matching playbook, in order: guardrails (kill switch, cooldown per
incident fingerprint, runs per hour), then each step: its ``when`` condition,
params rendered from the incident in a sandbox, the action with a timeout and
retries (exponential backoff), and ``on_failure``. A dry-run playbook (or a
global dry run) records what it would have run and runs nothing.

Idempotency: each (incident event, playbook, step) that succeeded is recorded in
``done`` as a :class:`~playbooks.steps.StepState` (a Faust table in the worker,
so it survives restarts and is shared through its changelog), and a
redelivered or replayed event never runs it again.

The engine talks to no chat itself: what a dry run would have done goes to the
:class:`DryRunNotifier` it was given.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import MutableMapping, Sequence
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
from playbooks.loader import load_directory, playbook_files
from playbooks.registry import ActionRegistry, ActionResult
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


class Reload(StrEnum):
    """What a poll of the playbooks directory did."""

    UNCHANGED = "unchanged"
    LOADED = "loaded"  # a new set took effect
    REJECTED = "rejected"  # the change is invalid; the previous set stays


@dataclass(frozen=True)
class Guardrails:
    """Global switches from the settings."""

    actions_enabled: bool = True  # the kill switch: False runs nothing at all
    dry_run: bool = False  # every playbook behaves as mode: dry-run


class PlaybookEngine:
    """Holds the current good playbook set and runs it."""

    def __init__(
        self,
        registry: ActionRegistry,
        context: ActionContext,
        done: MutableMapping[bytes, bytes] | None = None,
        guardrails: Guardrails | None = None,
        notifier: DryRunNotifier | None = None,
        render_limits: RenderLimits | None = None,
    ) -> None:
        """``done``: step key → :class:`StepState` JSON; ``notifier``: None announces nothing.

        ``render_limits``: how big and slow a step param's template may be.
        """
        self.render_limits = render_limits or RenderLimits()
        self.registry = registry
        self.context = context
        self.done: MutableMapping[bytes, bytes] = {} if done is None else done
        self.guardrails = guardrails or Guardrails()
        self.notifier = notifier
        self.playbooks: list[Playbook] = []
        self.loaded = False
        self._signature: tuple[tuple[str, float, int], ...] = ()
        self._last_run: dict[tuple[str, str], float] = {}  # (playbook, fingerprint) → time
        self._runs: defaultdict[str, deque[float]] = defaultdict(deque)  # playbook → times
        self._target_runs: defaultdict[str, deque[float]] = defaultdict(deque)  # target → times
        # (incident id, playbook) → its verify deadline; in this worker's memory
        self.pending_verifications: dict[tuple[str, str], VerificationDue] = {}

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

    # -- running -----------------------------------------------------------------------

    def matching(self, incident: Incident) -> list[Playbook]:
        """The enabled playbooks this incident event triggers."""
        return [p for p in self.playbooks if p.enabled and p.match.matches(incident)]

    async def handle(self, incident: Incident, now: float | None = None) -> list[StepRecord]:
        """Run every matching playbook's steps; return what each step did."""
        now = time.time() if now is None else now
        records: list[StepRecord] = []
        for playbook in self.matching(incident):
            held = self._held(playbook, incident, now)
            if held is not None:
                records.append(StepRecord(playbook.name, "-", "-", Outcome.SKIPPED, held))
                continue
            ran = await self._run(playbook, incident)
            records.extend(ran)
            self._schedule_verify(playbook, incident, ran, now)
        return records

    def _schedule_verify(
        self, playbook: Playbook, incident: Incident, ran: list[StepRecord], now: float
    ) -> None:
        if playbook.verify is None or not any(r.outcome is Outcome.OK for r in ran):
            return
        key = (incident.id, playbook.name)
        if key not in self.pending_verifications:
            self.pending_verifications[key] = VerificationDue(
                incident=incident,
                playbook=playbook.name,
                ran_at=now,
                deadline=now + playbook.verify.resolved_within,
            )

    def due_verifications(self, now: float) -> list[VerificationDue]:
        """The verify deadlines that passed (each returned once)."""
        due = [v for v in self.pending_verifications.values() if v.deadline <= now]
        for item in due:
            del self.pending_verifications[(item.incident.id, item.playbook)]
        return due

    async def verify(self, due: VerificationDue, current: Incident | None) -> list[StepRecord]:
        """Check a remediation at its deadline: resolved is verified, else run on_unverified."""
        playbook = next((p for p in self.playbooks if p.name == due.playbook), None)
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
        for index, step in enumerate(playbook.verify.on_unverified):
            key = f"{due.incident.id}|{due.incident.revision}|{playbook.name}|verify|{index}"
            if key.encode() in self.done:
                continue
            record = await self._step(playbook, step, incident, variables, self.guardrails.dry_run)
            if record.outcome in (Outcome.OK, Outcome.DRY_RUN):
                self.done[key.encode()] = StepState(outcome=record.outcome).encode()
            records.append(record)
            if record.outcome is Outcome.FAILED and step.on_failure is OnFailure.STOP:
                break
        return records

    def _held(self, playbook: Playbook, incident: Incident, now: float) -> str | None:
        """Why a guardrail holds this run back, or None (and the run is counted)."""
        if not self.guardrails.actions_enabled:
            return "actions are disabled (kill switch: actions_enabled is false)"
        key = (playbook.name, incident.fingerprint)
        if playbook.cooldown is not None and key in self._last_run:
            since = now - self._last_run[key]
            if since < playbook.cooldown:
                return f"cooldown: ran for this fingerprint {since:.0f}s ago"
        runs = self._runs[playbook.name]
        while runs and runs[0] <= now - 3600:
            runs.popleft()
        if playbook.max_runs_per_hour is not None and len(runs) >= playbook.max_runs_per_hour:
            return f"rate limit: {len(runs)} runs in the last hour"
        self._last_run[key] = now
        runs.append(now)
        return None

    async def resume(self, request: ApprovalRequest, now: float | None = None) -> list[StepRecord]:
        """Go on with a playbook after a human decided on its waiting step."""
        playbook = next((p for p in self.playbooks if p.name == request.playbook), None)
        step = request.step
        if playbook is None or request.step_index >= len(playbook.steps):
            detail = f"playbook {request.playbook} no longer has that step; nothing run"
            return [StepRecord(request.playbook, step, request.action, Outcome.SKIPPED, detail)]
        if request.status is Decision.REJECTED:
            detail = f"rejected by {request.decided_by}"
            key = _step_key(request.incident, playbook.name, request.step_index)
            self.done[key] = StepState(outcome=Outcome.REJECTED).encode()
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
            if state is not None and not (approved and state.waits_for_approval):
                if state.holds_the_playbook:
                    break  # still waiting for (or refused by) a human
                continue  # already ran for this very event (a redelivery or a replay)
            if step.require_approval and not approved and not dry and step.applies(incident):
                record = self._request_approval(playbook, step, index, incident, variables)
                self.done[key] = StepState(outcome=record.outcome).encode()
                records.append(record)
                break
            record = await self._step(playbook, step, incident, variables, dry)
            if approved:
                record = replace(record, approved_by=approved_by)
            if record.outcome in (Outcome.OK, Outcome.DRY_RUN):
                self.done[key] = StepState(outcome=record.outcome).encode()
            record = _after_failure(playbook, index, step, record)
            records.append(record)
            if record.outcome is Outcome.FAILED and step.on_failure is not OnFailure.CONTINUE:
                break
        if dry and records and self.notifier is not None:
            await self.notifier.announce_dry_run(playbook.name, incident, records)
        return records

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
        incident: Incident,
        variables: dict[str, Any],
        dry: bool,
    ) -> StepRecord:
        def record(outcome: Outcome, detail: str, **extra: Any) -> StepRecord:
            return StepRecord(playbook.name, step.label, step.action, outcome, detail, **extra)

        if not step.applies(incident):
            return record(Outcome.SKIPPED, f"when is false: {step.when}")
        try:
            params = render_params(step.params, variables, self.render_limits)
        except (RenderError, ValueError) as exc:
            return record(Outcome.FAILED, f"params: {exc}")
        context = self.context.for_playbook(playbook.runbook_url)
        shown = redact(params.resolved(incident, context))  # the defaults shown, not None
        if dry:
            return record(Outcome.DRY_RUN, f"dry-run: would run {step.action}", params=shown)
        target = target_of(step.action, params)
        if (held := self._target_held(playbook, target)) is not None:
            return record(Outcome.SKIPPED, held, params=shown, target=target)
        started = time.perf_counter()
        result, attempts = await self._attempts(step, incident, params, context)
        return record(
            Outcome.OK if result.ok else Outcome.FAILED,
            result.detail,
            params=shown,
            target=result.target,
            attempts=attempts,
            duration_s=round(time.perf_counter() - started, 6),
        )

    def _target_held(self, playbook: Playbook, target: str) -> str | None:
        """Why the per-target limit holds this run back, or None (and the run is counted)."""
        runs = self._target_runs[target]
        now = time.time()
        while runs and runs[0] <= now - 3600:
            runs.popleft()
        limit = playbook.max_runs_per_target_per_hour
        if limit is not None and len(runs) >= limit:
            return f"rate limit: {len(runs)} runs against {target} in the last hour"
        runs.append(now)
        return None

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
