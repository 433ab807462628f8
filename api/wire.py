"""OpenFaaS JSON shapes in and out: FunctionDeployment → FunctionSpec, state → FunctionStatus.

Validation happens here, at the edge, and every error names the field and the problem.
Unknown keys are ignored (the UI still sends `network`, faas-cli may send `registryAuth`),
except those that ask for engine options a deployment must never get (privileged mode,
capabilities, devices, host mounts, host namespaces, security options: `_FORBIDDEN_KEYS`),
label and annotation keys that try to carry them (`_FORBIDDEN_WORDS`) or use our own
`com.docker-faas.` prefix: those are refused with 400 naming the field (docs/security.md).
Output follows Go's omitempty rules from the contract: `labels` and `annotations` always
present, empty `envVars`/`limits`/`requests`/`secrets`/`constraints` left out, strings
echoed exactly as deployed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from api.errors import bad_request
from controller.quantities import QuantityError, memory_bytes, nano_cpus
from events.model import DEFAULT_NAMESPACE, FunctionSpec, FunctionState, Resources, pairs

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")  # \Z: `$` lets "x\n" by
_GPU_KEYS = ("nvidia.com/gpu", "amd.com/gpu", "intel.com/gpu")
# An image reference's characters (registry host and port, path, tag, digest); the engine
# checks the grammar itself, this keeps option-like and control characters out.
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*\Z")
_HEALTH_PATH = re.compile(r"^[!-~]{1,1024}\Z")  # printable ASCII, no space: a request-line path
HEALTH_PATH_ANNOTATION = "com.openfaas.health.http.path"
RESERVED_PREFIX = "com.docker-faas."  # our container labels (controller/labels.py)

# Top-level keys of a deploy body that ask the engine for more than the gateway gives,
# compared lower-case with '_' and '-' removed (capAdd, cap_add and CAP-ADD are one key).
# Present with a value other than null, false or empty, they are refused.
_FORBIDDEN_KEYS = {
    "privileged": "privileged mode",
    "capadd": "added capabilities",
    "capabilities": "capabilities",
    "securitycontext": "a security context",
    "securityopt": "security options",
    "devices": "host devices",
    "devicerequests": "host devices",
    "devicecgrouprules": "host devices",
    "mounts": "mounts",
    "volumes": "volumes",
    "volumemounts": "volumes",
    "volumesfrom": "volumes",
    "binds": "bind mounts",
    "hostpath": "host paths",
    "hostnetwork": "the host's network namespace",
    "networkmode": "a network mode",
    "hostpid": "the host's PID namespace",
    "pid": "a PID namespace",
    "pidmode": "a PID namespace",
    "hostipc": "the host's IPC namespace",
    "ipc": "an IPC namespace",
    "ipcmode": "an IPC namespace",
    "hostuts": "the host's UTS namespace",
    "uts": "a UTS namespace",
    "utsmode": "a UTS namespace",
    "userns": "a user namespace",
    "usernsmode": "a user namespace",
    "cgroupns": "a cgroup namespace",
    "cgroupnsmode": "a cgroup namespace",
    "cgroupparent": "a cgroup",
    "sysctls": "kernel parameters",
    "runtime": "a container runtime",
    "hostconfig": "engine host options",
}
# Words that, in a label or annotation key (any case; camelCase, '.', '/', '-', '_' split
# words and two adjacent words are also read joined), mark an attempt to carry the same.
_FORBIDDEN_WORDS = frozenset({
    "privileged", "privileges", "capadd", "capability", "capabilities", "securitycontext",
    "securityopt", "seccomp", "apparmor", "device", "devices", "mount", "mounts", "volume",
    "volumes", "bind", "binds", "hostpath", "hostnetwork", "networkmode", "hostpid", "pid",
    "pidmode", "hostipc", "ipc", "ipcmode", "hostuts", "utsmode", "userns", "usernsmode",
    "cgroupns", "cgroupparent", "sysctl", "sysctls", "hostconfig",
})
_EMPTY: tuple[Any, ...] = (None, False, "", [], {})


def check_name(value: Any, field: str) -> str:
    if not isinstance(value, str) or value == "":
        raise bad_request(f"{field}: a name is required")
    if len(value) > 63 or not DNS_LABEL.match(value):
        raise bad_request(
            f"{field}: {value!r} is not a valid name: use at most 63 lower-case letters, "
            "digits and '-', starting and ending with a letter or digit"
        )
    return value


def namespace_of(body_value: Any, query_value: str | None) -> str:
    """Namespace from the body, else the query, else the default (body wins)."""
    value = body_value if body_value not in (None, "") else query_value
    if value in (None, ""):
        return DEFAULT_NAMESPACE
    return check_name(value, "namespace")


def string_map(body: Mapping[str, Any], field: str) -> dict[str, str]:
    value = body.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"{field}: expected an object of strings")
    for key, item in value.items():
        if not isinstance(item, str):
            raise bad_request(f"{field}.{key}: expected a string, got {type(item).__name__}")
    return value


def _string_list(body: Mapping[str, Any], field: str) -> tuple[str, ...]:
    value = body.get(field)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(f"{field}: expected a list of strings")
    return tuple(value)


def _resources(body: Mapping[str, Any], field: str) -> Resources | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request(f"{field}: expected an object like {{\"memory\": \"128Mi\"}}")
    memory, cpu = value.get("memory") or "", value.get("cpu") or ""
    for key, item, parse in (("memory", memory, memory_bytes), ("cpu", cpu, nano_cpus)):
        if not isinstance(item, str):
            raise bad_request(f"{field}.{key}: expected a string such as 128Mi or 100m")
        if item:
            try:
                parse(item)
            except QuantityError as err:
                raise bad_request(f"{field}.{key}: {err}") from None
    if not memory and not cpu:
        return None
    return Resources(memory=memory, cpu=cpu)


def _normal(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def _refuse_engine_options(body: Mapping[str, Any]) -> None:
    """400 for a top-level key asking for an engine option, and for `network: host`."""
    for key, value in body.items():
        what = _FORBIDDEN_KEYS.get(_normal(key)) if isinstance(key, str) else None
        if what is not None and not any(value is e or value == e for e in _EMPTY):
            raise bad_request(
                f"{key}: a deployment cannot ask for {what}; function containers run "
                "unprivileged, with no capabilities, devices, host mounts or host "
                "namespaces (docs/security.md)")
    network = body.get("network")
    if isinstance(network, str) and (network.strip().lower() == "host"
                                     or network.strip().lower().startswith("container:")):
        raise bad_request(f"network: {network!r} would share another network namespace; "
                          "functions run on their namespace's own network")


def _words(key: str) -> set[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", key)
    words = [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]
    return set(words) | {a + b for a, b in zip(words, words[1:], strict=False)}


def _check_metadata_keys(values: Mapping[str, str], field: str) -> None:
    """Label and annotation keys: not our reserved prefix, no engine option by name."""
    for key in values:
        if key.lower().startswith(RESERVED_PREFIX):
            raise bad_request(f"{field}.{key}: the {RESERVED_PREFIX} prefix is reserved for "
                              "the gateway's own container labels")
        found = sorted(_words(key) & _FORBIDDEN_WORDS)
        if found:
            raise bad_request(f"{field}.{key}: {found[0]!r} names an engine option a "
                              "deployment cannot ask for (docs/security.md)")


def deployment(body: Any, query_namespace: str | None) -> FunctionSpec:
    """Parse a FunctionDeployment body; raise 400 naming the field for anything invalid."""
    if not isinstance(body, dict):
        raise bad_request("request body: expected a JSON object (a FunctionDeployment)")
    name = check_name(body.get("service"), "service")
    _refuse_engine_options(body)
    image = body.get("image")
    if not isinstance(image, str) or not image.strip():
        raise bad_request("image: an image reference is required")
    if any(c.isspace() for c in image):
        raise bad_request(f"image: {image!r} must not contain white space")
    if len(image) > 1024 or not _IMAGE.match(image):
        raise bad_request(f"image: {image!r} is not an image reference (such as "
                          "ghcr.io/owner/name:tag or name@sha256:...)")
    env_process = body.get("envProcess") or ""
    if not isinstance(env_process, str):
        raise bad_request("envProcess: expected a string")
    if "\x00" in env_process:
        raise bad_request("envProcess: must not contain a NUL character")
    read_only = body.get("readOnlyRootFilesystem") or False
    if not isinstance(read_only, bool):
        raise bad_request("readOnlyRootFilesystem: expected true or false")
    env_vars = string_map(body, "envVars")
    for key, value in env_vars.items():
        if not key or "=" in key or "\x00" in key:
            raise bad_request(f"envVars: {key!r} is not a valid variable name")
        if "\x00" in value:
            raise bad_request(f"envVars.{key}: must not contain a NUL character")
    secrets = _string_list(body, "secrets")
    for secret in secrets:
        check_name(secret, "secrets")
    labels, annotations = string_map(body, "labels"), string_map(body, "annotations")
    _check_metadata_keys(labels, "labels")
    _check_metadata_keys(annotations, "annotations")
    health = annotations.get(HEALTH_PATH_ANNOTATION)
    if health is not None and not _HEALTH_PATH.match(health):
        raise bad_request(f"annotations.{HEALTH_PATH_ANNOTATION}: {health!r} is not a URL "
                          "path (printable, no spaces)")
    return FunctionSpec(
        name=name,
        namespace=namespace_of(body.get("namespace"), query_namespace),
        image=image,
        env_process=env_process,
        env_vars=pairs(env_vars),
        labels=pairs(labels),
        annotations=pairs(annotations),
        secrets=secrets,
        constraints=_string_list(body, "constraints"),
        limits=_resources(body, "limits"),
        requests=_resources(body, "requests"),
        read_only_root_filesystem=read_only,
    )


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment.microsecond == 0 else (
        moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    )


def _resources_out(resources: Resources | None) -> dict[str, str] | None:
    if resources is None:
        return None
    out = {}
    if resources.memory:
        out["memory"] = resources.memory
    if resources.cpu:
        out["cpu"] = resources.cpu
    return out or None


def status(
    state: FunctionState, available: int, invocations: float | None = None
) -> dict[str, Any]:
    """A FunctionStatus object for the list (with invocationCount) or the single read."""
    spec = state.spec
    out: dict[str, Any] = {"name": spec.name, "image": spec.image, "namespace": spec.namespace}
    if spec.env_process:
        out["envProcess"] = spec.env_process
    if spec.env_vars:
        out["envVars"] = dict(spec.env_vars)
    if spec.constraints:
        out["constraints"] = list(spec.constraints)
    if spec.secrets:
        out["secrets"] = list(spec.secrets)
    out["labels"] = {**dict(spec.labels), "faas_function": spec.name}
    out["annotations"] = dict(spec.annotations)
    for field, resources in (("limits", spec.limits), ("requests", spec.requests)):
        rendered = _resources_out(resources)
        if rendered:
            out[field] = rendered
    if spec.read_only_root_filesystem:
        out["readOnlyRootFilesystem"] = True
    if invocations is not None:
        out["invocationCount"] = invocations
    out["replicas"] = state.replicas
    out["availableReplicas"] = available
    out["createdAt"] = _rfc3339(state.created_at)
    return out


__all__ = ["check_name", "deployment", "namespace_of", "status", "_GPU_KEYS"]
