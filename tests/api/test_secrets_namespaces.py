"""Secrets and namespaces through the API, in process: codes, shapes, what the log keeps."""

from __future__ import annotations

import base64
import json

import pytest

pytestmark = pytest.mark.anyio

FN = {"service": "f", "image": "img:1", "labels": {}, "annotations": {}}


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_secret_lifecycle_and_codes(client, store):
    assert (await client.get("/system/secrets")).json() == []
    r = await client.post("/system/secrets", json={"name": "api-key", "value": "s3cret-value"})
    assert r.status_code == 201
    assert (await client.post("/system/secrets",
                              json={"name": "api-key", "value": "x"})).status_code == 409
    assert (await client.get("/system/secrets")).json() == [
        {"name": "api-key", "namespace": "openfaas-fn"}]
    raw = base64.b64encode(b"\x00\xffbinary").decode()
    r = await client.put("/system/secrets", json={"name": "api-key", "rawValue": raw})
    assert r.status_code == 202
    assert (await client.put("/system/secrets",
                             json={"name": "nope", "value": "x"})).status_code == 404
    r = await client.request("DELETE", "/system/secrets", json={"name": "nope"})
    assert r.status_code == 404
    r = await client.request("DELETE", "/system/secrets", json={"name": "api-key"})
    assert r.status_code == 202
    assert (await client.get("/system/secrets")).json() == []
    # the log has names and digests, never a value
    dump = json.dumps([repr(r.event) for r in store.read_all()])
    assert "s3cret-value" not in dump and "binary" not in dump
    types = [type(r.event).__name__ for r in store.read_all()]
    assert types == ["SecretCreated", "SecretUpdated", "SecretRemoved"]


async def test_secret_values_are_sealed_and_readable(client):
    await client.post("/system/secrets", json={"name": "k", "value": "v1"})
    gateway = client._transport.app.gateway  # type: ignore[attr-defined]
    state = gateway.desired.secrets[("openfaas-fn", "k")]
    assert gateway.vault.get("openfaas-fn", "k", state.digest) == b"v1"
    db = (gateway.settings.state_dir / "secrets.db").read_bytes()
    assert b"v1" not in db.replace(b"v1.", b"")  # no plain value in the file
    assert (gateway.settings.state_dir / "secrets.key").stat().st_mode & 0o777 == 0o600


async def test_secret_in_use_cannot_be_deleted_and_missing_secret_refuses_deploy(client):
    r = await client.post("/system/functions", json={**FN, "secrets": ["db"]})
    assert r.status_code == 400 and "db" in r.text
    await client.post("/system/secrets", json={"name": "db", "value": "pw"})
    assert (await client.post("/system/functions",
                              json={**FN, "secrets": ["db"]})).status_code == 202
    r = await client.request("DELETE", "/system/secrets", json={"name": "db"})
    assert r.status_code == 409 and "f" in r.text


@pytest.mark.parametrize("body,field", [
    ({"value": "x"}, "name"),
    ({"name": "Bad Name", "value": "x"}, "name"),
    ({"name": "k", "rawValue": "***"}, "rawValue"),
    ({"name": "k", "value": 3}, "value"),
    ({"name": "k", "value": "x", "namespace": "nowhere"}, "namespace"),
])
async def test_bad_secret_bodies(client, store, body, field):
    r = await client.post("/system/secrets", json=body)
    assert r.status_code == 400 and field in r.text
    assert store.read_all() == []


async def test_namespaces(client):
    assert (await client.get("/system/namespaces")).json() == ["openfaas-fn"]
    body = {"name": "dev", "labels": {"openfaas": "1"}}
    assert (await client.post("/system/namespace/", json=body)).status_code == 201
    assert (await client.post("/system/namespace/dev", json=body)).status_code == 409
    assert (await client.get("/system/namespaces")).json() == ["openfaas-fn", "dev"]
    got = (await client.get("/system/namespace/dev")).json()
    assert got == {"name": "dev", "labels": {"openfaas": "1"}}
    r = await client.put("/system/namespace/dev",
                         json={"name": "dev", "labels": {"openfaas": "1", "team": "a"}})
    assert r.status_code == 202
    assert (await client.get("/system/namespace/dev")).json()["labels"]["team"] == "a"
    assert (await client.get("/system/namespace/nope")).status_code == 404
    assert (await client.put("/system/namespace/nope", json=body | {"name": "nope"}
                             )).status_code == 404
    # a namespace with functions cannot go; its secrets go with it
    await client.post("/system/secrets", json={"name": "k", "namespace": "dev", "value": "v"})
    await client.post("/system/functions", json={**FN, "namespace": "dev"})
    r = await client.request("DELETE", "/system/namespace/dev")
    assert r.status_code == 409 and "f" in r.text
    await client.request("DELETE", "/system/functions",
                         json={"functionName": "f", "namespace": "dev"})
    assert (await client.request("DELETE", "/system/namespace/dev")).status_code == 202
    assert (await client.get("/system/namespaces")).json() == ["openfaas-fn"]
    assert (await client.get("/system/secrets?namespace=dev")).status_code == 400


@pytest.mark.parametrize("path,body,field", [
    ("/system/namespace/", {"name": "x"}, "labels"),
    ("/system/namespace/", {"name": "x", "labels": {"openfaas": "0"}}, "labels"),
    ("/system/namespace/x", {"name": "y", "labels": {"openfaas": "1"}}, "name"),
    ("/system/namespace/", {"name": "Not-OK", "labels": {"openfaas": "1"}}, "name"),
])
async def test_bad_namespace_bodies(client, store, path, body, field):
    r = await client.post(path, json=body)
    assert r.status_code == 400 and field in r.text
    assert store.read_all() == []


async def test_default_namespace_cannot_be_removed_or_changed(client):
    assert (await client.request("DELETE", "/system/namespace/openfaas-fn")).status_code == 400
    assert (await client.get("/system/namespace/openfaas-fn")).json()["labels"] == {
        "openfaas": "1"}


async def test_unknown_namespace_is_400_everywhere(client):
    for path in ("/system/functions?namespace=zz", "/system/function/x?namespace=zz",
                 "/system/secrets?namespace=zz"):
        assert (await client.get(path)).status_code == 400
