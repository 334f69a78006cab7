"""``fireline demo``: embedded broker + worker + traffic with an injected latency spike."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agents.cli.simulator import TrafficProfile, TrafficSimulator
from agents.kafka.broker import EmbeddedBroker, create_topics, free_port
from agents.kafka.processes import stop_process_group
from agents.settings import Settings

# Demo-only: the embedded broker completes a group join in half the session timeout.
DEMO_ENV = {
    "FIRELINE_WORKER__SESSION_TIMEOUT_S": "3",
    "FIRELINE_WORKER__HEARTBEAT_INTERVAL_S": "0.5",
    "FIRELINE_WORKER__REBALANCE_TIMEOUT_S": "3",
}


def run_demo(settings: Settings, spike_at_s: float, duration_s: float | None) -> int:
    """Run the whole loop until Ctrl-C (or ``duration_s``); return an exit code."""
    port = free_port()
    broker = EmbeddedBroker(port).start()
    settings = settings.model_copy(update={"broker_url": broker.url})
    print(f"fireline demo: embedded broker on {broker.bootstrap_servers}", flush=True)
    worker: subprocess.Popen[bytes] | None = None
    try:
        asyncio.run(
            create_topics(
                broker.bootstrap_servers,
                settings.topics.all(),
                settings.partitions,
                configs=settings.topics.configs(),
            )
        )
        worker = _start_worker(settings)
        print(
            f"fireline demo: worker starting, metrics on http://127.0.0.1:{settings.http_port}/metrics",
            flush=True,
        )
        profile = TrafficProfile(spike_at_s=spike_at_s)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_traffic(settings, profile, duration_s, worker))
        return 0
    finally:
        print("\nfireline demo: stopping worker and broker...", flush=True)
        if worker is not None:
            stop_process_group(worker, timeout_s=15.0)
        broker.stop()
        print("fireline demo: stopped.", flush=True)


def _start_worker(settings: Settings) -> subprocess.Popen[bytes]:
    env = {**os.environ, **DEMO_ENV, "FIRELINE_BROKER_URL": settings.broker_url}
    env["FIRELINE_HTTP_PORT"] = str(settings.http_port)
    # Demo-only default: show the resolution 10 s after the spike ends, not a minute.
    env.setdefault("FIRELINE_INCIDENTS__QUIET_PERIOD_S", "10")
    env["FIRELINE_PLAYBOOKS_DIR"] = str(Path(settings.playbooks_dir).resolve())
    return subprocess.Popen(
        [sys.executable, "-m", "agents.cli.main", "run", "--loglevel", "warning"],
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches us; we stop the worker cleanly ourselves
    )


async def _traffic(
    settings: Settings,
    profile: TrafficProfile,
    duration_s: float | None,
    worker: subprocess.Popen[bytes],
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    state = {"last_report": -10.0, "spiking": False}

    def on_tick(elapsed: float, spiking: bool) -> None:
        if worker.poll() is not None:
            print(f"fireline demo: worker exited with code {worker.returncode}", flush=True)
            stop.set()
        if spiking != state["spiking"]:
            state["spiking"] = spiking
            what = (
                f"injecting a {profile.spike_factor:.0f}x latency spike"
                if spiking
                else "latency back to normal"
            )
            print(f"fireline demo: t={elapsed:5.1f}s {what}", flush=True)
        if elapsed - state["last_report"] >= 10:
            state["last_report"] = elapsed
            print(f"fireline demo: t={elapsed:5.1f}s {simulator.sent:,} events sent", flush=True)

    simulator = TrafficSimulator(settings.bootstrap_servers, settings.topics, profile, on_tick)
    print(
        f"fireline demo: sending ~{profile.predictions_per_s:.0f} predictions/s and service metrics; "
        f"spike at t={profile.spike_at_s:.0f}s. Ctrl-C to stop.",
        flush=True,
    )
    started = time.monotonic()
    await simulator.run(stop, duration_s)
    print(f"fireline demo: traffic done after {time.monotonic() - started:.0f}s", flush=True)
