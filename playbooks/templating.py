"""Step params templated from incident fields in a sandboxed, bounded Jinja2 environment.

Every string in a step's params may use ``{{ incident.model }}`` and friends.
The sandbox refuses attribute tricks (``__class__`` and the like) and changes to
lists and dicts, and an undefined name is an error rather than an empty string,
so a typo cannot silently post an empty message or roll back the wrong model.

A field that is defined but empty (``None``, e.g. ``incident.likely_cause`` when
no change came first) renders as an empty string, never as the word ``None``;
``{{ incident.likely_cause or "no deploy before it" }}`` gives a fallback.

Rendering is bounded (:class:`RenderLimits`): a param's output, and every string
or list made on the way (``'a' * 100000000``, ``'{:>99999999}'.format(1)``,
``range(100000) | join(s)``), is refused before it is built when it would pass
``max_chars``, and a render that runs longer than ``max_seconds`` (nested loops)
is stopped. Either fails the step with the reason; the worker carries on.

A param whose field is marked with a :class:`Markup` (the slack action's
``mention``) lands in chat markup: the values its ``{{ … }}`` produce are
escaped for it, the author's own text around them is not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from string import Formatter
from types import FrameType
from typing import Any, TypeVar

import jinja2
from jinja2 import StrictUndefined, TemplateError, pass_eval_context
from jinja2 import filters as builtin_filters
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel

from playbooks.budget import TEMPLATE_CODE, OutOfTime, time_budget
from playbooks.chat.escape import mrkdwn


@dataclass(frozen=True)
class RenderLimits:
    """How big a rendered param (and anything made on the way) may get, and how long it may take."""

    max_chars: int = 65536
    max_seconds: float = 1.0


@dataclass(frozen=True)
class Markup:
    """Field metadata: the rendered param lands in this markup, so template values are escaped."""

    name: str
    escape: Callable[[Any], str]


SLACK_MRKDWN = Markup("Slack mrkdwn", mrkdwn)

M = TypeVar("M", bound=BaseModel)

# Where a render may be interrupted: the template's code and Jinja's own.
_JINJA_CODE = (TEMPLATE_CODE, str(Path(jinja2.__file__).parent))

MAX_POWER_BITS = 65536  # 2 ** 65536 is already a 19,729-digit number


class RenderError(ValueError):
    """A template in a step's params could not be rendered; names the field."""


class TooBig(TemplateError):
    """Rendering would make a string or list past the limit."""


def _none_as_empty(value: Any) -> Any:
    """What ``{{ ... }}`` prints: a missing value is an empty string, not ``None``."""
    return "" if value is None else value


# A %-format or {}-format field's width or precision, which may pad to any size.
_PERCENT_SIZES = re.compile(r"%[#0 +-]*(\*|\d+)?(?:\.(\*|\d+))?")
_SPEC_SIZES = re.compile(r"\d+")


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, plus a size check on every operation that can multiply a string or list."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, limits: RenderLimits, finalize: Callable[[Any], Any]) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, finalize=finalize)
        self.limits = limits
        # Nothing a param needs, and each is a way to build large things unchecked.
        for name in ("lipsum", "namespace", "cycler", "joiner"):
            self.globals.pop(name, None)
        self.filters.update(
            center=self._checked(builtin_filters.do_center, _width_result),
            indent=self._checked(builtin_filters.do_indent, _indent_result),
            join=self._join,
            replace=self._checked(builtin_filters.do_replace, _replace_result),
            format=self._checked(builtin_filters.do_format, _format_filter_result),
            batch=self._checked(builtin_filters.do_batch, _count_result),
            slice=self._checked(builtin_filters.sync_do_slice, _count_result),
            wordwrap=self._checked(builtin_filters.do_wordwrap, _wordwrap_result),
        )

    @pass_eval_context
    def _join(
        self, eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: Any = None
    ) -> str:
        items = list(value)  # once: it may be a generator
        self.refuse_above(_joined_size(items, d), "the join filter")
        return builtin_filters.sync_do_join(eval_ctx, items, d, attribute)

    def refuse_above(self, size: int, what: str) -> None:
        """Raise TooBig when ``size`` (characters or items) passes the limit."""
        if size > self.limits.max_chars:
            raise TooBig(
                f"{what} would make {size:,} characters or items, over the limit of "
                f"{self.limits.max_chars:,}"
            )

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """``*``, ``**``, ``%`` and ``+`` with their result's size checked first."""
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    self.refuse_above(len(seq) * max(times, 0), "'*'")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and max(abs(left).bit_length(), 1) * right > MAX_POWER_BITS:
                raise TooBig(f"'**' would make a number of over {MAX_POWER_BITS:,} bits")
        elif operator == "%" and isinstance(left, str):
            self.refuse_above(_percent_result(left, right), "'%' formatting")
        elif operator == "+" and isinstance(left, str | list | tuple):
            self.refuse_above(len(left) + _size(right), "'+'")
        return super().call_binop(context, operator, left, right)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """A method call, its result's size checked first when it is a str method that pads."""
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, str) and getattr(obj, "__name__", "") == "join" and args:
            args = (list(args[0]), *args[1:])  # once: it may be a generator
        if isinstance(owner, str):
            estimate = _STR_METHODS.get(getattr(obj, "__name__", ""))
            if estimate is not None:
                self.refuse_above(estimate(owner, *args, **kwargs), f"str.{obj.__name__}")
        return super().call(context, obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` / ``format_map``: refuse field widths past the limit, and nested ones."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        self._check_format_string(value.__self__)
        return wrapped

    def _check_format_string(self, text: str) -> None:
        for _, _, spec, _ in Formatter().parse(text):
            if not spec:
                continue
            if "{" in spec:
                raise TooBig("a format field whose width comes from a value is refused")
            for number in _SPEC_SIZES.findall(spec):
                self.refuse_above(int(number), "a format field width")

    def _checked(
        self, filter_: Callable[..., Any], estimate: Callable[..., int]
    ) -> Callable[..., Any]:
        def checked(*args: Any, **kwargs: Any) -> Any:
            self.refuse_above(estimate(*args, **kwargs), f"the {filter_.__name__} filter")
            return filter_(*args, **kwargs)

        checked.__name__ = filter_.__name__
        # Keep the pass_* markers (environment, context) jinja reads off the function.
        checked.__dict__.update(getattr(filter_, "__dict__", {}))
        return checked

    def check_frame(self, frame: FrameType) -> None:
        """Between two lines of template code: no local string or list has grown past the limit.

        ``~`` (concatenation) cannot be intercepted; a chain of them is caught here,
        after at most one statement's worth of growth.
        """
        for value in frame.f_locals.values():
            if isinstance(value, str | list | tuple | dict):
                self.refuse_above(len(value), "a value")


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple | dict) else len(str(value))


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) else default


def _width_result(value: Any, width: Any = 80, *_: Any, **__: Any) -> int:
    return max(_size(value), _int(width, 80))


def _indent_result(value: Any, width: Any = 4, *_: Any, **__: Any) -> int:
    pad = len(width) if isinstance(width, str) else max(_int(width, 4), 0)
    text = str(value)
    return len(text) + pad * (text.count("\n") + 1)


def _joined_size(items: list[Any] | str | tuple[Any, ...] | dict[Any, Any], separator: Any) -> int:
    # Builtins only: a Python call per item would be traced by the time budget.
    return sum(map(len, map(str, items))) + _size(separator) * max(len(items) - 1, 0)


def _replace_result(_: Any, s: Any, old: Any, new: Any, count: Any = None, **__: Any) -> int:
    text = str(s)
    hits = text.count(str(old)) if str(old) else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(len(str(new)) - len(str(old)), 0)


def _format_filter_result(value: Any, *args: Any, **kwargs: Any) -> int:
    return _percent_result(str(value), kwargs or args)


def _count_result(value: Any, count: Any = 1, *_: Any, **__: Any) -> int:
    return max(_size(value), _int(count, 1))


def _wordwrap_result(_: Any, s: Any, width: Any = 79, *__: Any, **___: Any) -> int:
    return 2 * len(str(s))  # at most a break per character


def _percent_result(text: str, args: Any) -> int:
    """The size ``text % args`` may reach: its own length plus every field's padding."""
    size = len(text) + _size(args)
    for width, precision in _PERCENT_SIZES.findall(text):
        for number in (width, precision):
            if number == "*":
                return 1 << 62  # a width taken from the values: refused outright
            size += int(number) if number else 0
    return size


def _str_pad(owner: str, width: Any = 0, *_: Any, **__: Any) -> int:
    return max(len(owner), _int(width))


def _str_expandtabs(owner: str, tabsize: Any = 8, **__: Any) -> int:
    return len(owner) + owner.count("\t") * max(_int(tabsize, 8), 0)


def _str_replace(owner: str, old: Any = "", new: Any = "", count: Any = -1, **__: Any) -> int:
    return _replace_result(None, owner, old, new, count)


def _str_join(owner: str, items: Any = (), **__: Any) -> int:
    return _joined_size(items, owner) if isinstance(items, list) else 0  # made a list by call()


_STR_METHODS: dict[str, Callable[..., int]] = {
    "center": _str_pad,
    "ljust": _str_pad,
    "rjust": _str_pad,
    "zfill": _str_pad,
    "expandtabs": _str_expandtabs,
    "replace": _str_replace,
    "join": _str_join,
}


@cache
def environment(limits: RenderLimits, markup: Markup | None = None) -> BoundedEnvironment:
    """The environment rendering with ``limits``, escaping its values for ``markup`` if given."""
    if markup is None:
        return BoundedEnvironment(limits, _none_as_empty)
    escape = markup.escape
    return BoundedEnvironment(limits, lambda value: escape(_none_as_empty(value)))


def check_template(text: str) -> None:
    """Raise ValueError when ``text`` is not a valid template (checked at load time)."""
    try:
        environment(RenderLimits()).parse(text)
    except TemplateError as exc:
        raise ValueError(f"template {text!r}: {exc}") from None
    except RecursionError:
        raise ValueError(f"template {text[:80]!r}...: nested too deeply") from None


def render_params(params: M, variables: dict[str, Any], limits: RenderLimits | None = None) -> M:
    """A copy of ``params`` with every string rendered, re-validated by its model.

    >>> from pydantic import BaseModel
    >>> class P(BaseModel):
    ...     text: str
    ...     channel: str | None = None
    >>> render_params(P(text="{{ incident.title }}!"), {"incident": {"title": "Down"}}).text
    'Down!'
    >>> render_params(P(text="@oncall {{ incident.cause }}"), {"incident": {"cause": None}}).text
    '@oncall '
    >>> render_params(P(text="{{ 'a' * 100000000 }}"), {})
    Traceback (most recent call last):
    ...
    playbooks.templating.RenderError: text: '*' would make 100,000,000 characters or items, over the limit of 65,536
    """
    limits = limits or RenderLimits()
    fields = type(params).model_fields
    # Only what the author wrote: re-validating filled-in defaults would trip models
    # that check which fields go together (e.g. a provider's params).
    raw = params.model_dump(mode="python", exclude_unset=True)
    rendered = {}
    for name, value in raw.items():
        info = fields.get(name)
        markup = next((m for m in info.metadata if isinstance(m, Markup)), None) if info else None
        rendered[name] = _render(value, variables, (name,), environment(limits, markup))
    return type(params).model_validate(rendered)


def _render(
    value: Any, variables: dict[str, Any], where: tuple[str, ...], env: BoundedEnvironment
) -> Any:
    if isinstance(value, str):
        return (
            _render_string(value, variables, ".".join(where) or "params", env)
            if "{" in value
            else value
        )
    if isinstance(value, dict):
        return {k: _render(v, variables, (*where, str(k)), env) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, variables, (*where, str(i)), env) for i, v in enumerate(value)]
    return value


def _render_string(
    text: str, variables: dict[str, Any], field: str, env: BoundedEnvironment
) -> str:
    limits = env.limits
    out: list[str] = []
    size = 0
    try:
        with time_budget(
            limits.max_seconds, frozenset({TEMPLATE_CODE}), env.check_frame, _JINJA_CODE
        ):
            for chunk in env.from_string(text).generate(variables):
                size += len(chunk)
                env.refuse_above(size, "the output")
                out.append(chunk)
    except OutOfTime as exc:
        raise RenderError(f"{field}: rendering {exc}, over the limit") from None
    except TemplateError as exc:
        raise RenderError(f"{field}: {exc}") from None
    except RecursionError:
        raise RenderError(f"{field}: nested or recursive too deeply") from None
    except Exception as exc:  # noqa: BLE001 - whatever a template does wrong fails its step only
        raise RenderError(f"{field}: {type(exc).__name__}: {exc}") from None
    return "".join(out)


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
