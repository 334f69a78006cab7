"""Step params templated from incident fields in a sandboxed Jinja2 environment.

Every string in a step's params may use ``{{ incident.model }}`` and friends.
The sandbox refuses attribute tricks (``__class__`` and the like), and an
undefined name is an error rather than an empty string, so a typo cannot
silently post an empty message or roll back the wrong model.

A field that is defined but empty (``None``, e.g. ``incident.likely_cause`` when
no change came first) renders as an empty string, never as the word ``None``;
``{{ incident.likely_cause or "no deploy before it" }}`` gives a fallback.
"""

from __future__ import annotations

from typing import Any, TypeVar

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel


def _none_as_empty(value: Any) -> Any:
    """What ``{{ ... }}`` prints: a missing value is an empty string, not ``None``."""
    return "" if value is None else value


_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, finalize=_none_as_empty)


M = TypeVar("M", bound=BaseModel)


class RenderError(ValueError):
    """A template in a step's params could not be rendered; names the field."""


def check_template(text: str) -> None:
    """Raise ValueError when ``text`` is not a valid template (checked at load time)."""
    try:
        _ENV.parse(text)
    except TemplateError as exc:
        raise ValueError(f"template {text!r}: {exc}") from None


def render_params(params: M, variables: dict[str, Any]) -> M:
    """A copy of ``params`` with every string rendered, re-validated by its model.

    >>> from pydantic import BaseModel
    >>> class P(BaseModel):
    ...     text: str
    ...     channel: str | None = None
    >>> render_params(P(text="{{ incident.title }}!"), {"incident": {"title": "Down"}}).text
    'Down!'
    >>> render_params(P(text="@oncall {{ incident.cause }}"), {"incident": {"cause": None}}).text
    '@oncall '
    """
    # Only what the author wrote: re-validating filled-in defaults would trip models
    # that check which fields go together (e.g. a provider's params).
    raw = params.model_dump(mode="python", exclude_unset=True)
    rendered = _render(raw, variables, ())
    return type(params).model_validate(rendered)


def _render(value: Any, variables: dict[str, Any], where: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        if "{" not in value:
            return value
        try:
            return _ENV.from_string(value).render(variables)
        except TemplateError as exc:
            field = ".".join(where) or "params"
            raise RenderError(f"{field}: {exc}") from None
    if isinstance(value, dict):
        return {k: _render(v, variables, (*where, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, variables, (*where, str(i))) for i, v in enumerate(value)]
    return value


def template_strings(params: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """Every string in ``params`` (as written) that uses template syntax, with where it is.

    For load-time checks, which run even when other params are wrong.

    >>> template_strings({"text": "plain", "tags": ["a", "{{ incident.model }}"]})
    [(('tags', 1), '{{ incident.model }}')]
    """
    found: list[tuple[tuple[str | int, ...], str]] = []

    def walk(value: Any, where: tuple[str | int, ...]) -> None:
        if isinstance(value, str) and ("{{" in value or "{%" in value):
            found.append((where, value))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, (*where, str(key)))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*where, index))

    walk(params, ())
    return found
