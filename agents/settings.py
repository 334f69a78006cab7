"""The one settings class: environment (``FIRELINE_*``), an optional YAML file, defaults.

Precedence, highest first: constructor arguments, environment variables, the YAML
file named by ``FIRELINE_CONFIG`` (or ``fireline --config``), field defaults. Nested
fields use ``__`` in the environment: ``FIRELINE_TOPICS__METRICS=prod.metrics``.
Secrets (the Slack tokens and signing secret, the API and Alertmanager tokens) come from
the environment or from files named by ``*_file`` settings and are held as ``SecretStr``
so they never print; an empty one counts as unset.

The ``FIRELINE_`` prefix belongs to the settings: at load, a ``FIRELINE_*`` variable
that is neither a setting (nor a section, set as JSON) nor one of :data:`OTHER_ENV` is
an error naming the closest setting, as an unknown YAML key is.
"""

from __future__ import annotations

import difflib
import os
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from detectors import (
    CountSpike,
    ErrorRatio,
    LatencySpike,
    MetricDetector,
    MetricEnsemble,
    SeasonalBaseline,
    TailLatency,
)
from detectors.metric.count_spike import CountSpikeParams
from detectors.metric.ensemble import MetricEnsembleParams
from detectors.metric.error_ratio import ErrorRatioParams
from detectors.metric.latency_spike import LatencySpikeParams
from detectors.metric.seasonal import SeasonalBaselineParams
from detectors.metric.tail_latency import TailLatencyParams
from detectors.monitor.versions import VersionComparisonParams
from detectors.params import DetectorParams, violations
from fireline.errors import ConfigError, DetectorError
from playbooks.step_retention import ACTION_REQUEST_RETENTION_S

CONFIG_FILE_ENV = "FIRELINE_CONFIG"
# FIRELINE_ variables fireline reads that are not settings: allowed by name.
OTHER_ENV = {CONFIG_FILE_ENV: "the YAML settings file (fireline --config)"}
SHIPPED_PLAYBOOKS = Path(__file__).resolve().parent.parent / "playbooks" / "library"


class Topics(BaseModel):
    """Kafka topic names; the input topics are the public API."""

    model_config = ConfigDict(extra="forbid")

    predictions: str = "fireline.predictions"
    labels: str = "fireline.labels"
    metrics: str = "fireline.metrics"
    incidents: str = "fireline.incidents"
    detections: str = "fireline.detections"
    silences: str = "fireline.silences"
    approvals: str = "fireline.approvals"
    actions: str = "fireline.actions"
    chat_threads: str = "fireline.chat-threads"
    dead_letter: str = "fireline.dead-letter"
    action_requests: str = "fireline.action-requests"  # keyed by playbook: its owner acts
    action_controls: str = "fireline.action-controls"  # the kill switch, by scope

    def all(self) -> list[str]:
        """Every topic fireline reads or writes."""
        return [getattr(self, name) for name in type(self).model_fields]

    def configs(self) -> dict[str, dict[str, str]]:
        """Settings of the topics that hold state (latest record per key), not events.

        Silences and kill switches are kept until replaced; chat threads also age
        out after 30 days (an incident's thread is not worth replaying at every
        start forever); action requests go after 2 days.
        """
        return {
            self.silences: {"cleanup.policy": "compact"},
            self.action_controls: {"cleanup.policy": "compact"},
            # Older requests are never redelivered, so their step records may be pruned
            # (playbooks.step_retention); a request two days late would act on a stale world.
            self.action_requests: {"retention.ms": str(int(ACTION_REQUEST_RETENTION_S * 1000))},
            self.chat_threads: {
                "cleanup.policy": "compact,delete",
                "retention.ms": str(30 * 24 * 3600 * 1000),
            },
        }

    def inputs(self) -> list[str]:
        """The topics producers write and fireline consumes."""
        return [self.predictions, self.labels, self.metrics]


class DetectorRoute(NamedTuple):
    """The detector the series of some metric names get, built from its settings section."""

    names_setting: str  # the DetectionSettings field listing the names ("" for the default)
    names: tuple[str, ...]
    detector: type[MetricDetector[Any]]
    params: DetectorParams

    def build(self) -> MetricDetector[Any]:
        """A fresh detector for one series (every series shares the parameters)."""
        return self.detector(self.params)


class DetectionSettings(LatencySpikeParams):
    """Metric detection: which detector each metric name gets, and their parameters.

    Latency series get LatencySpike (its parameters are this section's own:
    ``detection.window``, ``detection.warmup``...), error counts CountSpike
    (``detection.count_spike``), error ratios ErrorRatio (``detection.error_ratio``),
    raw latency samples TailLatency (``detection.tail_latency``), opted-in series
    SeasonalBaseline (``detection.seasonal``) and every other series the default
    MetricEnsemble (``detection.ensemble``). Each section is the detector's own
    parameter model, so its rules are the detector's; on top, one detector of each
    kind is built when the settings load. ``detection.versions`` is how the
    prediction-log monitor compares a model's versions (margins, acceptance).
    """

    metric_names: tuple[str, ...] = Field(
        default=("latency_ms", "latency_p99_ms", "http_request_duration_ms"),
        description="Metric names treated as latencies (LatencySpike, incident kind latency_spike).",
    )
    count_names: tuple[str, ...] = Field(
        default=("errors_total", "http_errors", "error_count"),
        description="Per-interval error counts (CountSpike, kind error_spike).",
    )
    ratio_names: tuple[str, ...] = Field(
        default=("error_rate", "error_ratio", "http_error_ratio"),
        description="Error ratios in [0, 1] (ErrorRatio, kind error_spike).",
    )
    tail_latency_names: tuple[str, ...] = Field(
        default=("request_latency_ms", "latency_sample_ms"),
        description="Raw per-request latency samples (TailLatency, kind tail_latency).",
    )
    seasonal_names: tuple[str, ...] = Field(
        default=(),
        description="Series judged per hour of the day/week (SeasonalBaseline, kind metric_anomaly).",
    )
    watch_other_metrics: bool = Field(
        default=True,
        description="Watch every other metric with the default detector (kind metric_anomaly).",
    )
    watch_predictions: bool = Field(
        default=True,
        description="Run the prediction-log detectors (drift, data quality, error rate).",
    )
    checkpoint_s: float = Field(
        default=10.0,
        gt=0,
        description="How often changed detectors are saved to their table (restart resumes).",
    )
    max_series: int = Field(
        default=100_000,
        ge=1,
        description="Live series per worker (a memory bound): beyond it the least recently "
        "seen series is released (checkpointed, reloaded when it returns).",
    )
    idle_ttl_s: float = Field(
        default=1800.0,
        gt=0,
        description="Seconds of event time without a sample before a series is released "
        "from memory (checkpointed first; reloaded when it returns).",
    )
    state_ttl_s: float = Field(
        default=6 * 3600.0,
        gt=0,
        description="Seconds of event time after its release before a series that never "
        "returned has its checkpoint deleted (tombstoned) from the state table; the table "
        "holds about (new series a minute) x (this, in minutes) checkpoints of ~1 KB.",
    )
    count_spike: CountSpikeParams = CountSpikeParams()
    error_ratio: ErrorRatioParams = ErrorRatioParams()
    tail_latency: TailLatencyParams = TailLatencyParams()
    seasonal: SeasonalBaselineParams = SeasonalBaselineParams()
    ensemble: MetricEnsembleParams = MetricEnsembleParams()
    versions: VersionComparisonParams = VersionComparisonParams()

    @model_validator(mode="after")
    def _names_are_routed_once(self) -> DetectionSettings:
        seen: dict[str, str] = {}
        for route in self.routes():
            for name in route.names:
                if name in seen:
                    raise ValueError(
                        f"metric {name!r} is in both {seen[name]} and {route.names_setting}"
                    )
                seen[name] = route.names_setting
        return self

    @model_validator(mode="after")
    def _every_detector_builds(self) -> DetectionSettings:
        # The sections are the detectors' own models; building one of each checks
        # whatever a detector verifies beyond them, now rather than at the first event.
        for route in self.routes():
            try:
                route.build()
            except DetectorError as exc:
                raise ValueError(str(exc)) from None
        return self

    def latency(self) -> LatencySpikeParams:
        """LatencySpike's parameters: the fields this section inherits from its model."""
        fields = LatencySpikeParams.model_fields
        return LatencySpikeParams(**{name: getattr(self, name) for name in fields})

    def routes(self) -> list[DetectorRoute]:
        """Each detector kind with the names routed to it; the default (no names) last."""
        return [
            DetectorRoute("metric_names", self.metric_names, LatencySpike, self.latency()),
            DetectorRoute("count_names", self.count_names, CountSpike, self.count_spike),
            DetectorRoute("ratio_names", self.ratio_names, ErrorRatio, self.error_ratio),
            DetectorRoute(
                "tail_latency_names", self.tail_latency_names, TailLatency, self.tail_latency
            ),
            DetectorRoute("seasonal_names", self.seasonal_names, SeasonalBaseline, self.seasonal),
            DetectorRoute("", (), MetricEnsemble, self.ensemble),
        ]


class Incidents(BaseModel):
    """Incident lifecycle: grouping, auto-resolve, flapping, reopening."""

    model_config = ConfigDict(extra="forbid")

    correlation_window_s: float = Field(
        default=300.0,
        ge=0,
        description="Detections on one model/service this close join one incident.",
    )
    quiet_period_s: float = Field(
        default=60.0, ge=0, description="Resolve once every signal cleared and this long passed."
    )
    signal_refresh_s: float = Field(
        default=30.0, gt=0, description="Detectors re-send an alarm that is still on this often."
    )
    signal_expiry_s: float = Field(
        default=180.0, gt=0, description="An alarm not re-sent for this long counts as gone."
    )
    reopen_window_s: float = Field(
        default=900.0, ge=0, description="A resolved incident recurring this soon reopens."
    )
    flap_threshold: int = Field(
        default=4, ge=1, description="Raises of one fingerprint within flap_window_s that flap."
    )
    flap_window_s: float = Field(default=600.0, gt=0)
    change_window_s: float = Field(
        default=3600.0, ge=0, description="Changes this long before an incident are linked to it."
    )
    critical_ratio: float = Field(
        default=5.0, gt=1, description="Observed/baseline at which a signal is critical."
    )
    tick_s: float = Field(default=5.0, gt=0, description="How often lifecycle timers run.")
    max_signals: int = Field(default=50, ge=1, description="Signals kept per incident (latest).")
    evidence_points: int = Field(
        default=120, ge=0, description="Recent points per series kept as chart evidence."
    )

    @model_validator(mode="after")
    def _expiry_above_refresh(self) -> Incidents:
        if self.signal_expiry_s <= self.signal_refresh_s:
            raise ValueError("signal_expiry_s must be longer than signal_refresh_s")
        return self


class WorkerTuning(BaseModel):
    """Kafka consumer tuning of the Faust worker (see docs/performance.md)."""

    model_config = ConfigDict(extra="forbid")

    session_timeout_s: float = Field(
        default=10.0, gt=0, description="Group session timeout; Tansu joins a group in half of it."
    )
    heartbeat_interval_s: float = Field(
        default=1.0, gt=0, description="Under a third of the session timeout."
    )
    rebalance_timeout_s: float = Field(default=10.0, gt=0)
    max_poll_records: int = Field(default=10_000, ge=1, description="Records per fetch call.")
    max_fetch_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Bytes per partition fetch."
    )
    commit_every: int = Field(default=100_000, ge=1, description="Commit after this many events...")
    commit_interval_s: float = Field(
        default=1.0, gt=0, description="...or this often, whichever is first."
    )
    fetch_max_wait_ms: int = Field(
        default=100, ge=1, le=10_000, description="Fetch long-poll; Faust's own is 1500 ms."
    )
    fetch_min_bytes: int = Field(
        default=64 * 1024,
        ge=1,
        description="Bytes a fetch waits for, up to the long-poll: at low rates fewer, fuller "
        "batches (each costs a fixed round trip and bookkeeping); at high rates there at once.",
    )
    producer_batch_bytes: int = Field(
        default=512 * 1024,
        ge=16 * 1024,
        description="Bytes per partition in one produce request (a checkpoint's slice is one); "
        "keep it under the broker's message.max.bytes.",
    )

    @model_validator(mode="after")
    def _heartbeat_below_session(self) -> WorkerTuning:
        if self.heartbeat_interval_s * 3 > self.session_timeout_s:
            raise ValueError("heartbeat_interval_s must be at most a third of session_timeout_s")
        return self


class Settings(BaseSettings):
    """All of fireline's settings."""

    model_config = SettingsConfigDict(
        env_prefix="FIRELINE_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )
    yaml_file: ClassVar[Path | None] = None

    app_id: str = Field(default="fireline", pattern=r"^[A-Za-z0-9._-]+$")
    broker_url: str = Field(
        default="kafka://127.0.0.1:9092",
        description="Kafka bootstrap servers as kafka://host:port[,host:port].",
    )
    topics: Topics = Topics()
    partitions: int = Field(default=4, ge=1, le=1024, description="Partitions per created topic.")
    replication_factor: int = Field(default=1, ge=1)
    playbooks_dir: Path = SHIPPED_PLAYBOOKS
    data_dir: Path = Field(
        default=Path.home() / ".local" / "state" / "fireline",
        description="Where Faust keeps its per-app data directory (never the working directory).",
    )
    playbooks_poll_s: float = Field(default=5.0, gt=0, description="How often to look for changes.")
    actions_enabled: bool = Field(
        default=True, description="The kill switch: false runs no playbook step at all."
    )
    dry_run: bool = Field(
        default=False, description="Every playbook records what it would run and runs nothing."
    )
    slack_token: SecretStr | None = None
    slack_token_file: Path | None = None
    slack_base_url: str = Field(default="https://slack.com/api/", pattern=r"^https?://.+/$")
    slack_channel: str = "#fireline-alerts"
    slack_dashboard_url: str | None = Field(
        default=None,
        description="Dashboard link in Slack root messages; {model}, {service}, {version}, "
        "{id}, {kind} and {from_ms} are filled from the incident.",
    )
    slack_remind_after_s: float = Field(
        default=1800.0,
        ge=0,
        description="Remind the thread of a critical incident nobody acknowledged after this "
        "long, and again every as long; 0 never reminds.",
    )
    slack_max_reminders: int = Field(
        default=6, ge=0, description="Reminders per incident and channel at most."
    )
    slack_remind_mention: str = Field(
        default="<!here>", description="Who a reminder calls, e.g. <!subteam^S0123> or <!here>."
    )
    slack_step_replies: bool = Field(
        default=True,
        description="Reply in the incident's thread with what each playbook step did.",
    )
    slack_channel_rate_per_s: float = Field(
        default=1.0,
        gt=0,
        description="Messages per second per channel (Slack allows about one); posts wait "
        "their turn, off the detection path.",
    )
    slack_channel_burst: int = Field(
        default=4, ge=1, description="Messages a quiet channel may take at once."
    )
    slack_signing_secret: SecretStr | None = None
    slack_signing_secret_file: Path | None = None
    slack_app_token: SecretStr | None = Field(
        default=None,
        description="App-level token (xapp-, scope connections:write): buttons over Socket Mode.",
    )
    slack_app_token_file: Path | None = None
    http_host: str = "0.0.0.0"
    http_port: int = Field(default=6066, ge=0, le=65535)
    api_token: SecretStr | None = Field(
        default=None, description="One admin token for the HTTP API, named api (compatibility)."
    )
    api_token_file: Path | None = None
    api_tokens_path: Path | None = Field(
        default=None,
        description="YAML/JSON of API tokens: name: {role: viewer|responder|approver|admin, "
        "sha256: <hex SHA-256 of the token>}.",
    )
    slack_approvers: tuple[str, ...] = Field(
        default=(),
        description="Slack user ids (U…) and user group ids (S…) that may approve or reject "
        "steps from Slack; empty: nobody.",
    )
    approval_ttl_s: float = Field(
        default=3600.0,
        ge=0,
        description="A step waiting for approval this long expires (counts as rejected); 0 never.",
    )
    template_max_chars: int = Field(
        default=65536,
        ge=256,
        description="A rendered step param (and any string or list made on the way) at most "
        "this long; past it the step fails.",
    )
    template_max_seconds: float = Field(
        default=1.0, gt=0, description="A step param renders in at most this long."
    )
    step_retention_s: float = Field(
        default=7 * 24 * 3600.0,
        ge=ACTION_REQUEST_RETENTION_S + 24 * 3600.0,
        description="Playbook step records (what stops a redelivered request from acting "
        "twice) are pruned this long after their last write; at least 3 days, longer than "
        "fireline.action-requests keeps a request (2 days).",
    )
    alertmanager_token: SecretStr | None = Field(
        default=None,
        description="Bearer token Alertmanager sends to POST /webhooks/alertmanager "
        "(http_config.authorization); unset: the intake answers 401.",
    )
    alertmanager_token_file: Path | None = None
    max_event_bytes: int = Field(
        default=65536, ge=256, description="Larger events are dead-lettered."
    )
    detection: DetectionSettings = DetectionSettings()
    incidents: Incidents = Incidents()
    worker: WorkerTuning = WorkerTuning()

    @field_validator("broker_url")
    @classmethod
    def _check_broker_url(cls, value: str) -> str:
        scheme, sep, hosts = value.partition("://")
        if not sep or scheme != "kafka" or not hosts:
            raise ValueError("expected kafka://host:port[,host:port]")
        for host in hosts.split(","):
            name, colon, port = host.rpartition(":")
            if not colon or not name or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"expected kafka://host:port[,host:port], bad entry {host!r}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Constructor, then environment, then the YAML file (if any)."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        yaml_file = cls.yaml_file or _env_config_file()
        if yaml_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file))
        return tuple(sources)

    @property
    def bootstrap_servers(self) -> str:
        """The broker URL in the host:port[,host:port] form Kafka clients take."""
        return self.broker_url.partition("://")[2]

    def slack_secret(self) -> str | None:
        """The Slack bot token from FIRELINE_SLACK_TOKEN or the file it names."""
        return _secret(self.slack_token, self.slack_token_file, "slack_token_file")

    def slack_signing_key(self) -> str | None:
        """The Slack app's signing secret, from the setting or its file (None: no buttons)."""
        return _secret(
            self.slack_signing_secret, self.slack_signing_secret_file, "slack_signing_secret_file"
        )

    def slack_app_secret(self) -> str | None:
        """The Slack app-level token, from the setting or its file (None: no Socket Mode)."""
        return _secret(self.slack_app_token, self.slack_app_token_file, "slack_app_token_file")

    def api_secret(self) -> str | None:
        """The HTTP API bearer token from FIRELINE_API_TOKEN or the file it names."""
        return _secret(self.api_token, self.api_token_file, "api_token_file")

    def alertmanager_secret(self) -> str | None:
        """The Alertmanager webhook's bearer token, from the setting or its file (None: off)."""
        return _secret(
            self.alertmanager_token, self.alertmanager_token_file, "alertmanager_token_file"
        )


def _env_config_file() -> Path | None:
    value = os.environ.get(CONFIG_FILE_ENV)
    return Path(value) if value else None


def _secret(value: SecretStr | None, file: Path | None, name: str) -> str | None:
    # Empty counts as unset, as for files: compose passes ${VAR:-} through, and an
    # empty signing secret would make every signature forgeable.
    if value is not None and value.get_secret_value().strip():
        return value.get_secret_value().strip()
    if file is None:
        return None
    try:
        return file.read_text(encoding="utf-8").strip() or None
    except OSError as exc:
        raise ConfigError(f"setting {name}: cannot read {file}: {exc.strerror}") from exc


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings, turning validation errors into one readable ConfigError.

    Each problem names the setting as its environment variable and the expected form;
    an unknown ``FIRELINE_*`` variable is one (see :func:`check_environment`).
    """
    check_environment(os.environ)
    if config_file is not None and not config_file.is_file():
        raise ConfigError(
            f"config file {config_file} does not exist (from --config or {CONFIG_FILE_ENV})"
        )
    Settings.yaml_file = config_file
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
    finally:
        Settings.yaml_file = None


_SECRET_WORDS = {"token", "secret", "password", "key", "credentials"}

# Settings renamed when each detector got its own section: named in the error.
_RENAMED = {
    "detection.tail_quantile": "detection.tail_latency.quantile",
    "detection.tail_window": "detection.tail_latency.window",
    "detection.tail_step": "detection.tail_latency.step",
    "detection.seasonal_season": "detection.seasonal.season",
    "detection.seasonal_utc_offset_hours": "detection.seasonal.utc_offset_hours",
}


def check_environment(environ: Mapping[str, str]) -> None:
    """Refuse ``FIRELINE_*`` variables that are not settings: a typo must not be ignored.

    Names are compared without case, as the settings read them.
    """
    known = {env_name(path) for path in setting_paths()} | set(OTHER_ENV)
    renamed = {env_name(old): env_name(new) for old, new in _RENAMED.items()}
    unknown = sorted(
        name
        for name in environ
        if name.upper().startswith("FIRELINE_") and name.upper() not in known
    )
    if not unknown:
        return
    lines = [
        "unknown FIRELINE_ environment variables (the prefix is for settings; name a playbook's secret otherwise):"
    ]
    for name in unknown:
        if name.upper() in renamed:
            lines.append(f"  {name}: renamed {renamed[name.upper()]}")
        else:
            lines.append(
                f"  {name}: not a setting{_did_you_mean(name.upper(), known, 'FIRELINE_')}"
            )
    raise ConfigError("\n".join(lines))


def setting_paths() -> list[str]:
    """Every setting's dotted path, sections included (``detection``, ``detection.window``)."""
    return [".".join(path) for path in _paths(Settings, ())]


def _paths(model: type[BaseModel], prefix: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        yield path
        for section in _models_in(field.annotation):
            yield from _paths(section, path)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The model(s) a field holds, itself or in an optional (``Model | None``)."""
    if get_origin(annotation) in (Union, types.UnionType):
        return [m for arg in get_args(annotation) for m in _models_in(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def _did_you_mean(name: str, candidates: set[str], prefix: str = "") -> str:
    """The closest candidate, compared without the ``prefix`` they all share."""
    rest = [c.removeprefix(prefix) for c in sorted(candidates)]
    close = difflib.get_close_matches(name.removeprefix(prefix), rest, n=1, cutoff=0.6)
    return f"; did you mean {prefix}{close[0]}?" if close else ""


def env_name(path: str) -> str:
    """The environment variable of a dotted setting, e.g. ``FIRELINE_DETECTION__WARMUP``.

    An item of a list setting (``detection.ensemble.grids.0``) is set by the list's.
    """
    parts = [part for part in path.split(".") if not part.isdigit()]
    return "FIRELINE_" + "__".join(parts).upper()


def _describe(exc: ValidationError) -> str:
    lines = ["invalid fireline settings:"]
    for problem in violations(exc):
        name = problem.name
        # Echo a value only for a known, non-secret setting: an unknown key may be a
        # misspelt secret (slack_tokn: xoxb-...), and a long value is cut.
        if problem.kind == "extra_forbidden" or _SECRET_WORDS & set(
            problem.path[-1].lower().split("_")
        ):
            shown = "<hidden>"
        else:
            shown = repr(problem.value)
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
        joint = " " if problem.phrased else ": "
        line = f"  {name} ({env_name(name)}){joint}{problem.rule}; got {shown}"
        if name in _RENAMED:
            line += f"; renamed {_RENAMED[name]} ({env_name(_RENAMED[name])})"
        elif problem.kind == "extra_forbidden":
            line += _did_you_mean(name, set(setting_paths()))
        lines.append(line)
    return "\n".join(lines)
