"""A PNG chart of an incident's evidence: the series, its baseline and the detection.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no display, no
global state), so it is headless and safe to run in a worker thread. Series names
and titles are event data: ``$`` is escaped so they never turn into mathtext.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

from fireline.errors import ChartError
from fireline.incident import Evidence
from playbooks.chat.escape import chart_text

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def render_chart(evidence: Evidence, title: str = "") -> bytes:
    """The evidence as PNG bytes; ChartError when there is nothing to draw or drawing fails."""
    if not evidence.points:
        raise ChartError(f"no evidence points for {evidence.series}")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ChartError(f"matplotlib is not installed: {exc}") from exc
    # x: minutes relative to the detection, so the chart reads "what happened before it"
    times = [(p.at - evidence.detected_at) / 60 for p in evidence.points]
    values = [p.value for p in evidence.points]
    detected = datetime.fromtimestamp(evidence.detected_at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    try:
        figure = Figure(figsize=(8, 3.2), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        axes.plot(times, values, color="#1f77b4", linewidth=1.4, label=chart_text(evidence.series))
        axes.axhline(evidence.baseline, color="#2ca02c", linestyle="--", label="baseline")
        above = [max(v, evidence.baseline) for v in values]
        axes.fill_between(times, evidence.baseline, above, color="#d62728", alpha=0.15)
        axes.axvline(0.0, color="#d62728", linewidth=1.0, label=f"detected {detected}")
        nearest = min(
            range(len(times)), key=lambda i: abs(evidence.points[i].at - evidence.detected_at)
        )
        axes.plot([times[nearest]], [values[nearest]], "o", color="#d62728")
        axes.set_title(chart_text(title or evidence.series), fontsize=10, loc="left")
        axes.set_xlabel("minutes from the detection")
        axes.legend(loc="upper left", fontsize=8)
        axes.grid(alpha=0.3)
        # Fixed margins, not tight_layout(): measuring every text's extent to fit them
        # was ~40% of a chart's CPU, on the worker's GIL, for every incident.
        figure.subplots_adjust(left=0.08, right=0.98, top=0.86, bottom=0.16)
        out = io.BytesIO()
        figure.savefig(out, format="png")
    except (ValueError, OverflowError, RuntimeError) as exc:
        raise ChartError(f"cannot draw {evidence.series}: {exc}") from exc
    return out.getvalue()
