"""faas-cli stack files (stack.yaml) → FunctionDeployment bodies.

Pure: the only I/O is reading the stack files given and the ``environment_file`` entries
they name. The environment used for ``${VAR}`` substitution is a parameter.

Steps, per file: substitute ``${VAR}`` / ``${VAR:-default}`` in the raw text (faas-cli runs
envsubst before YAML parsing, so a function name may be a variable), parse YAML with every
plain scalar kept as its literal text (``on`` stays ``"on"``, ``1.0`` stays ``"1.0"``, as
gopkg.in/yaml does for string fields), then merge the files in order, field by field.
Each merged function becomes a FunctionDeployment body that ``api.wire.deployment`` checks,
so the rules are the API's own. All errors are collected and raised once as StackError;
nothing is returned when any function is invalid. See docs/stack.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from api import wire
from api.errors import ApiError

PROVIDER_NAME = "openfaas"
VERSIONS = ("1.0",)

_TOP_KEYS = frozenset({"version", "provider", "functions", "configuration"})
_PROVIDER_KEYS = frozenset({"name", "gateway", "network"})  # network: old Swarm key, ignored
_DEPLOY_KEYS = frozenset(
    {
        "image",
        "fprocess",
        "environment",
        "environment_file",
        "secrets",
        "labels",
        "annotations",
        "limits",
        "requests",
        "constraints",
        "readonly_root_filesystem",
        "namespace",
    }
)
_BUILD_KEYS = frozenset(
    {
        "lang",
        "handler",
        "build_args",
        "build_options",
        "skip_build",
        "platforms",
        "build_secrets",
        "registry_auth",
    }
)
_MAP_FIELDS = ("environment", "labels", "annotations", "limits", "requests")
_RESOURCE_KEYS = ("memory", "cpu", "nvidia.com/gpu", "amd.com/gpu", "intel.com/gpu")
_TRUE = frozenset({"true", "yes", "on", "y"})
_FALSE = frozenset({"false", "no", "off", "n"})
# API field name → stack field name, to phrase wire's messages in the file's own terms.
_WIRE_FIELDS = {
    "envProcess": "fprocess",
    "envVars": "environment",
    "readOnlyRootFilesystem": "readonly_root_filesystem",
}

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class StackError(ValueError):
    """One or more problems in the stack files; ``errors`` lists each, one per line."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = tuple(errors)
        super().__init__("\n".join(self.errors))


@dataclass(frozen=True)
class Stack:
    """The merged stack: FunctionDeployment-shaped bodies by function name (read-only)."""

    functions: Mapping[str, Mapping[str, Any]]
    provider: str
    gateway: str | None
    warnings: tuple[str, ...]

    def deployments(self) -> list[dict[str, Any]]:
        """Fresh, mutable JSON bodies ready for POST/PUT /system/functions, in file order."""
        return [_thaw(body) for body in self.functions.values()]


def substitute(text: str, env: Mapping[str, str]) -> str:
    """faas-cli's envsubst: ``${VAR}`` (unset → empty) and ``${VAR:-default}`` (unset or
    empty → default). One pass: substituted values are not scanned again."""

    def replace(match: re.Match[str]) -> str:
        value = env.get(match.group(1), "")
        default = match.group(2)
        if default is not None and value == "":
            return default
        return value

    return _VAR.sub(replace, text)


class _LiteralLoader(yaml.SafeLoader):  # type: ignore[misc]
    """Safe YAML where plain scalars stay text; only null and the ``<<`` merge key resolve."""


_LiteralLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag.endswith((":null", ":merge"))]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _parse(text: str) -> Any:
    return yaml.load(text, Loader=_LiteralLoader)  # noqa: S506 - a SafeLoader subclass


@dataclass
class _Function:
    fields: dict[str, Any]
    origin: dict[str, str]  # stack field → file that last set it
    order: int
    last_file: str = ""


class _Loader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.functions: dict[str, _Function] = {}
        self.provider: dict[str, Any] = {}
        self.provider_file = ""

    # -- reading and merging -------------------------------------------------------------

    def read(self, path: Path) -> None:
        where = str(path)
        try:
            raw = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            self.errors.append(f"{where}: cannot read the file: {err}")
            return
        try:
            doc = _parse(substitute(raw, self.env))
        except yaml.YAMLError as err:
            self.errors.append(f"{where}: not valid YAML: {err}".replace("\n", " "))
            return
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            self.errors.append(f"{where}: expected a mapping with provider: and functions:")
            return
        for key in doc:
            if key not in _TOP_KEYS:
                self.warnings.append(f"{where}: unknown top-level key {key!r} ignored")
        version = doc.get("version")
        if version is not None and version not in VERSIONS:
            self.errors.append(f"{where}: version: {version!r} is not supported (use \"1.0\")")
        self._provider(where, doc.get("provider"))
        functions = doc.get("functions")
        if functions is None:
            return
        if not isinstance(functions, dict):
            self.errors.append(f"{where}: functions: expected a mapping of name to function")
            return
        for name, fields in functions.items():
            self._function(where, path, str(name), fields)

    def _provider(self, where: str, provider: Any) -> None:
        if provider is None:
            return
        if not isinstance(provider, dict):
            self.errors.append(f"{where}: provider: expected a mapping with name: openfaas")
            return
        for key in provider:
            if key not in _PROVIDER_KEYS:
                self.warnings.append(f"{where}: provider: unknown key {key!r} ignored")
        for key in ("name", "gateway"):
            value = provider.get(key)
            if value in (None, ""):
                continue
            if not isinstance(value, str):
                self.errors.append(f"{where}: provider.{key}: expected a string")
                continue
            self.provider[key] = value
            if key == "name":
                self.provider_file = where

    def _function(self, where: str, path: Path, name: str, fields: Any) -> None:
        label = f'{where}: function "{name}"'
        if fields is None:
            fields = {}
        if not isinstance(fields, dict):
            self.errors.append(f"{label}: expected a mapping of fields")
            return
        for key in fields:
            if key not in _DEPLOY_KEYS and key not in _BUILD_KEYS:
                self.warnings.append(f"{label}: unknown key {key!r} ignored")
        entry = self.functions.get(name)
        if entry is None:
            entry = self.functions[name] = _Function({}, {}, len(self.functions))
        entry.last_file = where
        for key, value in fields.items():
            if key not in _DEPLOY_KEYS or value in (None, "", [], {}):
                continue  # like faas-cli's merge, an empty value does not override
            if key == "environment_file":
                value = self._environment_files(label, path, value)
                if value is None:
                    continue
            if key in _MAP_FIELDS and isinstance(value, dict):
                previous = entry.fields.get(key)
                if isinstance(previous, dict):
                    value = {**previous, **value}
            entry.fields[key] = value
            entry.origin[key] = where

    def _environment_files(self, label: str, path: Path, value: Any) -> list[dict[str, Any]] | None:
        """Read each file now (relative to its stack file); keep its environment mapping."""
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.errors.append(f"{label}: environment_file: expected a list of file names")
            return None
        loaded: list[dict[str, Any]] = []
        for item in value:
            env_path = path.parent / item
            try:
                # faas-cli unmarshals these as they are: no ${VAR} substitution here.
                doc = _parse(env_path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError) as err:
                self.errors.append(f"{label}: environment_file: cannot read {item!r}: {err}")
                continue
            except yaml.YAMLError as err:
                message = f"{label}: environment_file: {item!r} is not valid YAML: {err}"
                self.errors.append(message.replace("\n", " "))
                continue
            environment = doc.get("environment") if isinstance(doc, dict) else None
            if environment is None:
                environment = {}
            if not isinstance(environment, dict):
                self.errors.append(
                    f"{label}: environment_file: {item!r}: environment: expected a mapping"
                )
                continue
            loaded.append(environment)
        return loaded

    # -- building ------------------------------------------------------------------------

    def body(self, name: str, entry: _Function) -> dict[str, Any] | None:
        fields, origin = entry.fields, entry.origin
        last = entry.last_file

        def fail(field: str, message: str) -> None:
            self.errors.append(f'{origin.get(field, last)}: function "{name}": {field}: {message}')

        image = fields.get("image")
        if image in (None, ""):
            fail(
                "image",
                "no image is set; deploying needs one (add image: or run faas-cli build first)",
            )
            return None
        body: dict[str, Any] = {"service": name, "image": image}
        if fields.get("fprocess") is not None:
            body["envProcess"] = fields["fprocess"]
        env_vars = self._string_map(fields, "environment", fail)
        for environment in fields.get("environment_file") or []:
            for key, value in environment.items():
                if not isinstance(value, str):
                    fail("environment_file", f"{key}: expected a string value")
                    continue
                env_vars[str(key)] = value
        if env_vars:
            body["envVars"] = env_vars
        for field in ("secrets", "constraints"):
            value = fields.get(field)
            if value is None:
                continue
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                fail(field, "expected a list of strings")
                continue
            body[field] = list(value)
        body["labels"] = self._string_map(fields, "labels", fail)
        body["annotations"] = self._string_map(fields, "annotations", fail)
        for field in ("limits", "requests"):
            resources = self._string_map(fields, field, fail)
            for key in resources:
                if key not in _RESOURCE_KEYS:
                    self.warnings.append(
                        f'{origin[field]}: function "{name}": {field}: unknown key {key!r} ignored'
                    )
            chosen = {k: v for k, v in resources.items() if k in _RESOURCE_KEYS and v}
            if chosen:
                body[field] = chosen
        read_only = fields.get("readonly_root_filesystem")
        if read_only is not None:
            text = str(read_only).lower()
            if text in _TRUE:
                body["readOnlyRootFilesystem"] = True
            elif text in _FALSE:
                body["readOnlyRootFilesystem"] = False
            else:
                fail("readonly_root_filesystem", f"{read_only!r} is not true or false")
        if fields.get("namespace") is not None:
            body["namespace"] = fields["namespace"]
        return body

    @staticmethod
    def _string_map(fields: Mapping[str, Any], field: str, fail: Any) -> dict[str, str]:
        value = fields.get(field)
        if value is None:
            return {}
        if not isinstance(value, dict):
            fail(field, "expected a mapping of names to values")
            return {}
        out: dict[str, str] = {}
        for key, item in value.items():
            if item is None:
                item = ""
            if not isinstance(item, str):
                fail(f"{field}.{key}", f"expected a plain value, got a {type(item).__name__}")
                continue
            out[str(key)] = item
        return out

    def check(self, name: str, entry: _Function, body: dict[str, Any]) -> None:
        try:
            wire.deployment(body, None)
        except ApiError as err:
            field, sep, rest = err.message.partition(":")
            head = field.split(".", 1)[0]
            stack_field = _WIRE_FIELDS.get(head, head)
            if head == "service":
                where = entry.last_file
                self.errors.append(f'{where}: function "{name}": the function name{sep}{rest}')
                return
            field = stack_field + field[len(head):]
            where = entry.origin.get(stack_field, entry.last_file)
            self.errors.append(f'{where}: function "{name}": {field}{sep}{rest}')


def load_stack(paths: Sequence[Path], env: Mapping[str, str], *, strict: bool = True) -> Stack:
    """Read, substitute, merge and validate stack files; raise StackError listing all errors.

    `strict` (for deploying): values our API would refuse are errors. Not strict (for
    reading, diffing, showing): they are warnings, so every file faas-cli reads loads.
    The old provider name `faas` is read as `openfaas` with a warning either way."""
    if not paths:
        raise StackError(["no stack file given"])
    loader = _Loader(env)
    for path in paths:
        loader.read(Path(path))
    name = loader.provider.get("name")
    if name == "faas":
        where = loader.provider_file or str(paths[-1])
        loader.warnings.append(f'{where}: provider.name: the old "faas" is read as "openfaas"')
    elif name != PROVIDER_NAME:
        where = loader.provider_file or str(paths[-1])
        if name is None:
            loader.errors.append(f'{where}: provider.name: missing; it must be "openfaas"')
        else:
            loader.errors.append(
                f'{where}: provider.name: {name!r} is not accepted; it must be "openfaas"'
            )
    bodies: dict[str, dict[str, Any]] = {}
    for fn_name, entry in sorted(loader.functions.items(), key=lambda item: item[1].order):
        before = len(loader.errors)
        body = loader.body(fn_name, entry)
        if body is not None and len(loader.errors) == before:
            loader.check(fn_name, entry, body)  # wire only sees bodies our own checks passed
        if not strict and len(loader.errors) > before:  # value problems: warn, keep it
            loader.warnings.extend(loader.errors[before:])
            del loader.errors[before:]
        if body is not None:
            bodies[fn_name] = body
    if loader.errors:
        raise StackError(loader.errors)
    return Stack(
        functions=MappingProxyType({k: _freeze(v) for k, v in bodies.items()}),
        provider=PROVIDER_NAME,
        gateway=loader.provider.get("gateway"),
        warnings=tuple(loader.warnings),
    )


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


__all__ = ["Stack", "StackError", "load_stack", "substitute"]
