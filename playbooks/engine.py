"""The playbook engine: match an incident event to playbooks and run their steps.

Steps of one playbook run in order; a failed step stops its playbook. Each step
that succeeded for an (incident, transition, count) is not run again by this
engine, so a redelivered incident event does not post a second message; durable
idempotency across restarts, retries and backoff come with the playbooks issue.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from fireline.errors import ActionError, PlaybookValidationError
from playbooks.incident import Incident
from playbooks.loader import load_directory, playbook_files
from playbooks.registry import ActionContext, ActionRegistry, ActionResult
from playbooks.schema import Playbook

log = logging.getLogger(__name__)

_DONE_KEYS = 100_000  # idempotency memory; oldest keys are forgotten first


class PlaybookEngine:
    """Holds the current good playbook set and runs it."""

    def __init__(self, registry: ActionRegistry, context: ActionContext) -> None:
        self.registry = registry
        self.context = context
        self.playbooks: list[Playbook] = []
        self.loaded = False
        self.last_error: PlaybookValidationError | None = None
        self._signature: tuple[tuple[str, float, int], ...] = ()
        self._done: OrderedDict[str, ActionResult] = OrderedDict()

    def load(self, directory: Path) -> None:
        """Load ``directory``; on error keep the previous set and re-raise the problems."""
        signature = _signature(directory)
        try:
            playbooks = load_directory(directory, self.registry)
        except PlaybookValidationError as exc:
            self.last_error = exc
            self._signature = signature  # do not re-report the same broken files every poll
            raise
        self.playbooks = playbooks
        self.loaded = True
        self.last_error = None
        self._signature = signature

    def reload_if_changed(self, directory: Path) -> bool:
        """Reload when a file changed; return True when a new set took effect."""
        if _signature(directory) == self._signature:
            return False
        try:
            self.load(directory)
        except PlaybookValidationError as exc:
            log.error(
                "playbooks in %s rejected, keeping the previous %d:\n%s",
                directory,
                len(self.playbooks),
                exc,
            )
            return False
        log.info("loaded %d playbooks from %s", len(self.playbooks), directory)
        return True

    def matching(self, incident: Incident) -> list[Playbook]:
        """The enabled playbooks this incident event triggers."""
        return [p for p in self.playbooks if p.enabled and p.match.matches(incident)]

    async def handle(self, incident: Incident) -> list[ActionResult]:
        """Run every matching playbook's steps; return what each step did."""
        results: list[ActionResult] = []
        for playbook in self.matching(incident):
            results.extend(await self._run(playbook, incident))
        return results

    async def _run(self, playbook: Playbook, incident: Incident) -> Sequence[ActionResult]:
        results = []
        for index, step in enumerate(playbook.steps):
            key = f"{incident.id}|{incident.transition.value}|{incident.count}|{playbook.name}|{index}"
            if key in self._done:
                continue
            action = self.registry.get(step.action)
            try:
                result = await action.run(incident, step.params, self.context)
            except ActionError as exc:
                result = ActionResult(step.action, ok=False, detail=str(exc))
            except Exception as exc:
                log.exception("action %s of playbook %s crashed", step.action, playbook.name)
                result = ActionResult(step.action, ok=False, detail=f"action crashed: {exc!r}")
            if result.ok:  # a failed step may be tried again when the event comes back
                self._remember(key, result)
            results.append(result)
            if not result.ok:
                log.warning(
                    "playbook %s step %d (%s) failed: %s",
                    playbook.name,
                    index,
                    step.action,
                    result.detail,
                )
                break
        return results

    def _remember(self, key: str, result: ActionResult) -> None:
        self._done[key] = result
        while len(self._done) > _DONE_KEYS:
            self._done.popitem(last=False)


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
