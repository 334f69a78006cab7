"""Evidence charts drawn in a child process, off the worker's GIL.

Drawing a chart costs ~150 ms of CPU (matplotlib's Agg canvas and the PNG
encoder, mostly Python). In a thread of the worker it holds the GIL against
the event loop for that long, for every incident: at a spike of incidents the
worker fell behind its input. One child process per worker draws them instead
(:class:`~fireline.child_process.ChildProcess`: spawned with the first chart,
ends with the worker, replaced when it died). It is not the domain
classifier's child: a chart is wanted now (an incident's first message waits
for it) and must not queue behind a fit.
"""

from __future__ import annotations

import asyncio
from concurrent.futures.process import BrokenProcessPool

from fireline.child_process import ChildProcess
from fireline.errors import ChartError
from fireline.incident import Evidence
from playbooks.chat.chart import render_chart


class ChartProcess(ChildProcess):
    """Renders evidence charts (:func:`~playbooks.chat.chart.render_chart`) in a child process."""

    def __init__(self) -> None:
        super().__init__("chart")

    async def render(self, evidence: Evidence, title: str = "") -> bytes:
        """The chart as PNG bytes; ChartError when it cannot be drawn.

        A child that died (killed, out of memory) fails this chart; the next
        chart gets a new child.
        """
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self, render_chart, evidence, title
            )
        except BrokenProcessPool as exc:
            raise ChartError(f"the chart process ended: {exc}") from exc


CHARTS = ChartProcess()
"""The worker's chart process (one per process, started by the first chart)."""
