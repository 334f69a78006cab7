"""The playbook file format, as pydantic models.

A playbook file holds one playbook::

    name: latency-spike-alert
    description: Tell the on-call channel when a service's latency spikes.
    owner: ml-platform
    mode: active                 # or dry-run: record what would run, run nothing
    match:
      kinds: [latency_spike]     # globs
      transitions: [opened, resolved]
      severity_at_least: warning
      models: ["fraud*"]
      expression: 'incident.count > 1 || incident.severity == "critical"'
    cooldown: 10m                # per incident fingerprint
    max_runs_per_hour: 20
    steps:
      - slack: {channel: "#fraud-oncall", mention: "{{ incident.labels.team }}"}
        when: 'incident.transition == "opened"'
        timeout: 10s
        retries: 2
        on_failure: continue

Each step is a mapping with one action key ``{action_name: params}`` plus
optional step options; params are validated against the action's own params
model from the registry, and their strings may be Jinja2 templates.
"""

from __future__ import annotations

from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from fireline.errors import PlaybookValidationError
from fireline.incident import Incident, Severity, Transition
from playbooks.expressions import Expression, incident_variables
from playbooks.registry import ActionParams, ActionRegistry
from playbooks.templating import check_template, template_strings

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Seconds from a number or ``500ms``, ``30s``, ``10m``, ``1h``, ``2d``.

    >>> parse_duration("10m"), parse_duration(1.5)
    (600.0, 1.5)
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        for unit in ("ms", "s", "m", "h", "d"):
            number = text.removesuffix(unit)
            if number != text:
                try:
                    return float(number) * _DURATION_UNITS[unit]
                except ValueError:
                    break
    raise ValueError(f"expected a duration like 30s, 10m or 1h, got {value!r}")


class Mode(StrEnum):
    """Whether a playbook acts or only records what it would do."""

    ACTIVE = "active"
    DRY_RUN = "dry-run"


class OnFailure(StrEnum):
    """What a failed step (after its retries) does to the rest of the playbook."""

    STOP = "stop"
    CONTINUE = "continue"
    ESCALATE = "escalate"  # stop, and make the incident critical (transition: escalated)


class Match(BaseModel):
    """Which incident events a playbook answers; every given condition must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kinds: list[str] = Field(
        min_length=1, description="Incident kind globs, e.g. latency_spike or '*_drift'."
    )
    transitions: list[Transition] = Field(
        default=[Transition.OPENED], min_length=1, description="Which state changes trigger it."
    )
    severity_at_least: Severity | None = Field(default=None, description="Minimum severity.")
    models: list[str] | None = Field(default=None, description="Model name globs.")
    services: list[str] | None = Field(default=None, description="Service name globs.")
    labels: dict[str, str] = Field(
        default_factory=dict, description="Incident label globs, all must match."
    )
    environment: str | None = Field(
        default=None, description="Glob on the incident's env (or environment) label."
    )
    expression: str | None = Field(
        default=None, description="A CEL condition over `incident`, e.g. incident.count > 3."
    )
    _compiled: Expression | None = PrivateAttr(default=None)

    @field_validator("expression")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            Expression(value)  # raises ValueError with what is wrong
        return value

    def model_post_init(self, context: Any, /) -> None:
        """Compile the expression once."""
        self._compiled = Expression(self.expression) if self.expression else None

    def matches(self, incident: Incident) -> bool:
        """Whether this incident event triggers the playbook."""
        return not self.mismatches(incident)

    def mismatches(self, incident: Incident) -> list[str]:
        """Why the event does not match (empty when it does), for ``playbooks test``."""
        reasons = self._event_reasons(incident) + self._subject_reasons(incident)
        expression = self._compiled
        if (
            expression is not None
            and not reasons
            and not expression.holds(incident_variables(incident))
        ):
            reasons.append(f"expression is not true: {self.expression}")
        return reasons

    def _event_reasons(self, incident: Incident) -> list[str]:
        reasons = []
        if not any(fnmatchcase(incident.kind, k) for k in self.kinds):
            reasons.append(f"kind {incident.kind!r} is not one of {self.kinds}")
        if incident.transition not in self.transitions:
            reasons.append(
                f"transition {incident.transition.value!r} is not one of "
                f"{[t.value for t in self.transitions]}"
            )
        if self.severity_at_least and incident.severity.rank < self.severity_at_least.rank:
            reasons.append(
                f"severity {incident.severity.value!r} is below {self.severity_at_least.value!r}"
            )
        return reasons

    def _subject_reasons(self, incident: Incident) -> list[str]:
        reasons = []
        for field, globs in (("model", self.models), ("service", self.services)):
            value = getattr(incident, field)
            if globs is not None and not (value and any(fnmatchcase(value, g) for g in globs)):
                reasons.append(f"{field} {value!r} matches none of {globs}")
        labels = dict(self.labels)
        if self.environment is not None:
            env = incident.labels.get("env") or incident.labels.get("environment")
            if env is None or not fnmatchcase(env, self.environment):
                reasons.append(f"environment {env!r} does not match {self.environment!r}")
        for name, glob in labels.items():
            value = incident.labels.get(name)
            if value is None or not fnmatchcase(value, glob):
                reasons.append(f"label {name}={value!r} does not match {glob!r}")
        return reasons


Loc = tuple[str | int, ...]


class StepError(PlaybookValidationError):
    """Every problem of one step, each located within the step, for the loader to place.

    A step is checked as a whole (its action, its params, their templates and its
    options) so that one bad value does not hide the others.
    """

    def __init__(self, located: list[tuple[Loc, str]]) -> None:
        super().__init__([f"{_dotted(loc) or 'step'}: {message}" for loc, message in located])
        self.located = located


class StepOptions(BaseModel):
    """What a step may say besides its action: when it runs, how it is retried, who approves."""

    model_config = ConfigDict(frozen=True)

    name: str | None = Field(default=None, description="A label for the audit log.")
    when: str | None = Field(default=None, description="A CEL condition; false skips the step.")
    timeout: float = Field(default=30.0, gt=0, description="Seconds per attempt (or 10s, 2m).")
    retries: int = Field(default=0, ge=0, le=10, description="Attempts after the first.")
    backoff: float = Field(
        default=1.0, ge=0, description="Seconds before the first retry; doubles each time."
    )
    require_approval: bool = Field(
        default=False, description="Wait for a human to approve before running this step."
    )
    on_failure: OnFailure = Field(
        default=OnFailure.STOP,
        description="stop the playbook, continue with the next step, or escalate: stop and "
        "make the incident critical (an `escalated` event other playbooks can answer).",
    )

    @field_validator("timeout", "backoff", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)

    @field_validator("when")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            Expression(value)
        return value


STEP_OPTIONS = tuple(StepOptions.model_fields)


class Step(StepOptions):
    """One action with its validated params, written ``{action_name: params, <options>}``."""

    action: str
    params: ActionParams
    _condition: Expression | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _from_mapping(cls, raw: Any, info: ValidationInfo) -> Any:
        registry = (info.context or {}).get("registry")
        if not isinstance(registry, ActionRegistry):
            raise TypeError("validate playbooks with context={'registry': ActionRegistry}")
        if not isinstance(raw, dict):
            # ValueError, not TypeError: pydantic turns it into a located validation error.
            raise ValueError("expected a mapping {action_name: params} plus step options")  # noqa: TRY004
        options = {k: v for k, v in raw.items() if k in STEP_OPTIONS}
        actions = [k for k in raw if k not in STEP_OPTIONS]
        if len(actions) != 1:
            problem = (
                f"expected exactly one action key besides the options {list(STEP_OPTIONS)}, "
                f"got {actions or 'none'}"
            )
            raise StepError([((), _value_error(problem)), *_option_problems(options)])
        (name,) = actions
        params, problems = _params(registry, str(name), raw[name])
        if params is None:
            raise StepError([*problems, *_option_problems(options)])
        return {"action": name, "params": params, **options}

    def model_post_init(self, context: Any, /) -> None:
        """Compile the condition once."""
        self._condition = Expression(self.when) if self.when else None

    def applies(self, incident: Incident) -> bool:
        """Whether the step's ``when`` holds (always, without one)."""
        return self._condition is None or self._condition.holds(incident_variables(incident))

    @property
    def label(self) -> str:
        """How the audit log names the step."""
        return self.name or self.action


def _params(
    registry: ActionRegistry, action: str, raw: Any
) -> tuple[ActionParams | None, list[tuple[Loc, str]]]:
    """A step's params validated by its action's model, or None and every problem in them."""
    problems: list[tuple[Loc, str]] = []
    for where, text in template_strings(raw):
        try:
            check_template(text)
        except ValueError as exc:
            problems.append(((action, *where), _value_error(str(exc))))
    try:
        model = registry.get(action).params_model
    except KeyError as exc:
        return None, [((), _value_error(exc.args[0])), *problems]
    try:
        params = model.model_validate(raw or {})
    except ValidationError as exc:
        problems += [((action, *e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]
        return None, problems
    return (None, problems) if problems else (params, [])


def _option_problems(options: dict[str, Any]) -> list[tuple[Loc, str]]:
    """The problems of a step's options, checked on their own (its action may be broken)."""
    try:
        StepOptions.model_validate(options)
    except ValidationError as exc:
        return [(tuple(e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]
    return []


def _dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)


def _value_error(text: str) -> str:
    """A problem worded as pydantic words a ValueError, like the problems next to it."""
    return f"Value error, {text}"


class Verify(BaseModel):
    """After a remediation: the incident must resolve in time, else on_unverified runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resolved_within: float = Field(gt=0, description="e.g. 10m after the playbook ran.")
    on_unverified: list[Step] = Field(min_length=1, description="e.g. escalate, page.")

    @field_validator("resolved_within", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)


class Playbook(BaseModel):
    """One playbook: when it applies and what it does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        min_length=1, pattern=r"^[a-z0-9][a-z0-9._-]*$", description="Unique; in the audit."
    )
    description: str = Field(default="", description="What it is for, for humans.")
    owner: str | None = Field(default=None, description="Who to ask about it.")
    enabled: bool = Field(default=True, description="false: loaded and checked, never run.")
    mode: Mode = Field(default=Mode.ACTIVE, description="dry-run records, runs nothing.")
    runbook_url: str | None = Field(
        default=None,
        description="Linked from its chat messages (its slack steps' default runbook).",
    )
    match: Match
    cooldown: float | None = Field(
        default=None, ge=0, description="Run at most once per incident fingerprint this often."
    )
    max_runs_per_hour: int | None = Field(
        default=None, ge=1, description="Runs of this playbook per hour, across incidents."
    )
    max_runs_per_target_per_hour: int | None = Field(
        default=None,
        ge=1,
        description="Runs of a step's action against one target (a channel, URL, topic, "
        "model) per hour, counting this playbook's runs (one partition owns its counters).",
    )
    steps: list[Step] = Field(min_length=1)
    verify: Verify | None = Field(
        default=None, description="Check the remediation worked; run on_unverified if not."
    )

    @field_validator("cooldown", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        return None if value is None else parse_duration(value)
