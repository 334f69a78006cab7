"""The action registry: ``@registry.action("name")`` turns a typed function into an action.

An action is ``async def act(incident, params, context) -> ActionResult`` where
``params`` is annotated with the action's pydantic params model and ``context``
is the :class:`~playbooks.context.ActionContext` holding the worker's
collaborators. The decorator checks that shape at import time, so a wrong
action fails when it is written, not at 3 a.m. when it first runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Self, TypeVar, get_type_hints

from pydantic import BaseModel, ConfigDict

from fireline.incident import Incident
from playbooks.context import ActionContext

P = TypeVar("P", bound=BaseModel)


class ActionParams(BaseModel):
    """Base of every params model: unknown keys are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def resolved(self, incident: Incident, context: ActionContext) -> Self:
        """These params with the defaults the action takes from the incident or the worker.

        The action acts with them, and ``playbooks test`` shows them, so both say the
        same (e.g. the worker's default channel rather than ``None``). No defaults here.
        """
        return self


@dataclass(frozen=True)
class ActionResult:
    """What an action did; published to the actions topic as the audit log."""

    action: str
    ok: bool
    detail: str
    target: str | None = None


class Verdict(StrEnum):
    """What a reconciler found out about a step that started and has no result."""

    DONE = "done"  # the target shows the side effect: record it, do not act again
    REPEAT = "repeat"  # acting again is safe (not done, or the target dedups by our key)
    UNKNOWN = "unknown"  # the target cannot say: a human must look


@dataclass(frozen=True)
class Reconciliation:
    """A reconciler's verdict and what it saw."""

    verdict: Verdict
    detail: str


ActionFn = Callable[[Incident, Any, ActionContext], Awaitable[ActionResult]]
ReconcileFn = Callable[[Incident, Any, ActionContext], Awaitable[Reconciliation]]


async def cannot_tell(incident: Incident, params: Any, context: ActionContext) -> Reconciliation:
    """The default reconciler: the target cannot be asked, so nobody guesses."""
    return Reconciliation(
        Verdict.UNKNOWN, "the worker stopped during this step and its target cannot be asked"
    )


@dataclass(frozen=True)
class RegisteredAction:
    """An action function with its params model and its reconciler."""

    name: str
    params_model: type[ActionParams]
    run: ActionFn
    reconcile: ReconcileFn = cannot_tell


class ActionRegistry:
    """Actions by name; playbook steps are validated against it."""

    def __init__(self) -> None:
        self._actions: dict[str, RegisteredAction] = {}

    def action(self, name: str) -> Callable[[ActionFn], ActionFn]:
        """Register the decorated function under ``name``."""

        def register(fn: ActionFn) -> ActionFn:
            if name in self._actions:
                raise ValueError(f"action {name!r} is already registered")
            self._actions[name] = RegisteredAction(name, _params_model(name, fn), fn)
            return fn

        return register

    def reconciler(self, name: str) -> Callable[[ReconcileFn], ReconcileFn]:
        """Register the decorated function as how ``name`` (registered already) reconciles.

        It is called instead of the action when a redelivered event finds the
        step started without a result (the worker died in between), with the
        same params, and must not act itself.
        """

        def register(fn: ReconcileFn) -> ReconcileFn:
            action = self.get(name)
            self._actions[name] = replace(action, reconcile=fn)
            return fn

        return register

    def get(self, name: str) -> RegisteredAction:
        """The action called ``name``; KeyError lists the known ones."""
        try:
            return self._actions[name]
        except KeyError:
            known = ", ".join(sorted(self._actions)) or "none"
            raise KeyError(f"unknown action {name!r}; known actions: {known}") from None

    def names(self) -> list[str]:
        """Registered action names, sorted."""
        return sorted(self._actions)


def _params_model(name: str, fn: ActionFn) -> type[ActionParams]:
    if not inspect.iscoroutinefunction(fn):
        raise TypeError(f"action {name!r}: {fn.__qualname__} must be an async function")
    hints = get_type_hints(fn)
    params = list(inspect.signature(fn).parameters)
    if len(params) != 3:
        raise TypeError(
            f"action {name!r}: expected (incident, params, context), got ({', '.join(params)})"
        )
    incident_t, params_t, context_t = (hints.get(p) for p in params)
    if incident_t is not Incident or context_t is not ActionContext:
        raise TypeError(
            f"action {name!r}: annotate the first parameter as Incident and the third as "
            "ActionContext"
        )
    if not (isinstance(params_t, type) and issubclass(params_t, ActionParams)):
        raise TypeError(f"action {name!r}: annotate params with an ActionParams subclass")
    if hints.get("return") is not ActionResult:
        raise TypeError(f"action {name!r}: the return annotation must be ActionResult")
    return params_t
