"""Configuration from environment variables, checked once at start-up.

Each bad value stops the start with a message that names the variable and says what it
accepts. The names follow the original Docker FaaS and the OpenFaaS gateway where they exist.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from controller.quantities import QuantityError, memory_bytes, nano_cpus
from controller.render import DEFAULT_MEMORY_LIMIT, DEFAULT_PIDS_LIMIT, capability

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|s|m|h)?)+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")  # \Z: `$` lets "x\n" by


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the variable."""


def parse_duration(text: str) -> float:
    """Go-style durations (`60s`, `1m30s`, `500ms`) or plain seconds (`60`)."""
    text = text.strip()
    if not text or not _DURATION.match(text):
        raise ValueError(f"{text!r} is not a duration (examples: 60, 60s, 1m30s, 500ms)")
    return sum(float(n) * _UNIT[u] for n, u in _DURATION_PART.findall(text))


@attrs.frozen
class Settings:
    gateway_port: int = 8080
    metrics_port: int = 8082
    bind: str = "0.0.0.0"
    functions_network: str = "docker-faas-net"
    auth_enabled: bool = True
    auth_user: str = "admin"
    auth_password: str = ""  # filled from AUTH_PASSWORD or the generated password file
    auth_password_file: str = ""  # where a generated password is kept
    auth_users: tuple[tuple[str, str], ...] = ()  # more (user, password) from AUTH_USERS_FILE
    state_db_path: str = "state/docker-faas.db"
    log_level: str = "INFO"
    read_timeout: float = 60.0
    write_timeout: float = 60.0
    exec_timeout: float = 60.0  # upstream timeout of an invocation
    ready_timeout: float = 30.0  # how long an invocation waits for a healthy replica
    default_replicas: int = 1
    max_replicas: int = 20
    instance: str = "default"
    health_interval: float = 0.5
    resync_interval: float = 5.0
    docker_host: str | None = None
    log_lines_per_function: int = 10_000  # /system/logs keeps the newest N per function
    async_workers: int = 8  # tasks running queued async requests
    async_concurrency: int = 4  # async invocations of one function at a time
    async_max_attempts: int = 10  # per request, and again per callback
    async_body_limit: int = 16 * 2**20  # bytes
    async_lease: float = 10.0  # a crashed gateway's running requests wait this long
    secrets_dir: str = ""  # host directory for secret files; default /run/docker-faas/<instance>
    autoscale_enabled: bool = True  # the built-in autoscaler (com.openfaas.scale.* labels)
    autoscale_interval: float = 1.0  # how often it samples the load and decides
    # the function containers' boundary and the gateway's request limits (docs/security.md)
    function_cap_add: tuple[str, ...] = ()  # capabilities given back (ALLOWED_CAPABILITIES)
    function_pids_limit: int = DEFAULT_PIDS_LIMIT
    function_memory_limit: str = DEFAULT_MEMORY_LIMIT  # for specs that ask no memory limit
    function_cpu_limit: str = ""  # for specs that ask no CPU limit; empty: none
    system_body_limit: int = 8 * 2**20  # bytes of a /system/ request body
    max_request_body: int = 256 * 2**20  # bytes of a /function/ request body
    native_relay: bool = True  # api._relay's C parsers for whole small messages, if built
    auth_max_failures: int = 10  # failed logins from one address within the window → 429
    auth_failure_window: float = 60.0

    @property
    def state_dir(self) -> Path:
        return Path(self.state_db_path).resolve().parent


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r}: expected a number from {low} to {high}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r}: expected true or false")


def _duration(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = parse_duration(raw)
    except ValueError as err:
        raise ConfigError(f"{name}: {err}") from None
    if value <= 0:
        raise ConfigError(f"{name}={raw!r}: must be more than zero")
    return value


def _capabilities(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = env.get(name) or ""
    try:
        return tuple(sorted({capability(c) for c in re.split(r"[\s,]+", raw) if c}))
    except ValueError as err:
        raise ConfigError(f"{name}: {err}") from None


def _quantity(env: Mapping[str, str], name: str, default: str,
              parse: Callable[[str], int]) -> str:
    raw = (env.get(name) or default).strip()
    if raw:
        try:
            parse(raw)
        except QuantityError as err:
            raise ConfigError(f"{name}: {err}") from None
    return raw


def _name(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name) or default
    if not _NAME.match(raw) or len(raw) > 40:
        raise ConfigError(f"{name}={raw!r}: use lower-case letters, digits and '-' (at most 40)")
    return raw


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Read every variable; raise ConfigError naming the first bad one."""
    env = os.environ if env is None else env
    level = (env.get("LOG_LEVEL") or "info").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"LOG_LEVEL={env['LOG_LEVEL']!r}: expected debug, info, warning or error")
    max_replicas = _int(env, "MAX_REPLICAS", 20, 1, 1000)
    settings = Settings(
        gateway_port=_int(env, "GATEWAY_PORT", 8080, 1, 65535),
        metrics_port=_int(env, "METRICS_PORT", 8082, 1, 65535),
        bind=env.get("BIND_ADDRESS") or "0.0.0.0",
        functions_network=_name(env, "FUNCTIONS_NETWORK", "docker-faas-net"),
        auth_enabled=_bool(env, "AUTH_ENABLED", True),
        auth_user=env.get("AUTH_USER") or "admin",
        auth_password=env.get("AUTH_PASSWORD") or "",
        state_db_path=env.get("STATE_DB_PATH") or "state/docker-faas.db",
        log_level=level,
        read_timeout=_duration(env, "READ_TIMEOUT", 60.0),
        write_timeout=_duration(env, "WRITE_TIMEOUT", 60.0),
        exec_timeout=_duration(env, "EXEC_TIMEOUT", 60.0),
        ready_timeout=_duration(env, "READY_TIMEOUT", 30.0),
        default_replicas=_int(env, "DEFAULT_REPLICAS", 1, 0, max_replicas),
        max_replicas=max_replicas,
        instance=_name(env, "DOCKER_FAAS_INSTANCE", "default"),
        health_interval=_duration(env, "HEALTH_INTERVAL", 0.5),
        resync_interval=_duration(env, "RESYNC_INTERVAL", 5.0),
        docker_host=env.get("DOCKER_HOST") or None,
        log_lines_per_function=_int(env, "LOG_LINES_PER_FUNCTION", 10_000, 1, 10**9),
        async_workers=_int(env, "ASYNC_WORKERS", 8, 1, 1024),
        async_concurrency=_int(env, "ASYNC_CONCURRENCY", 4, 1, 1024),
        async_max_attempts=_int(env, "ASYNC_MAX_ATTEMPTS", 10, 1, 1000),
        async_body_limit=_int(env, "ASYNC_BODY_LIMIT", 16 * 2**20, 1, 2**31),
        async_lease=_duration(env, "ASYNC_LEASE", 10.0),
        autoscale_enabled=_bool(env, "AUTOSCALE_ENABLED", True),
        autoscale_interval=_duration(env, "AUTOSCALE_INTERVAL", 1.0),
        function_cap_add=_capabilities(env, "FUNCTION_CAP_ADD"),
        function_pids_limit=_int(env, "FUNCTION_PIDS_LIMIT", DEFAULT_PIDS_LIMIT, 16, 2**22),
        function_memory_limit=_quantity(env, "FUNCTION_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT,
                                        memory_bytes),
        function_cpu_limit=_quantity(env, "FUNCTION_CPU_LIMIT", "", nano_cpus),
        system_body_limit=_int(env, "SYSTEM_BODY_LIMIT", 8 * 2**20, 1024, 2**31),
        max_request_body=_int(env, "MAX_REQUEST_BODY", 256 * 2**20, 1024, 2**40),
        native_relay=_bool(env, "NATIVE_RELAY", True),
        auth_max_failures=_int(env, "AUTH_MAX_FAILURES", 10, 1, 10**6),
        auth_failure_window=_duration(env, "AUTH_FAILURE_WINDOW", 60.0),
    )
    if password_file := env.get("AUTH_PASSWORD_FILE"):
        if env.get("AUTH_PASSWORD"):
            raise ConfigError("AUTH_PASSWORD_FILE: set it or AUTH_PASSWORD, not both")
        settings = attrs.evolve(settings, auth_password=read_password(password_file))
    if users_file := env.get("AUTH_USERS_FILE"):
        settings = attrs.evolve(settings, auth_users=read_users(users_file, settings.auth_user))
    secrets_dir = env.get("SECRETS_DIR") or f"/run/docker-faas/{settings.instance}/secrets"
    if not secrets_dir.startswith("/"):
        raise ConfigError(f"SECRETS_DIR={secrets_dir!r}: expected an absolute path")
    settings = attrs.evolve(settings, secrets_dir=secrets_dir)
    if settings.gateway_port == settings.metrics_port:
        raise ConfigError("METRICS_PORT: must differ from GATEWAY_PORT")
    return settings


def read_password(path: str) -> str:
    """The admin's password from a file (a compose or Docker secret): its text less the
    surrounding white space, as OpenFaaS reads its basic-auth secrets."""
    try:
        password = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"AUTH_PASSWORD_FILE={path!r}: cannot read it: {err}") from None
    if not password:
        raise ConfigError(f"AUTH_PASSWORD_FILE={path!r}: the file is empty")
    return password


def read_users(path: str, admin: str) -> tuple[tuple[str, str], ...]:
    """`user:password` lines (blank lines and `#` comments skipped); ConfigError naming the
    file and line for anything else. The admin's password comes from AUTH_PASSWORD(_FILE)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"AUTH_USERS_FILE={path!r}: cannot read it: {err}") from None
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        user, sep, password = line.strip().partition(":")
        where = f"AUTH_USERS_FILE {path}, line {number}"
        if not sep or not user or not password:
            raise ConfigError(f"{where}: expected user:password")
        if user == admin or user in users:
            raise ConfigError(f"{where}: user {user!r} is given twice (the admin is AUTH_USER)")
        users[user] = password
    return tuple(users.items())


def with_password(settings: Settings) -> Settings:
    """Fill in the password: AUTH_PASSWORD or AUTH_PASSWORD_FILE, else the kept file, else a
    new one (mode 0600)."""
    path = settings.state_dir / "basic-auth-password"
    if settings.auth_password:
        return attrs.evolve(settings, auth_password_file="")
    if path.exists():
        password = path.read_text().strip()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(18)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
    return attrs.evolve(settings, auth_password=password, auth_password_file=str(path))
