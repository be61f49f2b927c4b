"""Service configuration: one YAML file plus environment overrides, validated at start-up.

Environment overrides use ``ARI_AGENT__<SECTION>__<KEY>=value`` (double underscores separate the
key path), e.g. ``ARI_AGENT__ARI__PASSWORD=secret``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ari_agent.errors import ConfigError
from ari_agent.yaml_source import LineIndex, load_yaml, validate

ENV_PREFIX = "ARI_AGENT__"
DEFAULT_STATE_DIR = Path(os.environ.get("ARI_AGENT_STATE_DIR", "/var/lib/ari-agent"))
# Prepared model files (`ari-agent models prepare`): a cache, rebuilt from the pinned model wheels.
DEFAULT_MODELS_DIR = Path(os.environ.get("ARI_AGENT_MODELS_DIR", "/var/cache/ari-agent/models"))


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AriConfig(Section):
    url: str = "http://127.0.0.1:8088"
    username: str = "ari-agent"
    password: SecretStr = SecretStr("ari-agent-dev")
    # One name per agent process (docs/deploy.md); no "&", "," or spaces: the dialplan lists names with "&".
    app: str = Field("ari-agent", pattern=r"^[A-Za-z0-9._-]{1,80}$")
    # https:// (and so wss:// for events and WebSocket media) is always verified: against this CA file (PEM)
    # when set, else the system's trust store. There is no switch to turn verification off.
    ca_file: Path | None = None
    request_timeout_s: float = Field(5.0, gt=0)
    # Concurrent HTTP connections to ARI per process (more requests wait for one); keep the sum over all
    # processes below http.conf's sessionlimit.
    max_connections: int = Field(32, ge=1, le=1000)
    reconnect_initial_s: float = Field(0.25, gt=0)
    reconnect_max_s: float = Field(1.0, gt=0)  # reconnect within ~1 s of Asterisk being back

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class MediaConfig(Section):
    # "rtp": externalMedia over UDP RTP in ``format``, paced by the agent. "websocket": Asterisk 22's
    # chan_websocket, slin16 both ways, paced and flushable by Asterisk, over ws:// or wss:// like ari.url
    # (docs/transport-security.md).
    transport: Literal["rtp", "websocket"] = "rtp"
    format: Literal["ulaw", "alaw", "slin"] = "ulaw"
    bind_host: str = "127.0.0.1"
    jitter_depth_frames: int = Field(3, ge=1, le=50)
    # Send silence between prompts (a continuous RTP stream, like a phone without DTX) rather than
    # nothing: Asterisk's view of the agent's leg keeps a steady clock.
    send_silence: bool = True


class AgentConfig(Section):
    greeting: str = "Hello, thank you for calling. How can I help you today?"
    recordings_dir: Path = DEFAULT_STATE_DIR / "recordings"
    # Longest a call may last before the agent hands it to a human (reason max_duration, the intent's queue).
    max_call_s: float = Field(600.0, gt=0)
    # A call still with the agent this long after max_call_s (the handoff failed) is ended.
    max_call_grace_s: float = Field(30.0, gt=0)
    # The first conversation (greet, then listen): how long to listen before the agent hangs up.
    listen_after_greeting_s: float = Field(30.0, gt=0)
    handoff_context: str = "agent-handoff"
    handoff_extension: str = "support"
    # Calls served at once; the next caller is passed on to the next agent the dialplan lists, else to the
    # fallback queue (reason "capacity"). 0: sized from stt.engine and this process's cores, by the
    # figures bench latency measured (call/capacity.py: both/whisper 2 calls per core, pocketsphinx 6);
    # no limit in the media-only greet_and_listen mode.
    max_calls: int = Field(0, ge=0)


class ConversationConfig(Section):
    """The voice conversation: which intent map, where its tools live."""

    # "voice": the full speech loop; "greet_and_listen": greet, record the caller (media checks).
    mode: Literal["voice", "greet_and_listen"] = "voice"
    intent_map: Path | None = None  # None: the bundled demo map
    # Overrides the intent map's tools.base_url (e.g. the demo backend's address).
    tools_base_url: str | None = None
    ack_text: str = "One moment while I check that."
    tool_timeout_s: float = Field(8.0, gt=0)
    # The map's business and queue hours, judged on this host's local clock. False: they never close (the
    # clock is not consulted), as in text-mode evaluation: audio evaluation runs and the integration tests
    # set it, so their outcomes do not depend on the time of day they run at.
    business_hours: bool = True


class PiperSettings(Section):
    """The Piper neural voice (ONNX, run on onnxruntime; phonemes from espeak-ng as a subprocess)."""

    # None: the voice prepared in models.dir by `ari-agent models prepare`, else the installed voice wheel's.
    model_path: Path | None = None
    threads: int = Field(2, ge=1, le=16)  # onnxruntime intra-op threads of the one session per process
    # None: the voice's own values (its .onnx.json "inference" section).
    length_scale: float | None = Field(None, gt=0, le=4)
    noise_scale: float | None = Field(None, ge=0, le=2)
    noise_w: float | None = Field(None, ge=0, le=2)


class TtsConfig(Section):
    # "espeak-ng" (alias "espeak"): formant voice, first audio ~8 ms. "piper": neural voice (en_US-joe-medium).
    # "auto": piper when onnxruntime imports and the Piper voice is prepared and valid, else espeak-ng
    # (decided once at service start: ari_agent/ops/engines.py).
    engine: Literal["auto", "espeak-ng", "espeak", "piper"] = "auto"
    voice: str = "en-us"
    rate_wpm: int = Field(165, ge=80, le=450)
    cache_dir: Path = DEFAULT_STATE_DIR / "prompt-cache"
    piper: PiperSettings = PiperSettings()


class ModelsConfig(Section):
    """Where `ari-agent models prepare` puts verified model files (and their manifests)."""

    dir: Path = DEFAULT_MODELS_DIR


class RedisConfig(Section):
    url: str = "redis://127.0.0.1:6379/0"
    # Async writes Redis cannot take are fsync'd here and replayed when it returns (integrations/spool.py).
    # One file per agent process is simplest; processes sharing one take turns (flock). None: no spool.
    spool_path: Path | None = DEFAULT_STATE_DIR / "write-spool.jsonl"


class PbxConfig(Section):
    """Where the PBX's filesystem is, seen from the agent's host (test calls place WAVs there).

    For the local development PBX this is its rootfs; for an Asterisk on this host, "/"."""

    root: Path = Path("/var/cache/ari-agent/pbx-rootfs")
    calls_dir: str = "/var/lib/ari-agent/calls"
    test_caller_context: str = "ari-agent-test-caller"
    inbound_context: str = "ari-agent-inbound"
    inbound_extension: str = "agent"


class MetricsConfig(Section):
    # host:port for Prometheus /metrics; loopback by default, "" disables it.
    bind: str = "127.0.0.1:9464"


class TracingConfig(Section):
    # OTLP/HTTP traces endpoint (e.g. http://otel-collector:4318/v1/traces); unset = no tracing. Needs the
    # otel extra. One trace per call, a span per turn and per stage (ari_agent/call/tracing.py).
    otlp_endpoint: str | None = None
    service_name: str = "ari-agent"
    # Sent with each export (e.g. an Authorization header); secrets: never logged.
    headers: dict[str, SecretStr] = {}
    export_timeout_s: float = Field(default=5.0, gt=0)


class LifecycleConfig(Section):
    """How ``ari-agent run`` stops and what protects callers when it dies (docs/runbook.md)."""

    # SIGTERM: calls in progress may finish for this long, then they are handed to the fallback queue.
    drain_deadline_s: float = Field(25.0, gt=0)
    # Dead man's switch: the agent renews TIMEOUT(absolute) on each caller it serves to this many seconds,
    # every third of it; when nobody renews it, Asterisk moves the caller to the queue (dialplan "T").
    channel_lease_s: float = Field(15.0, ge=3)
    # After a (re)connect: how long a listed channel may wait for its StasisStart before it is an orphan.
    reconcile_grace_s: float = Field(0.25, ge=0, le=5)


class PocketsphinxSettings(Section):
    # How 8 kHz audio reaches the 16 kHz acoustic model: "fold" repeats each sample (zero-order hold),
    # mirroring 0-4 kHz into 4-8 kHz where the model expects fricative energy (zero delay). The soxr
    # qualities band-limit properly but leave 4-8 kHz empty. Measured (5 synthetic voices over G.711,
    # see pocketsphinx_stt): 4-digit strings right 70 % "fold" vs 56 % "LQ"; open-turn WER 21 % vs 26 %.
    upsample: Literal["fold", "QQ", "LQ", "MQ", "HQ"] = "fold"
    # Lattice posteriors give the confidence but cost time at end_utt in grammar searches; the
    # narrower-than-default beams below keep finish() at p90 ~50 ms (measured) on open turns and short
    # grammars. On a 4-8 digit grammar they cost 570 ms median (p90 1.8 s) after the caller had finished,
    # so number and code turns (digits, letters) get them only with grammar_posterior (a confidence of 0.5
    # otherwise): calls turn it on where the map reads values by confidence (limits.read_back_below or
    # min_confidence above 0). Yes/no, date and time grammars always have them.
    posterior: bool = True
    grammar_posterior: bool = False
    beam: float = Field(1e-30, gt=0, le=1)
    wbeam: float = Field(1e-20, gt=0, le=1)
    pbeam: float = Field(1e-30, gt=0, le=1)
    cache_dir: Path | None = None  # built LMs (by content hash); None: a per-user temp directory
    cmninit: str | None = None


class WhisperSettings(Section):
    model_path: Path | None = None
    workers: int = Field(1, ge=1, le=16)
    threads: int = Field(2, ge=1, le=64)
    use_gpu: bool = False
    gpu_device: int = Field(0, ge=0)
    flash_attn: bool = False
    language: str = "en"
    timeout_s: float = Field(15.0, gt=0)
    start_timeout_s: float = Field(60.0, gt=0)
    prompt_with_expectation: bool = True
    # How far the model file is checked before any worker loads it ("full" walks every tensor record).
    validation: Literal["magic", "header", "full"] = "full"
    max_restarts: int = Field(5, ge=0)  # consecutive failed worker starts before the pool gives up
    # Encoder window sized to the utterance (~50 positions a second, at least this many; 0: the full
    # 30 s window). On phone audio with the expectation prompt, 512 kept the words of the full window at
    # ~1/4 of its time; 256 was faster still but made the decoder repeat itself; 384 (the default since
    # 2026-12-04) read every turn kind of the 590-utterance phone set within one utterance of 512 at ~30 %
    # less CPU per audio second (docs/speech-bench.md, "Encoder window floor").
    audio_ctx_floor: int = Field(384, ge=0, le=1500)
    # A pause this long inside an utterance starts its final decode while the endpointer still waits for
    # the end of the turn (the result is used if the caller says nothing more); 0: decode at the end only.
    # A multiple of 20 (frames), below the endpointer's 500 ms end-of-turn silence. 100 (was 200): the
    # decode is back by ~320 ms of silence, so a complete turn ends there instead of at 500 ms.
    speculate_after_ms: int = Field(100, ge=0, le=480, multiple_of=20)
    # stt.engine both: a postcode turn whose transcript holds no postcode is decoded again, constrained to
    # postcodes (call/paired_recognition.py; 21 -> 27 of the phone set's 80 postcodes right, read back). Each
    # whisper worker then holds the model twice: ~90 MB more RSS.
    constrained_codes: bool = True


class SttConfig(Section):
    # "both": whisper on every turn, and pocketsphinx's grammar too on turns answered with a number, code,
    # date or time; a value the two disagree on is read back before it is used (call/paired_recognition.py).
    # "auto": both when pywhispercpp imports and the whisper model is prepared and valid, else pocketsphinx
    # (decided once at service start: ari_agent/ops/engines.py).
    engine: Literal["auto", "pocketsphinx", "whisper", "both"] = "auto"
    pocketsphinx: PocketsphinxSettings = PocketsphinxSettings()
    whisper: WhisperSettings = WhisperSettings()


class LogConfig(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = Field(False, alias="json")


class RedactionPattern(Section):
    """One site-specific thing to redact (``ari_agent.redaction``): matches become ``[LABEL]``."""

    label: str = Field(pattern=r"^[A-Z][A-Z0-9_]{0,19}$")  # upper case, e.g. MEMBER_ID
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        import re

        try:
            compiled = re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        if compiled.fullmatch(""):
            raise ValueError("matches the empty string")
        return v


class RedactionConfig(Section):
    """Personal data redacted from transcripts and logs, beyond the built-in kinds."""

    extra_patterns: tuple[RedactionPattern, ...] = ()


class AmiConfig(Section):
    """Asterisk Manager Interface (``asterisk-config/manager.conf``): queue checks before a handoff and
    the queue events behind the screen-pop."""

    host: str = "127.0.0.1"
    port: int = Field(5038, ge=1, le=65535)
    username: str = "ari-agent"
    secret: SecretStr = SecretStr("ari-agent-dev")
    connect_timeout_s: float = Field(3.0, gt=0)
    action_timeout_s: float = Field(2.0, gt=0)
    reconnect_initial_s: float = Field(0.25, gt=0)
    # 1 s: the first handoff queue check after an Asterisk restart waits for the reconnect (handoff.py)
    reconnect_max_s: float = Field(1.0, gt=0)
    ping_interval_s: float = Field(10.0, gt=0)  # a connection that stops answering pings is reopened


class HandoffQueueConfig(Section):
    """One human queue's handoff settings."""

    team: str = ""  # how the agent names the team to the caller ("our billing team"); "" = the queue name
    max_wait_s: float = Field(600.0, gt=0)  # estimated wait above this → the fallback instead
    fallback: str | None = None  # queue to use when this one is empty or too slow
    announce: bool = True  # the agent says where the caller goes and the expected wait
    # Announced (warm) transfer: the answering human first hears a short spoken brief of the context
    # (rendered by the agent's TTS, played by Queue()'s announce override) before the caller is bridged.
    warm: bool = False


class HandoffConfig(Section):
    """Handing callers to human queues (``ari_agent/call/handoff.py``, ``docs/handoff.md``)."""

    # The development PBX's queues (asterisk-config/queues.conf); a queue not listed gets the defaults.
    queues: dict[str, HandoffQueueConfig] = Field(default_factory=lambda: {
        "support": HandoffQueueConfig(team="support"),
        "billing": HandoffQueueConfig(team="billing", fallback="support"),
    })
    check_queue: bool = True  # ask AMI before transferring (unreachable AMI → transfer anyway)
    context_ttl_s: int = Field(86400, ge=60)  # how long the full context stays in Redis
    loop_prevention: bool = True  # a queue the caller already came back from is not tried again
    exhausted_extension: str = "exhausted"  # every candidate queue tried: where the dialplan takes over
    # Places in the handoff context that are not queues (dialplan/handoff.conf): never checked over AMI.
    # "voicemail"/"callback": what a closed queue offers (intent map queue_hours); "takeover": a
    # supervisor's chosen interface (ARI_AGENT_TAKEOVER_INTERFACE).
    destinations: tuple[str, ...] = ("voicemail", "callback", "takeover")
    # Where warm-transfer briefs are written, as Asterisk sees it (the agent writes <pbx.root>/<this>).
    briefs_dir: str = "/var/lib/ari-agent/briefs"


class AgiRoutingConfig(Section):
    """FastAGI routing (``AGI(agi://host:port/route)``, dialplan/agi-entry.conf): agent or straight to a queue."""

    # ``ari-agent run`` serves the routing too (on ``bind``); off: run none, the dialplan then falls back to
    # the agent (AGISTATUS=FAILURE, dialplan/agi-entry.conf).
    enabled: bool = False
    bind: str = "127.0.0.1:4573"
    pilot_percent: float = Field(100.0, ge=0, le=100)  # share of callers (by caller id, deterministic) to the agent
    enabled_dids: tuple[str, ...] = ()  # empty: every dialled number may reach the agent
    disabled_dids: tuple[str, ...] = ()
    queue: str = "support"  # where callers not routed to the agent go
    # When the agent takes calls (weekday -> "HH:MM-HH:MM" | "closed"; a day not listed is closed);
    # empty: always. Outside them callers go to ``after_hours_queue`` (default: ``queue``).
    agent_hours: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], str] = Field(default_factory=dict)
    after_hours_queue: str | None = None
    timezone: str = ""  # IANA name for agent_hours (e.g. Europe/London); "": the host's local time
    # Transfer-only mode (the Redis kill switch, governance.killswitch*) sends every caller to ``queue``.
    follow_kill_switch: bool = True
    header_timeout_s: float = Field(5.0, gt=0)  # a client that sends no full header in time is dropped

    @field_validator("agent_hours")
    @classmethod
    def _spans(cls, v: dict[str, str]) -> dict[str, str]:
        import re

        for day, span in v.items():
            if not re.match(r"^(closed|([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d)$", span):
                raise ValueError(f"{day}: '{span}' is not 'HH:MM-HH:MM' or 'closed'")
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        if v:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone '{v}' (use an IANA name such as Europe/London)") from None
        return v


class ScreenpopAgent(Section):
    """One human agent of the screen-pop: a scrypt hash (``ari-agent screenpop hash-password``) and the
    queue member interface their phone is (``Local/support-desk@agent-desk/n``, ``PJSIP/1001``)."""

    password_hash: SecretStr
    interface: str
    name: str = ""
    # "supervisor": also sees every live call (with the agent or in a queue) and can take one over.
    role: Literal["agent", "supervisor"] = "agent"


class ScreenpopConfig(Section):
    bind: str = "127.0.0.1:8765"
    agents: dict[str, ScreenpopAgent] = Field(default_factory=dict)
    session_ttl_s: int = Field(43200, ge=60)
    secure_cookie: bool = False  # set true behind TLS


class SupervisionConfig(Section):
    """Live calls for supervisors (``call/live_calls.py``, ``call/takeover.py``): each agent publishes the
    calls it is serving to Redis and takes a call over to a person when a supervisor asks."""

    enabled: bool = True
    refresh_s: float = Field(2.0, gt=0, le=60)  # how often a live call's card (transcript so far) is republished
    takeover_timeout_s: float = Field(10.0, gt=0, le=60)  # how long the screen-pop waits for the agent's answer


class GovernanceConfig(Section):
    """Kill switch, audit log and approved changes (``ari_agent.governance``, docs/governance.md)."""

    # Refuse an intent map without a valid approval (``ari-agent config approve``) or edited since.
    production: bool = False
    approval_key: SecretStr | None = None  # env ARI_AGENT__GOVERNANCE__APPROVAL_KEY; or the file below
    approval_key_file: Path | None = None
    audit_log: Path | None = DEFAULT_STATE_DIR / "audit.jsonl"  # None: no audit log
    audit_key: SecretStr | None = None  # HMAC of every record (env ARI_AGENT__GOVERNANCE__AUDIT_KEY)
    audit_key_file: Path | None = None
    killswitch: bool = True  # watch the Redis kill switch (redis.url)
    killswitch_key: str = Field("ari-agent:killswitch", min_length=1)
    killswitch_override_file: Path = DEFAULT_STATE_DIR / "killswitch.on"  # exists: transfer-only, Redis or not
    killswitch_state_file: Path = DEFAULT_STATE_DIR / "killswitch.last"  # the last state seen, for restarts
    killswitch_poll_s: float = Field(0.5, gt=0, le=10)


class ThrottleConfig(Section):
    """Limits across calls in Redis (``conversation/throttle.py``, docs/security.md): brute force of
    identity checks, enumeration of records, call floods. Redis unreachable: counted per process."""

    enabled: bool = True
    verify_failures_per_caller: int = Field(3, ge=1)
    verify_failures_per_account: int = Field(3, ge=1)
    verify_window_s: int = Field(3600, ge=1)
    unknown_lookups_per_caller: int = Field(3, ge=1)
    lookups_per_caller: int = Field(10, ge=1)
    lookup_window_s: int = Field(3600, ge=1)
    lockout_s: int = Field(3600, ge=1)
    calls_per_caller_per_hour: int = Field(20, ge=1)


class StorageConfig(Section):
    """Recordings and call logs at rest (``governance/at_rest.py``, ``ari-agent retention``, docs/security.md)."""

    # AES-256-GCM for what the agent writes (recordings: received.wav.enc). Needs a key (file or env).
    encrypt_at_rest: bool = False
    # Lines "key_id base64-of-32-bytes" (``ari-agent storage keygen``); the last line encrypts, all decrypt.
    encryption_key_file: Path | None = None
    encryption_keys: SecretStr | None = None  # the same lines, ";"-separated (env ARI_AGENT__STORAGE__ENCRYPTION_KEYS)
    call_logs_dir: Path = DEFAULT_STATE_DIR / "call-logs"
    # Each call's event log kept as <call_logs_dir>/<call id>/events.jsonl(.enc): redacted before it is
    # written, mode 0600, sealed with encrypt_at_rest, deleted after retention_days (governance/call_logs.py).
    store_call_logs: bool = True
    retention_days: float | None = Field(30.0, gt=0)  # recordings and call logs older than this are deleted


class RecordsConfig(Section):
    """Call records, one per call, for the KPIs (``ari_agent/records``, docs/evaluation.md)."""

    enabled: bool = True
    # SQLAlchemy URL: SQLite by default, or postgresql+psycopg://user:pass@host/db.
    url: str = f"sqlite:///{DEFAULT_STATE_DIR / 'call-records.sqlite3'}"
    # Salt of the caller-id hash (env ARI_AGENT__RECORDS__SALT); unset: a random one kept in salt_file.
    salt: SecretStr | None = None
    salt_file: Path = DEFAULT_STATE_DIR / "records-salt"
    write_timeout_s: float = Field(5.0, gt=0)  # a slower database write is abandoned (logged), never waited on
    # ``ari-agent run`` follows the ACD's AMI queue events and stores each transfer's human leg (answered,
    # wait) in the record, for the queue-answer SLA; off when another process (records follow-acd) does it.
    follow_acd: bool = True


class Config(Section):
    ari: AriConfig = AriConfig()
    media: MediaConfig = MediaConfig()
    agent: AgentConfig = AgentConfig()
    conversation: ConversationConfig = ConversationConfig()
    tts: TtsConfig = TtsConfig()
    models: ModelsConfig = ModelsConfig()
    # Speech recognition: "auto" (default: "both" when whisper can run here, else "pocketsphinx"),
    # "pocketsphinx" (embedded), "whisper" (local ggml model) or "both".
    stt: SttConfig = SttConfig()
    redis: RedisConfig = RedisConfig()
    pbx: PbxConfig = PbxConfig()
    metrics: MetricsConfig = MetricsConfig()
    tracing: TracingConfig = TracingConfig()
    lifecycle: LifecycleConfig = LifecycleConfig()
    log: LogConfig = LogConfig()
    redaction: RedactionConfig = RedactionConfig()
    governance: GovernanceConfig = GovernanceConfig()
    ami: AmiConfig = AmiConfig()
    handoff: HandoffConfig = HandoffConfig()
    agi: AgiRoutingConfig = AgiRoutingConfig()
    screenpop: ScreenpopConfig = ScreenpopConfig()
    supervision: SupervisionConfig = SupervisionConfig()
    throttle: ThrottleConfig = ThrottleConfig()
    storage: StorageConfig = StorageConfig()
    records: RecordsConfig = RecordsConfig()


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX):].split("__") if p]
        if not parts:
            continue
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        # Strings stay strings: pydantic coerces "5" or "true" where the key wants a number or bool,
        # and a password that looks like a number stays a password.
        node[parts[-1]] = raw
    return data


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load and validate the config; raise ConfigError naming file, key path and reason."""
    env = os.environ if env is None else env
    data: Any = {}
    index: LineIndex | None = None
    source = "<defaults>"
    if path is not None:
        source = str(path)
        data, index = load_yaml(path)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(source, "", "top level must be a mapping of sections", line=1)
    data = _apply_env(dict(data), env)
    return validate(Config, data, source, index)
