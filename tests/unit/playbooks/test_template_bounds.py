"""Bounded template rendering, and params that land in Slack markup."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from playbooks.actions.slack import SlackParams
from playbooks.templating import RenderError, RenderLimits, render_params

SMALL = RenderLimits(max_chars=1000, max_seconds=0.5)


class Text(BaseModel):
    text: str


def render(template: str, limits: RenderLimits = SMALL, **variables: object) -> str:
    return render_params(Text(text=template), dict(variables), limits).text


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ 'a' * 1001 }}", "'*' would make 1,001 characters or items, over the limit of 1,000"),
        ("{{ [0] * 5000 }}", "'*' would make 5,000 characters"),
        ("{{ 7 ** 100000 }}", "'**' would make a number of over 65,536 bits"),
        ("{{ '%2000s' % 'x' }}", "'%' formatting would make 2,007 characters"),
        ("{{ '{:>2000}'.format(1) }}", "a format field width would make 2,000 characters"),
        ("{{ '{:{w}}'.format(1, w=9) }}", "a format field whose width comes from a value"),
        ("{{ 'x'|center(2000) }}", "the do_center filter would make 2,000 characters"),
        ("{{ range(300)|join('abcd') }}", "the join filter would make 1,986 characters"),
        ("{{ 'abab'.replace('a', 'a' * 600) }}", "str.replace would make 1,202 characters"),
        ("{{ 'x'.rjust(5000) }}", "str.rjust would make 5,000 characters"),
        ("{% for i in range(2000) %}x{% endfor %}", "the output would make 1,001 characters"),
        ("{% set s = 'a' * 600 %}{% set s = s ~ s %}{{ 1 }}", "a value would make 1,200"),
    ],
)
def test_render__refuses_what_would_grow_past_the_limit(template, reason):
    with pytest.raises(RenderError, match=r"^text: ") as caught:
        render(template)
    assert reason in str(caught.value)


def test_render__stops_a_render_that_runs_past_its_time():
    loops = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    with pytest.raises(
        RenderError, match=r"^text: rendering took more than 0.5 s, over the limit$"
    ):
        render(loops)


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ 1 / 0 }}", "ZeroDivisionError: division by zero"),
        ("{{ 'a' - 1 }}", "TypeError"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "nested or recursive too deeply"),
        ("{{ lipsum(1000) }}", "'lipsum' is undefined"),
        ("{{ namespace(a=1) }}", "'namespace' is undefined"),
        ("{{ [1].append(2) }}", "unsafe"),
    ],
)
def test_render__any_template_failure_is_the_steps_not_the_workers(template, reason):
    with pytest.raises(RenderError) as caught:
        render(template)
    assert reason in str(caught.value)


def test_render__ordinary_templates_render_as_before():
    assert render(
        "{{ incident.model }} v{{ incident.v }}", incident={"model": "fraud", "v": 3}
    ) == ("fraud v3")
    assert render("{{ ', '.join(range(3)|map('string')) }}|{{ range(3)|join('-') }}") == (
        "0, 1, 2|0-1-2"
    )
    assert render("{{ '%s=%05.1f'|format('p', 2.5) }} {{ 'x'|center(5) }}") == "p=002.5   x  "


def test_render__a_mrkdwn_param_escapes_the_values_not_the_authors_text():
    params = SlackParams(mention="<!subteam^S01> {{ incident.service }} & {{ incident.cause }}")
    incident = {"service": "<!channel> <https://evil.example|Open runbook>", "cause": None}

    rendered = render_params(params, {"incident": incident})

    assert rendered.mention == (
        "<!subteam^S01> &lt;!channel&gt; &lt;https://evil.example|Open runbook&gt; & "
    )
