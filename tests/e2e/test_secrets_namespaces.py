"""Secrets reach containers byte for byte and nowhere else; namespaces are independent."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.conftest import Gateway, docker, inspect

pytestmark = pytest.mark.engine

VALUE = b"\x00\x01 s3cr3t-\xff\xfe value \n\x7f"
NEW_VALUE = b"rotated value \xe2\x82\xac"


def test_secret_served_byte_for_byte_then_rotated(gateway: Gateway) -> None:
    r = gateway.client.post("/system/secrets", json={
        "name": "api-key", "rawValue": base64.b64encode(VALUE).decode()})
    assert r.status_code == 201
    gateway.deploy("reader", "echo", envProcess="cat /var/openfaas/secrets/api-key",
                   secrets=["api-key"])
    r = gateway.invoke_until("reader", lambda r: r.status_code == 200)
    assert r.content == VALUE

    [cid] = gateway.containers("reader")
    mounts = inspect(cid)["Mounts"]  # type: ignore[index]
    [mount] = [m for m in mounts if m["Destination"] == "/var/openfaas/secrets/api-key"]
    assert mount["RW"] is False

    r = gateway.client.put("/system/secrets", json={"name": "api-key",
                                                    "value": NEW_VALUE.decode()})
    assert r.status_code == 202
    # the redeploy faas-cli would send (same spec): the new value is served
    gateway.deploy("reader", "echo", method="PUT",
                   envProcess="cat /var/openfaas/secrets/api-key", secrets=["api-key"])
    r = gateway.invoke_until("reader", lambda r: r.content == NEW_VALUE)
    # once no replica mounts the old value, its file is deleted at a resync
    folder = Path(gateway.env["SECRETS_DIR"]) / "openfaas-fn" / "api-key"
    gateway.wait_for("one value file left", lambda: len(list(folder.iterdir())) == 1)
    assert next(folder.iterdir()).read_bytes() == NEW_VALUE

    # the values appear neither in the event log nor in docker inspect
    with sqlite3.connect(gateway.state) as db:
        log = b"".join(str(row).encode() for row in db.execute("SELECT * FROM events"))
    inspected = docker("inspect", *gateway.containers("reader")).encode()
    for value in (VALUE, NEW_VALUE, base64.b64encode(VALUE)):
        assert value not in log and value not in inspected
    assert b"s3cr3t" not in log and b"rotated" not in log and b"rotated" not in inspected

    r = gateway.client.request("DELETE", "/system/secrets", json={"name": "api-key"})
    assert r.status_code == 409 and "reader" in r.text


def test_same_name_in_two_namespaces_is_two_functions(gateway: Gateway) -> None:
    r = gateway.client.post("/system/namespace/", json={"name": "team-b",
                                                        "labels": {"openfaas": "1"}})
    assert r.status_code == 201
    gateway.deploy("env", "env", envVars={"WHO": "default"})
    gateway.deploy("env", "env", namespace="team-b", envVars={"WHO": "team-b"})
    a = gateway.invoke_until("env", lambda r: r.status_code == 200)
    b = gateway.invoke_until("env.team-b", lambda r: r.status_code == 200)
    assert "WHO=default" in a.text and "WHO=team-b" in b.text
    default_net = "dfaas-" + gateway.instance
    nets = {c: list(inspect(c)["NetworkSettings"]["Networks"])  # type: ignore[index]
            for c in gateway.containers("env")}
    assert sorted(n for ns in nets.values() for n in ns) == sorted(
        [default_net, default_net + "-team-b"])
    r = gateway.client.request("DELETE", "/system/functions",
                               json={"functionName": "env", "namespace": "team-b"})
    assert r.status_code == 202
    gateway.invoke_until("env.team-b", lambda r: r.status_code == 404)
    assert gateway.client.get("/function/env").status_code == 200
    assert gateway.client.request("DELETE", "/system/namespace/team-b").status_code == 202
    gateway.wait_for("the namespace's network to go", lambda: docker(
        "network", "ls", "-q", "--filter", f"name=^{default_net}-team-b$") == "")
