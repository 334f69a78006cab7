"""Detector parameters, declared once: one frozen pydantic model per detector.

A detector's ``Params`` model is the only place its parameters are declared:
each field's default, constraints (``Field(ge=..., lt=...)``) and
``description``, plus the cross-field :data:`~DetectorParams.rules` (``warmup``
at most ``window``). That one declaration validates the constructor's keywords
(a bad value raises a DetectorError naming the parameter and the rule), gives
the detector its repr, and is composed into fireline's settings, whose
reference (env var, default, rule, description) is generated from it.

Instances are frozen and hashable, so one instance serves every series built
from the same settings; pickling keeps them small and shared (see
:meth:`DetectorParams.__reduce__`). Reading a field costs about three plain
attribute reads (pydantic's ``__getattr__`` hook), so a detector's per-point
loop reads the fields it needs once per batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self, TypeVar, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticCustomError

from fireline.errors import DetectorError

P = TypeVar("P", bound="DetectorParams")

RULE_ERROR = "param_rule"  # the pydantic error type of a broken cross-field rule


@dataclass(frozen=True, slots=True)
class Rule:
    """A cross-field rule: ``field`` must be ``relation`` ``other`` (unset: no rule)."""

    field: str
    relation: Literal["at most", "larger than"]
    other: str

    def broken(self, params: BaseModel) -> bool:
        """Whether ``params`` breaks this rule."""
        value, bound = getattr(params, self.field), getattr(params, self.other)
        if value is None:
            return False
        return bool(value > bound) if self.relation == "at most" else bool(value <= bound)


def at_most(field: str, other: str) -> Rule:
    """``field <= other``."""
    return Rule(field, "at most", other)


def larger_than(field: str, other: str) -> Rule:
    """``field > other`` (a ``field`` of None passes)."""
    return Rule(field, "larger than", other)


class DetectorParams(BaseModel):
    """The parameters of one detector; subclasses declare fields and ``rules``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Cross-field rules of this model (a subclass adds to its parents').
    rules: ClassVar[tuple[Rule, ...]] = ()

    @classmethod
    def all_rules(cls) -> tuple[Rule, ...]:
        """The rules of this model and of the models it extends, parents first."""
        found: list[Rule] = []
        for klass in reversed(cls.__mro__):
            found += klass.__dict__.get("rules", ())
        return tuple(found)

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        for rule in type(self).all_rules():
            if rule.broken(self):
                raise PydanticCustomError(
                    RULE_ERROR,
                    "{field} must be {relation} {other} ({bound})",
                    {
                        "field": rule.field,
                        "relation": rule.relation,
                        "other": rule.other,
                        "bound": getattr(self, rule.other),
                        "value": getattr(self, rule.field),
                    },
                )
        return self

    @classmethod
    def of(cls, params: Self | None, overrides: Mapping[str, Any], owner: str) -> Self:
        """``params`` (the defaults if None) with ``overrides``, validated for ``owner``.

        Without overrides the instance is returned as is (shared), and the
        defaults are built once per class.
        """
        if params is not None and not isinstance(params, cls):
            raise DetectorError(f"{owner}: expected {cls.__name__}, got {type(params).__name__}.")
        if not overrides:
            return params if params is not None else cls.defaults()
        base = params.model_dump() if params is not None else {}
        try:
            return cls(**{**base, **overrides})
        except ValidationError as exc:
            raise DetectorError(
                f"{owner}: " + " ".join(v.sentence() for v in violations(exc))
            ) from None

    @classmethod
    def defaults(cls) -> Self:
        """The default parameters (one shared instance per class)."""
        found = _DEFAULTS.get(cls)
        if found is None:
            found = _DEFAULTS[cls] = cls()
        assert isinstance(found, cls)
        return found

    @classmethod
    def render(cls, owner: str, params: DetectorParams) -> str:
        """``owner(field=value, ...)`` over this model's fields (``params`` may extend it)."""
        shown = ", ".join(f"{name}={getattr(params, name)!r}" for name in cls.model_fields)
        return f"{owner}({shown})"

    @classmethod
    def shared(cls, items: Iterable[tuple[str, Any]]) -> Self:
        """``cls(**dict(items))``, validated, one instance per distinct value (restored state)."""
        return _shared(cls, tuple(items))

    def __reduce__(self) -> tuple[Any, ...]:
        # Small pickles (no pydantic internals), and unpickled copies shared.
        return (_shared, (type(self), tuple(self)))

    def __copy__(self) -> Self:
        return self  # frozen: a copy would be the same value

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A new model with ``update`` applied and validated; without one, this (frozen) model.

        pydantic's own copies through ``__copy__`` (this very instance, shared by
        every series) and would write the update into it.
        """
        if not update:
            return self
        return type(self)(**{**dict(self), **update})

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        return self


_DEFAULTS: dict[type[DetectorParams], DetectorParams] = {}
_SHARED: dict[tuple[type[DetectorParams], tuple[tuple[str, Any], ...]], DetectorParams] = {}
_MAX_SHARED = 1024  # distinct parameter sets kept for sharing (a handful in practice)


def _shared(cls: type[P], items: tuple[tuple[str, Any], ...]) -> P:
    """The unpickled ``cls(**items)``, one instance per distinct value."""
    defaults = cls.defaults()
    if items == tuple(defaults):
        return defaults
    try:
        found = _SHARED.get((cls, items))
    except TypeError:  # an unhashable value (a list): not shared
        return cls(**dict(items))
    if found is None:
        if len(_SHARED) >= _MAX_SHARED:
            _SHARED.clear()
        found = _SHARED[(cls, items)] = cls(**dict(items))
    assert isinstance(found, cls)
    return found


# -- what a broken rule says -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: where (``path``), which rule, and the value given.

    ``rule`` is phrased to follow the parameter's name ("must be at least 10");
    when pydantic's own message had to be kept (a wrong type), ``phrased`` is
    False and ``rule`` is that message. ``kind`` is pydantic's error type.
    """

    path: tuple[str, ...]
    rule: str
    value: Any
    kind: str
    phrased: bool = True

    @property
    def name(self) -> str:
        """The dotted path, e.g. ``detection.warmup``."""
        return ".".join(self.path)

    def sentence(self) -> str:
        """E.g. ``warmup must be at most window (120); got 200.``."""
        joint = " " if self.phrased else ": "
        return f"{self.name}{joint}{self.rule}; got {self.value!r}."


def violations(exc: ValidationError) -> list[Violation]:
    """The broken rules of a failed validation, phrased as parameter rules.

    A cross-field rule broken inside a nested model names the other field
    with the same path (``detection.tail_latency.window``).
    """
    errors = exc.errors()
    # A tuple whose items failed is also reported too short ("0 items after
    # validation"): the items' own errors say what is wrong.
    failed_items = {
        error["loc"][:-1] for error in errors if error["loc"] and isinstance(error["loc"][-1], int)
    }
    return [
        _violation(error)
        for error in errors
        if not (error["type"] == "too_short" and error["loc"] in failed_items)
    ]


def _violation(error: ErrorDetails) -> Violation:
    loc = tuple(str(part) for part in error["loc"])
    ctx = error.get("ctx") or {}
    if error["type"] == RULE_ERROR:
        other = ".".join((*loc, ctx["other"]))
        rule = f"must be {ctx['relation']} {other} ({_number(ctx['bound'])})"
        return Violation((*loc, ctx["field"]), rule, ctx["value"], RULE_ERROR)
    kind = error["type"]
    phrase = _phrase(kind, ctx)
    if phrase is None:
        return Violation(loc, error["msg"], error.get("input"), kind, phrased=False)
    return Violation(loc, phrase, error.get("input"), kind)


def _phrase(kind: str, ctx: Mapping[str, Any]) -> str | None:
    if kind == "greater_than_equal":
        low = ctx["ge"]
        return "must not be negative" if low == 0 else f"must be at least {_number(low)}"
    if kind == "greater_than":
        low = ctx["gt"]
        return "must be positive" if low == 0 else f"must be greater than {_number(low)}"
    if kind == "less_than_equal":
        return f"must be at most {_number(ctx['le'])}"
    if kind == "less_than":
        return f"must be less than {_number(ctx['lt'])}"
    if kind == "literal_error":
        return f"must be {ctx['expected']}"
    if kind == "too_short":
        items = "item" if ctx["min_length"] == 1 else "items"
        return f"must have at least {ctx['min_length']} {items}"
    return None


def _number(value: Any) -> str:
    """A bound as written: 1 rather than 1.0 (pydantic turns a float field's bounds to floats)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


# -- the rules of a field, for the reference -------------------------------------------


def field_rules(model: type[DetectorParams], name: str, prefix: str = "") -> list[str]:
    """The rules of field ``name``, phrased as in error messages (without "must be").

    E.g. ``["at least 1", "at most `window`"]``; a tuple's item constraints
    read ``each at least 2``. ``prefix`` qualifies the other fields a rule names
    (``detection.`` gives ``at most `detection.window```).
    """
    info = model.model_fields[name]
    found = _bounds(info.metadata)
    literal = _literal(info.annotation)
    if literal:
        found.append(literal)
    for arg in get_args(info.annotation):
        for inner in getattr(arg, "__metadata__", ()):
            if isinstance(inner, FieldInfo):
                found += [f"each {rule}" for rule in _bounds(inner.metadata)]
    found += [
        f"{rule.relation} `{prefix}{rule.other}`"
        for rule in model.all_rules()
        if rule.field == name
    ]
    return found


def _bounds(metadata: list[Any]) -> list[str]:
    found: list[str] = []
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            found.append("not negative" if item.ge == 0 else f"at least {_number(item.ge)}")
        elif isinstance(item, annotated_types.Gt):
            found.append("positive" if item.gt == 0 else f"greater than {_number(item.gt)}")
        elif isinstance(item, annotated_types.Le):
            found.append(f"at most {_number(item.le)}")
        elif isinstance(item, annotated_types.Lt):
            found.append(f"less than {_number(item.lt)}")
        elif isinstance(item, annotated_types.MinLen):
            found.append(f"at least {item.min_length} item{'s' if item.min_length > 1 else ''}")
    return found


def _literal(annotation: Any) -> str:
    if get_origin(annotation) is not Literal:
        return ""
    choices = [repr(v) for v in get_args(annotation)]
    return " or ".join([", ".join(choices[:-1]), choices[-1]]) if len(choices) > 1 else choices[0]


__all__ = [
    "DetectorParams",
    "Rule",
    "Violation",
    "at_most",
    "field_rules",
    "larger_than",
    "violations",
]
