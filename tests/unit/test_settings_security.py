"""The security settings: defaults, refusals naming the variable, and the flow
Settings → ControllerSettings → RenderSettings."""

from __future__ import annotations

import pytest

from api.app import create_app
from api.settings import ConfigError, Settings, from_env
from controller.docker import DockerAdapter
from controller.render import ALLOWED_CAPABILITIES
from events.memory import MemoryEventStore


def test_defaults():
    s = from_env({})
    assert s.function_cap_add == ()
    assert s.function_pids_limit == 512
    assert s.function_memory_limit == "512Mi" and s.function_cpu_limit == ""
    assert s.system_body_limit == 8 * 2**20 and s.max_request_body == 256 * 2**20
    assert s.auth_max_failures == 10 and s.auth_failure_window == 60.0


def test_values_are_read():
    s = from_env({"FUNCTION_CAP_ADD": "chown, CAP_KILL NET_BIND_SERVICE,,",
                  "FUNCTION_PIDS_LIMIT": "100", "FUNCTION_MEMORY_LIMIT": "1Gi",
                  "FUNCTION_CPU_LIMIT": "500m", "SYSTEM_BODY_LIMIT": "65536",
                  "MAX_REQUEST_BODY": "1048576", "AUTH_MAX_FAILURES": "3",
                  "AUTH_FAILURE_WINDOW": "5m"})
    assert s.function_cap_add == ("CHOWN", "KILL", "NET_BIND_SERVICE")
    assert s.function_pids_limit == 100
    assert (s.function_memory_limit, s.function_cpu_limit) == ("1Gi", "500m")
    assert (s.system_body_limit, s.max_request_body) == (65536, 2**20)
    assert (s.auth_max_failures, s.auth_failure_window) == (3, 300.0)


@pytest.mark.parametrize("cap", ["SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "NET_RAW",
                                 "SYS_MODULE", "DAC_READ_SEARCH", "MKNOD", "ALL", "bogus"])
def test_capabilities_outside_the_allowlist_stop_the_start(cap):
    with pytest.raises(ConfigError, match=r"^FUNCTION_CAP_ADD: .*not allowed; allowed: CHOWN"):
        from_env({"FUNCTION_CAP_ADD": f"CHOWN,{cap}"})


def test_the_allowlist_is_what_the_docs_say():
    assert ALLOWED_CAPABILITIES == {"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",
                                    "SETGID", "SETUID", "NET_BIND_SERVICE"}


@pytest.mark.parametrize("env,name", [
    ({"FUNCTION_PIDS_LIMIT": "0"}, "FUNCTION_PIDS_LIMIT"),
    ({"FUNCTION_PIDS_LIMIT": "-1"}, "FUNCTION_PIDS_LIMIT"),
    ({"FUNCTION_MEMORY_LIMIT": "lots"}, "FUNCTION_MEMORY_LIMIT"),
    ({"FUNCTION_MEMORY_LIMIT": "0"}, "FUNCTION_MEMORY_LIMIT"),
    ({"FUNCTION_CPU_LIMIT": "2Gi"}, "FUNCTION_CPU_LIMIT"),
    ({"SYSTEM_BODY_LIMIT": "10"}, "SYSTEM_BODY_LIMIT"),
    ({"MAX_REQUEST_BODY": "big"}, "MAX_REQUEST_BODY"),
    ({"AUTH_MAX_FAILURES": "0"}, "AUTH_MAX_FAILURES"),
    ({"AUTH_FAILURE_WINDOW": "soon"}, "AUTH_FAILURE_WINDOW"),
])
def test_bad_values_name_the_variable(env, name):
    with pytest.raises(ConfigError, match=f"^{name}"):
        from_env(env)


def test_settings_flow_to_the_renderer(tmp_path):
    settings = Settings(auth_password="x", state_db_path=str(tmp_path / "s" / "db"),
                        function_cap_add=("KILL",), function_pids_limit=99,
                        function_memory_limit="1Gi", function_cpu_limit="250m",
                        max_request_body=4096)
    app = create_app(settings, store=MemoryEventStore(),
                     docker=DockerAdapter("unix:///nonexistent.sock"))
    controller = app.gateway.controller
    assert controller is not None
    render = controller.render
    assert (render.cap_add, render.pids_limit) == (("KILL",), 99)
    assert (render.memory_limit, render.cpu_limit) == ("1Gi", "250m")
    assert app.proxy.body_limit == 4096
