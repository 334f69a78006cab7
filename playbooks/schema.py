"""The playbook file format, as pydantic models.

A playbook file holds one playbook::

    name: latency-spike-alert
    description: Tell the on-call channel when a service's latency spikes.
    owner: ml-platform
    match:
      kinds: [latency_spike]
      transitions: [opened, resolved]
    steps:
      - slack: {channel: "#fraud-oncall"}

Each step is a single-key mapping ``{action_name: params}``; params are validated
against the action's own params model from the registry.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from playbooks.incident import Incident, Transition
from playbooks.registry import ActionParams, ActionRegistry


class Match(BaseModel):
    """Which incidents a playbook answers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kinds: list[str] = Field(min_length=1, description="Incident kinds, e.g. latency_spike.")
    transitions: list[Transition] = Field(
        default=[Transition.OPENED], min_length=1, description="Which state changes trigger it."
    )

    def matches(self, incident: Incident) -> bool:
        """Whether this incident event triggers the playbook."""
        return incident.kind in self.kinds and incident.transition in self.transitions


class StepParamsError(ValueError):
    """A step's params failed their action's model; keeps the nested errors for locating."""

    def __init__(self, action: str, error: ValidationError) -> None:
        self.action = action
        self.errors = error.errors(include_url=False)
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in self.errors
        )
        super().__init__(f"{action}: {details}")


class Step(BaseModel):
    """One action with its validated params, written ``{action_name: params}``."""

    model_config = ConfigDict(frozen=True)

    action: str
    params: ActionParams

    @model_validator(mode="before")
    @classmethod
    def _from_mapping(cls, raw: Any, info: ValidationInfo) -> Any:
        registry = (info.context or {}).get("registry")
        if not isinstance(registry, ActionRegistry):
            raise TypeError("validate playbooks with context={'registry': ActionRegistry}")
        if not isinstance(raw, dict) or len(raw) != 1:
            raise ValueError("expected a single-key mapping {action_name: params}")
        ((name, params),) = raw.items()
        try:
            action = registry.get(str(name))
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
        try:
            validated = action.params_model.model_validate(params or {})
        except ValidationError as exc:
            raise StepParamsError(str(name), exc) from None
        return {"action": name, "params": validated}


class Playbook(BaseModel):
    """One playbook: when it applies and what it does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str = ""
    owner: str | None = None
    enabled: bool = True
    match: Match
    steps: list[Step] = Field(min_length=1)
