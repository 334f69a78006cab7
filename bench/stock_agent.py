"""A stock per-event Faust agent, for comparison: `async for value in stream`.

Run by bench/throughput.py as a subprocess; prints one JSON line with its rate.
    python bench/stock_agent.py BOOTSTRAP TOPIC[,TOPIC] N
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import faust


def main(bootstrap: str, topics: list[str], n: int) -> None:
    app = faust.App(
        f"bench-stock-{os.getpid()}",
        broker=f"kafka://{bootstrap}",
        value_serializer="json",
        consumer_auto_offset_reset="earliest",
        store="memory://",
        datadir=tempfile.mkdtemp(prefix="fireline-bench-stock-"),
        web_enabled=False,
        # Only the group join is sped up (docs/performance.md); processing is stock.
        broker_session_timeout=3.0,
        broker_heartbeat_interval=0.5,
    )
    state = {"count": 0, "first": 0.0}

    @app.agent(app.topic(*topics))
    async def consume(stream: faust.StreamT[object]) -> None:
        async for _ in stream:  # Faust decodes each event as JSON
            if not state["first"]:
                state["first"] = time.perf_counter()
            state["count"] += 1
            if state["count"] >= n:
                elapsed = time.perf_counter() - state["first"]
                print(json.dumps({"rate": state["count"] / elapsed}), flush=True)
                os._exit(0)

    worker = faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False)
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]))
