"""The security boundary in process (docs/security.md): what a deploy request may not ask for,
names at every entry point, body limits, the failed-login throttle, the function-network
guard, and logs that never carry credentials or secret values."""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
from datetime import UTC, datetime, timedelta

import attrs
import httpx
import pytest

from api.app import FunctionNetworkGuard, create_app
from api.auth import BasicAuth, LoginThrottle, source_of
from api.metrics import GatewayMetrics
from api.proxy import FunctionProxy
from controller.loop import Controller, ControllerSettings
from events.project import EMPTY
from tests.api.conftest import AUTH

pytestmark = pytest.mark.anyio

GOOD = {"service": "fn", "image": "docker-faas-fixtures/echo:latest", "labels": {},
        "annotations": {}}


@pytest.fixture
def anyio_backend():
    return "asyncio"


# ---- 2. deploy requests cannot obtain engine options ----------------------------------

# (the option, the top-level key that asks for it, its value)
TOP_LEVEL = [
    ("privileged", "privileged", True),
    ("privileged", "securityContext", {"privileged": True}),
    ("host network", "hostNetwork", True),
    ("host network", "network_mode", "host"),
    ("host network", "networkMode", "host"),
    ("host network", "network", "host"),
    ("host network", "network", "container:gateway"),
    ("host mount", "mounts", [{"type": "bind", "source": "/", "target": "/host"}]),
    ("host mount", "volumes", ["/var/run/docker.sock:/var/run/docker.sock"]),
    ("host mount", "binds", ["/etc:/host-etc"]),
    ("host mount", "hostPath", "/"),
    ("capability", "capAdd", ["SYS_ADMIN"]),
    ("capability", "cap_add", ["NET_ADMIN"]),
    ("capability", "CapAdd", ["SYS_PTRACE"]),
    ("capability", "capabilities", {"add": ["SYS_ADMIN"]}),
    ("device", "devices", ["/dev/sda:/dev/sda"]),
    ("device", "deviceRequests", [{"Count": -1}]),
    ("host PID", "hostPID", True),
    ("host PID", "pid", "host"),
    ("host PID", "pid_mode", "host"),
    ("host IPC", "hostIPC", True),
    ("host IPC", "ipc", "host"),
    ("host IPC", "ipcMode", "host"),
    ("security option", "securityOpt", ["seccomp=unconfined"]),
    ("security option", "security_opt", ["apparmor=unconfined"]),
    ("kernel parameter", "sysctls", {"net.ipv4.ip_forward": "1"}),
    ("user namespace", "userns", "host"),
    ("UTS namespace", "uts", "host"),
    ("engine options", "HostConfig", {"Privileged": True}),
    ("runtime", "runtime", "runc-privileged"),
]

# label and annotation keys that try to carry the same
META_KEYS = [
    "privileged", "com.example.privileged", "hostNetwork", "host_network", "network_mode",
    "networkMode", "mounts", "volume", "com.example/volumes", "bind", "binds", "hostPath",
    "cap_add", "capAdd", "capabilities", "CAPABILITY", "devices", "device", "pid", "hostPID",
    "host-pid", "ipc", "hostIPC", "host_ipc", "security-opt", "securityContext",
    "docker.seccomp", "apparmor", "sysctls", "userns", "no-new-privileges",
    "com.docker-faas.instance", "com.docker-faas.function", "COM.DOCKER-FAAS.spec-hash",
    "com.docker-faas.anything",
]


async def _deploy_base(client) -> None:
    assert (await client.post("/system/functions", json=GOOD)).status_code == 202


@pytest.mark.parametrize("option,key,value", TOP_LEVEL, ids=lambda v: str(v)[:20])
async def test_top_level_keys_are_refused_on_post_put_and_apply(client, store, option, key,
                                                                value):
    await _deploy_base(client)
    head = store.head()
    bad = {**GOOD, key: value}
    for method in ("POST", "PUT"):
        r = await client.request(method, "/system/functions", json=bad)
        assert r.status_code == 400, (method, option, r.text)
        assert r.text.startswith(f"{key}:"), r.text
    r = await client.post("/system/apply", json={"functions": [GOOD, {**bad, "service": "fn2"}]})
    assert r.status_code == 400, r.text
    assert r.text.startswith(f"functions[1] (fn2): {key}:"), r.text
    assert store.head() == head  # nothing appended


@pytest.mark.parametrize("field", ["labels", "annotations"])
@pytest.mark.parametrize("key", META_KEYS)
async def test_label_and_annotation_keys_are_refused(client, store, field, key):
    await _deploy_base(client)
    head = store.head()
    bad = {**GOOD, field: {key: "host"}}
    for method in ("POST", "PUT"):
        r = await client.request(method, "/system/functions", json=bad)
        assert r.status_code == 400, (method, r.text)
        assert r.text.startswith(f"{field}.{key}:"), r.text
    r = await client.post("/system/apply", json={"functions": [{**bad, "service": "fn3"}]})
    assert r.status_code == 400 and r.text.startswith(f"functions[0] (fn3): {field}.{key}:")
    assert store.head() == head


async def test_harmless_values_and_keys_still_deploy(client):
    body = {**GOOD, "network": "func_functions", "privileged": False, "capAdd": [],
            "securityContext": None, "registryAuth": "",
            "labels": {"com.openfaas.scale.min": "1", "amount": "3", "pidgin": "x",
                       "rebinding": "y", "topic": "a"},
            "annotations": {"com.openfaas.health.http.path": "/_/health?x=1",
                            "prometheus.io.scrape": "true", "ipcc": "z"}}
    r = await client.post("/system/functions", json=body)
    assert r.status_code == 202, r.text


@pytest.mark.parametrize("patch,field", [
    ({"image": "--privileged"}, "image"),
    ({"image": "/var/run/docker.sock"}, "image"),
    ({"image": "img;rm -rf /"}, "image"),
    ({"image": "img\x00:1"}, "image"),
    ({"envProcess": "cat\x00x"}, "envProcess"),
    ({"envVars": {"A": "x\x00y"}}, "envVars.A"),
    ({"envVars": {"A=B": "x"}}, "envVars"),
    ({"secrets": ["../../etc"]}, "secrets"),
    ({"secrets": ["/etc/shadow"]}, "secrets"),
    ({"namespace": "../.."}, "namespace"),
    ({"service": "../x"}, "service"),
    ({"annotations": {"com.openfaas.health.http.path": "/x HTTP/1.1\r\nHost: y"}},
     "annotations.com.openfaas.health.http.path"),
    ({"limits": {"memory": "-1"}}, "limits.memory"),
    # a trailing newline slipped through `$` (found by schemathesis, docs/reliability.md)
    ({"service": "fn\n"}, "service"),
    ({"namespace": "openfaas-fn\n"}, "namespace"),
    ({"image": "img:1\n"}, "image"),
    ({"annotations": {"com.openfaas.health.http.path": "/_/health\n"}},
     "annotations.com.openfaas.health.http.path"),
])
async def test_other_fields_cannot_smuggle_a_path_or_option(client, store, patch, field):
    head = store.head()
    r = await client.post("/system/functions", json={**GOOD, **patch})
    assert r.status_code == 400 and r.text.startswith(f"{field}:"), r.text
    assert store.head() == head


# ---- 5. names are checked at every entry point ------------------------------------------

@pytest.mark.parametrize("method,url,body", [
    ("GET", "/system/function/Bad_Name", None),
    ("GET", "/system/function/Bad_Name?at=1", None),
    ("GET", "/system/function/a..b/history", None),
    ("POST", "/system/scale-function/Bad_Name", {"replicas": 1}),
    ("POST", "/system/scale-function/x", {"replicas": 1, "namespace": "../etc"}),
    ("DELETE", "/system/functions", {"functionName": "../x"}),
    ("GET", "/system/functions?namespace=..%2Fetc", None),
    ("GET", "/system/logs?name=..%2Fetc", None),
    ("GET", "/system/logs?name=fn&namespace=Bad_NS", None),
    ("GET", "/system/events?function=Bad_Name", None),
    ("GET", "/system/events?namespace=..", None),
    ("GET", "/system/secrets?namespace=%2Fetc", None),
    ("POST", "/system/secrets", {"name": "../x", "value": "v"}),
    ("PUT", "/system/secrets", {"name": "a/b", "value": "v"}),
    ("DELETE", "/system/secrets", {"name": "A_B"}),
    ("GET", "/system/namespace/Bad_NS", None),
    ("POST", "/system/namespace/", {"name": "../x", "labels": {"openfaas": "1"}}),
    ("PUT", "/system/namespace/Bad_NS", {"labels": {"openfaas": "1"}}),
    ("DELETE", "/system/namespace/Bad_NS", None),
    ("GET", "/system/function/fn%0A", None),
    ("POST", "/system/scale-function/fn%0A", {"replicas": 1}),
    ("POST", "/system/secrets", {"name": "s\n", "value": "v"}),
    ("POST", "/system/namespace/", {"name": "dev\n", "labels": {"openfaas": "1"}}),
])
async def test_invalid_names_are_refused_everywhere(client, store, method, url, body):
    head = store.head()
    r = await client.request(method, url, json=body)
    assert r.status_code == 400, r.text
    assert "not a valid name" in r.text, r.text
    assert store.head() == head


# ---- 4. body limits ---------------------------------------------------------------------

def _app(settings, store):
    ticks = itertools.count()
    start = datetime(2026, 1, 2, tzinfo=UTC)
    return create_app(settings, store=store, docker=None,
                      clock=lambda: start + timedelta(seconds=next(ticks)))


async def test_system_body_limit_on_length_and_while_streaming(settings, store):
    app = _app(attrs.evolve(settings, system_body_limit=4096), store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw", auth=AUTH) as c:
        big = {**GOOD, "envVars": {"A": "x" * 5000}}
        r = await c.post("/system/functions", json=big)
        assert r.status_code == 413 and "SYSTEM_BODY_LIMIT (4096 bytes)" in r.text
        assert r.headers["connection"] == "close"

        async def chunks():
            yield b'{"service": "fn", "image": "img", "envVars": {"A": "'
            for _ in range(10):
                yield b"x" * 1000
            yield b'"}}'

        r = await c.post("/system/functions", content=chunks())
        assert r.status_code == 413 and "SYSTEM_BODY_LIMIT" in r.text
        assert r.headers["connection"] == "close"
        assert store.head() == 0
        r = await c.post("/system/functions", json=GOOD)  # under the limit
        assert r.status_code == 202


async def test_function_body_limit_by_content_length(settings, store):
    app = _app(attrs.evolve(settings, max_request_body=2048), store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw", auth=AUTH) as c:
        await _deploy_base(c)
        r = await c.post("/function/fn", content=b"x" * 2049)
        assert r.status_code == 413 and "MAX_REQUEST_BODY (2048 bytes)" in r.text
        assert r.headers["connection"] == "close"


async def test_function_body_limit_while_streaming_closes_the_replica_connection():
    """A chunked body growing past the limit: 413 to the caller, the replica's connection
    dropped mid-request (never reused), the replica never sees the whole body."""
    seen = bytearray()
    closed = asyncio.Event()

    async def replica(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            seen.extend(data)
        closed.set()
        writer.close()

    server = await asyncio.start_server(replica, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = FunctionProxy(exists=lambda key: True, pick=lambda key: ("127.0.0.1", port),
                          metrics=GatewayMetrics(lambda: EMPTY), timeout=5, body_limit=4096)

    async def chunks():
        for _ in range(10):
            yield b"y" * 1000

    try:
        transport = httpx.ASGITransport(app=proxy)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
            r = await c.post("/function/fn", content=chunks())
        assert r.status_code == 413 and "MAX_REQUEST_BODY (4096 bytes)" in r.text
        assert r.headers["connection"] == "close"
        await asyncio.wait_for(closed.wait(), 5)
        assert b"POST / HTTP/1.1" in seen and seen.count(b"y") <= 4096
    finally:
        proxy.pool.close()
        server.close()


# ---- 4. failed logins are slowed per source address --------------------------------------

async def _ok(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _client(app, host: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(host, 5555)),
                             base_url="http://gw")


async def test_throttle_answers_429_after_n_failures_per_address():
    now = [1000.0]
    app = BasicAuth(_ok, enabled=True, users={"admin": "right"},
                    throttle=LoginThrottle(3, 60.0, clock=lambda: now[0]))
    async with _client(app, "10.0.0.1") as attacker, _client(app, "10.0.0.2") as other:
        for step in range(3):
            r = await attacker.get("/system/functions", auth=("admin", f"wrong{step}"))
            assert r.status_code == 401
            now[0] += 10  # failures at 1000, 1010, 1020
        r = await attacker.get("/system/functions", auth=("admin", "right"))
        assert r.status_code == 429  # refused without the password being checked
        assert r.headers["retry-after"] == "30"  # the failure at 1000 ages out at 1060
        assert "too many failed logins" in r.text
        # another address is unaffected, and its failures are its own
        assert (await other.get("/system/functions", auth=("admin", "right"))).status_code == 200
        assert (await other.get("/system/functions", auth=("admin", "bad"))).status_code == 401
        # public paths are never throttled
        assert (await attacker.get("/healthz")).status_code == 200
        now[0] = 1060.5  # the oldest failure left the window: one more try
        assert (await attacker.get("/system/functions", auth=("admin", "x"))).status_code == 401
        assert (await attacker.get("/system/functions", auth=("admin", "right"))).status_code \
            == 429
        now[0] = 1081  # 1010 and 1020 aged out
        assert (await attacker.get("/system/functions", auth=("admin", "right"))).status_code \
            == 200


async def test_a_success_clears_failures_and_no_header_is_no_guess():
    now = [0.0]
    app = BasicAuth(_ok, enabled=True, users={"admin": "right"},
                    throttle=LoginThrottle(2, 60.0, clock=lambda: now[0]))
    async with _client(app, "10.0.0.3") as c:
        for _ in range(5):  # a browser's first request carries no credentials
            assert (await c.get("/system/functions")).status_code == 401
        assert (await c.get("/system/functions", auth=("admin", "bad"))).status_code == 401
        assert (await c.get("/system/functions", auth=("admin", "right"))).status_code == 200
        assert (await c.get("/system/functions", auth=("admin", "bad"))).status_code == 401
        assert (await c.get("/system/functions", auth=("admin", "bad"))).status_code == 401
        assert (await c.get("/system/functions", auth=("admin", "right"))).status_code == 429


def test_throttle_memory_is_bounded_and_ipv6_counts_per_64():
    throttle = LoginThrottle(1, 60.0, clock=lambda: 0.0, max_sources=100)
    for i in range(1000):
        throttle.failed(f"10.1.{i // 256}.{i % 256}")
    assert len(throttle._failures) == 100
    assert throttle.retry_after("10.1.3.231") > 0 and throttle.retry_after("10.1.0.0") == 0
    assert source_of({"client": ("2001:db8::1", 1)}) == source_of({"client": ("2001:db8::2", 1)})
    assert source_of({"client": ("::ffff:10.0.0.1", 1)}) == "10.0.0.1"


async def test_throttle_is_wired_from_settings(settings, store):
    app = _app(attrs.evolve(settings, auth_max_failures=2), store)
    async with _client(app, "192.0.2.7") as c:
        for _ in range(2):
            assert (await c.get("/system/info", auth=("admin", "nope"))).status_code == 401
        r = await c.get("/system/info", auth=AUTH)
        assert r.status_code == 429 and int(r.headers["retry-after"]) <= 60


# ---- 4. credentials and secret values are never logged ----------------------------------

async def test_credentials_and_secret_values_never_reach_the_log(settings, store, caplog):
    caplog.set_level(logging.DEBUG)
    password, value, raw = "Hunter2-wrong-pass", "s3cr3t-VALUE-9431", b"raw-SECRET-5521"
    admin = ("admin", "Adm1n-right-7781")
    app = _app(attrs.evolve(settings, auth_max_failures=2, auth_password=admin[1]), store)
    async with _client(app, "198.51.100.4") as c:
        for _ in range(3):  # the third answer is a 429 and logs a warning
            await c.get("/system/functions", auth=("admin", password))
    async with _client(app, "198.51.100.5") as c:
        r = await c.post("/system/secrets", auth=admin, json={"name": "db", "value": value})
        assert r.status_code == 201
        r = await c.put("/system/secrets", auth=admin, json={
            "name": "db", "rawValue": base64.b64encode(raw).decode()})
        assert r.status_code == 202
        r = await c.post("/system/secrets", auth=admin, json={"name": "Bad_Name",
                                                             "value": value})
        assert r.status_code == 400 and value not in r.text
    logged = caplog.text + "".join(str(rec.args) for rec in caplog.records)
    assert "failed logins from 198.51.100.4" in logged  # the throttle did log
    for needle in (password, value, raw.decode(), base64.b64encode(raw).decode(),
                   admin[1], base64.b64encode(f"admin:{password}".encode()).decode()):
        assert needle not in logged


# ---- 3. function containers cannot reach the API -----------------------------------------

async def test_function_network_clients_get_403_except_invocations(settings, store):
    app = _app(settings, store)
    app.api.inside = lambda host: host.startswith("172.30.")
    async with _client(app, "172.30.0.5") as fn, _client(app, "10.9.9.9") as outside:
        assert (await outside.post("/system/functions", auth=AUTH, json=GOOD)).status_code \
            == 202
        for path in ("/system/functions", "/system/info", "/metrics", "/ui/", "/",
                     "/system/function/fn"):
            r = await fn.get(path, auth=AUTH)
            assert r.status_code == 403, path
            assert "function network" in r.text
        r = await fn.post("/system/functions", auth=AUTH, json={**GOOD, "service": "x"})
        assert r.status_code == 403
        assert (await fn.get("/healthz")).status_code == 200
        # invocations go to the proxy (no engine here: no replica, 502, but not 403)
        assert (await fn.post("/function/fn", content=b"x")).status_code == 502
        assert (await fn.post("/function/nothere", content=b"x")).status_code == 404
        assert (await fn.post("/async-function/nothere", content=b"x")).status_code == 404
        assert (await outside.get("/system/functions", auth=AUTH)).status_code == 200


async def test_metrics_port_refuses_function_networks_too():
    app = FunctionNetworkGuard(_ok, lambda host: host == "172.30.0.9")
    async with _client(app, "172.30.0.9") as fn, _client(app, "127.0.0.1") as local:
        assert (await fn.get("/metrics")).status_code == 403
        assert (await fn.get("/healthz")).status_code == 200
        assert (await local.get("/metrics")).status_code == 200


class _Networks:
    """The two adapter calls the subnet bookkeeping makes."""

    def __init__(self, networks):
        self.listed = networks
        self.removed: list[str] = []

    async def networks(self, label_filters):
        assert label_filters == []  # every network: ours are found by name
        return self.listed

    async def remove_network(self, network_id):
        self.removed.append(network_id)


def _network(name, subnet, gateway, instance="t1"):
    return {"Name": name, "Id": "id-" + name, "Labels": {"com.docker-faas.instance": instance},
            "IPAM": {"Config": [{"Subnet": subnet, "Gateway": gateway}]}}


async def test_controller_keeps_the_subnets_of_its_function_networks():
    docker = _Networks([
        _network("net", "172.30.0.0/16", "172.30.0.1"),
        _network("net-team", "172.31.0.0/16", "172.31.0.1"),
        _network("bridge", "172.17.0.0/16", "172.17.0.1", instance=""),
        _network("other", "10.5.0.0/16", "10.5.0.1", instance="t2"),
        _network("net-v6", "fd00:1::/64", "fd00:1::1"),
    ])
    controller = Controller(docker, lambda: EMPTY, ControllerSettings(instance="t1", network="net"))
    assert not controller.in_function_network("172.30.0.5")
    await controller._forget_removed_namespaces()
    assert docker.removed == ["id-net-team", "id-net-v6"]  # their namespaces are gone
    for inside in ("172.30.0.5", "172.31.2.3", "::ffff:172.30.0.7", "fd00:1::5"):
        assert controller.in_function_network(inside), inside
    for outside in ("172.30.0.1", "172.31.0.1", "172.17.0.2", "10.5.0.2", "127.0.0.1",
                    "fd00:1::1", "not-an-address", ""):
        assert not controller.in_function_network(outside), outside
    docker.listed = docker.listed[:1]  # after the removal, the next listing forgets them
    await controller._refresh_subnets()
    assert not controller.in_function_network("172.31.2.3")
    assert controller.in_function_network("172.30.9.9")


async def test_cross_site_writes_are_refused_same_site_and_cli_writes_are_not(client, store):
    fn = {"service": "csrf", "image": "img:1"}
    # a page of another site posting a form at the gateway, with the user's credentials
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"},
                    {"Sec-Fetch-Site": "cross-site"},
                    {"Origin": "http://gw.evil.example", "Host": "gw"}):
        r = await client.post("/system/functions", json=fn, headers=headers)
        assert r.status_code == 403 and "refused" in r.text, (headers, r.text)
    assert store.head() == 0
    # reads stay open to any origin that has the credentials
    r = await client.get("/system/functions", headers={"Origin": "https://evil.example"})
    assert r.status_code == 200
    # our own pages (same origin) and non-browser clients (no Origin) may write
    r = await client.post("/system/functions", json=fn, headers={
        "Origin": "http://gw", "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 202, r.text
    r = await client.put("/system/functions", json={**fn, "image": "img:2"})
    assert r.status_code == 202
