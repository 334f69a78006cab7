"""The ``log`` action: one log line naming the incident; for wiring playbooks up safely."""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import Field

from fireline.incident import Incident
from playbooks.context import ActionContext
from playbooks.registry import (
    ActionParams,
    ActionRegistry,
    ActionResult,
    Reconciliation,
    Verdict,
)

log = logging.getLogger("fireline.actions")

Level = Literal["debug", "info", "warning", "error", "critical"]


class LogParams(ActionParams):
    """Params of the ``log`` action."""

    level: Level = Field(default="info", description="Log level of the line.")
    message: str | None = Field(default=None, description="Text appended to the line.")


def register(registry: ActionRegistry) -> None:
    """Add the log action to ``registry``."""

    @registry.action("log")
    async def log_action(
        incident: Incident, params: LogParams, context: ActionContext
    ) -> ActionResult:
        line = f"incident {incident.id} {incident.transition.value}: {incident.title}"
        if params.message:
            line = f"{line} ({params.message})"
        log.log(logging.getLevelNamesMapping()[params.level.upper()], "%s", line)
        return ActionResult("log", ok=True, detail=f"logged at {params.level}", target=log.name)

    @registry.reconciler("log")
    async def reconcile_log(
        incident: Incident, params: LogParams, context: ActionContext
    ) -> Reconciliation:
        return Reconciliation(Verdict.REPEAT, "a log line may be written twice")
