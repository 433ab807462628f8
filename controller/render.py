"""A function spec rendered into the Docker create config of one replica, plus its hash.

The hash covers everything that reaches the engine, so two specs that would produce the same
container have the same hash: a label-only change (say `com.openfaas.scale.max`) does not
restart anything, while a new image, env var or limit replaces every replica. The hash is
stored as a container label; drift detection is then a label comparison (plan.py).

The security boundary of a replica is fixed here, not by the deploy request: every
capability dropped (an operator may add back a few from `ALLOWED_CAPABILITIES`),
`no-new-privileges`, a pids limit and a memory limit (the operator's default when the spec
asks none), never privileged, no host namespace (the function's own bridge network, private
PID and IPC namespaces) and no bind mount but the read-only secret files. Of a spec only the
image, the env vars, `envProcess`, the limits, the read-only flag, the secret names (DNS
labels) and the health-path annotation (a label value) reach the engine; labels,
annotations and constraints never do. See docs/security.md.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from controller import labels as L
from controller.quantities import engine_memory_bytes, nano_cpus
from events.model import DEFAULT_NAMESPACE, FunctionSpec

# Bump when the rendering itself changes in a way that should roll every replica.
RENDER_VERSION = 2  # 2: capabilities dropped, no-new-privileges, pids and memory limits
WATCHDOG_PORT = 8080

# What FUNCTION_CAP_ADD may give back. Our watchdog and the OpenFaaS watchdogs need none of
# them; these only let a process act on files and processes inside its own container (or
# bind a port under 1024). Anything reaching beyond the container (SYS_ADMIN, NET_ADMIN,
# NET_RAW, SYS_PTRACE, SYS_MODULE, MKNOD, DAC_READ_SEARCH, ...) is refused at start-up.
ALLOWED_CAPABILITIES = frozenset({
    "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "NET_BIND_SERVICE",
})
DEFAULT_PIDS_LIMIT = 512
DEFAULT_MEMORY_LIMIT = "512Mi"


SECRETS_TARGET = "/var/openfaas/secrets"


def capability(text: str) -> str:
    """`cap_chown` / `CHOWN` → `CHOWN`; ValueError for one outside ALLOWED_CAPABILITIES."""
    name = text.strip().upper().removeprefix("CAP_")
    if name not in ALLOWED_CAPABILITIES:
        raise ValueError(f"capability {text.strip()!r} is not allowed; allowed: "
                         f"{', '.join(sorted(ALLOWED_CAPABILITIES))}")
    return name


def _capabilities(value: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted({capability(c) for c in value}))


@attrs.frozen
class RenderSettings:
    instance: str
    network: str  # the default namespace's network; others get `<network>-<namespace>`
    secrets_dir: str = "/run/docker-faas/secrets"
    cap_add: tuple[str, ...] = attrs.field(default=(), converter=_capabilities)
    pids_limit: int = DEFAULT_PIDS_LIMIT
    memory_limit: str = DEFAULT_MEMORY_LIMIT  # when the spec asks none (a quantity)
    cpu_limit: str = ""  # when the spec asks none; empty: no CPU limit


HEALTH_PATH_ANNOTATION = "com.openfaas.health.http.path"


def health_path(spec: FunctionSpec) -> str:
    path = dict(spec.annotations).get(HEALTH_PATH_ANNOTATION) or "/_/health"
    return path if path.startswith("/") else "/" + path


def network_for(settings: RenderSettings, namespace: str) -> str:
    """Each namespace has its own bridge network, so namespaces cannot reach each other."""
    if namespace == DEFAULT_NAMESPACE:
        return settings.network
    return f"{settings.network}-{namespace}"


def secret_path(settings: RenderSettings, namespace: str, name: str, digest: str) -> Path:
    """Where the controller writes one version of a secret's value on the host."""
    return Path(settings.secrets_dir) / namespace / name / digest[:32]


def env_list(spec: FunctionSpec) -> list[str]:
    """User env vars plus `fprocess`; as in faasd, an `fprocess` key in envVars wins."""
    env = dict(spec.env_vars)
    if spec.env_process and "fprocess" not in env:
        env["fprocess"] = spec.env_process
    return [f"{key}={value}" for key, value in sorted(env.items())]


def _host_config(
    spec: FunctionSpec, settings: RenderSettings, digests: Mapping[str, str]
) -> dict[str, Any]:
    host: dict[str, Any] = {
        "NetworkMode": network_for(settings, spec.namespace),
        "RestartPolicy": {"Name": "no"},  # the controller restarts, with back-off
        "Privileged": False,
        "CapDrop": ["ALL"],
        "SecurityOpt": ["no-new-privileges:true"],
        "IpcMode": "private",
        "PidsLimit": settings.pids_limit,
    }
    if settings.cap_add:
        host["CapAdd"] = list(settings.cap_add)
    if spec.secrets:
        host["Mounts"] = [
            {
                "Type": "bind",
                "Source": str(secret_path(settings, spec.namespace, name, digests[name])),
                "Target": f"{SECRETS_TARGET}/{name}",
                "ReadOnly": True,
            }
            for name in spec.secrets
        ]
    limits, requests = spec.limits, spec.requests
    if limits is not None and limits.memory:
        host["Memory"] = engine_memory_bytes(limits.memory)
    else:  # the operator's default, raised to what the spec reserves
        host["Memory"] = engine_memory_bytes(settings.memory_limit)
        if requests is not None and requests.memory:
            host["Memory"] = max(host["Memory"], engine_memory_bytes(requests.memory))
    if limits is not None and limits.cpu:
        host["NanoCpus"] = nano_cpus(limits.cpu)
    elif settings.cpu_limit:
        host["NanoCpus"] = nano_cpus(settings.cpu_limit)
    if requests is not None and requests.memory:
        host["MemoryReservation"] = min(engine_memory_bytes(requests.memory), host["Memory"])
    if spec.read_only_root_filesystem:
        host["ReadonlyRootfs"] = True
        # The watchdog's lock file and the function's scratch space live here.
        host["Tmpfs"] = {"/tmp": "rw,nosuid,nodev,size=64m"}
    return host


def base_config(
    spec: FunctionSpec, settings: RenderSettings, digests: Mapping[str, str]
) -> dict[str, Any]:
    """The create config shared by all replicas of a spec (no per-replica labels).

    `digests` maps each secret the spec names to the digest of its current value, so a
    new secret value is a new config (and rolls the replicas).
    """
    return {
        "Image": spec.image,
        "Env": env_list(spec),
        "Labels": {
            L.INSTANCE: settings.instance,
            L.NAMESPACE: spec.namespace,
            L.FUNCTION: spec.name,
            L.FAAS_FUNCTION: spec.name,
            L.HEALTH_PATH: health_path(spec),
        },
        "ExposedPorts": {f"{WATCHDOG_PORT}/tcp": {}},
        "HostConfig": _host_config(spec, settings, digests),
    }


def spec_hash(
    spec: FunctionSpec, settings: RenderSettings, digests: Mapping[str, str] | None = None
) -> str:
    canonical = json.dumps(
        {"render": RENDER_VERSION, "config": base_config(spec, settings, digests or {})},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def container_name(instance: str, namespace: str, name: str, replica: int, hash_: str) -> str:
    """Deterministic, so the engine's unique-name rule stops a duplicate of the same replica."""
    return f"dfaas_{instance}_{namespace}_{name}_{replica}_{hash_[:8]}"


def replica_config(
    spec: FunctionSpec,
    settings: RenderSettings,
    replica: int,
    hash_: str,
    digests: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """(container name, create config) for replica number `replica` of `spec`."""
    config = base_config(spec, settings, digests or {})
    config["Labels"] = {**config["Labels"], L.REPLICA: str(replica), L.SPEC_HASH: hash_}
    name = container_name(settings.instance, spec.namespace, spec.name, replica, hash_)
    return name, config
