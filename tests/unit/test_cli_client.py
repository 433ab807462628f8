"""The CLI's discovery of the gateway and of credentials (faas-cli's rules), and its HTTP
error messages, with a temporary HOME / OPENFAAS_CONFIG and an in-memory transport."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from api.client import (
    DEFAULT_GATEWAY,
    CliError,
    Credentials,
    GatewayClient,
    choose_gateway,
    config_credentials,
    config_dir,
    find_credentials,
    normalize_gateway,
    user_agent,
)

GW = "http://127.0.0.1:8080"


def faas_cli_config(directory: Path, *entries: tuple[str, str, str]) -> Path:
    """config.yml as `faas-cli login` writes it (yaml.v3, two-space indent)."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["auths:"]
    for gateway, auth, token in entries:
        lines += [f"  - gateway: {gateway}", f"    auth: {auth}", f"    token: {token}"]
    path = directory / "config.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def basic_token(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


# --- the gateway ------------------------------------------------------------------------


@pytest.mark.parametrize("given, expected", [
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
    ("127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("HTTPS://GW.Example.com//", "https://gw.example.com"),
    ("  http://gw:8080  ", "http://gw:8080"),
])
def test_gateway_urls_are_normalised_like_faas_cli(given, expected):
    assert normalize_gateway(given) == expected


def test_gateway_order_is_faas_clis_flag_then_stack_then_env_then_default():
    env = {"OPENFAAS_URL": "http://env:8080/"}
    assert choose_gateway("http://flag:1", env, "http://stack:2") == ("http://flag:1",
                                                                      "--gateway")
    assert choose_gateway(None, env, "http://stack:2") == (
        "http://stack:2", "the stack's provider.gateway")
    # a stack naming the default gateway does not hide OPENFAAS_URL (as in faas-cli)
    assert choose_gateway(None, env, "http://127.0.0.1:8080/") == ("http://env:8080",
                                                                   "OPENFAAS_URL")
    assert choose_gateway(None, {}, "stack:2")[0] == "http://stack:2"
    assert choose_gateway(None, {"OPENFAAS_URL": ""}, None) == (DEFAULT_GATEWAY, "the default")
    assert choose_gateway("", {}, "") == (DEFAULT_GATEWAY, "the default")


# --- where the faas-cli config lives ---------------------------------------------------------


def test_config_dir_follows_openfaas_config_then_ci_then_home(tmp_path):
    assert config_dir({"OPENFAAS_CONFIG": str(tmp_path / "x"), "CI": "true",
                       "HOME": "/h"}) == tmp_path / "x"
    assert config_dir({"CI": "true", "HOME": "/h"}) == Path(".openfaas")
    assert config_dir({"CI": "1", "HOME": "/h"}) == Path(".openfaas")
    assert config_dir({"CI": "false", "HOME": "/h"}) == Path("/h/.openfaas")
    assert config_dir({"HOME": str(tmp_path)}) == tmp_path / ".openfaas"


def test_login_saved_in_home_is_found_for_its_gateway(tmp_path):
    faas_cli_config(tmp_path / ".openfaas", ("http://other:8080", "basic",
                                             basic_token("bob", "nope")),
                    (GW, "basic", basic_token("admin", "s3cr:et")))
    found = config_credentials(GW, {"HOME": str(tmp_path)})
    assert found == Credentials("admin", "s3cr:et", source=str(tmp_path / ".openfaas" /
                                                                  "config.yml"))
    assert found.header() == "Basic " + basic_token("admin", "s3cr:et")
    assert config_credentials("http://third:8080", {"HOME": str(tmp_path)}) is None
    assert config_credentials(GW, {"HOME": str(tmp_path / "nobody")}) is None


def test_openfaas_config_dir_wins_over_home(tmp_path):
    faas_cli_config(tmp_path / "home" / ".openfaas", (GW, "basic", basic_token("a", "home")))
    faas_cli_config(tmp_path / "cfg", (GW, "basic", basic_token("a", "override")))
    env = {"HOME": str(tmp_path / "home"), "OPENFAAS_CONFIG": str(tmp_path / "cfg")}
    found = config_credentials(GW, env)
    assert found is not None and found.password == "override"


def test_hand_written_gateway_is_matched_in_normalised_form(tmp_path):
    faas_cli_config(tmp_path, ("HTTP://127.0.0.1:8080/", "basic", basic_token("u", "p")))
    found = config_credentials(GW, {"OPENFAAS_CONFIG": str(tmp_path)})
    assert found is not None and (found.username, found.password) == ("u", "p")


def test_non_basic_login_is_sent_as_a_bearer_token(tmp_path):
    faas_cli_config(tmp_path, (GW, "oauth2", "eyJtoken"))
    found = config_credentials(GW, {"OPENFAAS_CONFIG": str(tmp_path)})
    assert found is not None and found.header() == "Bearer eyJtoken"


def test_broken_config_files_are_named(tmp_path):
    faas_cli_config(tmp_path, (GW, "basic", "not base64!"))
    with pytest.raises(CliError, match="config.yml: the token saved for http://127.0.0.1:8080"):
        config_credentials(GW, {"OPENFAAS_CONFIG": str(tmp_path)})
    (tmp_path / "config.yml").write_text("auths: [\n")
    with pytest.raises(CliError, match="config.yml: not valid YAML"):
        config_credentials(GW, {"OPENFAAS_CONFIG": str(tmp_path)})
    (tmp_path / "config.yml").write_text("")  # faas-cli's EnsureFile leaves an empty file
    assert config_credentials(GW, {"OPENFAAS_CONFIG": str(tmp_path)}) is None


def test_credentials_order_stdin_then_env_then_config(tmp_path):
    faas_cli_config(tmp_path, (GW, "basic", basic_token("saved", "from-file")))
    env = {"OPENFAAS_CONFIG": str(tmp_path)}
    assert find_credentials(GW, env).password == "from-file"
    assert find_credentials(GW, env, username="other").username == "other"
    env_pw = {**env, "OPENFAAS_PASSWORD": "from-env"}
    assert find_credentials(GW, env_pw) == Credentials("admin", "from-env",
                                                      source="OPENFAAS_PASSWORD")
    assert find_credentials(GW, {**env_pw, "OPENFAAS_USERNAME": "ci"}).username == "ci"
    got = find_credentials(GW, env_pw, password="from-stdin")
    assert (got.username, got.password) == ("admin", "from-stdin")
    assert find_credentials("http://elsewhere", env) == Credentials()
    assert Credentials().header() is None


# --- HTTP errors as one line ---------------------------------------------------------------


def client_answering(status: int, body: str = "", credentials: Credentials | None = None
                     ) -> tuple[GatewayClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, text=body)

    client = GatewayClient(GW, credentials or Credentials("admin", "pw", source="x"),
                           transport=httpx.MockTransport(handler))
    return client, seen


def test_requests_carry_user_agent_and_basic_auth():
    client, seen = client_answering(200, "[]")
    assert client.get_json("/system/functions") == []
    assert seen[0].headers["user-agent"] == user_agent()
    assert user_agent().startswith("docker-faas-cli/")
    assert seen[0].headers["authorization"] == "Basic " + basic_token("admin", "pw")


def test_401_says_how_to_log_in():
    client, _ = client_answering(401, "invalid credentials")
    with pytest.raises(CliError) as err:
        client.get_json("/system/functions")
    message = err.value.message
    assert "\n" not in message and "401" in message
    assert f"faas-cli login -g {GW}" in message and "OPENFAAS_PASSWORD" in message
    client, _ = client_answering(401, "", Credentials())
    with pytest.raises(CliError, match="no credentials were found"):
        client.get_json("/system/functions")


def test_4xx_shows_the_gateway_message():
    client, _ = client_answering(400, "functions[2] (x): image: an image reference is "
                                      "required\n")
    with pytest.raises(CliError) as err:
        client.request("POST", "/system/apply", json={})
    assert err.value.message == ("POST /system/apply: 400 Bad Request: functions[2] (x): "
                                 "image: an image reference is required")


def test_unreachable_gateway_is_named():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    client = GatewayClient("http://127.0.0.1:9", Credentials(),
                           transport=httpx.MockTransport(refuse))
    with pytest.raises(CliError, match=r"^cannot reach the gateway at http://127\.0\.0\.1:9: "):
        client.get_json("/system/functions")
