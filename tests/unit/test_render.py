"""Rendering a spec into a Docker create config, and reading OpenFaaS quantities."""

from __future__ import annotations

import pytest

from controller.quantities import ENGINE_MIN_MEMORY, QuantityError, memory_bytes, nano_cpus
from controller.render import RenderSettings, env_list, replica_config, spec_hash
from events.model import FunctionSpec, Resources, pairs

SETTINGS = RenderSettings(instance="t1", network="net")


def spec(**kw) -> FunctionSpec:
    return FunctionSpec(**{"name": "env", "namespace": "openfaas-fn", "image": "img:1", **kw})


@pytest.mark.parametrize("text,expected", [
    ("128Mi", 128 * 2**20), ("1Gi", 2**30), ("100M", 10**8), ("512k", 512_000),
    ("1e3", 1000), ("1.5Gi", int(1.5 * 2**30)), ("1048576", 2**20),
])
def test_memory(text, expected):
    assert memory_bytes(text) == expected


@pytest.mark.parametrize("text,expected", [("100m", 10**8), ("1", 10**9), ("0.5", 5 * 10**8)])
def test_cpu(text, expected):
    assert nano_cpus(text) == expected


@pytest.mark.parametrize("bad", ["", "abc", "12Qi", "-1Mi", "0", "1..2"])
def test_bad_quantities(bad):
    with pytest.raises(QuantityError):
        memory_bytes(bad)


def test_env_process_and_override():
    assert env_list(spec(env_process="cat", env_vars=pairs({"A": "1"}))) == ["A=1", "fprocess=cat"]
    assert env_list(spec(env_process="cat", env_vars=pairs({"fprocess": "env"}))) == [
        "fprocess=env"
    ]


def test_limits_raise_to_engine_minimum_and_readonly_gets_tmpfs():
    s = spec(limits=Resources(memory="5Mi", cpu="100m"), read_only_root_filesystem=True)
    name, config = replica_config(s, SETTINGS, 1, spec_hash(s, SETTINGS))
    host = config["HostConfig"]
    assert host["Memory"] == ENGINE_MIN_MEMORY and host["NanoCpus"] == 10**8
    assert host["ReadonlyRootfs"] is True and "/tmp" in host["Tmpfs"]
    assert host["NetworkMode"] == "net"
    assert config["Labels"]["com.docker-faas.replica"] == "1"
    assert config["Labels"]["faas_function"] == "env"
    assert name.startswith("dfaas_t1_openfaas-fn_env_1_")


def test_hash_ignores_labels_but_not_image_or_env():
    base = spec()
    assert spec_hash(base, SETTINGS) == spec_hash(spec(labels=pairs({"x": "y"})), SETTINGS)
    assert spec_hash(base, SETTINGS) != spec_hash(spec(image="img:2"), SETTINGS)
    assert spec_hash(base, SETTINGS) != spec_hash(spec(env_vars=pairs({"A": "1"})), SETTINGS)
