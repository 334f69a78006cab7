"""``fireline demo``: embedded broker + worker + traffic with an injected latency spike.

The worker is a child process with its own data directory (removed at the end,
like the broker's topics). If it dies, the demo stops everything and exits 1
with one line saying why, or which setting to change when it is the HTTP port.
``--scenario bad-deploy`` shows the deploy loop instead (agents/cli/bad_deploy.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agents.cli import bad_deploy
from agents.cli.simulator import MODEL, TrafficProfile, TrafficSimulator
from agents.kafka.broker import EmbeddedBroker, create_topics, free_port
from agents.kafka.processes import stop_process_group
from agents.settings import Settings
from fireline.errors import ConfigError

# Demo-only: the embedded broker completes a group join in half the session timeout.
DEMO_ENV = {
    "FIRELINE_WORKER__SESSION_TIMEOUT_S": "3",
    "FIRELINE_WORKER__HEARTBEAT_INTERVAL_S": "0.5",
    "FIRELINE_WORKER__REBALANCE_TIMEOUT_S": "3",
}


SCENARIOS = ("latency-spike", "bad-deploy")
# bad-deploy: when v8 goes live, how long the demo waits before approving the rollback,
# and how soon the rollback must have resolved the incident (the shipped playbook: 15m).
DEPLOY_AT_S = 20.0
APPROVE_AFTER_S = 10.0
DEMO_VERIFY_WITHIN = "1m"


def run_demo(
    settings: Settings,
    spike_at_s: float,
    duration_s: float | None,
    scenario: str = "latency-spike",
) -> int:
    """Run the whole loop until Ctrl-C (or ``duration_s``); return an exit code.

    Raises ConfigError before starting anything when the worker could not serve
    HTTP or keep its data; a worker that dies later makes it return 1.
    """
    problem = http_port_problem(settings.http_host, settings.http_port)
    if problem:
        raise ConfigError(problem)
    data_dir = _own_data_dir(settings.data_dir)
    try:
        died = _run(
            settings.model_copy(update={"data_dir": data_dir}), spike_at_s, duration_s, scenario
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    if died is None:
        return 0
    print(f"fireline demo: error: {died}", file=sys.stderr, flush=True)
    return 1


def http_port_problem(host: str, port: int) -> str | None:
    """Why a worker could not listen on ``host:port`` now, naming the setting to change."""
    if port == 0:  # any free port
        return None
    exc = _bind_error(host, port)
    if exc is None:
        return None
    if exc.errno == errno.EADDRINUSE:
        nearby = range(port + 1, min(port + 100, 65536))
        free = next((p for p in nearby if _bind_error(host, p) is None), None)
        example = f", e.g. FIRELINE_HTTP_PORT={free}" if free else ""
        return (
            f"port {port} is already in use (another fireline?); "
            f"set FIRELINE_HTTP_PORT to a free port{example}"
        )
    if exc.errno == errno.EACCES:
        return f"no permission to listen on port {port}; set FIRELINE_HTTP_PORT above 1023"
    return f"cannot listen on {host}:{port} ({exc.strerror or exc}); check FIRELINE_HTTP_HOST"


def _bind_error(host: str, port: int) -> OSError | None:
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As the worker's server does: a closing connection (TIME_WAIT) is no conflict.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:  # socket.gaierror too: a host that does not resolve
        return exc
    return None


def _own_data_dir(parent: Path) -> Path:
    """A fresh directory under ``parent``: the demo's state never mixes with a real worker's."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="demo-", dir=parent))
    except OSError as exc:
        raise ConfigError(
            f"setting data_dir (FIRELINE_DATA_DIR): cannot create a directory in {parent}: "
            f"{exc.strerror or exc}"
        ) from exc


def _run(
    settings: Settings, spike_at_s: float, duration_s: float | None, scenario: str
) -> str | None:
    """The demo itself; returns why the worker died, or None."""
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
        if scenario == "bad-deploy":
            registry = bad_deploy.LoopbackRegistry()
            token = secrets.token_urlsafe(12)
            extra = {
                "FIRELINE_API_TOKEN": token,
                "MLFLOW_TRACKING_URI": registry.url,
                "FIRELINE_PLAYBOOKS_DIR": str(_demo_playbooks(settings)),
            }
            worker = _start_worker(settings, extra)
        else:
            worker = _start_worker(settings)
        print(
            f"fireline demo: worker starting, metrics on http://127.0.0.1:{settings.http_port}/metrics",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            if scenario == "bad-deploy":
                asyncio.run(_bad_deploy(settings, registry, token, duration_s, worker))
            else:
                profile = TrafficProfile(spike_at_s=spike_at_s)
                asyncio.run(_traffic(settings, profile, duration_s, worker))
        code = worker.poll()  # None: still running, stopped by us below
    finally:
        print("\nfireline demo: stopping worker and broker...", flush=True)
        if worker is not None:
            stop_process_group(worker, timeout_s=15.0)
        broker.stop()
        print("fireline demo: stopped.", flush=True)
    return None if code is None else _why_it_died(code, settings)


def _why_it_died(code: int, settings: Settings) -> str:
    port = http_port_problem(settings.http_host, settings.http_port)
    if port:  # someone else has the port now: what the worker tripped over
        return f"the worker stopped: {port}"
    if code < 0:
        return f"the worker was killed by {signal.Signals(-code).name}"
    return f"the worker exited with code {code} (its log is above)"


def _stopped_by_signals() -> asyncio.Event:
    """An event that Ctrl-C or SIGTERM sets: the traffic ends between two sends.

    asyncio's own Ctrl-C cancels the running task wherever it is, and a producer
    cancelled in the middle of a send could then wait forever in its close (seen
    under load: the demo never got to stop its worker). A second Ctrl-C still
    interrupts at once.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def interrupt() -> None:
        stop.set()
        loop.remove_signal_handler(signal.SIGINT)  # Python's own again for a second Ctrl-C

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, interrupt)
    return stop


def _start_worker(
    settings: Settings, extra: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = {**os.environ, **DEMO_ENV, "FIRELINE_BROKER_URL": settings.broker_url}
    env["FIRELINE_HTTP_PORT"] = str(settings.http_port)
    env["FIRELINE_DATA_DIR"] = str(settings.data_dir)
    # Demo-only default: show the resolution 10 s after the spike ends, not a minute.
    env.setdefault("FIRELINE_INCIDENTS__QUIET_PERIOD_S", "10")
    env["FIRELINE_PLAYBOOKS_DIR"] = str(Path(settings.playbooks_dir).resolve())
    env.update(extra or {})
    return subprocess.Popen(
        [sys.executable, "-m", "agents.cli", "run", "--loglevel", "warning"],
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
    stop = _stopped_by_signals()
    state = {"last_report": -10.0, "spiking": False}

    def on_tick(elapsed: float, spiking: bool) -> None:
        if worker.poll() is not None:  # run_demo says why once everything has stopped
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


def _demo_playbooks(settings: Settings) -> Path:
    """The playbooks, the rollback's verification shortened to what a demo can wait for."""
    target = Path(settings.data_dir) / "playbooks"
    target.mkdir(parents=True, exist_ok=True)
    for source in Path(settings.playbooks_dir).glob("*.y*ml"):
        text = source.read_text()
        if source.stem == "prediction-drift-rollback":
            text = text.replace("resolved_within: 15m", f"resolved_within: {DEMO_VERIFY_WITHIN}")
        (target / source.name).write_text(text)
    return target


async def _bad_deploy(
    settings: Settings,
    registry: bad_deploy.LoopbackRegistry,
    token: str,
    duration_s: float | None,
    worker: subprocess.Popen[bytes],
) -> None:
    stop = _stopped_by_signals()
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"fireline demo: t={time.monotonic() - started:5.1f}s {text}", flush=True)

    def moved(alias: str, before: str, after: str) -> None:
        why = "deploy" if after == bad_deploy.WORSE else "rollback"
        say(f"registry: {MODEL}@{alias} v{before} -> v{after} ({why}); v{after} serves now")

    registry.on_move = moved
    await registry.start()
    deployed = False

    def on_tick(elapsed: float, spiking: bool) -> None:
        nonlocal deployed
        if worker.poll() is not None:
            stop.set()
        if not deployed and elapsed >= DEPLOY_AT_S:
            deployed = True
            say(f"deploying {MODEL} v{bad_deploy.WORSE}: it scores every transaction higher")
            registry.deploy(bad_deploy.WORSE)

    profile = TrafficProfile(
        spike_at_s=None, worse_versions=frozenset({bad_deploy.WORSE}), predictions_per_s=300.0
    )
    simulator = TrafficSimulator(
        settings.bootstrap_servers, settings.topics, profile, on_tick, serving=registry.serving
    )
    approver = bad_deploy.Approver(
        f"http://127.0.0.1:{settings.http_port}", token, APPROVE_AFTER_S, say
    )
    say(
        f"{MODEL} v{bad_deploy.BASELINE} serves ~{profile.predictions_per_s:.0f} predictions/s; "
        f"v{bad_deploy.WORSE} goes live at t={DEPLOY_AT_S:.0f}s. Registry (MLflow stand-in) on "
        f"{registry.url}. Ctrl-C to stop."
    )
    tasks = [
        asyncio.create_task(approver.run(stop)),
        asyncio.create_task(bad_deploy.follow_audit(settings, stop, say)),
    ]
    try:
        await simulator.run(stop, duration_s)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await registry.stop()
