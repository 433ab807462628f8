"""OpenFaaS JSON shapes in and out: FunctionDeployment → FunctionSpec, state → FunctionStatus.

Validation happens here, at the edge, and every error names the field and the problem.
Unknown keys are ignored (the UI still sends `network`, faas-cli may send `registryAuth`).
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

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_GPU_KEYS = ("nvidia.com/gpu", "amd.com/gpu", "intel.com/gpu")


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


def deployment(body: Any, query_namespace: str | None) -> FunctionSpec:
    """Parse a FunctionDeployment body; raise 400 naming the field for anything invalid."""
    if not isinstance(body, dict):
        raise bad_request("request body: expected a JSON object (a FunctionDeployment)")
    name = check_name(body.get("service"), "service")
    image = body.get("image")
    if not isinstance(image, str) or not image.strip():
        raise bad_request("image: an image reference is required")
    if any(c.isspace() for c in image):
        raise bad_request(f"image: {image!r} must not contain white space")
    env_process = body.get("envProcess") or ""
    if not isinstance(env_process, str):
        raise bad_request("envProcess: expected a string")
    read_only = body.get("readOnlyRootFilesystem") or False
    if not isinstance(read_only, bool):
        raise bad_request("readOnlyRootFilesystem: expected true or false")
    env_vars = string_map(body, "envVars")
    for key in env_vars:
        if not key or "=" in key or "\x00" in key:
            raise bad_request(f"envVars: {key!r} is not a valid variable name")
    secrets = _string_list(body, "secrets")
    for secret in secrets:
        check_name(secret, "secrets")
    return FunctionSpec(
        name=name,
        namespace=namespace_of(body.get("namespace"), query_namespace),
        image=image,
        env_process=env_process,
        env_vars=pairs(env_vars),
        labels=pairs(string_map(body, "labels")),
        annotations=pairs(string_map(body, "annotations")),
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
