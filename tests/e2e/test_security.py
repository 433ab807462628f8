"""The security boundary end to end (docs/security.md): what the engine really runs, what a
function container can reach of the gateway, and the request limits on the real server."""

from __future__ import annotations

import json
import socket
import subprocess

import httpx
import pytest

from tests.e2e.conftest import PASSWORD, Gateway, docker, inspect

pytestmark = pytest.mark.engine


def _host_config(cid: str) -> dict[str, object]:
    return inspect(cid)["HostConfig"]  # type: ignore[return-value]


def _exec(cid: str, code: str) -> str:
    result = subprocess.run(["docker", "exec", cid, "python3", "-c", code],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _proc_status(cid: str) -> dict[str, str]:
    text = docker("exec", cid, "cat", "/proc/1/status")
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def test_replicas_run_unprivileged_with_limits(gateway: Gateway) -> None:
    r = gateway.client.post("/system/secrets", json={"name": "token", "value": "t0k3n"})
    assert r.status_code == 201
    gateway.deploy("echo", "echo", secrets=["token"])
    r = gateway.invoke_until("echo", lambda r: r.status_code == 200, data=b"still serves")
    assert r.text == "still serves"
    [cid] = gateway.containers("echo")
    host = _host_config(cid)
    assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["Privileged"] is False
    assert host["PidsLimit"] == 512
    assert host["Memory"] == 512 * 2**20
    assert host["NetworkMode"] == gateway.env["FUNCTIONS_NETWORK"]
    assert host["PidMode"] == "" and host["IpcMode"] == "private"
    assert host["UTSMode"] == "" and host["UsernsMode"] == ""
    assert not host.get("Binds") and not host.get("Devices") and not host.get("VolumesFrom")
    mounts = inspect(cid)["Mounts"]
    assert [(m["Type"], m["Destination"], m["RW"]) for m in mounts] == [  # type: ignore[union-attr]
        ("bind", "/var/openfaas/secrets/token", False)]
    # what the kernel says about the watchdog (PID 1): no capability, no way to gain any
    status = _proc_status(cid)
    assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0
    assert int(status["CapBnd"], 16) == 0
    assert status["NoNewPrivs"].strip() == "1"
    # the secret is still readable with every capability dropped
    assert _exec(cid, "print(open('/var/openfaas/secrets/token').read())") == "t0k3n"
    # the pids limit holds inside: more than 512 threads cannot be started
    started = _exec(cid, (
        "import threading, time\n"
        "n = 0\n"
        "try:\n"
        "    for _ in range(600):\n"
        "        threading.Thread(target=time.sleep, args=(5,), daemon=True).start(); n += 1\n"
        "except RuntimeError:\n"
        "    pass\n"
        "print(n)"))
    assert int(started) < 512
    # the other fixtures still serve under the same boundary
    gateway.deploy("env", "env")
    gateway.deploy("http-echo", "http-echo", readOnlyRootFilesystem=True)
    gateway.invoke_until("env", lambda r: r.status_code == 200 and "Http_Method" in r.text)
    r = gateway.invoke_until("http-echo", lambda r: r.status_code == 200, data=b"{}")
    assert r.json()["method"] == "POST"


def test_operator_settings_reach_the_engine(gateway_factory) -> None:
    gw = gateway_factory(FUNCTION_CAP_ADD="NET_BIND_SERVICE,kill", FUNCTION_PIDS_LIMIT="128",
                         FUNCTION_MEMORY_LIMIT="256Mi", FUNCTION_CPU_LIMIT="500m")
    gw.deploy("echo", "echo")
    gw.deploy("big", "echo", limits={"memory": "64Mi", "cpu": "250m"})
    gw.invoke_until("echo", lambda r: r.status_code == 200, data=b"x")
    gw.invoke_until("big", lambda r: r.status_code == 200, data=b"x")
    host = _host_config(gw.containers("echo")[0])
    assert host["CapDrop"] == ["ALL"] and sorted(host["CapAdd"]) == ["KILL", "NET_BIND_SERVICE"]
    assert host["PidsLimit"] == 128 and host["Memory"] == 256 * 2**20
    assert host["NanoCpus"] == 5 * 10**8
    host = _host_config(gw.containers("big")[0])
    assert host["Memory"] == 64 * 2**20 and host["NanoCpus"] == 25 * 10**7


def test_a_dangerous_capability_stops_the_start(gateway_factory) -> None:
    with pytest.raises(RuntimeError, match="FUNCTION_CAP_ADD: capability 'SYS_ADMIN' is not"):
        gateway_factory(FUNCTION_CAP_ADD="SYS_ADMIN")


def test_deploy_cannot_ask_for_privileges(gateway: Gateway) -> None:
    for extra in ({"privileged": True}, {"network": "host"},
                  {"mounts": [{"type": "bind", "source": "/", "target": "/h"}]},
                  {"labels": {"com.docker-faas.instance": "other"}},
                  {"annotations": {"cap_add": "SYS_ADMIN"}}):
        body = {"service": "bad", "image": "docker-faas-fixtures/echo:latest", **extra}
        r = gateway.client.post("/system/functions", json=body)
        assert r.status_code == 400, (extra, r.text)
    assert gateway.client.get("/system/functions").json() == []
    # the UI's ordinary `network` still deploys
    gateway.deploy("ui", "echo", network="func_functions")
    gateway.invoke_until("ui", lambda r: r.status_code == 200, data=b"ok")


def _bridge_address(cid: str, network: str) -> str:
    networks = inspect(cid)["NetworkSettings"]["Networks"]  # type: ignore[index]
    return str(networks[network]["Gateway"])


def test_function_containers_cannot_reach_the_api(gateway_factory) -> None:
    gw = gateway_factory(BIND_ADDRESS="0.0.0.0")
    gw.deploy("echo", "echo")
    gw.invoke_until("echo", lambda r: r.status_code == 200, data=b"x")
    [cid] = gw.containers("echo")
    bridge = _bridge_address(cid, gw.env["FUNCTIONS_NETWORK"])
    call = (
        "import base64, sys, urllib.request, urllib.error\n"
        "url, data = sys.argv[1], sys.argv[2].encode() or None\n"
        f"auth = base64.b64encode(b'admin:{PASSWORD}').decode()\n"
        "req = urllib.request.Request(url, data=data, headers={'Authorization': 'Basic ' + auth})\n"
        "try:\n"
        "    with urllib.request.urlopen(req, timeout=10) as r:\n"
        "        print(r.status, r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code, e.read().decode())\n"
    )

    def from_function(url: str, data: str = "") -> tuple[int, str]:
        result = subprocess.run(["docker", "exec", cid, "python3", "-c", call, url, data],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        code, _, body = result.stdout.partition(" ")
        return int(code), body

    base = f"http://{bridge}:{gw.port}"
    code, body = from_function(base + "/system/functions")  # with the right password
    assert code == 403 and "function network" in body, body
    code, body = from_function(base + "/system/secrets", '{"name": "x", "value": "y"}')
    assert code == 403, body
    assert from_function(f"http://{bridge}:{gw.metrics_port}/metrics")[0] == 403
    assert from_function(base + "/healthz")[0] == 200
    # function-to-function calls through the gateway stay open
    code, body = from_function(base + "/function/echo", "from a function")
    assert (code, body.strip()) == (200, "from a function")
    # the same API answers the host, on loopback and on the bridge address
    assert gw.client.get("/system/functions").status_code == 200
    r = httpx.get(f"{base}/system/functions", auth=("admin", PASSWORD), timeout=10)
    assert r.status_code == 200 and [f["name"] for f in r.json()] == ["echo"]
    assert httpx.get(f"http://127.0.0.1:{gw.metrics_port}/metrics", timeout=10).status_code \
        == 200
    assert gw.client.get("/system/secrets").json() == []  # the refused create left nothing


def _raw(port: int, request: bytes) -> bytes:
    """Send a raw request; the answer until the server closes (or 10 s)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return answer


def test_request_limits_on_the_real_server(gateway_factory) -> None:
    gw = gateway_factory(MAX_REQUEST_BODY="65536", SYSTEM_BODY_LIMIT="16384")
    gw.deploy("echo", "echo")
    gw.invoke_until("echo", lambda r: r.status_code == 200, data=b"x" * 65536)
    r = gw.client.post("/function/echo", content=b"x" * 65537)
    assert r.status_code == 413 and "MAX_REQUEST_BODY" in r.text

    def chunks(size: int, count: int):
        for _ in range(count):
            yield b"y" * size

    r = gw.client.post("/function/echo", content=chunks(16384, 8))
    assert r.status_code == 413 and "MAX_REQUEST_BODY" in r.text
    body = json.dumps({"service": "big", "image": "docker-faas-fixtures/echo:latest",
                       "envVars": {"A": "z" * 20000}}).encode()
    r = gw.client.post("/system/functions", content=body)
    assert r.status_code == 413 and "SYSTEM_BODY_LIMIT" in r.text
    r = gw.client.post("/system/functions", content=chunks(4096, 8))
    assert r.status_code == 413 and "SYSTEM_BODY_LIMIT" in r.text
    assert [f["name"] for f in gw.client.get("/system/functions").json()] == ["echo"]
    # the 413 closes the connection: the rest of the body is never read
    head = (b"POST /function/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
    answer = _raw(gw.port, head + b"x" * 1000)
    assert answer.startswith(b"HTTP/1.1 413") and b"connection: close" in answer.lower()


def test_oversized_headers_are_refused(gateway: Gateway) -> None:
    answer = _raw(gateway.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
                  + b"a" * 200_000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
