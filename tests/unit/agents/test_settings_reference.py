from pathlib import Path

from agents.settings_reference import END, START, render_reference


def test_settings_reference__the_detectors_guide_is_current():
    guide = (Path(__file__).parents[3] / "docs" / "detectors.md").read_text()
    section = guide.split(START)[1].split(END)[0]
    assert section.strip() == render_reference().strip(), (
        "docs/detectors.md is stale: run .venv/bin/python -m agents.settings_reference "
        "docs/detectors.md"
    )


def test_settings_reference__names_every_env_var_default_and_rule():
    reference = render_reference()
    assert (
        "| `FIRELINE_DETECTION__WARMUP` | `30` | at least 1, at most `detection.window` "
        "| Points learned before any alarm. |"
    ) in reference
    assert (
        "| `FIRELINE_DETECTION__TAIL_LATENCY__STEP` | `50` | at least 1, at most "
        "`detection.tail_latency.window` | Samples between window values (`window`: tumbling). |"
    ) in reference
    assert "| `FIRELINE_DETECTION__SEASONAL__SEASON` | `day` | 'day' or 'week' |" in reference
    assert "### `detection.ensemble`: `MetricEnsemble`" in reference
