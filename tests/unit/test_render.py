"""Rendering a spec into a Docker create config, and reading OpenFaaS quantities."""

from __future__ import annotations

import pytest

from controller.quantities import ENGINE_MIN_MEMORY, QuantityError, memory_bytes, nano_cpus
from controller.render import (
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_PIDS_LIMIT,
    RenderSettings,
    env_list,
    replica_config,
    spec_hash,
)
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


# ---- the security boundary of a replica (docs/security.md) ----

def host_config(s: FunctionSpec, settings: RenderSettings = SETTINGS) -> dict:
    return replica_config(s, settings, 1, spec_hash(s, settings))[1]["HostConfig"]


def test_every_replica_drops_all_capabilities_and_privileges():
    host = host_config(spec())
    assert host["CapDrop"] == ["ALL"] and "CapAdd" not in host
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["Privileged"] is False
    assert host["PidsLimit"] == DEFAULT_PIDS_LIMIT
    assert host["Memory"] == memory_bytes(DEFAULT_MEMORY_LIMIT) and "NanoCpus" not in host
    assert host["NetworkMode"] == "net" and host["IpcMode"] == "private"
    for key in ("PidMode", "UTSMode", "UsernsMode", "CgroupnsMode", "Devices", "Binds",
                "DeviceRequests", "Sysctls", "VolumesFrom", "Runtime"):
        assert key not in host, key


def test_only_secret_files_are_bound_read_only():
    host = replica_config(spec(secrets=("s1", "s2")), SETTINGS, 1, "h" * 16,
                          {"s1": "a" * 64, "s2": "b" * 64})[1]["HostConfig"]
    assert [m["Target"] for m in host["Mounts"]] == [
        "/var/openfaas/secrets/s1", "/var/openfaas/secrets/s2"]
    assert all(m["Type"] == "bind" and m["ReadOnly"] for m in host["Mounts"])
    assert all(m["Source"].startswith(SETTINGS.secrets_dir + "/openfaas-fn/")
               for m in host["Mounts"])


def test_operator_settings_reach_the_host_config():
    settings = RenderSettings(instance="t1", network="net", cap_add=("cap_chown", "KILL"),
                              pids_limit=64, memory_limit="1Gi", cpu_limit="500m")
    host = host_config(spec(), settings)
    assert host["CapAdd"] == ["CHOWN", "KILL"] and host["CapDrop"] == ["ALL"]
    assert host["PidsLimit"] == 64
    assert host["Memory"] == 2**30 and host["NanoCpus"] == 5 * 10**8


def test_spec_limits_win_over_the_defaults():
    settings = RenderSettings(instance="t1", network="net", memory_limit="1Gi", cpu_limit="1")
    host = host_config(spec(limits=Resources(memory="64Mi", cpu="100m")), settings)
    assert host["Memory"] == 64 * 2**20 and host["NanoCpus"] == 10**8


def test_default_memory_limit_is_raised_to_the_reservation():
    host = host_config(spec(requests=Resources(memory="1Gi")))
    assert host["Memory"] == 2**30 and host["MemoryReservation"] == 2**30
    host = host_config(spec(limits=Resources(memory="64Mi"), requests=Resources(memory="1Gi")))
    assert host["Memory"] == host["MemoryReservation"] == 64 * 2**20


@pytest.mark.parametrize("cap", ["SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "NET_RAW", "ALL",
                                 "cap_sys_module", "MKNOD", "DAC_READ_SEARCH"])
def test_dangerous_capabilities_cannot_be_rendered(cap):
    with pytest.raises(ValueError, match="not allowed"):
        RenderSettings(instance="t1", network="net", cap_add=(cap,))


def test_security_settings_are_in_the_hash():
    base = spec()
    assert spec_hash(base, SETTINGS) != spec_hash(
        base, RenderSettings(instance="t1", network="net", pids_limit=100))
    assert spec_hash(base, SETTINGS) != spec_hash(
        base, RenderSettings(instance="t1", network="net", cap_add=("KILL",)))
