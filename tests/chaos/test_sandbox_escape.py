"""A sandbox-escape corpus against Jinja step params and CEL conditions.

Each attack runs through the real playbook engine, in a playbook whose next
step must still run: refused (the step fails with a reason) or bounded, in
time (wall clock) and memory (tracemalloc's peak while it ran), and the engine
carries on with the next step and the next incident. Attribute walks must never
reach Python internals: a rendered output never names a class, a module or a
function.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest
import yaml

from fireline.incident import Incident, Severity, Status, Transition
from playbooks.actions import default_registry
from playbooks.context import ActionContext
from playbooks.engine import PlaybookEngine
from playbooks.expressions import Expression
from playbooks.loader import load_file
from playbooks.steps import Outcome
from playbooks.templating import RenderLimits

LIMITS = RenderLimits(max_chars=65536, max_seconds=1.0)
MAX_SECONDS = 4.0  # the 1 s budget, plus a loaded 2-core machine's slack
MAX_PEAK_BYTES = 16 * 1024 * 1024  # a 100 MB string or a 10**8 list would show far above it

DEEP = 2000
TEMPLATES = {
    # attribute walks to Python internals
    "class walk": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "globals walk": "{{ incident.__init__.__globals__ }}",
    "cycler globals": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "joiner globals": "{{ joiner.__init__.__globals__ }}",
    "namespace globals": "{{ namespace.__init__.__globals__ }}",
    "self": "{{ self.__init__.__globals__ }}",
    "getattr filter": "{{ incident|attr('__class__') }}",
    "request-style": "{{ ''['__class__'] }}",
    "dict walk": "{{ {}.__class__.__base__.__subclasses__() }}",
    "range walk": "{{ range.__init__.__globals__ }}",
    "lipsum globals": "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "mutation": "{{ incident.labels.update({'x': 1}) }}",
    "list mutation": "{% set l = [] %}{{ l.append(1) }}",
    # format-string tricks
    "format attribute": "{{ '{0.__class__.__mro__}'.format('') }}",
    "format_map": "{{ '{x.__class__}'.format_map({'x': 1}) }}",
    "format width": "{{ '{:>99999999}'.format(1) }}",
    "format nested width": "{{ '{:{w}}'.format(1, w=99999999) }}",
    "percent width": "{{ '%99999999s' % 'x' }}",
    "percent star": "{{ '%*d' % (99999999, 1) }}",
    "format filter": "{{ '%99999999s'|format('x') }}",
    # huge repeats and ranges
    "str repeat": "{{ 'a' * 100000000 }}",
    "list repeat": "{{ [0] * 100000000 }}",
    "power": "{{ 9 ** (9 ** 9) }}",
    "huge range": "{{ range(10 ** 9)|list }}",
    "range join": "{{ range(100000)|join('a' * 60000) }}",
    "center": "{{ 'x'|center(100000000) }}",
    "indent": "{{ 'x\ny'|indent(100000000) }}",
    "replace": "{{ ('a' * 60000)|replace('a', 'a' * 60000) }}",
    "str replace": "{{ ('a' * 60000).replace('a', 'a' * 60000) }}",
    "str join": "{{ ('a' * 60000).join(range(100000)|map('string')) }}",
    "ljust": "{{ 'a'.ljust(100000000) }}",
    "batch fill": "{{ [1]|batch(100000000, 'x')|list }}",
    "lipsum": "{{ lipsum(1000000) }}",
    "doubling": "{% set s = 'a' * 60000 %}" + "{% set s = s ~ s %}" * 30 + "{{ s|length }}",
    "plus doubling": "{% set s = 'a' * 60000 %}" + "{% set s = s + s %}" * 30,
    # loops and time
    "nested loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
    "{% endfor %}",
    "nested string loops": "{% for c in 'a' * 60000 %}{% for d in 'a' * 60000 %}{% endfor %}"
    "{% endfor %}",
    "output flood": "{% for i in range(100000) %}{{ 'a' * 60000 }}{% endfor %}",
    # deep nesting and recursion
    "deep parens": "{{ " + "(" * DEEP + "1" + ")" * DEEP + " }}",
    "deep lists": "{{ " + "[" * DEEP + "]" * DEEP + " }}",
    "deep ifs": "{% if true %}" * 300 + "x" + "{% endif %}" * 300,
    "recursive macro": "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "wide recursion": "{% macro f(n) %}{{ f(n) ~ f(n) }}{% endmacro %}{{ f(0) }}",
    "arithmetic error": "{{ 1 / 0 }}",
    "type error": "{{ incident - 1 }}",
}

CONDITIONS = {
    "attribute walk": "incident.__class__ == 1",
    "python call": 'incident.title.__class__.__mro__ == ""',
    "format trick": '"{0.__class__}".format(incident) == ""',
    "nested macros": "[{0}].all(x, [{0}].all(y, [{0}].all(z, x == y)))".format(
        ",".join(["1"] * 300)
    ),
    "map of maps": "[{0}].map(x, [{0}].map(y, y)).size() > 0".format(",".join(["1"] * 300)),
    "string growth": " + ".join(["incident.title"] * 300) + ' == ""',
    "deep parens": "(" * 1000 + "true" + ")" * 1000,
    "too long": "true && " * 700 + "true",
    "deep negation": "!" * 3000 + "true",
}


def incident(service: str = "fraud-api") -> Incident:
    return Incident(
        id=f"inc-{service}",
        fingerprint=f"latency_spike|{service}|7|latency_ms",
        kind="latency_spike",
        transition=Transition.OPENED,
        status=Status.OPEN,
        severity=Severity.CRITICAL,
        title=f"Latency spike on {service}",
        service=service,
        model="fraud",
        model_version="7",
        first_seen=100.0,
        last_seen=100.0,
        labels={"env": "prod"},
    )


def engine_with(tmp_path: Path, attack: dict[str, object]) -> PlaybookEngine | str:
    """A playbook: the attack step (on failure, go on), then a step that must still run.

    The loader's refusal instead, when it refuses the playbook.
    """
    playbook = {
        "name": "attacked",
        "match": {"kinds": ["latency_spike"]},
        "steps": [
            {**attack, "on_failure": "continue"},
            {"log": {"message": "still here {{ incident.service }}"}},
        ],
    }
    path = tmp_path / "attacked.yaml"
    path.write_text(yaml.safe_dump(playbook))
    registry = default_registry()
    loaded, problems = load_file(path, registry)
    if loaded is None:
        return "; ".join(problems)
    engine = PlaybookEngine(registry, ActionContext(), render_limits=LIMITS)
    engine.playbooks, engine.loaded = [loaded], True
    return engine


async def measured(engine: PlaybookEngine, service: str) -> tuple[list, float, int]:
    tracemalloc.start()
    started = time.monotonic()
    try:
        records = await engine.handle(incident(service))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return records, time.monotonic() - started, peak


@pytest.mark.parametrize("name", list(TEMPLATES))
async def test_jinja_param__each_attack_is_refused_or_bounded(name, tmp_path):
    engine = engine_with(tmp_path, {"log": {"message": TEMPLATES[name]}})
    if isinstance(engine, str):  # refused when the playbook loads
        assert engine.endswith("nested too deeply"), engine
        return

    records, took, peak = await measured(engine, "attacked-api")

    attack, after = records
    assert took < MAX_SECONDS, f"{name}: {took:.2f} s"
    assert peak < MAX_PEAK_BYTES, f"{name}: peak {peak / 1e6:.1f} MB"
    if attack.outcome is Outcome.FAILED:
        assert attack.detail.startswith("params: message: "), attack.detail
    else:  # rendered: bounded, and no Python internals leaked into it
        assert attack.outcome is Outcome.OK, attack
        shown = str(attack.params.get("message", ""))
        assert len(shown) <= LIMITS.max_chars
        assert not any(w in shown for w in ("<class", "<module", "<function", "<built-in")), shown
    # The worker is unaffected: the next step runs, and so does the next incident.
    assert (after.outcome, after.params["message"]) == (Outcome.OK, "still here attacked-api")
    (_, again) = await engine.handle(incident("next-api"))
    assert again.params["message"] == "still here next-api"


@pytest.mark.parametrize("name", list(CONDITIONS))
async def test_cel_condition__each_attack_is_refused_or_bounded(name, tmp_path):
    source = CONDITIONS[name]
    try:
        Expression(source)
    except ValueError as exc:  # refused when the playbook loads
        assert "CEL expression" in str(exc) or "not a valid CEL" in str(exc), exc
        return
    engine = engine_with(tmp_path, {"log": {"message": "attacked"}, "when": source})
    assert isinstance(engine, PlaybookEngine), engine

    records, took, peak = await measured(engine, "attacked-api")

    attack, after = records
    assert took < MAX_SECONDS, f"{name}: {took:.2f} s"
    assert peak < MAX_PEAK_BYTES, f"{name}: peak {peak / 1e6:.1f} MB"
    assert attack.outcome is Outcome.SKIPPED, attack  # undecidable counts as false
    assert after.outcome is Outcome.OK
