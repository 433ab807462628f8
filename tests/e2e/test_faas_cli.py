"""faas-cli against docker-faas, request for request.

faas-cli cannot run here, so `FaasCli` below puts on the wire what faas-cli puts on the wire
for each command (method, path, query string, JSON body, headers), built by hand from what
its source says, and each test asserts what faas-cli accepts as success. docs/faas-cli.md has
one row per request with the source file and function each fact comes from.

Go details reproduced on purpose: `encoding/json` writes struct fields in declaration order,
map keys sorted, no spaces, and leaves out `omitempty` zero values; `url.Values.Encode` sorts
the keys; net/http trims header values (so the empty bearer token of a faas-cli that never
logged in goes out as `Authorization: Bearer`) and adds `Accept-Encoding: gzip`.

Responses are checked the way Go decodes them (`go_decodes`): a wrong JSON type, a time that
is not RFC 3339 or a negative replica count would make faas-cli fail with "cannot parse
result", whatever the status code.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx
import pytest

from tests.e2e.conftest import FIXTURE, PASSWORD, Gateway

pytestmark = pytest.mark.engine

CLI_VERSION = "0.18.0"  # any release: faas-cli writes version.BuildVersion() here
CLI_UA = f"faas-cli/{CLI_VERSION}"  # proxy.NewClient → every proxy.Client request
INVOKE_UA = f"faas-cli/{CLI_VERSION} (openfaas; linux; amd64)"  # commands/invoke.go
SDK_UA = "openfaas-go-sdk"  # go-sdk internal/httpclient FaasTransport default
GO_UA = "Go-http-client/1.1"  # bare net/http clients: login, ready (gateway)
USER = "admin"
NS = "openfaas-fn"

DEPLOY_OK = (200, 202)  # commands/deploy.go badStatusCode: anything else fails the command
CREATED_OK = (200, 201, 202)  # proxy CreateSecret, go-sdk namespace and scale calls
CHANGED_OK = (200, 202)  # proxy UpdateSecret / RemoveSecret / GetSecretList

# --- how Go's encoding/json would read a response -------------------------------------------

MAP = "map[string]string"
RESOURCES = {"memory": "string", "cpu": "string"}
FUNCTION_STATUS: dict[str, Any] = {
    "name": "string", "image": "string", "namespace": "string", "envProcess": "string",
    "envVars": MAP, "constraints": ["string"], "secrets": ["string"], "labels": MAP,
    "annotations": MAP, "limits": RESOURCES, "requests": RESOURCES,
    "readOnlyRootFilesystem": "bool", "invocationCount": "float64", "replicas": "uint64",
    "availableReplicas": "uint64", "createdAt": "time",
    "usage": {"cpu": "float64", "totalMemoryBytes": "float64"},
}
VERSION_INFO = {"commit_message": "string", "sha": "string", "release": "string"}
GATEWAY_INFO = {
    "provider": {"provider": "string", "version": VERSION_INFO, "orchestration": "string"},
    "version": VERSION_INFO, "arch": "string",
}
SECRET = {"name": "string", "namespace": "string", "value": "string", "rawValue": "bytes"}
FUNCTION_NAMESPACE = {"name": "string", "annotations": MAP, "labels": MAP}
LOG_MESSAGE = {"name": "string", "namespace": "string", "instance": "string",
               "timestamp": "time", "text": "string"}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")


def go_decodes(value: Any, shape: Any, where: str = "$") -> None:
    """Fail unless json.Unmarshal would read `value` into the Go type `shape` describes.

    Go ignores unknown keys and treats `null` as "leave the zero value"; a value of the wrong
    JSON type is an error (faas-cli: "cannot parse result from OpenFaaS").
    """
    if value is None:
        return
    if isinstance(shape, dict):
        assert isinstance(value, dict), f"{where}: Go wants an object, got {value!r}"
        for key, sub in shape.items():
            if key in value:
                go_decodes(value[key], sub, f"{where}.{key}")
        return
    if isinstance(shape, list):
        assert isinstance(value, list), f"{where}: Go wants an array, got {value!r}"
        for i, item in enumerate(value):
            go_decodes(item, shape[0], f"{where}[{i}]")
        return
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = {
        "string": isinstance(value, str),
        "bool": isinstance(value, bool),
        "float64": number,
        "uint64": number and isinstance(value, int) and value >= 0,
        "time": isinstance(value, str) and bool(RFC3339.match(value)),
        "bytes": isinstance(value, str) and _is_base64(value),
        MAP: isinstance(value, dict) and all(isinstance(v, str) for v in value.values()),
    }[shape]
    assert ok, f"{where}: Go cannot read {value!r} as {shape}"


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except binascii.Error:
        return False
    return True


# --- how Go would write a request ------------------------------------------------------------


def go_json(value: Any) -> bytes:
    """encoding/json.Marshal: compact, keys in the order given, <, > and & escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def go_query(params: Mapping[str, str]) -> str:
    """url.Values.Encode: keys sorted, QueryEscape'd (space → '+')."""
    return "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in sorted(params.items()))


def sorted_map(values: Mapping[str, str] | None) -> dict[str, str]:
    """A Go map[string]string as encoding/json writes it: keys in sorted order."""
    return dict(sorted((values or {}).items()))


def deployment(
    name: str, image: str, *, namespace: str = "", fprocess: str = "",
    env: Mapping[str, str] | None = None, constraints: list[str] | None = None,
    secrets: list[str] | None = None, labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None, limits: Mapping[str, str] | None = None,
    requests: Mapping[str, str] | None = None, readonly: bool = False,
) -> dict[str, Any]:
    """types.FunctionDeployment as proxy.(*Client).deploy builds and marshals it.

    Field order and omitempty as in faas-provider; `labels` and `annotations` are pointers to
    maps that are never nil (util.ParseMap / util.MergeMap always make one), so they are always
    sent, `{}` when empty; `limits`/`requests` only when a memory or cpu value is set.
    """
    body: dict[str, Any] = {"service": name, "image": image}
    if namespace:
        body["namespace"] = namespace
    if fprocess:
        body["envProcess"] = fprocess
    if env:
        body["envVars"] = sorted_map(env)
    if constraints:
        body["constraints"] = constraints
    if secrets:
        body["secrets"] = secrets
    body["labels"] = sorted_map(labels)
    body["annotations"] = sorted_map(annotations)
    for field, value in (("limits", limits), ("requests", requests)):
        if value and (value.get("memory") or value.get("cpu")):
            body[field] = {k: value[k] for k in ("memory", "cpu") if value.get(k)}
    if readonly:
        body["readOnlyRootFilesystem"] = True
    return body


class FaasCli:
    """One method per faas-cli client call, sending exactly what faas-cli sends."""

    def __init__(self, gateway: Gateway, *, logged_in: bool = True) -> None:
        self.base = gateway.url
        self.logged_in = logged_in
        self.http = httpx.Client(timeout=30)
        self.sent: list[httpx.Request] = []

    def close(self) -> None:
        self.http.close()

    @staticmethod
    def basic(password: str = PASSWORD) -> str:
        """req.SetBasicAuth(user, password), as stored by `faas-cli login`."""
        return "Basic " + base64.b64encode(f"{USER}:{password}".encode()).decode()

    def proxy_headers(self, *, body: bool) -> dict[str, str]:
        """proxy.(*Client).newRequest: Content-Type only with a body, then ClientAuth.Set.

        Without a saved login proxy.NewCLIAuth returns a BearerToken with an empty token;
        `"Bearer " + ""` leaves net/http trimmed to `Bearer`.
        """
        headers = {"User-Agent": CLI_UA}
        if body:
            headers["Content-Type"] = "application/json"
        headers["Authorization"] = self.basic() if self.logged_in else "Bearer"
        headers["Accept-Encoding"] = "gzip"
        return headers

    def sdk_headers(self, *, body: bool) -> dict[str, str]:
        """go-sdk: no Authorization at all when GetDefaultSDKClient found no login."""
        headers: dict[str, str] = {}
        if body:
            headers["Content-Type"] = "application/json"
        if self.logged_in:
            headers["Authorization"] = self.basic()
        headers["User-Agent"] = SDK_UA
        headers["Accept-Encoding"] = "gzip"
        return headers

    def send(self, method: str, path: str, headers: dict[str, str], *,
             query: Mapping[str, str] | None = None, body: bytes | None = None,
             stream: bool = False, timeout: float | None = None) -> httpx.Response:
        url = self.base + path + ("?" + go_query(query) if query else "")
        # a hand-built request gets no timeout from the client: give it one
        extensions = {"timeout": httpx.Timeout(timeout or 30).as_dict()}
        request = httpx.Request(method, url, content=body, headers=headers,
                                extensions=extensions)
        self.sent.append(request)
        return self.http.send(request, stream=stream)

    # -- login, version, ready --------------------------------------------------------------

    def login(self, password: str = PASSWORD) -> httpx.Response:
        """commands/login.go validateLogin: a bare net/http GET, 200 means valid."""
        return self.send("GET", "/system/functions", {
            "User-Agent": GO_UA, "Authorization": self.basic(password),
            "Accept-Encoding": "gzip"})

    def version(self) -> httpx.Response:
        """proxy/version.go GetSystemInfo."""
        return self.send("GET", "/system/info", self.proxy_headers(body=False))

    def ready_gateway(self) -> httpx.Response:
        """commands/ready.go without a function name: GET /healthz, no auth."""
        return self.send("GET", "/healthz", {"User-Agent": GO_UA, "Accept-Encoding": "gzip"})

    def ready(self, name: str, namespace: str = "", *, attempts: int = 150,
              interval: float = 0.2) -> httpx.Response:
        """commands/ready.go with a name: GetFunctionInfo until availableReplicas > 0.

        (faas-cli waits 1 s between its 60 attempts; the requests are the same.)
        """
        last = None
        for _ in range(attempts):
            last = self.function_info(name, namespace)
            if last.status_code == 200 and last.json().get("availableReplicas", 0) > 0:
                return last
            time.sleep(interval)
        assert last is not None
        raise AssertionError(f"faas-cli ready {name}: never ready: {last.status_code} "
                             f"{last.text[:300]}")

    # -- functions ------------------------------------------------------------------------------

    def list_functions(self, namespace: str = "") -> httpx.Response:
        """proxy/list.go ListFunctions (faas-cli list, and the 2nd half of describe)."""
        query = {"namespace": namespace} if namespace else None
        return self.send("GET", "/system/functions", self.proxy_headers(body=False), query=query)

    def function_info(self, name: str, namespace: str = "") -> httpx.Response:
        """proxy/describe.go GetFunctionInfo: always asks for usage."""
        query = {"usage": "1", **({"namespace": namespace} if namespace else {})}
        return self.send("GET", f"/system/function/{name}", self.proxy_headers(body=False),
                         query=query)

    def describe(self, name: str, namespace: str = "") -> list[httpx.Response]:
        """commands/describe.go: GetFunctionInfo, then ListFunctions for invocationCount."""
        info = self.function_info(name, namespace)
        if info.status_code != 200:
            return [info]
        return [info, self.list_functions(namespace)]

    def remove(self, name: str, namespace: str = "") -> httpx.Response:
        """proxy/delete.go DeleteFunction: name and namespace in the body, empty query."""
        body: dict[str, Any] = {"functionName": name}
        if namespace:
            body["namespace"] = namespace
        return self.send("DELETE", "/system/functions", self.proxy_headers(body=True),
                         body=go_json(body))

    def remove_legacy(self, name: str, namespace: str) -> httpx.Response:
        """proxy/delete.go of older releases: namespace only in ?namespace=, not the body."""
        return self.send("DELETE", "/system/functions", self.proxy_headers(body=True),
                         query={"namespace": namespace},
                         body=go_json({"functionName": name}))

    def deploy(self, spec: dict[str, Any], *, update: bool = True,
               replace: bool = False) -> tuple[int, list[httpx.Response]]:
        """proxy/deploy.go DeployFunction: PUT, and POST when the PUT says 404.

        --replace (only with --update=false) sends DELETE first and ignores its answer.
        Returns the final status, which commands/deploy.go requires to be 200 or 202.
        """
        calls: list[httpx.Response] = []

        def once(as_update: bool) -> int:
            if replace:
                calls.append(self.remove(spec["service"], spec.get("namespace", "")))
            calls.append(self.send("PUT" if as_update else "POST", "/system/functions",
                                   self.proxy_headers(body=True), body=go_json(spec)))
            return calls[-1].status_code

        status = once(update)
        if update and status == 404:
            status = once(False)
        return status, calls

    def scale(self, name: str, replicas: int, namespace: str = "") -> httpx.Response:
        """proxy/scale.go ScaleFunction (a library call: faas-cli has no scale command)."""
        body: dict[str, Any] = {"serviceName": name, "replicas": replicas}
        if namespace:
            body["namespace"] = namespace
        return self.send("POST", f"/system/scale-function/{name}",
                         self.proxy_headers(body=True), body=go_json(body))

    def invoke(self, name: str, data: bytes = b"", *, namespace: str = "",
               method: str = "POST", query: Mapping[str, str] | None = None,
               headers: Mapping[str, str] | None = None, content_type: str = "text/plain",
               asynchronous: bool = False) -> httpx.Response:
        """commands/invoke.go + go-sdk InvokeFunction: always `name.namespace`, no auth."""
        sent = {**(headers or {}), "Content-Type": content_type, "User-Agent": INVOKE_UA,
                "Accept-Encoding": "gzip"}
        endpoint = "/async-function" if asynchronous else "/function"
        return self.send(method, f"{endpoint}/{name}.{namespace or NS}", sent, query=query,
                         body=data or (b"" if method in ("POST", "PUT", "PATCH") else None))

    def logs(self, name: str, *, namespace: str = "", follow: bool = True, tail: int = -1,
             since: str = "", instance: str = "") -> httpx.Response:
        """proxy/logs.go GetLogs + reqAsQueryValues; a streamed response."""
        query = {"name": name, "follow": "true" if follow else "false"}
        if namespace:
            query["namespace"] = namespace
        if instance:
            query["instance"] = instance
        if since:
            query["since"] = since
        if tail != 0:
            query["tail"] = str(tail)
        return self.send("GET", "/system/logs", self.proxy_headers(body=False), query=query,
                         stream=True, timeout=15)

    # -- secrets -------------------------------------------------------------------------------

    def secret_list(self, namespace: str = "") -> httpx.Response:
        """proxy/secret.go GetSecretList."""
        query = {"namespace": namespace} if namespace else None
        return self.send("GET", "/system/secrets", self.proxy_headers(body=False), query=query)

    @staticmethod
    def _secret(name: str, namespace: str, value: str = "",
                raw: bytes | None = None) -> bytes:
        body: dict[str, Any] = {"name": name}
        if namespace:
            body["namespace"] = namespace
        if value:
            body["value"] = value
        if raw:
            body["rawValue"] = base64.b64encode(raw).decode()
        return go_json(body)

    def secret_create(self, name: str, value: str, *, namespace: str = "",
                      raw: bytes | None = None, replace: bool = False) -> list[httpx.Response]:
        """proxy/secret.go CreateSecret; with --replace a 409 is followed by UpdateSecret.

        --from-file sends the file both as `rawValue` (base64) and as `value`.
        """
        calls = [self.send("POST", "/system/secrets", self.proxy_headers(body=True),
                           body=self._secret(name, namespace, value, raw))]
        if replace and calls[0].status_code == 409:
            calls.append(self.secret_update(name, value, namespace=namespace))
        return calls

    def secret_update(self, name: str, value: str, *, namespace: str = "") -> httpx.Response:
        """proxy/secret.go UpdateSecret."""
        return self.send("PUT", "/system/secrets", self.proxy_headers(body=True),
                         body=self._secret(name, namespace, value))

    def secret_remove(self, name: str, *, namespace: str = "") -> httpx.Response:
        """proxy/secret.go RemoveSecret."""
        return self.send("DELETE", "/system/secrets", self.proxy_headers(body=True),
                         body=self._secret(name, namespace))

    # -- namespaces (go-sdk) ---------------------------------------------------------------

    def namespace_list(self) -> httpx.Response:
        """go-sdk GetNamespaces (faas-cli namespace list / the hidden `namespaces`)."""
        return self.send("GET", "/system/namespaces", self.sdk_headers(body=False))

    def namespace_get(self, name: str) -> httpx.Response:
        """go-sdk GetNamespace (faas-cli namespace get)."""
        return self.send("GET", f"/system/namespace/{name}", self.sdk_headers(body=False))

    @staticmethod
    def _namespace(name: str, labels: Mapping[str, str] | None,
                   annotations: Mapping[str, str] | None) -> bytes:
        """go-sdk Create/UpdateNamespace add openfaas=1 to both labels and annotations."""
        return go_json({"name": name,
                        "annotations": sorted_map({**(annotations or {}), "openfaas": "1"}),
                        "labels": sorted_map({**(labels or {}), "openfaas": "1"})})

    def namespace_create(self, name: str, *, labels: Mapping[str, str] | None = None,
                         annotations: Mapping[str, str] | None = None) -> httpx.Response:
        """go-sdk CreateNamespace: POST to the collection path with its trailing slash."""
        return self.send("POST", "/system/namespace/", self.sdk_headers(body=True),
                         body=self._namespace(name, labels, annotations))

    def namespace_update(self, name: str, *, labels: Mapping[str, str] | None = None,
                         annotations: Mapping[str, str] | None = None) -> httpx.Response:
        """go-sdk UpdateNamespace."""
        return self.send("PUT", f"/system/namespace/{name}", self.sdk_headers(body=True),
                         body=self._namespace(name, labels, annotations))

    def namespace_remove(self, name: str) -> httpx.Response:
        """go-sdk DeleteNamespace: body carries the name and labels openfaas=1 only."""
        return self.send("DELETE", f"/system/namespace/{name}", self.sdk_headers(body=True),
                         body=go_json({"name": name, "labels": {"openfaas": "1"}}))


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def ndjson(response: httpx.Response) -> list[Any]:
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One gateway for the module; every test uses function names of its own."""
    gateway = Gateway(Path(tmp_path_factory.mktemp("faas-cli")))
    try:
        yield gateway.start()
    finally:
        gateway.close()


@pytest.fixture
def cli(gw: Gateway) -> Iterator[FaasCli]:
    client = FaasCli(gw)
    yield client
    client.close()


def deploy_ready(cli: FaasCli, spec: dict[str, Any]) -> None:
    status, calls = cli.deploy(spec)
    assert status in DEPLOY_OK, [(c.request.method, c.status_code, c.text) for c in calls]
    cli.ready(spec["service"], spec.get("namespace", ""))


# --- login, auth, version, ready -------------------------------------------------------------


def test_login_checks_credentials_with_a_basic_auth_list(cli: FaasCli) -> None:
    r = cli.login()
    assert r.status_code == 200, r.text  # faas-cli: "credentials saved for admin ..."
    assert "content-type" not in r.request.headers and r.request.url.query == b""
    r = cli.login("not-the-password")
    assert r.status_code == 401  # faas-cli: "unable to login, either username or password ..."


def test_commands_before_login_send_an_empty_bearer_and_get_401(gw: Gateway) -> None:
    anon = FaasCli(gw, logged_in=False)
    try:
        assert anon.list_functions().request.headers["authorization"] == "Bearer"
        # faas-cli: unauthorized access, run "faas-cli login" to setup authentication
        assert anon.list_functions().status_code == 401
        assert anon.version().status_code == 401
        status, _ = anon.deploy(deployment("nologin", FIXTURE.format("echo")))
        assert status == 401
        assert anon.remove("nologin").status_code == 401
    finally:
        anon.close()


def test_version_reads_gateway_and_provider_info(cli: FaasCli) -> None:
    r = cli.version()
    assert r.status_code == 200, r.text
    info = r.json()
    go_decodes(info, GATEWAY_INFO)
    # commands/version.go dereferences all three pointers: null would panic faas-cli
    assert isinstance(info.get("provider"), dict) and isinstance(info.get("version"), dict)
    assert isinstance(info["provider"].get("version"), dict)
    for value in (info["provider"].get("provider"), info["provider"].get("orchestration"),
                  info["provider"]["version"].get("release"), info["version"].get("release"),
                  info["version"].get("sha")):
        assert isinstance(value, str) and value


def test_ready_without_a_name_polls_healthz_without_auth(cli: FaasCli) -> None:
    r = cli.ready_gateway()
    assert r.status_code == 200  # faas-cli: "OpenFaaS gateway is ready"
    assert "authorization" not in r.request.headers


# --- list, deploy, describe, ready NAME, remove ---------------------------------------------


def test_list_all_and_by_namespace(cli: FaasCli) -> None:
    r = cli.list_functions()
    assert r.status_code == 200 and r.request.url.query == b"", r.text
    go_decodes(r.json(), [FUNCTION_STATUS])
    r = cli.list_functions(NS)
    assert r.status_code == 200 and r.request.url.query == b"namespace=openfaas-fn", r.text
    assert isinstance(r.json(), list)


def test_deploy_of_a_new_function_puts_then_posts(cli: FaasCli) -> None:
    """faas-cli deploy --image … --name … (and `up`, which deploys the same way)."""
    name = fresh("new")
    spec = deployment(name, FIXTURE.format("echo"), fprocess="cat")
    status, calls = cli.deploy(spec)
    assert [(c.request.method, c.status_code) for c in calls][:1] == [("PUT", 404)]
    assert [c.request.method for c in calls] == ["PUT", "POST"]
    assert status in DEPLOY_OK, calls[-1].text  # "Deployed. 202 Accepted."
    assert calls[-1].request.content == (
        b'{"service":"%s","image":"docker-faas-fixtures/echo:latest","envProcess":"cat",'
        b'"labels":{},"annotations":{}}' % name.encode())
    cli.ready(name)
    r = cli.invoke(name, b"hello from faas-cli")
    assert r.status_code == 200 and r.text == "hello from faas-cli"


def test_deploy_from_a_stack_file_sends_every_field_and_describe_echoes_them(
        cli: FaasCli) -> None:
    name = fresh("stack")
    spec = deployment(
        name, FIXTURE.format("env"), namespace=NS, fprocess="env",
        env={"b_var": "2", "a_var": "1 & <2>"}, constraints=["node.platform.os == linux"],
        labels={"com.openfaas.scale.min": "1", "team": "docs"},
        annotations={"topic": "orders", "com.example.json": '{"a": [1, 2]}'},
        limits={"memory": "64Mi", "cpu": "100m"}, requests={"memory": "32Mi"}, readonly=True)
    body = go_json(spec)
    assert b'"a_var":"1 \\u0026 \\u003c2\\u003e","b_var":"2"' in body  # Go's escaping and order
    deploy_ready(cli, spec)
    info, listed = cli.describe(name, NS)
    assert info.request.url.query == b"namespace=openfaas-fn&usage=1"
    assert info.status_code == 200 and listed.status_code == 200, (info.text, listed.text)
    status = info.json()
    go_decodes(status, FUNCTION_STATUS)
    assert status["name"] == name and status["image"] == spec["image"]
    assert status["envProcess"] == "env" and status["envVars"] == spec["envVars"]
    assert status["constraints"] == spec["constraints"]
    assert spec["labels"].items() <= status["labels"].items()
    assert spec["annotations"].items() <= status["annotations"].items()
    assert status["limits"] == spec["limits"] and status["requests"] == spec["requests"]
    assert status["readOnlyRootFilesystem"] is True
    assert status["availableReplicas"] >= 1  # describe prints "Status: Ready"
    go_decodes(listed.json(), [FUNCTION_STATUS])
    assert name in [fn["name"] for fn in listed.json()]
    r = cli.invoke(name, b"", method="GET", namespace=NS)
    assert r.status_code == 200 and "a_var=1 & <2>" in r.text


def test_deploy_over_an_existing_function_is_one_put(cli: FaasCli) -> None:
    name = fresh("upd")
    deploy_ready(cli, deployment(name, FIXTURE.format("env"), fprocess="env"))
    spec = deployment(name, FIXTURE.format("env"), fprocess="env", env={"GREETING": "hej"})
    status, calls = cli.deploy(spec)
    assert [c.request.method for c in calls] == ["PUT"]
    assert status in DEPLOY_OK, calls[-1].text  # 200 also prints "attempting rolling-update"
    r = cli.function_info(name)
    assert r.status_code == 200 and r.json().get("envVars") == {"GREETING": "hej"}
    deadline = time.monotonic() + 30
    while "GREETING=hej" not in cli.invoke(name).text:
        assert time.monotonic() < deadline, "the update never reached the replicas"
        time.sleep(0.2)


def test_deploy_with_update_false_posts_once(cli: FaasCli) -> None:
    name = fresh("post")
    spec = deployment(name, FIXTURE.format("echo"), fprocess="cat")
    status, calls = cli.deploy(spec, update=False)
    assert [c.request.method for c in calls] == ["POST"] and status in DEPLOY_OK
    # a second --update=false deploy of the same name: faas-cli prints "Unexpected status:
    # 409, message: …" and fails; the reference providers answer 400 (faasd) or 500 (k8s)
    status, calls = cli.deploy(spec, update=False)
    assert status == 409, calls[-1].text


def test_deploy_with_replace_deletes_then_posts(cli: FaasCli) -> None:
    name = fresh("repl")
    spec = deployment(name, FIXTURE.format("echo"), fprocess="cat")
    status, calls = cli.deploy(spec, update=False, replace=True)
    # a 404 on the DELETE is printed as "No existing function to remove" and ignored
    assert [(c.request.method, c.status_code) for c in calls][0] == ("DELETE", 404)
    assert calls[1].request.method == "POST" and status in DEPLOY_OK, calls[1].text
    cli.ready(name)
    status, calls = cli.deploy(spec, update=False, replace=True)
    assert [(c.request.method, c.status_code) for c in calls][0] == ("DELETE", 202)
    assert status in DEPLOY_OK, calls[1].text  # the POST comes right after the DELETE
    cli.ready(name)
    deadline = time.monotonic() + 30
    while cli.invoke(name, b"again").text != "again":
        assert time.monotonic() < deadline, "the replaced function never answered"
        time.sleep(0.2)


def test_store_deploy_is_a_deploy_of_the_store_item(cli: FaasCli) -> None:
    """faas-cli store deploy env: the store item's image, fprocess and labels via deployImage."""
    name = fresh("store")
    spec = deployment(name, FIXTURE.format("env"), fprocess="env",
                      labels={"com.openfaas.ui.ext": "txt"})
    status, calls = cli.deploy(spec)
    assert [c.request.method for c in calls] == ["PUT", "POST"] and status in DEPLOY_OK
    cli.ready(name)


def test_describe_of_a_missing_function(cli: FaasCli) -> None:
    calls = cli.describe("no-such-fn")
    assert [c.status_code for c in calls] == [404]  # faas-cli: "no such function: no-such-fn"
    assert calls[0].request.url.query == b"usage=1"


def test_remove_by_name_and_namespace(cli: FaasCli) -> None:
    first, second, third = fresh("rm"), fresh("rm"), fresh("rm")
    for name in (first, second, third):
        status, _ = cli.deploy(deployment(name, FIXTURE.format("echo"), fprocess="cat"))
        assert status in DEPLOY_OK
    r = cli.remove(first)
    assert r.request.content == b'{"functionName":"%s"}' % first.encode()
    assert r.status_code in (200, 201, 202), r.text  # "Removing old function."
    r = cli.remove(second, NS)
    assert r.request.url.query == b"" and b'"namespace":"openfaas-fn"' in r.request.content
    assert r.status_code in (200, 201, 202), r.text
    r = cli.remove_legacy(third, NS)
    assert r.request.url.query == b"namespace=openfaas-fn", r.request.url
    assert r.status_code in (200, 201, 202), r.text
    assert cli.remove(first).status_code == 404  # "No existing function to remove"
    assert cli.function_info(first).status_code == 404


def test_scale_library_call(cli: FaasCli) -> None:
    name = fresh("scale")
    deploy_ready(cli, deployment(name, FIXTURE.format("echo"), fprocess="cat"))
    r = cli.scale(name, 2)
    assert r.request.content == b'{"serviceName":"%s","replicas":2}' % name.encode()
    assert r.status_code in CREATED_OK, r.text
    assert cli.scale("no-such-fn", 1).status_code == 404  # "function no-such-fn not found"


# --- invoke ----------------------------------------------------------------------------------


def test_invoke_always_names_the_namespace(cli: FaasCli) -> None:
    name = fresh("inv")
    deploy_ready(cli, deployment(name, FIXTURE.format("env"), fprocess="env"))
    r = cli.invoke(name, b"{}", query={"repo": "faas-cli", "org": "open faas"},
                   headers={"X-Ping-Url": "http://example.invalid/x"},
                   content_type="application/json")
    target = f"/function/{name}.openfaas-fn?org=open+faas&repo=faas-cli"
    assert r.request.url.raw_path == target.encode()
    assert 200 <= r.status_code <= 299, r.text
    assert f"Http_User_Agent={INVOKE_UA}" in r.text
    assert "Http_Content_Type=application/json" in r.text
    assert "Http_Query=org=open+faas&repo=faas-cli" in r.text
    assert "Http_X_Ping_Url=http://example.invalid/x" in r.text
    assert "Http_Authorization" not in r.text  # faas-cli never sends gateway creds here
    r = cli.invoke(name, method="GET", namespace=NS)
    assert r.status_code == 200 and "Http_Method=GET" in r.text
    r = cli.invoke("no-such-fn", b"x")
    assert r.status_code == 404  # "server returned unexpected status code: 404 - …"


def test_invoke_async_is_accepted(cli: FaasCli) -> None:
    name = fresh("async")
    deploy_ready(cli, deployment(name, FIXTURE.format("echo"), fprocess="cat"))
    r = cli.invoke(name, b"later", asynchronous=True,
                   headers={"X-Callback-Url": "http://127.0.0.1:9/callback"})
    assert r.request.url.raw_path == f"/async-function/{name}.openfaas-fn".encode()
    assert r.status_code == 202, r.text  # "Function submitted asynchronously."


# --- logs ------------------------------------------------------------------------------------


def test_logs_without_tail_ends_after_the_backlog(cli: FaasCli) -> None:
    name = fresh("logs")
    deploy_ready(cli, deployment(name, FIXTURE.format("echo"), fprocess="cat"))
    assert cli.invoke(name, b"a line").status_code == 200
    deadline = time.monotonic() + 20
    while True:
        r = cli.logs(name, follow=False)  # faas-cli logs NAME --tail=false
        r.read()
        assert r.request.url.query == f"follow=false&name={name}&tail=-1".encode()
        assert r.status_code == 200, r.text
        messages = ndjson(r)
        if any("Forking fprocess" in m.get("text", "") for m in messages):
            break
        assert time.monotonic() < deadline, f"no watchdog lines in the logs: {messages}"
        time.sleep(0.5)
    for message in messages:
        go_decodes(message, LOG_MESSAGE)
        assert message["name"] == name


def test_logs_follow_streams_lines_as_they_come(cli: FaasCli) -> None:
    name = fresh("tail")
    deploy_ready(cli, deployment(name, FIXTURE.format("echo"), fprocess="cat"))
    assert cli.invoke(name, b"x").status_code == 200
    r = cli.logs(name, namespace=NS, tail=5, since="2020-01-01T00:00:00Z")
    try:
        assert r.request.url.query == (
            f"follow=true&name={name}&namespace=openfaas-fn&since=2020-01-01T00%3A00%3A00Z"
            "&tail=5").encode()
        assert r.status_code == 200
        line = next(line for line in r.iter_lines() if line.strip())  # before the stream ends
        go_decodes(json.loads(line), LOG_MESSAGE)
    finally:
        r.close()


# --- secrets ---------------------------------------------------------------------------------


def test_secret_create_list_update_remove(cli: FaasCli) -> None:
    name = fresh("api-key")
    r = cli.secret_list()
    assert r.status_code in CHANGED_OK, r.text
    go_decodes(r.json(), [SECRET])
    assert name not in [s["name"] for s in r.json()]

    [r] = cli.secret_create(name, "s3cr3t")
    assert r.request.content == b'{"name":"%s","value":"s3cr3t"}' % name.encode()
    assert r.status_code in CREATED_OK, r.text  # "Created: 201 Created"
    [r] = cli.secret_create(name, "again")
    assert r.status_code == 409, r.text  # 'secret with the name "…" already exists'
    calls = cli.secret_create(name, "replaced", replace=True)  # POST 409, then PUT
    assert [c.request.method for c in calls] == ["POST", "PUT"], calls[0].text
    assert calls[1].status_code in CHANGED_OK, calls[1].text

    for namespace in ("", NS):
        r = cli.secret_list(namespace)
        assert r.status_code in CHANGED_OK, r.text
        go_decodes(r.json(), [SECRET])
        assert name in [s["name"] for s in r.json()]
        assert all("value" not in s and "rawValue" not in s for s in r.json())

    r = cli.secret_update(name, "rotated")
    assert r.status_code in CHANGED_OK, r.text  # "Updated: 202 Accepted"
    r = cli.secret_update(fresh("missing"), "x")
    assert r.status_code == 404, r.text  # "unable to find secret: …"

    r = cli.secret_remove(name)
    assert r.request.content == b'{"name":"%s"}' % name.encode()
    assert r.status_code in CHANGED_OK, r.text  # "Removed.. OK."
    assert cli.secret_remove(name).status_code == 404  # "unable to find secret: …"
    assert name not in [s["name"] for s in cli.secret_list().json()]


def test_secret_from_file_reaches_a_deployed_function(cli: FaasCli) -> None:
    """secret create --from-file --namespace, then deploy --secret, then secret update."""
    secret, fn = fresh("db-pass"), fresh("reader")
    [r] = cli.secret_create(secret, "from a file", namespace=NS, raw=b"from a file")
    assert r.request.content == (b'{"name":"%s","namespace":"openfaas-fn","value":"from a file",'
                                 b'"rawValue":"ZnJvbSBhIGZpbGU="}' % secret.encode())
    assert r.status_code in CREATED_OK, r.text
    spec = deployment(fn, FIXTURE.format("echo"), secrets=[secret],
                      fprocess=f"cat /var/openfaas/secrets/{secret}")
    deploy_ready(cli, spec)
    r = cli.invoke(fn)
    assert r.status_code == 200 and r.text == "from a file", r.text
    assert cli.function_info(fn).json().get("secrets") == [secret]
    assert cli.remove(fn).status_code in (200, 201, 202)
    assert cli.secret_remove(secret, namespace=NS).status_code in CHANGED_OK


# --- namespaces (go-sdk) ---------------------------------------------------------------------


def test_namespace_list_and_get_default(cli: FaasCli) -> None:
    r = cli.namespace_list()
    assert r.status_code == 200, r.text
    go_decodes(r.json(), ["string"])
    assert r.json()[:1] == [NS]
    r = cli.namespace_get(NS)
    assert r.status_code == 200, r.text
    go_decodes(r.json(), FUNCTION_NAMESPACE)
    assert r.json()["name"] == NS
    assert cli.namespace_get("no-such-ns").status_code == 404  # "not found: namespace …"


def test_namespace_create_update_remove(cli: FaasCli) -> None:
    name = fresh("team")
    r = cli.namespace_create(name, labels={"env": "dev"})
    assert r.request.content == (b'{"name":"%s","annotations":{"openfaas":"1"},'
                                 b'"labels":{"env":"dev","openfaas":"1"}}' % name.encode())
    assert r.status_code in CREATED_OK, r.text  # "Namespace Created: …"
    assert name in cli.namespace_list().json()
    r = cli.namespace_get(name)
    assert r.status_code == 200, r.text
    go_decodes(r.json(), FUNCTION_NAMESPACE)
    assert r.json()["name"] == name
    r = cli.namespace_update(name, annotations={"owner": "docs"})
    assert r.status_code in CREATED_OK, r.text  # "Namespace Updated: …"
    assert cli.namespace_update(fresh("nope")).status_code == 404
    r = cli.namespace_remove(name)
    assert r.status_code in CREATED_OK, r.text  # "Namespace Removed: …"
    assert cli.namespace_get(name).status_code == 404
    assert cli.namespace_remove(name).status_code == 404


def test_namespace_calls_before_login_carry_no_authorization(gw: Gateway) -> None:
    anon = FaasCli(gw, logged_in=False)
    try:
        r = anon.namespace_list()
        assert "authorization" not in r.request.headers
        assert r.status_code == 401  # go-sdk: ErrUnauthorized
    finally:
        anon.close()
