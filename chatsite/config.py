"""Every setting the server reads from the environment, typed, in one place.

Defaults run the server embedded (SQLite, in-memory channel layer, local
memory cache) with nothing configured.  ``README.md`` documents each variable;
``tests/unit/test_config.py`` checks that the table there and this module agree.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from django.http.request import validate_host

from monitoring.conf import MIN_OPS_TOKEN_LENGTH, Levels, MonitoringConfig

BASE_DIR = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """An environment variable holds a value the server cannot use."""


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}.") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}.")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1/0, true/false, yes/no or on/off, got {raw!r}.")


def _list(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    return tuple(item.strip() for item in raw.split(",") if item.strip())


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_parts(origin: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an ``Origin`` (``scheme://host[:port]``, nothing else); ``None`` if not one."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username is not None:
        return None
    if parts.path or parts.query or parts.fragment:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return parts.scheme, host, port if port is not None else _DEFAULT_PORTS[parts.scheme]


@dataclass(frozen=True)
class Config:
    #: Off unless asked for: debug pages show settings and stack traces to anyone.
    debug: bool = False
    secret_key: str = "embedded-development-key-change-me-in-production-0123456789"
    allowed_hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "[::1]")
    database_url: str = f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    redis_url: str = ""
    #: Engine.IO heartbeat: the server pings every interval and closes a
    #: client that has not answered within the timeout.
    ping_interval_ms: int = 25_000
    ping_timeout_ms: int = 20_000
    #: Largest Engine.IO payload accepted, per polling request or WebSocket
    #: frame; the spec's default.
    max_payload: int = 1_000_000
    #: Most Engine.IO packets one polling POST may carry (each event becomes a task).
    max_packets_per_post: int = 500
    #: Engine.IO connections one client address may hold on a worker before
    #: any of them authenticated (joined a namespace); more are refused
    #: (429 ``too_many_sessions``).  Unauthenticated ones end after
    #: ``connect_timeout_ms`` anyway.
    pending_sessions_per_address: int = 50
    #: Events one socket may have waiting to be handled; one more is answered
    #: ``too_many_pending_events`` at once (a client waits for its acks).
    max_pending_events: int = 500
    #: What a client may leave unread (messages, bytes) before it is disconnected
    #: (close code 1008, a ``slow_client_disconnected`` security event), so that
    #: no client can slow the broadcasts of others.
    max_buffered_packets: int = 1_000
    max_buffered_bytes: int = 4_000_000
    #: A Socket.IO connection that has joined no namespace this long after its
    #: Engine.IO handshake is closed (Node's ``connectTimeout``).
    connect_timeout_ms: int = 45_000
    #: Origins allowed to open sockets and make polling requests; ``*`` allows
    #: any.  Empty means the site's own hosts (``allowed_hosts``).
    allowed_origins: tuple[str, ...] = ()
    #: Replace the chat application with the behaviour protocol test suites expect.
    conformance: bool = False
    #: Longest message content accepted, in characters (the seed's default).
    message_max_length: int = 10_000
    #: Largest request body the REST API and the Parlant-compatible API read,
    #: in bytes; checked before anything is parsed (413 ``payload_too_large``).
    #: A longest message JSON-escaped at 12 bytes a character, plus metadata, fits.
    api_body_max_bytes: int = 256 * 1024
    #: Markdown images (``![alt](https://...)``) in rendered HTML.  Off by
    #: default: an image loads from its host as soon as a message is shown,
    #: which tells that host who read it and when.
    markdown_images: bool = False
    #: A presence row whose worker has not refreshed it for this long is
    #: considered gone (a crashed worker); workers refresh every third of it.
    presence_ttl_s: int = 30
    #: A typing indicator not renewed within this time ends by itself.
    typing_timeout_s: int = 5
    #: A joined socket re-reads its access (membership, role, sharing, ban)
    #: before an event when it last did longer ago than this; an access change
    #: reaches it at once anyway, so this bounds only a lost notice (0: every event).
    access_recheck_s: int = 30
    #: When set, tokens we did not issue are POSTed here as {"token": ...}; a
    #: 2xx answer in Better Auth's shape ({user: {id, name}, session:
    #: {activeOrganizationId}}) maps to a local user and membership.
    external_auth_url: str = ""
    #: How long an external verifier's answer is trusted without asking again.
    external_auth_cache_s: int = 60
    #: How long the verifier's "no" is remembered, so a replayed bad token costs no question.
    external_auth_reject_cache_s: int = 30
    #: Questions to the verifier in flight per worker; a CONNECT beyond it is refused (``auth_busy``).
    external_auth_concurrency: int = 20
    #: Failed CONNECTs (authentication refused) per client address per minute; past it, the
    #: address is refused before authenticating (``too_many_failed_connects``).
    connect_failure_limit: int = 30
    #: Lifetime of a one-time socket token (``POST /api/v1/auth/socket-token``).
    socket_token_lifetime_s: int = 60
    #: Per-user, per-operation rate limits (per minute), shared by all workers
    #: through Redis when it is configured.  Sending: the seed's limit.
    message_rate_limit: int = 30
    #: Joining runs access checks and presence writes; 20 allows reconnect storms of a few tabs.
    join_rate_limit: int = 20
    #: Clients renew the indicator every few seconds while typing (``typing_timeout_s`` is 5).
    typing_rate_limit: int = 60
    #: Status changes (active/idle/away) are rare.
    presence_rate_limit: int = 30
    #: History pages are database reads of up to 200 rows.
    history_rate_limit: int = 60
    #: Adaptive thresholds: this many strikes (exceeded limits, blocked
    #: content) within the window raise a user's penalty level by one; each
    #: level halves their limits; each quiet period without a strike lowers it.
    penalty_strikes: int = 3
    penalty_strike_window_s: int = 60
    penalty_quiet_s: int = 300
    penalty_max_level: int = 3
    #: Simultaneous connections per user across all workers (the seed's);
    #: a dead worker's entries expire after the TTL.
    connection_limit: int = 5
    connection_ttl_s: int = 30
    #: Spam heuristics: longest run of one character, most links, and how
    #: many identical messages a user may send within the window.
    spam_max_char_run: int = 50
    spam_max_links: int = 10
    spam_max_repeats: int = 3
    spam_repeat_window_s: int = 60
    #: Security events held in memory while the database is unreachable.
    security_event_buffer: int = 10_000
    #: REST API rate per user (django-ratelimit syntax); empty disables it.
    api_rate_limit: str = "120/m"
    #: Log-in attempts (``/login/``, ``/admin/login/``) per client address and,
    #: separately, per user name (django-ratelimit syntax); empty disables it.
    login_rate_limit: str = "10/m"
    #: An agent run that has not finished within this is stopped.
    agent_timeout_s: int = 60
    #: A worker's claim on an agent run lasts this long, renewed every third
    #: of it; a run whose worker died is failed (``worker_lost``) once it
    #: lapses, and the session's queue goes on.
    agent_lease_s: int = 30
    #: Agent runs executing at once on a worker for one user's messages, and
    #: for one workspace; a run beyond either fails with ``agent_run_limit``.
    agent_runs_per_user: int = 4
    agent_runs_per_workspace: int = 16
    #: Agent runs one worker carries out at once; more wait for a slot.
    agent_max_concurrent_runs: int = 64
    #: How often a streaming reply's chunks so far are saved (``AgentRun.stream``), so every worker can show it.
    agent_stream_save_ms: int = 250
    #: Hosts agent backends may call (``base_url``/``url`` of an agent's
    #: config), exact names or IP literals; ``*`` allows any host.  Keys
    #: from the environment go only to hosts listed by name, never to ``*``.
    agent_allowed_hosts: tuple[str, ...] = ("api.openai.com",)
    #: Let agents call loopback, private, link-local and other non-public
    #: addresses (a Parlant server next to the chat).  Cloud metadata
    #: addresses, multicast and unspecified addresses are refused regardless.
    agent_allow_private_networks: bool = False
    #: The Parlant-compatible API (``chat.parlant``): the longest a request
    #: waits for events (a client's ``wait_for_data`` is capped here), and how
    #: long a one-time socket token used in a Parlant URL keeps working for
    #: that URL once it goes unused.
    parlant_max_wait_s: int = 60
    parlant_token_idle_s: int = 3600
    #: ... and stops working this long after it was first used, however busy.
    parlant_token_max_age_s: int = 86400
    #: Requests (long-polls and SSE streams among them) one user may have open on one worker at once.
    parlant_max_open_requests: int = 10
    #: Attachments (``chat.services.attachments``): where uploads are stored
    #: by default (a local directory), or a Django storage class (any
    #: ``django-storages`` backend, configured through its own settings) instead.
    attachments_dir: str = str(BASE_DIR / "media" / "attachments")
    attachments_storage: str = ""
    #: Default largest upload of a workspace (its ``attachment_max_bytes`` when
    #: unset), and the ceiling no workspace may pass: bodies above the ceiling
    #: are refused while they arrive (413 ``attachment_too_large``).
    attachment_max_bytes: int = 10 * 1024 * 1024
    attachment_max_bytes_ceiling: int = 50 * 1024 * 1024
    #: Content types a workspace accepts when its own list is empty (sniffed
    #: from the bytes).  HTML, SVG and other scriptable types are never served.
    attachment_types: tuple[str, ...] = (
        "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain",
    )
    #: Uploads not yet referenced by a message that one user may hold (``attachments_pending_limit``).
    attachments_pending_max: int = 20
    #: Uploads per user per minute (``rate_limited``).
    upload_rate_limit: int = 20
    #: Most attachments one message may reference (``too_many_attachments``).
    attachments_per_message: int = 10
    #: Lifetime of a signed download URL: short, so a leaked link soon stops working.
    attachment_url_ttl_s: int = 300
    #: Unreferenced uploads are removed this long after the upload (a deleted
    #: message's attachments, once its workspace's edit window has passed).
    attachment_unreferenced_ttl_s: int = 24 * 3600
    #: Worker identity used in session ids so that any worker can tell which
    #: one owns a session; defaults to host, process id and a random part, so
    #: that it differs for every start: a worker keeps the presence rows
    #: tagged with its id alive, and a container restarted in place gets the
    #: same host name and pid again.
    worker_id: str = field(default_factory=lambda: f"{os.uname().nodename}-{os.getpid()}-{secrets.token_hex(3)}")
    #: Metrics, health and dashboard settings (``monitoring.conf``, ``docs/monitoring.md``).
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)

    @property
    def uses_redis(self) -> bool:
        return bool(self.redis_url)

    def origin_allowed(self, origin: str, request_origin: str | None = None) -> bool:
        """Exact match of scheme://host[:port]; never a substring match.

        Without ``allowed_origins``: the site's own pages only -- the scheme
        and port the request came in on (``request_origin``, its
        ``scheme://host[:port]``) and one of ``allowed_hosts``.  Without the
        request's origin nothing but an allowed origin is.
        """
        if "*" in self.allowed_origins:
            return True
        if self.allowed_origins:
            return origin in self.allowed_origins
        page, request = _origin_parts(origin), _origin_parts(request_origin or "")
        if page is None or request is None or page[0::2] != request[0::2]:
            return False
        return validate_host(page[1], list(self.allowed_hosts))


def load(env: Mapping[str, str] = os.environ) -> Config:
    conformance = _bool(env, "CHAT_CONFORMANCE", False)
    defaults = Config()
    if conformance:
        # What protocol test suites expect: fast heartbeats and connect timeout, CORS for anyone.
        defaults = Config(
            ping_interval_ms=300, ping_timeout_ms=200, connect_timeout_ms=1000, allowed_origins=("*",), conformance=True
        )
    return Config(
        debug=_bool(env, "DJANGO_DEBUG", defaults.debug),
        secret_key=env.get("DJANGO_SECRET_KEY") or defaults.secret_key,
        allowed_hosts=_list(env, "DJANGO_ALLOWED_HOSTS", defaults.allowed_hosts),
        database_url=env.get("DATABASE_URL") or defaults.database_url,
        redis_url=env.get("REDIS_URL", ""),
        ping_interval_ms=_int(env, "CHAT_PING_INTERVAL_MS", defaults.ping_interval_ms, minimum=1),
        ping_timeout_ms=_int(env, "CHAT_PING_TIMEOUT_MS", defaults.ping_timeout_ms, minimum=1),
        max_payload=_int(env, "CHAT_MAX_PAYLOAD", defaults.max_payload, minimum=64),
        max_packets_per_post=_int(env, "CHAT_MAX_PACKETS_PER_POST", defaults.max_packets_per_post, minimum=16),
        max_pending_events=_int(env, "CHAT_MAX_PENDING_EVENTS", defaults.max_pending_events, minimum=1),
        pending_sessions_per_address=_int(
            env, "CHAT_PENDING_SESSIONS_PER_ADDRESS", defaults.pending_sessions_per_address, minimum=1
        ),
        max_buffered_packets=_int(env, "CHAT_MAX_BUFFERED_PACKETS", defaults.max_buffered_packets, minimum=16),
        max_buffered_bytes=_int(env, "CHAT_MAX_BUFFERED_BYTES", defaults.max_buffered_bytes, minimum=65_536),
        connect_timeout_ms=_int(env, "CHAT_CONNECT_TIMEOUT_MS", defaults.connect_timeout_ms, minimum=1),
        allowed_origins=_list(env, "CHAT_ALLOWED_ORIGINS", defaults.allowed_origins),
        conformance=conformance,
        message_max_length=_int(env, "CHAT_MESSAGE_MAX_LENGTH", defaults.message_max_length, minimum=1),
        api_body_max_bytes=_int(env, "CHAT_API_BODY_MAX_BYTES", defaults.api_body_max_bytes, minimum=1024),
        markdown_images=_bool(env, "CHAT_MARKDOWN_IMAGES", defaults.markdown_images),
        presence_ttl_s=_int(env, "CHAT_PRESENCE_TTL_S", defaults.presence_ttl_s, minimum=1),
        typing_timeout_s=_int(env, "CHAT_TYPING_TIMEOUT_S", defaults.typing_timeout_s, minimum=1),
        access_recheck_s=_int(env, "CHAT_ACCESS_RECHECK_S", defaults.access_recheck_s),
        external_auth_url=env.get("CHAT_EXTERNAL_AUTH_URL", ""),
        external_auth_cache_s=_int(env, "CHAT_EXTERNAL_AUTH_CACHE_S", defaults.external_auth_cache_s),
        external_auth_reject_cache_s=_int(
            env, "CHAT_EXTERNAL_AUTH_REJECT_CACHE_S", defaults.external_auth_reject_cache_s
        ),
        external_auth_concurrency=_int(
            env, "CHAT_EXTERNAL_AUTH_CONCURRENCY", defaults.external_auth_concurrency, minimum=1
        ),
        connect_failure_limit=_int(env, "CHAT_CONNECT_FAILURE_LIMIT", defaults.connect_failure_limit, minimum=1),
        socket_token_lifetime_s=_int(env, "CHAT_SOCKET_TOKEN_LIFETIME_S", defaults.socket_token_lifetime_s, minimum=1),
        message_rate_limit=_int(env, "CHAT_MESSAGE_RATE_LIMIT", defaults.message_rate_limit, minimum=1),
        join_rate_limit=_int(env, "CHAT_JOIN_RATE_LIMIT", defaults.join_rate_limit, minimum=1),
        typing_rate_limit=_int(env, "CHAT_TYPING_RATE_LIMIT", defaults.typing_rate_limit, minimum=1),
        presence_rate_limit=_int(env, "CHAT_PRESENCE_RATE_LIMIT", defaults.presence_rate_limit, minimum=1),
        history_rate_limit=_int(env, "CHAT_HISTORY_RATE_LIMIT", defaults.history_rate_limit, minimum=1),
        penalty_strikes=_int(env, "CHAT_PENALTY_STRIKES", defaults.penalty_strikes, minimum=1),
        penalty_strike_window_s=_int(env, "CHAT_PENALTY_STRIKE_WINDOW_S", defaults.penalty_strike_window_s, minimum=1),
        penalty_quiet_s=_int(env, "CHAT_PENALTY_QUIET_S", defaults.penalty_quiet_s, minimum=1),
        penalty_max_level=_int(env, "CHAT_PENALTY_MAX_LEVEL", defaults.penalty_max_level, minimum=1),
        connection_limit=_int(env, "CHAT_CONNECTION_LIMIT", defaults.connection_limit, minimum=1),
        connection_ttl_s=_int(env, "CHAT_CONNECTION_TTL_S", defaults.connection_ttl_s, minimum=1),
        spam_max_char_run=_int(env, "CHAT_SPAM_MAX_CHAR_RUN", defaults.spam_max_char_run, minimum=1),
        spam_max_links=_int(env, "CHAT_SPAM_MAX_LINKS", defaults.spam_max_links, minimum=1),
        spam_max_repeats=_int(env, "CHAT_SPAM_MAX_REPEATS", defaults.spam_max_repeats, minimum=1),
        spam_repeat_window_s=_int(env, "CHAT_SPAM_REPEAT_WINDOW_S", defaults.spam_repeat_window_s, minimum=1),
        security_event_buffer=_int(env, "CHAT_SECURITY_EVENT_BUFFER", defaults.security_event_buffer, minimum=1),
        agent_timeout_s=_int(env, "CHAT_AGENT_TIMEOUT_S", defaults.agent_timeout_s, minimum=1),
        agent_lease_s=_int(env, "CHAT_AGENT_LEASE_S", defaults.agent_lease_s, minimum=1),
        agent_runs_per_user=_int(env, "CHAT_AGENT_RUNS_PER_USER", defaults.agent_runs_per_user, minimum=1),
        agent_runs_per_workspace=_int(
            env, "CHAT_AGENT_RUNS_PER_WORKSPACE", defaults.agent_runs_per_workspace, minimum=1
        ),
        agent_max_concurrent_runs=_int(
            env, "CHAT_AGENT_MAX_CONCURRENT_RUNS", defaults.agent_max_concurrent_runs, minimum=1
        ),
        agent_stream_save_ms=_int(env, "CHAT_AGENT_STREAM_SAVE_MS", defaults.agent_stream_save_ms, minimum=10),
        agent_allowed_hosts=tuple(
            host.lower() for host in _list(env, "CHAT_AGENT_ALLOWED_HOSTS", defaults.agent_allowed_hosts)
        ),
        agent_allow_private_networks=_bool(
            env, "CHAT_AGENT_ALLOW_PRIVATE_NETWORKS", defaults.agent_allow_private_networks
        ),
        parlant_max_wait_s=_int(env, "CHAT_PARLANT_MAX_WAIT_S", defaults.parlant_max_wait_s, minimum=1),
        parlant_token_idle_s=_int(env, "CHAT_PARLANT_TOKEN_IDLE_S", defaults.parlant_token_idle_s, minimum=1),
        parlant_token_max_age_s=_int(env, "CHAT_PARLANT_TOKEN_MAX_AGE_S", defaults.parlant_token_max_age_s, minimum=1),
        parlant_max_open_requests=_int(
            env, "CHAT_PARLANT_MAX_OPEN_REQUESTS", defaults.parlant_max_open_requests, minimum=1
        ),
        attachments_dir=env.get("CHAT_ATTACHMENTS_DIR") or defaults.attachments_dir,
        attachments_storage=env.get("CHAT_ATTACHMENTS_STORAGE", defaults.attachments_storage),
        attachment_max_bytes=_int(env, "CHAT_ATTACHMENT_MAX_BYTES", defaults.attachment_max_bytes, minimum=1),
        attachment_max_bytes_ceiling=_int(
            env, "CHAT_ATTACHMENT_MAX_BYTES_CEILING", defaults.attachment_max_bytes_ceiling, minimum=1
        ),
        attachment_types=_list(env, "CHAT_ATTACHMENT_TYPES", defaults.attachment_types),
        attachments_pending_max=_int(env, "CHAT_ATTACHMENTS_PENDING_MAX", defaults.attachments_pending_max, minimum=1),
        upload_rate_limit=_int(env, "CHAT_UPLOAD_RATE_LIMIT", defaults.upload_rate_limit, minimum=1),
        attachments_per_message=_int(
            env, "CHAT_ATTACHMENTS_PER_MESSAGE", defaults.attachments_per_message, minimum=1
        ),
        attachment_url_ttl_s=_int(env, "CHAT_ATTACHMENT_URL_TTL_S", defaults.attachment_url_ttl_s, minimum=1),
        attachment_unreferenced_ttl_s=_int(
            env, "CHAT_ATTACHMENT_UNREFERENCED_TTL_S", defaults.attachment_unreferenced_ttl_s, minimum=60
        ),
        api_rate_limit=env.get("CHAT_API_RATE_LIMIT", defaults.api_rate_limit),
        login_rate_limit=env.get("CHAT_LOGIN_RATE_LIMIT", defaults.login_rate_limit),
        worker_id=env.get("CHAT_WORKER_ID") or defaults.worker_id,
        monitoring=_load_monitoring(env),
    )


def _levels(env: Mapping[str, str], name: str, default: Levels, *, minimum: float = 0) -> Levels:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    parts = [part.strip() for part in raw.split(",")]
    try:
        degraded, unhealthy = (float(part) for part in parts)
    except ValueError:
        raise ConfigError(f"{name} must be two numbers 'degraded,unhealthy', got {raw!r}.") from None
    if not minimum <= degraded <= unhealthy:
        raise ConfigError(f"{name} needs {minimum} <= degraded <= unhealthy, got {raw!r}.")
    return Levels(degraded, unhealthy)


def _load_monitoring(env: Mapping[str, str]) -> MonitoringConfig:
    """The monitoring variables (``docs/monitoring.md``)."""
    d = MonitoringConfig()
    ops_token = env.get("CHAT_OPS_TOKEN", "").strip()
    if ops_token and len(ops_token) < MIN_OPS_TOKEN_LENGTH:
        raise ConfigError(f"CHAT_OPS_TOKEN must be at least {MIN_OPS_TOKEN_LENGTH} characters.")
    window_s = _int(env, "CHAT_METRICS_WINDOW_S", d.window_s, minimum=5)
    if window_s > 3600:
        raise ConfigError("CHAT_METRICS_WINDOW_S must be at most 3600.")
    return MonitoringConfig(
        ops_token=ops_token,
        metrics_public=_bool(env, "CHAT_METRICS_PUBLIC", d.metrics_public),
        metrics_workspaces=_list(env, "CHAT_METRICS_WORKSPACES", d.metrics_workspaces),
        window_s=window_s,
        probe_interval_ms=_int(env, "CHAT_LOOP_PROBE_INTERVAL_MS", d.probe_interval_ms, minimum=10),
        history_interval_s=_int(env, "CHAT_METRICS_HISTORY_INTERVAL_S", d.history_interval_s, minimum=1),
        check_interval_s=_int(env, "CHAT_HEALTH_CHECK_INTERVAL_S", d.check_interval_s, minimum=1),
        loop_delay_ms=_levels(env, "CHAT_HEALTH_LOOP_DELAY_MS", d.loop_delay_ms),
        memory_mb=_levels(env, "CHAT_HEALTH_MEMORY_MB", d.memory_mb),
        processing_p95_ms=_levels(env, "CHAT_HEALTH_PROCESSING_MS", d.processing_p95_ms),
        layer_p95_ms=_levels(env, "CHAT_HEALTH_LAYER_MS", d.layer_p95_ms),
        error_ratio_pct=_levels(env, "CHAT_HEALTH_ERROR_PCT", d.error_ratio_pct),
        test_hooks=_bool(env, "CHAT_TEST_HOOKS", d.test_hooks),
    )
